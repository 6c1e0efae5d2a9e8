"""The ``dagster-artifacts`` command: inspect, fetch, log and tidy artifacts from a shell.

Same configuration as the library (``--root``/``--database``/``--entity``/``--project`` or the
``DAGSTER_ARTIFACTS_*`` environment variables), given before the command or after it (there
``--store`` instead of ``--root``, which ``get`` and ``verify`` use for the local folder). Listings print rich tables, or JSON with
``--json`` for scripts. Exit codes: 0 success, 1 failure (unknown artifact, checksum mismatch,
refused delete, storage error), 2 usage (bad option, malformed ``NAME:ALIAS``, ``--keep-last 0``).
Commands live by family (:mod:`.browse`, :mod:`.transfer`, :mod:`.manage`, :mod:`.cache`) and
use the public ``Api`` only.
"""

from __future__ import annotations

import click

from dagster_artifacts.cli.browse import (
    lineage_command,
    ls_command,
    runs_command,
    show_command,
    versions_command,
)
from dagster_artifacts.cli.context import EPILOG, Context, accept_global_options
from dagster_artifacts.cli.local_cache import cache_group
from dagster_artifacts.cli.manage import (
    alias_group,
    delete_command,
    gc_command,
    prune_command,
    repack_command,
)
from dagster_artifacts.cli.transfer import get_command, put_command, verify_command
from dagster_artifacts.cli.ui import ui_command


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--root",
    "--store",
    "root",
    envvar="DAGSTER_ARTIFACTS_ROOT",
    help="Store URL (env DAGSTER_ARTIFACTS_ROOT).",
)
@click.option(
    "--database",
    envvar="DAGSTER_ARTIFACTS_DATABASE",
    help="Registry URL (env DAGSTER_ARTIFACTS_DATABASE).",
)
@click.option(
    "--entity", envvar="DAGSTER_ARTIFACTS_ENTITY", help="Entity (env DAGSTER_ARTIFACTS_ENTITY)."
)
@click.option(
    "--project", envvar="DAGSTER_ARTIFACTS_PROJECT", help="Project (env DAGSTER_ARTIFACTS_PROJECT)."
)
@click.option("--json", "as_json", is_flag=True, help="JSON output for every listing.")
@click.version_option(package_name="dagster-artifacts")
@click.pass_context
def main(
    click_ctx: click.Context,
    root: str | None,
    database: str | None,
    entity: str | None,
    project: str | None,
    as_json: bool,
) -> None:
    """Inspect, fetch, log and tidy dagster-artifacts from a shell."""
    click_ctx.obj = Context(
        {"root": root, "database": database, "entity": entity, "project": project}, as_json
    )


for _command in (
    ls_command,
    versions_command,
    show_command,
    get_command,
    put_command,
    alias_group,
    lineage_command,
    verify_command,
    delete_command,
    prune_command,
    gc_command,
    repack_command,
    cache_group,
    runs_command,
    ui_command,
):
    accept_global_options(_command)
    main.add_command(_command)

__all__ = ["main"]
