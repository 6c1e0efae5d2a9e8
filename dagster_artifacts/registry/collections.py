"""Writes to whole collections (W&B's ``ArtifactCollection.save()`` and ``delete()``).

A collection is renamed, retyped, described and tagged in one transaction under its row lock.
Deleting one removes it with every version, alias and lineage edge (the database cascades from
the collection row); a collection of logged versions also takes the links to its versions in
other collections, as deleting one version does. Its bytes go with the next gc.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dagster_artifacts.errors import ArtifactNotFoundError, InvalidNameError, LinkError
from dagster_artifacts.registry.locks import lock_collections
from dagster_artifacts.registry.models import (
    SEQUENCE,
    AliasRow,
    CollectionRow,
    ProjectRow,
    VersionRow,
    utcnow,
)
from dagster_artifacts.registry.queries import collection_record
from dagster_artifacts.registry.records import CollectionRecord


def update_collection(
    session: Session,
    collection_id: int,
    name: str,
    artifact_type: str,
    description: str | None,
    tags: Sequence[str],
) -> CollectionRecord:
    """Set a collection's name, type, description and tags (all of them, as given)."""
    collection = _locked(session, collection_id)
    project = session.get(ProjectRow, collection.project_id)
    assert project is not None
    where = f"{project.entity}/{project.name}"
    if name != collection.name:
        taken = session.scalar(
            select(CollectionRow.id).where(
                CollectionRow.project_id == collection.project_id, CollectionRow.name == name
            )
        )
        if taken is not None:
            raise InvalidNameError(
                f"Cannot rename {where}/{collection.name} to {name!r}: {where}/{name} exists. "
                "Pick another name."
            )
    if artifact_type != collection.type and collection.kind != SEQUENCE:
        raise LinkError(
            f"{where}/{collection.name} is a collection of links: its type is its sources' "
            "type and cannot be changed."
        )
    collection.name = name
    collection.type = artifact_type
    collection.description = description
    collection.tags = list(dict.fromkeys(tags)) or None
    collection.updated_at = utcnow()
    session.flush()
    return collection_record(session, collection, project.entity, project.name)


def delete_collection(session: Session, collection_id: int) -> None:
    """Delete a collection with all its versions (and, for logged versions, their links)."""
    collection = _locked(session, collection_id)
    if collection.kind == SEQUENCE:
        sources = select(VersionRow.id).where(VersionRow.collection_id == collection.id)
        links = list(
            session.execute(
                select(VersionRow.id, VersionRow.collection_id).where(
                    VersionRow.source_version_id.in_(sources)
                )
            )
        )
        lock_collections(session, [collection_id for _, collection_id in links])
        link_ids = [link_id for link_id, _ in links]
        if link_ids:
            session.execute(delete(AliasRow).where(AliasRow.version_id.in_(link_ids)))
            session.execute(delete(VersionRow).where(VersionRow.id.in_(link_ids)))
    session.delete(collection)  # versions, aliases, lineage and pending entries cascade
    session.flush()


def _locked(session: Session, collection_id: int) -> CollectionRow:
    collection = session.get(CollectionRow, collection_id, with_for_update=True)
    if collection is None:
        raise ArtifactNotFoundError(
            f"Artifact collection id {collection_id} no longer exists (deleted meanwhile)."
        )
    return collection
