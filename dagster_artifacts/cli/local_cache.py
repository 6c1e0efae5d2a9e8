"""The machine's download cache: ``cache info`` and ``cache prune``."""

from __future__ import annotations

import click

from dagster_artifacts.cli import output
from dagster_artifacts.cli.context import (
    EPILOG,
    SIZE,
    Context,
    handle_errors,
    json_option,
    pass_ctx,
)


@click.group("cache", epilog=EPILOG)
def cache_group() -> None:
    """The local download cache (DAGSTER_ARTIFACTS_CACHE_DIR)."""


@cache_group.command("info", epilog=EPILOG)
@json_option
@pass_ctx
@handle_errors
def cache_info(ctx: Context, as_json: bool) -> None:
    """Where the cache is, how full, and its budget."""
    info = ctx.api.cache_info()
    if ctx.wants_json(as_json):
        output.emit_json(info.__dict__)
        return
    output.table(
        None,
        ["PATH", "FILES", "SIZE", "MAX SIZE", "MODE"],
        [
            [
                info.path,
                info.files,
                output.size(info.bytes),
                output.size(info.max_bytes),
                info.enabled,
            ]
        ],
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
    result = ctx.api.prune_cache(max_size)
    if ctx.wants_json(as_json):
        output.emit_json(result.__dict__)
        return
    click.echo(
        f"Removed {output.plural(result.files_removed, 'file')} "
        f"({output.size(result.bytes_freed)}); {output.plural(result.files_left, 'file')}, "
        f"{output.size(result.bytes_left)} left."
    )
