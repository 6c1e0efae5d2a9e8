"""Moving bytes: ``get`` (download), ``put`` (log a file or folder) and ``verify``."""

from __future__ import annotations

import os
from datetime import timedelta

import click

from dagster_artifacts.cli import output
from dagster_artifacts.cli.context import (
    DURATION,
    EPILOG,
    Context,
    handle_errors,
    json_option,
    pass_ctx,
)
from dagster_artifacts.errors import InvalidArgumentError


@click.command("get", epilog=EPILOG)
@click.argument("name")
@click.option("--root", "target", type=click.Path(file_okay=False), help="Download folder.")
@click.option("--path-prefix", help="Only entries whose path starts with this.")
@pass_ctx
@handle_errors
def get_command(ctx: Context, name: str, target: str | None, path_prefix: str | None) -> None:
    """Download NAME:ALIAS (default folder ./artifacts/NAME:VERSION); prints the folder."""
    artifact = ctx.api.artifact(name)
    if path_prefix is not None and not any(
        path.startswith(path_prefix) for path in artifact.manifest.entries
    ):
        raise InvalidArgumentError(
            f"{artifact.name} has no entry under {path_prefix!r}; `dagster-artifacts show "
            f"{artifact.name}` lists its files."
        )
    folder = os.path.abspath(target or artifact.default_root())
    click.echo(artifact.download(root=folder, path_prefix=path_prefix))  # progress on stderr


@click.command("put", epilog=EPILOG)
@click.argument("path", type=click.Path(exists=True))
@click.option("--name", "-n", "artifact_name", required=True, help="Artifact name.")
@click.option("--type", "-t", "artifact_type", required=True, help="Artifact type.")
@click.option("--alias", "-a", "aliases", multiple=True, help="Alias (repeatable).")
@click.option(
    "--ignore", "ignores", multiple=True, help="Gitignore-style pattern to skip (repeatable)."
)
@click.option("--description", help="Version description.")
@click.option("--ttl", type=DURATION, help="Time to live, e.g. 30d; gc deletes it after that.")
@click.option("--job-type", default="cli-put", show_default=True, help="Job type of the run.")
@json_option
@pass_ctx
@handle_errors
def put_command(
    ctx: Context,
    path: str,
    artifact_name: str,
    artifact_type: str,
    aliases: tuple[str, ...],
    ignores: tuple[str, ...],
    description: str | None,
    ttl: timedelta | None,
    job_type: str,
    as_json: bool,
) -> None:
    """Log a file or folder PATH as a new version of --name (a run records the lineage)."""
    from dagster_artifacts.artifact import Artifact
    from dagster_artifacts.names import validate_aliases

    artifact = Artifact(artifact_name, type=artifact_type, description=description)
    validate_aliases(list(aliases))
    if ttl is not None:
        if ttl.total_seconds() <= 0:
            raise InvalidArgumentError("--ttl must be more than 0; leave it out for no TTL.")
        artifact.ttl = ttl
    if not os.path.isdir(path) and ignores:
        raise InvalidArgumentError("--ignore only applies to folders; PATH is a file.")
    # Hashing and storing draw their own byte bars on stderr (progress.py) after a second.
    if os.path.isdir(path):
        artifact.add_dir(path, ignore=list(ignores) or None)
    else:
        artifact.add_file(path)
    if not artifact.manifest.entries:
        raise InvalidArgumentError(f"Nothing to log: every file under {path} is ignored.")
    run = ctx.api.log_artifact(artifact, aliases=list(aliases), job_type=job_type)
    if ctx.wants_json(as_json):
        data = output.version_json(artifact)
        data["deduplicated"] = artifact.deduplicated
        data["run"] = run.id
        output.emit_json(data)
        return
    note = " (same content as an existing version)" if artifact.deduplicated else ""
    click.echo(
        f"Logged {artifact.qualified_name}{note}: {output.plural(artifact.file_count, 'file')}, "
        f"{output.size(artifact.size)}, aliases {', '.join(artifact.aliases)}"
    )


@click.command("verify", epilog=EPILOG)
@click.argument("name")
@click.option(
    "--root", "target", type=click.Path(file_okay=False), help="Downloaded folder to check."
)
@pass_ctx
@handle_errors
def verify_command(ctx: Context, name: str, target: str | None) -> None:
    """Check a downloaded copy of NAME:VERSION against its manifest (exit 1 on any difference)."""
    artifact = ctx.api.artifact(name)
    result = artifact.verify(root=target)
    skipped = (
        f"; {output.plural(len(result.skipped_references), 'untracked reference')} skipped"
        if result.skipped_references
        else ""
    )
    matched = f"{output.plural(result.checked, 'file')} match{'es' if result.checked == 1 else ''}"
    click.echo(f"OK {result.root}: {matched} {artifact.name}{skipped}")
