"""Lineage traversal: the runs that logged a version and what they used, and the runs that used
it and what they logged, a few hops each way (``Api.lineage``, the CLI's ``lineage``)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from dagster_artifacts.registry import LOGGED, USED

if TYPE_CHECKING:
    from dagster_artifacts.registry import RunRecord, VersionRecord
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


#: Distinct run groups shown per version and direction, unless asked for more.
DEFAULT_BREADTH = 10


def lineage_tree(
    store: Store, root: VersionRecord, depth: int, breadth: int = DEFAULT_BREADTH
) -> dict[str, Any]:
    """``{"artifact", "upstream": [...], "downstream": [...]}`` up to ``depth`` levels each way.

    Upstream: the runs that logged the version (the producer and each deduplicated re-log),
    with the versions they used, recursively. Downstream: the runs that used it, with the
    versions they logged. Runs that did the same thing (same name, job type and versions on the
    other side: a re-run that was deduplicated) are folded into one entry, ``"runs"`` listing
    them all and ``"run"`` the first, so that ten re-runs add one line, not ten subtrees. At
    most ``breadth`` entries per version and direction; ``"more"`` counts the rest. A version
    already on the path is not followed again (no cycles).
    """
    registry = store.registry

    def upstream(record: VersionRecord, level: int, seen: frozenset[int]) -> dict[str, Any]:
        if level > depth or record.id in seen:
            return _bounded([], breadth)
        seen = seen | {record.id}
        runs = [
            (run, registry.run_versions(run.id, USED)) for run in registry.logging_runs(record.id)
        ]
        return _bounded(
            [
                {
                    **_folded(group),
                    "inputs": [
                        {
                            "artifact": qualified(v),
                            **_under("upstream", upstream(v, level + 1, seen)),
                        }
                        for v in versions
                    ],
                }
                for group, versions in _fold(runs)
            ],
            breadth,
        )

    def downstream(record: VersionRecord, level: int, seen: frozenset[int]) -> dict[str, Any]:
        if level > depth or record.id in seen:
            return _bounded([], breadth)
        seen = seen | {record.id}
        runs = [(run, registry.run_versions(run.id, LOGGED)) for run in registry.used_by(record.id)]
        return _bounded(
            [
                {
                    **_folded(group),
                    "outputs": [
                        {
                            "artifact": qualified(v),
                            **_under("downstream", downstream(v, level + 1, seen)),
                        }
                        for v in versions
                    ],
                }
                for group, versions in _fold(runs)
            ],
            breadth,
        )

    return {
        "artifact": qualified(root),
        **_under("upstream", upstream(root, 1, frozenset())),
        **_under("downstream", downstream(root, 1, frozenset())),
    }


def _fold(
    runs: list[tuple[RunRecord, list[VersionRecord]]],
) -> list[tuple[list[RunRecord], list[VersionRecord]]]:
    """Group runs that did the same thing, keeping first-seen order."""
    groups: dict[tuple[Any, ...], tuple[list[RunRecord], list[VersionRecord]]] = {}
    for run, versions in runs:
        key = (run.name, run.job_type, tuple(sorted(v.id for v in versions)))
        groups.setdefault(key, ([], versions))[0].append(run)
    return list(groups.values())


def _folded(group: list[RunRecord]) -> dict[str, Any]:
    return {
        "run": run_summary(group[0]),
        "runs": [run_summary(r) for r in group],
        "count": len(group),
    }


def _bounded(entries: list[dict[str, Any]], breadth: int) -> dict[str, Any]:
    return {"entries": entries[:breadth], "more": max(0, len(entries) - breadth)}


def _under(key: str, bounded: dict[str, Any]) -> dict[str, Any]:
    """``{key: entries}``, plus ``{key}_more`` when entries were left out."""
    result: dict[str, Any] = {key: bounded["entries"]}
    if bounded["more"]:
        result[f"{key}_more"] = bounded["more"]
    return result
