"""``dagster-artifacts ui``: the artifact browser (:mod:`dagster_artifacts.browser`) on loopback."""

from __future__ import annotations

import click

from dagster_artifacts.cli.context import EPILOG, Context, handle_errors, pass_ctx
from dagster_artifacts.errors import ConfigurationError


@click.command("ui", epilog=EPILOG)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to listen on (loopback by default: the browser has no login).",
)
@click.option("--port", type=click.IntRange(1, 65535), default=3001, show_default=True)
@click.option(
    "--dagster-url",
    envvar="DAGSTER_ARTIFACTS_DAGSTER_URL",
    help="The Dagster UI that run pages link to (env DAGSTER_ARTIFACTS_DAGSTER_URL).",
)
@pass_ctx
@handle_errors
def ui_command(ctx: Context, host: str, port: int, dagster_url: str | None) -> None:
    """Browse artifacts, versions, files, lineage graphs, diffs and runs in a web browser
    (read-only). Every page is also JSON: add ?format=json."""
    try:
        from dagster_artifacts.browser import serve
    except ImportError as error:
        raise ConfigurationError(
            f"The artifact browser needs the [ui] extra ({error.name} is missing): "
            "pip install 'dagster-artifacts[ui]'."
        ) from error
    api = ctx.api
    click.echo(f"Artifact browser on http://{host}:{port}/ (Ctrl-C stops it)", err=True)
    serve(api, host=host, port=port, dagster_url=dagster_url)
