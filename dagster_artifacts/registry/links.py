"""Links: a logged version made a member of another collection without copying anything.

W&B promotes a model by linking it into a "portfolio" (a registered model, a registry
collection). Here a link is a version row of a collection of kind ``portfolio`` whose
``source_version_id`` points at the logged version: it has its own index in that collection and
its own aliases, and copies its source's digest, manifest key, size and file count, so that
resolving, downloading and gc's liveness treat it like any version. Its description, metadata,
tags and TTL are its source's (:func:`.queries.version_records` reads them through the key).

Locks are taken in one order by every writer that touches a source and its links: the source's
collection, then the portfolio collections (by id), then version rows. Linking the same version
twice into one collection finds the first membership (a partial unique index backs this under
concurrent writers; a lost race is retried by the transaction runner).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dagster_artifacts.errors import ArtifactNotFoundError, LinkError
from dagster_artifacts.names import LATEST
from dagster_artifacts.registry.locks import lock_collection, lock_collections
from dagster_artifacts.registry.models import (
    COMMITTED,
    DELETED,
    PORTFOLIO,
    AliasRow,
    CollectionRow,
    VersionRow,
    utcnow,
)
from dagster_artifacts.registry.queries import version_record, version_records
from dagster_artifacts.registry.records import VersionRecord


def link_version(
    session: Session,
    version_id: int,
    entity: str,
    project: str,
    name: str,
    aliases: Sequence[str],
) -> tuple[VersionRecord, bool]:
    """Make version ``version_id`` (a link's source, if it is a link) a member of the portfolio
    ``entity/project/name`` (created on first use, of the source's type); point ``latest`` and
    ``aliases`` at that membership. Returns it and whether it is new."""
    source = _committed(session, version_id)
    if source.source_version_id is not None:  # linking a link links its source (as W&B does)
        source = _committed(session, source.source_version_id)
    source_collection = session.get(CollectionRow, source.collection_id, with_for_update=True)
    assert source_collection is not None
    # Again, locked and read afresh now that its collection is locked: a delete that committed
    # meanwhile must be seen (the identity map would hand back the row as first read).
    source = _committed(session, source.id, lock=True)
    portfolio = lock_collection(
        session, entity, project, name, source_collection.type, create=True, kind=PORTFOLIO
    )
    assert portfolio is not None
    link = session.scalar(
        select(VersionRow).where(
            VersionRow.collection_id == portfolio.id,
            VersionRow.source_version_id == source.id,
            VersionRow.state == COMMITTED,
        )
    )
    created = link is None
    if link is None:
        now = utcnow()
        link = VersionRow(
            collection_id=portfolio.id,
            index=portfolio.next_index,
            state=COMMITTED,
            digest=source.digest,
            manifest_key=source.manifest_key,
            size=source.size,
            file_count=source.file_count,
            metadata_={},
            source_version_id=source.id,
            created_at=now,
            committed_at=now,
        )
        portfolio.next_index += 1
        session.add(link)
        session.flush()
    moved = [LATEST, *(alias for alias in aliases if alias != LATEST)]
    for alias in moved:
        session.execute(
            delete(AliasRow).where(AliasRow.collection_id == portfolio.id, AliasRow.alias == alias)
        )
        session.add(AliasRow(collection_id=portfolio.id, version_id=link.id, alias=alias))
    session.flush()
    return version_record(session, link, portfolio), created


def unlink_version(session: Session, version_id: int) -> None:
    """Remove the link ``version_id`` from its collection (with its aliases); its source and
    the source's other links stay."""
    link = session.get(VersionRow, version_id)
    if link is None or link.state != COMMITTED:
        raise ArtifactNotFoundError(f"Artifact version id {version_id} no longer exists.")
    if link.source_version_id is None:
        raise LinkError(
            "This version was logged into its collection, it is not a link: delete it with "
            "artifact.delete() instead of unlink()."
        )
    source = session.get(VersionRow, link.source_version_id)
    lock_collections(session, [] if source is None else [source.collection_id])
    lock_collections(session, [link.collection_id])
    link = session.get(VersionRow, version_id, with_for_update=True)
    if link is None or link.state != COMMITTED:
        raise ArtifactNotFoundError(f"Artifact version id {version_id} no longer exists.")
    session.execute(delete(AliasRow).where(AliasRow.version_id == link.id))
    link.state = DELETED


def links_of(session: Session, version_id: int) -> list[VersionRow]:
    """The committed links whose source is ``version_id``, oldest first."""
    return list(
        session.scalars(
            select(VersionRow)
            .where(VersionRow.source_version_id == version_id, VersionRow.state == COMMITTED)
            .order_by(VersionRow.id)
        )
    )


def linked_versions(session: Session, version_id: int) -> list[VersionRecord]:
    """Records of every committed link of ``version_id`` (W&B's ``linked_artifacts``)."""
    return version_records(session, links_of(session, version_id))


def _committed(session: Session, version_id: int, lock: bool = False) -> VersionRow:
    version = (
        session.get(VersionRow, version_id, with_for_update=True, populate_existing=True)
        if lock
        else session.get(VersionRow, version_id)
    )
    if version is None or version.state != COMMITTED:
        raise ArtifactNotFoundError(
            f"Artifact version id {version_id} no longer exists (deleted meanwhile); nothing "
            "was linked."
        )
    return version
