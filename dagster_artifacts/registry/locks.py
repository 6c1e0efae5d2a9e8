"""Row locks that serialize writes to one artifact, always taken in the same order.

Every write to an artifact's versions or aliases first locks its collection row
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already holds the whole
database), then any version row. One order for every writer means two writers can never
deadlock on each other's rows, and the collection lock makes the next version index, the
dedupe probe and the alias moves of a commit see every earlier commit.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from dagster_artifacts.errors import ArtifactTypeMismatchError, LinkError
from dagster_artifacts.registry.models import PORTFOLIO, SEQUENCE, CollectionRow, VersionRow
from dagster_artifacts.registry.queries import project_row


def lock_collection(
    session: Session,
    entity: str,
    project: str,
    name: str,
    artifact_type: str,
    create: bool,
    kind: str = SEQUENCE,
) -> CollectionRow | None:
    """Lock (creating if asked) the collection row that serializes writes to one artifact.

    An existing collection of another type is an :class:`ArtifactTypeMismatchError`: a name
    holds one type of artifact, as in W&B. One of the other ``kind`` (logging into a collection
    of links, linking into a collection of logged versions) is a :class:`LinkError`.
    """
    project_found = project_row(session, entity, project, create=create)
    if project_found is None:
        return None
    query = select(CollectionRow).where(
        CollectionRow.project_id == project_found.id, CollectionRow.name == name
    )
    collection = session.scalar(query.with_for_update())
    if collection is None:
        if not create:
            return None
        collection = CollectionRow(
            project_id=project_found.id, name=name, type=artifact_type, kind=kind
        )
        session.add(collection)
        session.flush()
    elif collection.kind != kind:
        raise LinkError(wrong_kind(f"{entity}/{project}/{name}", collection.kind))
    elif collection.type != artifact_type:
        raise ArtifactTypeMismatchError(
            f"Artifact {name!r} in {entity}/{project} has type "
            f"{collection.type!r}, not {artifact_type!r}; use type={collection.type!r} or "
            "another name."
        )
    return collection


def lock_version(
    session: Session, version_id: int
) -> tuple[CollectionRow | None, VersionRow | None]:
    """Lock the collection holding ``version_id``, then the version (None for what is gone).

    Callers that start from a version id still lock its collection first, so they take locks
    in the same order as a commit.
    """
    collection_id = session.scalar(
        select(VersionRow.collection_id).where(VersionRow.id == version_id)
    )
    collection = (
        None
        if collection_id is None
        else session.get(CollectionRow, collection_id, with_for_update=True)
    )
    version = session.get(VersionRow, version_id, with_for_update=True)
    return collection, version


def wrong_kind(where: str, kind: str) -> str:
    """Why ``where`` (a collection of ``kind``) cannot take what was asked, and what to do."""
    if kind == PORTFOLIO:
        return (
            f"{where} is a collection of links (a registry collection): versions get there by "
            "artifact.link() or run.link_artifact(), not by logging. Log under another name, "
            "then link it."
        )
    return (
        f"{where} holds logged versions, so it cannot take links; link into another "
        "collection (for example 'model-registry/<name>' or 'wandb-registry-model/<name>')."
    )


def lock_versions(session: Session, version_ids: list[int]) -> dict[int, VersionRow]:
    """Lock these version rows (in id order, as every writer does) and return them by id."""
    locked: dict[int, VersionRow] = {}
    for version_id in sorted(set(version_ids)):
        row = session.get(VersionRow, version_id, with_for_update=True)
        if row is not None:
            locked[version_id] = row
    return locked


def lock_collections(session: Session, collection_ids: list[int]) -> None:
    """Lock these collection rows, in id order."""
    for collection_id in sorted(set(collection_ids)):
        session.get(CollectionRow, collection_id, with_for_update=True)
