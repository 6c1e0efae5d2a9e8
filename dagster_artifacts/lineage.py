"""Lineage traversal: the runs that logged a version and what they used, and the runs that used
it and what they logged, a few hops each way (``Api.lineage``, the CLI's ``lineage``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, TypeVar

from dagster_artifacts.registry import LOGGED, USED, RunRecord, VersionRecord
from dagster_artifacts.store import Store

A = TypeVar("A")


class LineageRun(Protocol[A]):
    """A run as lineage shows it (``Artifact.logged_by()``, ``Artifact.used_by()``): a
    ``dagster_artifacts.Run`` read back from the registry, whose artifacts are ``A``."""

    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def job_type(self) -> str | None: ...

    @property
    def group(self) -> str | None: ...

    @property
    def path(self) -> str: ...

    @property
    def state(self) -> str: ...

    @property
    def created_at(self) -> datetime | None: ...

    def logged_artifacts(self) -> list[A]: ...

    def used_artifacts(self) -> list[A]: ...


def qualified(record: VersionRecord) -> str:
    return f"{record.entity}/{record.project}/{record.name}:v{record.index}"


def run_summary(run: RunRecord) -> dict[str, Any]:
    return {
        "id": run.id,
        "path": f"{run.entity}/{run.project}/{run.id}",
        "name": run.name,
        "job_type": run.job_type,
        "group": run.group,
        "state": run.state,
        "created_at": run.created_at,
    }


def lineage_tree(store: Store, root: VersionRecord, depth: int) -> dict[str, Any]:
    """``{"artifact", "upstream": [...], "downstream": [...]}`` up to ``depth`` levels each way.

    Upstream: every run that logged the version (the producer and each deduplicated re-log),
    with the versions each used, recursively. Downstream: every run that used it, with the
    versions each logged. A version already on the path is not followed again (no cycles).
    """
    registry = store.registry

    def upstream(record: VersionRecord, level: int, seen: frozenset[int]) -> list[dict[str, Any]]:
        if level > depth or record.id in seen:
            return []
        seen = seen | {record.id}
        return [
            {
                "run": run_summary(run),
                "inputs": [
                    {"artifact": qualified(v), "upstream": upstream(v, level + 1, seen)}
                    for v in registry.run_versions(run.id, USED)
                ],
            }
            for run in registry.logging_runs(record.id)
        ]

    def downstream(record: VersionRecord, level: int, seen: frozenset[int]) -> list[dict[str, Any]]:
        if level > depth or record.id in seen:
            return []
        seen = seen | {record.id}
        return [
            {
                "run": run_summary(run),
                "outputs": [
                    {"artifact": qualified(v), "downstream": downstream(v, level + 1, seen)}
                    for v in registry.run_versions(run.id, LOGGED)
                ],
            }
            for run in registry.used_by(record.id)
        ]

    return {
        "artifact": qualified(root),
        "upstream": upstream(root, 1, frozenset()),
        "downstream": downstream(root, 1, frozenset()),
    }
