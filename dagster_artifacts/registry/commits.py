"""Writes to versions: commit (with dedupe and alias moves), update and delete.

Each function locks the artifact's collection first (:mod:`.locks`), so the dedupe probe, the
next version index and the alias moves all see every earlier commit, and a version number is
never handed out twice. A race that slips through anyway hits a unique index and the whole
transaction is retried (:func:`.connection.run_transaction`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dagster_artifacts.errors import ArtifactHasAliasesError, ArtifactNotFoundError
from dagster_artifacts.registry.links import links_of
from dagster_artifacts.registry.locks import (
    lock_collection,
    lock_collections,
    lock_version,
    lock_versions,
)
from dagster_artifacts.registry.models import (
    COMMITTED,
    DELETED,
    LOGGED,
    AliasRow,
    CollectionRow,
    LineageRow,
    PendingEntryRow,
    VersionRow,
    utcnow,
)
from dagster_artifacts.registry.pending import check_pending
from dagster_artifacts.registry.provenance import add_edge
from dagster_artifacts.registry.queries import same_content, version_record
from dagster_artifacts.registry.records import (
    BaseVersionChangedError,
    CommitRequest,
    ReusedVersionGoneError,
    VersionRecord,
)


def commit_version(session: Session, request: CommitRequest) -> tuple[VersionRecord, bool]:
    """Commit a version; returns it and whether it is new (False = deduplicated).

    Dedupe matches a committed version with the same digest *and* the same partition key
    (None matches only unpartitioned versions). With ``manifest_written=False`` the request
    reuses an equal version's manifest without having written it; if that version is gone by
    now, :class:`ReusedVersionGoneError` tells the caller to upload and try again. With
    ``pending_version_id`` (``finish_artifact``) the pending version is sealed in place, after
    :func:`.pending.check_pending`.
    """
    collection = lock_collection(
        session, request.entity, request.project, request.name, request.type, create=True
    )
    assert collection is not None
    pending: VersionRow | None = None
    if request.pending_version_id is not None:
        pending = check_pending(session, collection, request)
    if request.base_version_id is not None or request.base_is_newest:
        _check_base(session, collection, request)
    version = session.scalar(
        select(VersionRow).where(
            VersionRow.collection_id == collection.id,
            *same_content(request.digest, request.partition_key),
        )
    )
    created = version is None
    if version is None and not request.manifest_written:
        # The caller skipped uploading because an equal version existed when it looked;
        # that version was deleted since (and its bytes may be gone with gc), so this
        # commit must not point at its manifest. Nothing was written: upload, retry.
        raise ReusedVersionGoneError(
            f"The version of {request.name!r} with digest {request.digest} that this "
            "commit meant to reuse was deleted meanwhile."
        )
    if version is None:
        version = _new_version(session, collection, request, pending)
    else:
        if pending is not None:
            _merge_pending_into(session, pending, version)
        _add_tags(version, request.tags)  # a dedupe gets the tags asked for, as it gets aliases
    move_aliases(session, collection.id, version.id, request.aliases)
    if request.run_id:
        add_edge(session, request.run_id, version.id, LOGGED)
    return version_record(session, version, collection), created


def _check_base(session: Session, collection: CollectionRow, request: CommitRequest) -> None:
    """Refuse a derived commit whose base moved since its entries were carried over."""
    if request.base_version_id is not None:
        base = session.get(VersionRow, request.base_version_id)
        if base is None or base.state != COMMITTED:
            raise BaseVersionChangedError(
                f"Version id {request.base_version_id}, which {request.name!r} was derived "
                "from, was deleted meanwhile."
            )
    if request.base_is_newest:
        partition = (
            VersionRow.partition_key.is_(None)
            if request.partition_key is None
            else VersionRow.partition_key == request.partition_key
        )
        newest = session.scalar(
            select(VersionRow.id)
            .where(
                VersionRow.collection_id == collection.id,
                VersionRow.state == COMMITTED,
                partition,
            )
            .order_by(VersionRow.index.desc())
            .limit(1)
        )
        if newest != request.base_version_id:
            raise BaseVersionChangedError(
                f"{request.name!r} has a newer version than the one this incremental log merged "
                "with."
            )


def _add_tags(version: VersionRow, tags: Sequence[str]) -> None:
    """Add ``tags`` to the version's tags (in order, each once)."""
    current = list(version.tags or [])
    added = [tag for tag in tags if tag not in current]
    if added:
        version.tags = current + added
        version.updated_at = utcnow()


def _new_version(
    session: Session,
    collection: CollectionRow,
    request: CommitRequest,
    pending: VersionRow | None,
) -> VersionRow:
    """Number and fill the new version: the sealed pending one, or a new row."""
    if pending is not None:
        version = pending
        session.execute(delete(PendingEntryRow).where(PendingEntryRow.version_id == pending.id))
    else:
        version = VersionRow(collection_id=collection.id, created_at=utcnow())
        session.add(version)
    version.index = collection.next_index
    collection.next_index += 1
    version.state = COMMITTED
    version.digest = request.digest
    version.manifest_key = request.manifest_key
    version.size = request.size
    version.file_count = request.file_count
    version.description = request.description
    version.metadata_ = dict(request.metadata)
    version.partition_key = request.partition_key
    version.ttl_seconds = request.ttl_seconds
    version.tags = list(dict.fromkeys(request.tags)) or None
    version.producer_run_id = request.run_id
    version.committed_at = utcnow()
    version.digest_algorithm = None  # pending-only state, now in the manifest
    version.pending_aliases = None  # applied by the caller with the request's aliases
    session.flush()
    return version


def _merge_pending_into(session: Session, pending: VersionRow, version: VersionRow) -> None:
    """The finished parallel artifact equals ``version``: its writers' edges move there and
    the pending version goes away."""
    writers = session.scalars(
        select(LineageRow.run_id).where(
            LineageRow.version_id == pending.id, LineageRow.direction == LOGGED
        )
    )
    for writer in list(writers):
        add_edge(session, writer, version.id, LOGGED)
    session.execute(delete(VersionRow).where(VersionRow.id == pending.id))


def move_aliases(
    session: Session, collection_id: int, version_id: int, aliases: Iterable[str]
) -> None:
    """Point each alias at ``version_id``, taking it from whichever version had it."""
    for alias in aliases:
        session.execute(
            delete(AliasRow).where(AliasRow.collection_id == collection_id, AliasRow.alias == alias)
        )
        session.add(AliasRow(collection_id=collection_id, version_id=version_id, alias=alias))
    session.flush()


def update_version(
    session: Session,
    version_id: int,
    description: str | None,
    metadata: dict[str, Any],
    aliases: Sequence[str],
    ttl_seconds: int | None,
    tags: Sequence[str] | None = None,
) -> VersionRecord:
    """Set the mutable fields of a committed version; ``aliases`` becomes its full alias set
    and ``tags`` (unless None) its full tag set.

    On a link, the aliases are the link's own (in its collection); description, metadata,
    tags and TTL are its source's, so they change there (and show on every link of it), as in
    W&B.
    """
    link_source = session.scalar(
        select(VersionRow.source_version_id).where(VersionRow.id == version_id)
    )
    if link_source is not None:  # the source's collection first, as every writer locks
        source_collection = session.scalar(
            select(VersionRow.collection_id).where(VersionRow.id == link_source)
        )
        lock_collections(session, [] if source_collection is None else [source_collection])
    collection, version = lock_version(session, version_id)
    if collection is None or version is None or version.state != COMMITTED:
        raise ArtifactNotFoundError(f"Artifact version id {version_id} no longer exists.")
    owner = version
    if version.source_version_id is not None:
        owner = lock_versions(session, [version.source_version_id]).get(
            version.source_version_id, version
        )
    changed = (
        owner.description != description
        or dict(owner.metadata_ or {}) != dict(metadata)
        or owner.ttl_seconds != ttl_seconds
        or (tags is not None and list(owner.tags or []) != list(tags))
    )
    owner.description = description
    owner.metadata_ = dict(metadata)
    owner.ttl_seconds = ttl_seconds
    if tags is not None:
        owner.tags = list(dict.fromkeys(tags)) or None
    current = set(session.scalars(select(AliasRow.alias).where(AliasRow.version_id == version.id)))
    if current != set(aliases):
        changed = True
    session.execute(
        delete(AliasRow).where(
            AliasRow.version_id == version.id, AliasRow.alias.not_in(list(aliases))
        )
    )
    move_aliases(session, collection.id, version.id, aliases)
    if changed:
        owner.updated_at = utcnow()
    session.flush()
    return version_record(session, version, collection)


def delete_version(session: Session, version_id: int, delete_aliases: bool) -> None:
    """Mark a version deleted (its bytes stay until gc); refused while it has aliases unless
    ``delete_aliases``, so a ``best`` never silently stops resolving.

    A link is only unlinked (its source stays; ``delete_aliases`` does not apply, as in W&B).
    A logged version takes its links with it, as W&B does, under the same alias rule: the
    links' aliases (``production``...) count as its own.
    """
    _collection, version = lock_version(session, version_id)
    if version is None or version.state == DELETED:
        raise ArtifactNotFoundError(f"Artifact version id {version_id} no longer exists.")
    if version.source_version_id is not None:
        session.execute(delete(AliasRow).where(AliasRow.version_id == version_id))
        version.state = DELETED
        return
    links = links_of(session, version_id)
    lock_collections(session, [link.collection_id for link in links])
    doomed = [version_id, *(link.id for link in links)]
    held = list(
        session.execute(
            select(AliasRow.version_id, AliasRow.alias).where(AliasRow.version_id.in_(doomed))
        )
    )
    if held and not delete_aliases:
        own = [alias for holder, alias in held if holder == version_id]
        linked = sorted({alias for holder, alias in held if holder != version_id})
        where = f"still has aliases {own}" if own else "has no aliases"
        via = f", and its links (which go with it) hold {linked}" if linked else ""
        raise ArtifactHasAliasesError(
            f"Version v{version.index} {where}{via}; remove them first, or call "
            "delete(delete_aliases=True)."
        )
    session.execute(delete(AliasRow).where(AliasRow.version_id.in_(doomed)))
    for link in links:
        link.state = DELETED
    version.state = DELETED
