"""How the CLI prints: rich tables for people, JSON (``--json``) for scripts, one shape each."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from dagster_artifacts.units import format_duration, format_size

if TYPE_CHECKING:
    from dagster_artifacts.artifact import Artifact
    from dagster_artifacts.lineage import LineageRun


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return str(value)


def console() -> Any:
    from rich.console import Console

    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 120)


def table(title: str | None, columns: Iterable[str], rows: Iterable[Iterable[Any]]) -> None:
    from rich.table import Table

    grid = Table(title=title, box=None, header_style="bold", pad_edge=False)
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*("" if cell is None else str(cell) for cell in row))
    console().print(grid)


def size(value: int) -> str:
    return format_size(value)


def when(value: datetime | str | None) -> str:
    """A timestamp for a table: a datetime, or an ISO string as ``Artifact.created_at`` gives."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if value else None
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def ttl(seconds: int | None) -> str:
    return "" if not seconds else format_duration(seconds)


def plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def ttl_seconds(artifact: Artifact) -> int | None:
    return int(artifact.ttl.total_seconds()) if artifact.ttl else None


def version_json(artifact: Artifact) -> dict[str, Any]:
    return {
        "name": artifact.name,
        "qualified_name": artifact.qualified_name,
        "version": artifact.version,
        "type": artifact.type,
        "aliases": list(artifact.aliases),
        "digest": artifact.digest,
        "size": artifact.size,
        "file_count": artifact.file_count,
        "created_at": artifact.created_at,
        "ttl_seconds": ttl_seconds(artifact),
        "description": artifact.description,
        "metadata": artifact.metadata,
        "partition_key": artifact.partition_key,
    }


def run_json(run: LineageRun[Artifact]) -> dict[str, Any]:
    return {
        "id": run.id,
        "path": run.path,
        "name": run.name,
        "job_type": run.job_type,
        "group": run.group,
        "state": run.state,
        "created_at": run.created_at,
    }
