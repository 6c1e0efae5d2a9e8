"""Parallel writers (``upsert_artifact`` / ``finish_artifact``): the pending version they share.

Writers of one ``distributed_id`` add their files to one PENDING version, one row per file in
``pending_entries``; ``finish_artifact`` reads them all, builds the manifest and commits the
pending version in place (:func:`.commits.commit_version`, after :func:`check_pending`).
Entries are only ever added while a version is pending, which is what makes
:func:`pending_marker` a cheap "did anything change" check.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from dagster_artifacts.errors import ConflictError
from dagster_artifacts.registry.locks import lock_collection
from dagster_artifacts.registry.models import (
    LOGGED,
    PENDING,
    CollectionRow,
    PendingEntryRow,
    VersionRow,
    utcnow,
)
from dagster_artifacts.registry.provenance import add_edge
from dagster_artifacts.registry.queries import in_artifact
from dagster_artifacts.registry.records import (
    CommitRequest,
    PendingChangedError,
    PendingSnapshot,
    PendingUpsert,
)

#: Above this many paths, reading the whole pending version is cheaper than an IN list.
PATH_FILTER_LIMIT = 500
#: How many conflicting paths a conflict message names.
SHOWN_CONFLICTS = 10


def pending_conflicts(
    session: Session,
    entity: str,
    project: str,
    name: str,
    distributed_id: str,
    entries: dict[str, dict[str, Any]],
) -> list[str]:
    """Paths of ``entries`` that the pending version already holds with other content."""
    version_id = session.scalar(
        in_artifact(select(VersionRow.id), entity, project, name).where(
            VersionRow.distributed_id == distributed_id, VersionRow.state == PENDING
        )
    )
    if version_id is None:
        return []
    return _conflicts(pending_entries(session, version_id, entries), entries)


def upsert_pending(session: Session, request: PendingUpsert) -> int:
    """Add a writer's entries to the pending version of ``distributed_id``; its id.

    Creates the pending version on first use (after a finish, the partial unique index on
    ``(collection_id, distributed_id) WHERE state = 'PENDING'`` lets a new one start). A path
    already held with another digest is a :class:`ConflictError`, raised before anything is
    written. The writer's run gets a ``logged`` edge, which becomes visible when the version is
    committed.
    """
    collection = lock_collection(
        session, request.entity, request.project, request.name, request.type, create=True
    )
    assert collection is not None
    version = _pending_version(session, collection, request)
    held_algorithm = version.digest_algorithm or request.digest_algorithm
    if held_algorithm != request.digest_algorithm:
        raise ConflictError(
            f"Parallel artifact {request.name!r} ({request.distributed_id}) hashes with "
            f"{held_algorithm}, this writer with "
            f"{request.digest_algorithm}; every writer must use the same "
            "digest_algorithm."
        )
    held = pending_entries(session, version.id, request.entries)
    conflicts = _conflicts(held, request.entries)
    if conflicts:
        owners = sorted({held[path][1] or "?" for path in conflicts})
        more = " ..." if len(conflicts) > SHOWN_CONFLICTS else ""
        raise ConflictError(
            f"Parallel artifact {request.name!r} ({request.distributed_id}) already has "
            f"{', '.join(conflicts[:SHOWN_CONFLICTS])}{more} with "
            f"other content (upserted by run {', '.join(owners)}); give each writer its "
            "own file names, e.g. parts/table_<writer>."
        )
    fresh = [
        {"version_id": version.id, "path": path, "entry": entry, "run_id": request.run_id}
        for path, entry in request.entries.items()
        if path not in held
    ]
    if fresh:
        session.execute(insert(PendingEntryRow), fresh)
    # New objects, not in-place edits, so the ORM sees the JSON columns change.
    version.pending_aliases = list(
        dict.fromkeys([*(version.pending_aliases or []), *request.aliases])
    )
    version.metadata_ = {**(version.metadata_ or {}), **request.metadata}
    if request.description is not None:
        version.description = request.description
    if request.run_id:
        add_edge(session, request.run_id, version.id, LOGGED)
    return version.id


def _pending_version(
    session: Session, collection: CollectionRow, request: PendingUpsert
) -> VersionRow:
    """The pending version of ``request.distributed_id``, created by its first writer."""
    version = session.scalar(
        select(VersionRow).where(
            VersionRow.collection_id == collection.id,
            VersionRow.distributed_id == request.distributed_id,
            VersionRow.state == PENDING,
        )
    )
    if version is None:
        version = VersionRow(
            collection_id=collection.id,
            state=PENDING,
            distributed_id=request.distributed_id,
            created_at=utcnow(),
            digest_algorithm=request.digest_algorithm,
            pending_aliases=[],
            metadata_={},
        )
        session.add(version)
        session.flush()
    return version


def pending_snapshot(
    session: Session, entity: str, project: str, name: str, distributed_id: str
) -> PendingSnapshot | None:
    """Everything upserted so far into the pending version of ``distributed_id``, if any."""
    version = session.scalar(
        in_artifact(select(VersionRow), entity, project, name).where(
            VersionRow.distributed_id == distributed_id, VersionRow.state == PENDING
        )
    )
    if version is None:
        return None
    entries = {path: entry for path, (entry, _run) in pending_entries(session, version.id).items()}
    return PendingSnapshot(
        version_id=version.id,
        entries=entries,
        marker=pending_marker(session, version.id),
        digest_algorithm=version.digest_algorithm or "",
        aliases=tuple(version.pending_aliases or ()),
        metadata=dict(version.metadata_ or {}),
        description=version.description,
    )


def check_pending(
    session: Session, collection: CollectionRow, request: CommitRequest
) -> VersionRow:
    """The pending version ``request`` seals, unchanged since the caller read it.

    Gone or finished by another run: :class:`ConflictError`. Upserted into since the caller's
    snapshot (``request.pending_marker``): :class:`PendingChangedError`, so ``finish_artifact``
    builds the manifest again instead of dropping the late writer's files.
    """
    pending = session.get(VersionRow, request.pending_version_id)
    if pending is None or pending.state != PENDING or pending.collection_id != collection.id:
        raise ConflictError(
            f"The parallel artifact {request.name!r} that this finish_artifact read was "
            "finished (or removed) by another run meanwhile; call finish_artifact once per "
            "distributed_id, after every writer is done."
        )
    if request.pending_marker is not None:
        marker = pending_marker(session, pending.id)
        if marker != request.pending_marker:
            raise PendingChangedError(
                f"Writers upserted into {request.name!r} while it was being finished."
            )
    return pending


def pending_entries(
    session: Session, version_id: int, paths: Iterable[str] | None = None
) -> dict[str, tuple[dict[str, Any], str | None]]:
    """path -> (entry, writer's run id) of a pending version (only ``paths`` when few)."""
    query = select(PendingEntryRow.path, PendingEntryRow.entry, PendingEntryRow.run_id).where(
        PendingEntryRow.version_id == version_id
    )
    wanted = None if paths is None else list(paths)
    if wanted is not None and len(wanted) <= PATH_FILTER_LIMIT:
        query = query.where(PendingEntryRow.path.in_(wanted))
    return {path: (dict(entry or {}), run_id) for path, entry, run_id in session.execute(query)}


def pending_marker(session: Session, version_id: int) -> tuple[int, int]:
    """(count, max id) of a pending version's entries: entries are only ever added while it is
    pending, so the pair changes whenever a writer upserts."""
    count, last = session.execute(
        select(
            func.count(PendingEntryRow.id), func.coalesce(func.max(PendingEntryRow.id), 0)
        ).where(PendingEntryRow.version_id == version_id)
    ).one()
    return int(count), int(last)


def _conflicts(
    held: dict[str, tuple[dict[str, Any], str | None]], entries: dict[str, dict[str, Any]]
) -> list[str]:
    """Sorted paths of ``entries`` held already with another digest (same digest is fine)."""
    return sorted(
        path
        for path, entry in entries.items()
        if path in held and held[path][0].get("digest") != entry.get("digest")
    )
