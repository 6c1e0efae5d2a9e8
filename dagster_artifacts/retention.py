"""Retention: which versions to keep (``prune``), and versions whose time to live ran out.

Deleting a version is a soft delete in the registry (``state = 'DELETED'``); its bytes stay in
the blob store, because other versions may share them (content addressing deduplicates across
versions and artifacts). Only :mod:`.garbage` removes bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Generic, Protocol, TypeVar

from dagster_artifacts.errors import ArtifactNotFoundError, InvalidArgumentError
from dagster_artifacts.names import parse_artifact_path, validate_name
from dagster_artifacts.registry import VersionRecord
from dagster_artifacts.store import Store
from dagster_artifacts.units import parse_duration


class Sized(Protocol):
    @property
    def size(self) -> int: ...


V = TypeVar("V", bound=Sized)
W = TypeVar("W", bound=Sized)


@dataclass(frozen=True)
class PruneResult(Generic[V]):
    """What :func:`prune` deleted (or would delete, on a dry run) and what it kept, as the
    versions were when prune read them (registry records here; ``Api.prune`` gives artifacts)."""

    deleted: list[V]
    kept: list[V]
    dry_run: bool

    @property
    def freed_size(self) -> int:
        """Logical size of the deleted versions (bytes shared with kept ones stay stored)."""
        return sum(version.size for version in self.deleted)

    def map(self, convert: Callable[[V], W]) -> PruneResult[W]:
        return PruneResult(
            [convert(v) for v in self.deleted], [convert(v) for v in self.kept], self.dry_run
        )


def prune(
    store: Store,
    name: str,
    keep_last: int,
    *,
    keep_aliased: bool = False,
    older_than: timedelta | str | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
) -> PruneResult[VersionRecord]:
    """Delete all but the newest ``keep_last`` versions of ``name`` (``[[entity/]project/]name``).

    ``keep_aliased`` also keeps every version that has an alias (otherwise its aliases go with
    it); ``older_than`` only deletes versions created longer ago than that. The newest version,
    which carries ``latest``, is always kept because ``keep_last`` is at least 1. Deleted
    versions are soft-deleted; run gc to reclaim their bytes.
    """
    if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1:
        raise InvalidArgumentError(
            f"keep_last must be 1 or more (got {keep_last!r}); to remove an artifact entirely, "
            "delete its versions one by one."
        )
    age = parse_duration(older_than) if older_than is not None else None
    entity, project, collection = split_name(store, name)
    records = store.registry.list_versions(entity, project, collection)
    if not records:
        if store.registry.collection_type(entity, project, collection) is not None:
            # Known, but every version is gone (deleted, or expired by a concurrent gc).
            return PruneResult[VersionRecord](deleted=[], kept=[], dry_run=dry_run)
        # resolve() raises ArtifactNotFoundError naming what exists.
        store.registry.resolve(entity, project, collection, "latest")
    moment = now or store.clock.now()
    ordered = sorted(records, key=lambda record: record.index or 0)
    newest = {record.id for record in ordered[-keep_last:]}
    deleted: list[VersionRecord] = []
    kept: list[VersionRecord] = []
    for record in ordered:
        keep = (
            record.id in newest
            or (keep_aliased and bool(record.aliases))
            or (age is not None and _aware(record.created_at) > moment - age)
        )
        (kept if keep else deleted).append(record)
    if not dry_run:
        deleted = [record for record in deleted if _delete(store, record)]
    return PruneResult(deleted=deleted, kept=kept, dry_run=dry_run)


def expire(
    store: Store, *, dry_run: bool = False, now: datetime | None = None
) -> list[VersionRecord]:
    """Delete every version whose TTL has run out (with its aliases, as W&B does)."""
    expired = store.registry.expired_versions(now or store.clock.now())
    if not dry_run:
        expired = [record for record in expired if _delete(store, record)]
    return expired


def _delete(store: Store, record: VersionRecord) -> bool:
    """Soft-delete one version with its aliases; False if someone else deleted it first."""
    try:
        store.registry.delete_version(record.id, delete_aliases=True)
    except ArtifactNotFoundError:
        return False
    return True


def split_name(store: Store, name: str) -> tuple[str, str, str]:
    """``[[entity/]project/]name`` (a ``:alias`` suffix is refused) -> (entity, project, name)."""
    if ":" in name:
        raise InvalidArgumentError(
            f"Expected an artifact name without a version, got {name!r}; drop the "
            f"':{name.rsplit(':', 1)[1]}'."
        )
    parsed = parse_artifact_path(name)
    entity = validate_name(parsed.entity) if parsed.entity else store.settings.entity
    project = validate_name(parsed.project) if parsed.project else store.settings.project
    return entity, project, parsed.name


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
