"""The ``dagster-artifacts`` command: inspect, fetch, log and tidy artifacts from a shell.

Same configuration as the library (``--root``/``--database``/``--entity``/``--project`` or the
``DAGSTER_ARTIFACTS_*`` environment variables). Listings print rich tables, or JSON with
``--json`` for scripts. Exit codes: 0 success, 1 failure (unknown artifact, checksum mismatch,
refused delete, storage error), 2 usage (bad option, malformed ``NAME:ALIAS``, ``--keep-last 0``).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, NoReturn, TypeVar

import click

from dagster_artifacts.errors import (
    ArtifactError,
    InvalidArgumentError,
    InvalidNameError,
    InvalidPathError,
)

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

EPILOG = (
    "Exit codes: 0 success; 1 failure (unknown artifact or version, refused delete, "
    "checksum mismatch, storage error); 2 usage (bad option, malformed NAME:ALIAS, "
    "--keep-last 0)."
)
USAGE_ERRORS = (InvalidNameError, InvalidPathError, InvalidArgumentError)


# -- plumbing ---------------------------------------------------------------------------------------
class Context:
    """Lazily built ``Api`` for the global options, shared by every command."""

    def __init__(self, options: dict[str, Any], as_json: bool) -> None:
        self.options = {k: v for k, v in options.items() if v is not None}
        self.as_json = as_json
        self._api: Any = None

    @property
    def api(self) -> Any:
        if self._api is None:
            from dagster_artifacts.api import Api

            self._api = Api(**self.options)
        return self._api

    @property
    def engine(self) -> Any:
        return self.api._engine


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def handle_errors(func: F) -> F:
    """Turn typed errors into a one-line message and the documented exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except USAGE_ERRORS as error:
            _fail(str(error), EXIT_USAGE)
        except ArtifactError as error:
            _fail(str(error), EXIT_FAILURE)
        except FileNotFoundError as error:
            _fail(str(error), EXIT_FAILURE)

    return wrapper  # type: ignore[return-value]


def json_option(func: F) -> F:
    return click.option(
        "--json", "as_json", is_flag=True, default=False, help="Print JSON instead of a table."
    )(func)


def _want_json(ctx: Context, as_json: bool) -> bool:
    return as_json or ctx.as_json


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return str(value)


def _console() -> Any:
    from rich.console import Console

    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 120)


def _table(title: str | None, columns: Iterable[str], rows: Iterable[Iterable[Any]]) -> None:
    from rich.table import Table

    table = Table(title=title, box=None, header_style="bold", pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    _console().print(table)


def _size(value: int) -> str:
    from dagster_artifacts.lifecycle import format_size

    return format_size(value)


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def _ttl(seconds: int | None) -> str:
    from dagster_artifacts.lifecycle import format_duration

    return "" if not seconds else format_duration(seconds)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


class DurationType(click.ParamType):
    name = "DURATION"

    def convert(self, value: Any, param: Any, ctx: Any) -> timedelta:
        from dagster_artifacts.lifecycle import parse_duration

        try:
            return parse_duration(value)
        except InvalidArgumentError as error:
            self.fail(str(error), param, ctx)


class SizeType(click.ParamType):
    name = "SIZE"

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        from dagster_artifacts.lifecycle import parse_size

        try:
            return parse_size(value)
        except InvalidArgumentError as error:
            self.fail(str(error), param, ctx)


DURATION = DurationType()
SIZE = SizeType()


def _qualified(record: Any) -> str:
    return f"{record.entity}/{record.project}/{record.name}:v{record.index}"


def _version_json(record: Any) -> dict[str, Any]:
    return {
        "name": f"{record.name}:v{record.index}",
        "qualified_name": _qualified(record),
        "version": f"v{record.index}",
        "type": record.type,
        "aliases": list(record.aliases),
        "digest": record.digest,
        "size": record.size,
        "file_count": record.file_count,
        "created_at": record.created_at,
        "ttl_seconds": record.ttl_seconds,
        "description": record.description,
        "metadata": record.metadata,
        "partition_key": record.partition_key,
    }


def _run_json(run: Any) -> dict[str, Any]:
    return {
        "id": run.id,
        "path": f"{run.entity}/{run.project}/{run.id}",
        "name": run.name,
        "job_type": run.job_type,
        "group": run.group,
        "state": run.state,
        "created_at": run.created_at,
    }


def _resolve(ctx: Context, name: str) -> Any:
    """``NAME:ALIAS`` -> logged Artifact; malformed paths exit 2, unknown names exit 1."""
    return ctx.api.artifact(name)


# -- the group --------------------------------------------------------------------------------------
@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--root", envvar="DAGSTER_ARTIFACTS_ROOT", help="Store URL (env DAGSTER_ARTIFACTS_ROOT)."
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


pass_ctx = click.make_pass_decorator(Context)


@main.command("ls", epilog=EPILOG)
@click.option("--type", "type_name", help="Only artifacts of this type.")
@click.option("--all-projects", is_flag=True, help="Every project in the registry.")
@click.option("--projects", "list_projects", is_flag=True, help="List projects instead.")
@click.option("--types", "list_types", is_flag=True, help="List artifact types instead.")
@json_option
@pass_ctx
@handle_errors
def ls_command(
    ctx: Context,
    type_name: str | None,
    all_projects: bool,
    list_projects: bool,
    list_types: bool,
    as_json: bool,
) -> None:
    """List artifacts with their version counts and sizes (or projects, or types)."""
    registry = ctx.engine.registry
    if list_projects:
        projects = registry.list_projects()
        if _want_json(ctx, as_json):
            _emit_json([{"entity": e, "project": p} for e, p in projects])
        else:
            _table(None, ["ENTITY", "PROJECT"], projects)
        return
    scopes = (
        registry.list_projects()
        if all_projects
        else [(ctx.api.settings.entity, ctx.api.settings.project)]
    )
    if list_types:
        types = sorted({t for e, p in scopes for t in registry.list_types(e, p)})
        if _want_json(ctx, as_json):
            _emit_json(types)
        else:
            _table(None, ["TYPE"], [[t] for t in types])
        return
    collections = [c for e, p in scopes for c in registry.list_collections(e, p, type=type_name)]
    if _want_json(ctx, as_json):
        _emit_json(
            [
                {
                    "entity": c.entity,
                    "project": c.project,
                    "name": c.name,
                    "type": c.type,
                    "versions": c.version_count,
                    "size": c.size,
                }
                for c in collections
            ]
        )
        return
    _table(
        None,
        ["PROJECT", "NAME", "TYPE", "VERSIONS", "SIZE"],
        [
            [f"{c.entity}/{c.project}", c.name, c.type, c.version_count, _size(c.size)]
            for c in collections
        ],
    )


@main.command("versions", epilog=EPILOG)
@click.argument("name")
@json_option
@pass_ctx
@handle_errors
def versions_command(ctx: Context, name: str, as_json: bool) -> None:
    """List the versions of artifact NAME, oldest first."""
    from dagster_artifacts.lifecycle import _split_name

    entity, project, collection = _split_name(ctx.engine, name)
    records = ctx.engine.registry.list_versions(entity, project, collection)
    if not records:
        ctx.engine.registry.resolve(entity, project, collection, "latest")  # names what exists
    if _want_json(ctx, as_json):
        _emit_json([_version_json(r) for r in records])
        return
    _table(
        None,
        ["VERSION", "ALIASES", "FILES", "SIZE", "DIGEST", "CREATED", "TTL"],
        [
            [
                f"v{r.index}",
                ", ".join(r.aliases),
                r.file_count,
                _size(r.size),
                (r.digest or "")[:12],
                _when(r.created_at),
                _ttl(r.ttl_seconds),
            ]
            for r in records
        ],
    )


@main.command("show", epilog=EPILOG)
@click.argument("name")
@json_option
@pass_ctx
@handle_errors
def show_command(ctx: Context, name: str, as_json: bool) -> None:
    """Show NAME:ALIAS: manifest, metadata, aliases, producer run and consumers."""
    artifact = _resolve(ctx, name)
    record = artifact._record
    registry = ctx.engine.registry
    producer = registry.logged_by(record.id)
    consumers = registry.used_by(record.id)
    entries = sorted(artifact.manifest.entries.values(), key=lambda e: e.path)
    if _want_json(ctx, as_json):
        data = _version_json(record)
        data["files"] = [
            {"path": e.path, "digest": e.digest, "size": e.size, "ref": e.ref} for e in entries
        ]
        data["logged_by"] = _run_json(producer) if producer else None
        data["used_by"] = [_run_json(r) for r in consumers]
        _emit_json(data)
        return
    console = _console()
    console.print(f"[bold]{_qualified(record)}[/bold]  type={record.type}")
    console.print(f"  aliases:     {', '.join(record.aliases) or '-'}")
    console.print(f"  digest:      {record.digest}")
    console.print(f"  size:        {_size(record.size)} in {record.file_count} files")
    console.print(f"  created:     {_when(record.created_at)}")
    if record.ttl_seconds:
        console.print(f"  ttl:         {_ttl(record.ttl_seconds)}")
    if record.description:
        console.print(f"  description: {record.description}")
    if record.metadata:
        console.print(f"  metadata:    {json.dumps(record.metadata, sort_keys=True)}")
    console.print(
        f"  logged by:   {producer.entity}/{producer.project}/{producer.id} ({producer.job_type})"
        if producer
        else "  logged by:   -"
    )
    console.print(
        "  used by:     "
        + (", ".join(f"{r.id} ({r.job_type})" for r in consumers) if consumers else "-")
    )
    _table(
        None,
        ["PATH", "SIZE", "DIGEST"],
        [[e.path, _size(e.size or 0), e.ref or e.digest] for e in entries],
    )


@main.command("get", epilog=EPILOG)
@click.argument("name")
@click.option("--root", "target", type=click.Path(file_okay=False), help="Download folder.")
@click.option("--path-prefix", help="Only entries whose path starts with this.")
@pass_ctx
@handle_errors
def get_command(ctx: Context, name: str, target: str | None, path_prefix: str | None) -> None:
    """Download NAME:ALIAS (default folder ./artifacts/NAME:VERSION); prints the folder."""
    artifact = _resolve(ctx, name)
    entries = [
        e
        for e in artifact.manifest.entries.values()
        if path_prefix is None or e.path.startswith(path_prefix)
    ]
    if path_prefix is not None and not entries:
        raise InvalidArgumentError(
            f"{artifact.name} has no entry under {path_prefix!r}; `dagster-artifacts show "
            f"{artifact.name}` lists its files."
        )
    folder = os.path.abspath(target) if target else os.path.abspath(artifact._default_root())
    path = artifact.download(root=folder, path_prefix=path_prefix)  # the engine shows progress
    click.echo(path)


@main.command("put", epilog=EPILOG)
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
    from dagster_artifacts.runs import start_run

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
    settings = ctx.api.settings
    # Refuse a second type before a run row is written (nothing changes on bad input).
    ctx.engine.check_type(settings.entity, settings.project, artifact_name, artifact_type)
    run = start_run(settings, job_type=job_type)
    with run:
        run.log_artifact(artifact, aliases=list(aliases))
        artifact.wait()
    record = artifact._record
    if _want_json(ctx, as_json):
        data = _version_json(record)
        data["deduplicated"] = artifact.deduplicated
        data["run"] = run.id
        _emit_json(data)
        return
    note = " (same content as an existing version)" if artifact.deduplicated else ""
    click.echo(
        f"Logged {_qualified(record)}{note}: {record.file_count} files, {_size(record.size)}, "
        f"aliases {', '.join(record.aliases)}"
    )


@main.group("alias", epilog=EPILOG)
def alias_group() -> None:
    """Add or remove aliases of a version."""


@alias_group.command("add", epilog=EPILOG)
@click.argument("name")
@click.argument("alias")
@pass_ctx
@handle_errors
def alias_add(ctx: Context, name: str, alias: str) -> None:
    """Point ALIAS at version NAME:VERSION (moving it from another version)."""
    from dagster_artifacts.names import validate_alias

    validate_alias(alias)
    artifact = _resolve(ctx, name)
    if alias not in artifact.aliases:
        artifact.aliases.append(alias)
        artifact.save()
    click.echo(f"{artifact.name}: aliases {', '.join(artifact.aliases)}")


@alias_group.command("rm", epilog=EPILOG)
@click.argument("name")
@click.argument("alias")
@pass_ctx
@handle_errors
def alias_rm(ctx: Context, name: str, alias: str) -> None:
    """Remove ALIAS from version NAME:VERSION."""
    artifact = _resolve(ctx, name)
    if alias not in artifact.aliases:
        raise InvalidArgumentError(
            f"{artifact.name} has no alias {alias!r}; it has {', '.join(artifact.aliases) or 'none'}."
        )
    artifact.aliases.remove(alias)
    artifact.save()
    click.echo(f"{artifact.name}: aliases {', '.join(artifact.aliases) or '-'}")


@main.command("lineage", epilog=EPILOG)
@click.argument("name")
@click.option(
    "--depth", type=click.IntRange(min=1), default=3, show_default=True, help="Levels each way."
)
@json_option
@pass_ctx
@handle_errors
def lineage_command(ctx: Context, name: str, depth: int, as_json: bool) -> None:
    """Upstream and downstream runs and artifacts of NAME:VERSION, as a tree."""
    artifact = _resolve(ctx, name)
    registry = ctx.engine.registry
    root = artifact._record

    def upstream(record: Any, level: int, seen: set[int]) -> list[dict[str, Any]]:
        if level > depth or record.id in seen:
            return []
        seen = seen | {record.id}
        runs = registry.logging_runs(record.id)
        return [
            {
                "run": _run_json(run),
                "inputs": [
                    {"artifact": _qualified(v), "upstream": upstream(v, level + 1, seen)}
                    for v in registry.run_versions(run.id, "used")
                ],
            }
            for run in runs
        ]

    def downstream(record: Any, level: int, seen: set[int]) -> list[dict[str, Any]]:
        if level > depth or record.id in seen:
            return []
        seen = seen | {record.id}
        return [
            {
                "run": _run_json(run),
                "outputs": [
                    {"artifact": _qualified(v), "downstream": downstream(v, level + 1, seen)}
                    for v in registry.run_versions(run.id, "logged")
                ],
            }
            for run in registry.used_by(record.id)
        ]

    data = {
        "artifact": _qualified(root),
        "upstream": upstream(root, 1, set()),
        "downstream": downstream(root, 1, set()),
    }
    if _want_json(ctx, as_json):
        _emit_json(data)
        return
    from rich.tree import Tree

    def run_label(run: dict[str, Any]) -> str:
        return f"run {run['run']['id']} [dim]({run['run']['job_type'] or 'no job type'})[/dim]"

    def add_up(node: Tree, runs: list[dict[str, Any]]) -> None:
        for run in runs:
            branch = node.add(f"logged by {run_label(run)}")
            for item in run["inputs"]:
                add_up(branch.add(f"used [cyan]{item['artifact']}[/cyan]"), item["upstream"])

    def add_down(node: Tree, runs: list[dict[str, Any]]) -> None:
        for run in runs:
            branch = node.add(f"used by {run_label(run)}")
            for item in run["outputs"]:
                add_down(branch.add(f"logged [cyan]{item['artifact']}[/cyan]"), item["downstream"])

    tree = Tree(f"[bold cyan]{data['artifact']}[/bold cyan]")
    up = tree.add("[bold]upstream[/bold]")
    add_up(up, data["upstream"])
    if not data["upstream"]:
        up.add("[dim]none[/dim]")
    down = tree.add("[bold]downstream[/bold]")
    add_down(down, data["downstream"])
    if not data["downstream"]:
        down.add("[dim]none[/dim]")
    _console().print(tree)


@main.command("verify", epilog=EPILOG)
@click.argument("name")
@click.option(
    "--root", "target", type=click.Path(file_okay=False), help="Downloaded folder to check."
)
@pass_ctx
@handle_errors
def verify_command(ctx: Context, name: str, target: str | None) -> None:
    """Check a downloaded copy of NAME:VERSION against its manifest (exit 1 on any difference)."""
    artifact = _resolve(ctx, name)
    result = artifact.verify(root=target)
    skipped = (
        f"; {len(result.skipped_references)} untracked references skipped"
        if result.skipped_references
        else ""
    )
    click.echo(f"OK {result.root}: {result.checked} files match {artifact.name}{skipped}")


@main.command("delete", epilog=EPILOG)
@click.argument("name")
@click.option("--force", is_flag=True, help="Also remove the version's aliases.")
@pass_ctx
@handle_errors
def delete_command(ctx: Context, name: str, force: bool) -> None:
    """Delete version NAME:VERSION (bytes are reclaimed by `gc` once nothing else uses them)."""
    artifact = _resolve(ctx, name)
    if artifact.aliases and not force:
        raise ArtifactError(
            f"{artifact.name} has aliases {', '.join(artifact.aliases)}; move or remove them "
            "(`dagster-artifacts alias rm ...`), or pass --force to delete them with it."
        )
    artifact.delete(delete_aliases=force)
    click.echo(f"Deleted {artifact.qualified_name}; run `dagster-artifacts gc` to free its bytes.")


def _check_keep_last(value: int) -> int:
    if value < 1:
        raise click.BadParameter(
            f"{value} would delete every version, including the one `latest` points to; keep at "
            "least 1 (delete a last version explicitly with `dagster-artifacts delete`).",
            param_hint="'--keep-last'",
        )
    return value


@main.command("prune", epilog=EPILOG)
@click.argument("name")
@click.option(
    "--keep-last",
    type=int,
    required=True,
    callback=lambda _ctx, _param, value: _check_keep_last(value),
    help="Keep the newest N versions (N >= 1; 0 is a usage error, exit 2).",
)
@click.option("--keep-aliased", is_flag=True, help="Also keep every version that has an alias.")
@click.option("--older-than", type=DURATION, help="Only delete versions older than this, e.g. 30d.")
@click.option("--dry-run", is_flag=True, help="Show what would be deleted; change nothing.")
@json_option
@pass_ctx
@handle_errors
def prune_command(
    ctx: Context,
    name: str,
    keep_last: int,
    keep_aliased: bool,
    older_than: timedelta | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Delete old versions of artifact NAME, keeping the newest --keep-last."""
    from dagster_artifacts.lifecycle import prune

    result = prune(
        ctx.engine,
        name,
        keep_last,
        keep_aliased=keep_aliased,
        older_than=older_than,
        dry_run=dry_run,
    )
    if _want_json(ctx, as_json):
        _emit_json(
            {
                "dry_run": dry_run,
                "deleted": [_version_json(r) for r in result.deleted],
                "kept": [_version_json(r) for r in result.kept],
            }
        )
        return
    verb = "Would delete" if dry_run else "Deleted"
    if result.deleted:
        _table(
            None,
            ["VERSION", "ALIASES", "SIZE", "CREATED"],
            [
                [f"v{r.index}", ", ".join(r.aliases), _size(r.size), _when(r.created_at)]
                for r in result.deleted
            ],
        )
    click.echo(
        f"{verb} {_plural(len(result.deleted), 'version')} ({_size(result.freed_size)}), kept "
        f"{len(result.kept)}: {', '.join(f'v{r.index}' for r in result.kept)}."
        + (
            ""
            if dry_run or not result.deleted
            else " Run `dagster-artifacts gc` to free the bytes."
        )
    )


@main.command("gc", epilog=EPILOG)
@click.option(
    "--grace",
    type=DURATION,
    default="24h",
    show_default=True,
    help="Never delete blobs modified more recently than this (protects concurrent writers).",
)
@click.option("--dry-run", is_flag=True, help="Report what would be freed; delete nothing.")
@json_option
@pass_ctx
@handle_errors
def gc_command(ctx: Context, grace: timedelta, dry_run: bool, as_json: bool) -> None:
    """Delete TTL-expired versions, then blobs and manifests no version references."""
    from dagster_artifacts.lifecycle import gc
    from dagster_artifacts.progress import status

    with status("Collecting garbage"):
        result = gc(ctx.engine, grace=grace, dry_run=dry_run)
    if _want_json(ctx, as_json):
        _emit_json(result.to_json())
        return
    verb = "Would free" if dry_run else "Freed"
    if result.expired:
        click.echo(
            ("Would expire " if dry_run else "Expired ")
            + ", ".join(_qualified(r) for r in result.expired)
        )
    click.echo(
        f"{verb} {_size(result.bytes_freed)}: {_plural(result.blobs_deleted, 'blob')}, "
        f"{_plural(result.manifests_deleted, 'manifest')}. Kept "
        f"{_plural(result.blobs_kept, 'referenced blob')} and "
        f"{_plural(result.recent_kept, 'unreferenced file')} younger than "
        f"{_ttl(int(grace.total_seconds())) or '0s'}."
    )


@main.group("cache", epilog=EPILOG)
def cache_group() -> None:
    """The local download cache (DAGSTER_ARTIFACTS_CACHE_DIR)."""


def _cache(ctx: Context, max_bytes: int | None = None) -> Any:
    from dagster_artifacts.settings import Settings
    from dagster_artifacts.storage.cache import DownloadCache

    cache_dir = Settings.resolve(**ctx.options).cache_dir
    return DownloadCache(cache_dir, max_bytes)


@cache_group.command("info", epilog=EPILOG)
@json_option
@pass_ctx
@handle_errors
def cache_info(ctx: Context, as_json: bool) -> None:
    """Where the cache is, how full, and its budget."""
    info = _cache(ctx).info()
    if _want_json(ctx, as_json):
        _emit_json(info.__dict__)
        return
    _table(
        None,
        ["PATH", "FILES", "SIZE", "MAX SIZE", "MODE"],
        [[info.path, info.files, _size(info.bytes), _size(info.max_bytes), info.enabled]],
    )


@cache_group.command("prune", epilog=EPILOG)
@click.option(
    "--max-size", type=SIZE, required=True, help="Shrink to at most this, e.g. 2GB, 500MiB, 0."
)
@json_option
@pass_ctx
@handle_errors
def cache_prune(ctx: Context, max_size: int, as_json: bool) -> None:
    """Evict least recently used files until the cache fits --max-size."""
    result = _cache(ctx).prune(max_size)
    if _want_json(ctx, as_json):
        _emit_json(result.__dict__)
        return
    click.echo(
        f"Removed {_plural(result.files_removed, 'file')} ({_size(result.bytes_freed)}); "
        f"{_plural(result.files_left, 'file')}, {_size(result.bytes_left)} left."
    )


@main.command("runs", epilog=EPILOG)
@click.option("--job-type", help="Only runs of this job type.")
@click.option("--group", help="Only runs of this group.")
@json_option
@pass_ctx
@handle_errors
def runs_command(ctx: Context, job_type: str | None, group: str | None, as_json: bool) -> None:
    """List the runs of the project, with what each logged and used."""
    settings = ctx.api.settings
    registry = ctx.engine.registry
    runs = registry.list_runs(settings.entity, settings.project, job_type=job_type, group=group)
    rows = []
    for run in runs:
        data = _run_json(run)
        data["logged"] = [f"{v.name}:v{v.index}" for v in registry.run_versions(run.id, "logged")]
        data["used"] = [f"{v.name}:v{v.index}" for v in registry.run_versions(run.id, "used")]
        rows.append(data)
    if _want_json(ctx, as_json):
        _emit_json(rows)
        return
    _table(
        None,
        ["RUN", "JOB TYPE", "STATE", "CREATED", "LOGGED", "USED"],
        [
            [
                r["id"],
                r["job_type"],
                r["state"],
                _when(r["created_at"]),
                ", ".join(r["logged"]),
                ", ".join(r["used"]),
            ]
            for r in rows
        ],
    )


if __name__ == "__main__":  # pragma: no cover
    main()
