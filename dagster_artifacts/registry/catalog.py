"""Name resolution and listings: what the registry holds, looked up by name, id or alias.

Read-only functions over an open :class:`~sqlalchemy.orm.Session`; :class:`~.registry.Registry`
runs each in a read transaction, which on SQLite never waits behind a writer. Only committed
versions are visible here: pending ones belong to :mod:`.pending`, deleted ones to nobody.

:func:`list_projects`, :func:`list_types` and :func:`list_collections` are also written in
plain SQL in :mod:`.sqlite_catalog` (``ls`` reads them without SQLAlchemy): change both together;
``tests/registry/test_sqlite_catalog.py`` compares their records.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dagster_artifacts.errors import ArtifactNotFoundError
from dagster_artifacts.names import MAX_VERSION_INDEX, VERSION_PATTERN
from dagster_artifacts.registry.models import (
    COMMITTED,
    DELETED,
    AliasRow,
    CollectionRow,
    ProjectRow,
    VersionRow,
)
from dagster_artifacts.registry.queries import (
    VERSION_COLUMNS,
    collection_record,
    in_artifact,
    in_project,
    same_content,
    version_record,
    version_records,
)
from dagster_artifacts.registry.records import CollectionRecord, VersionRecord

#: How many of an artifact's version names a "no such version" message lists at the start.
SHOWN_VERSIONS = 5


def resolve(
    session: Session,
    entity: str,
    project: str,
    name: str,
    alias_or_version: str,
    type: str | None,
) -> VersionRecord:
    """The committed version ``name:alias_or_version`` (``vN`` or an alias).

    Every miss is an :class:`ArtifactNotFoundError` that says what exists instead, so a typo
    is fixed from the message alone.
    """
    # The project is loaded with the collection so the record needs no query for it.
    row = session.execute(
        in_project(select(CollectionRow, ProjectRow), entity, project).where(
            CollectionRow.name == name
        )
    ).first()
    collection = None if row is None else row[0]
    where = f"{entity}/{project}/{name}"
    if collection is None:
        raise ArtifactNotFoundError(
            f"No artifact {where!r}; log it first, or check the name and project."
        )
    if type is not None and collection.type != type:
        raise ArtifactNotFoundError(
            f"Artifact {where!r} has type {collection.type!r}, not {type!r}."
        )
    match = VERSION_PATTERN.match(alias_or_version)
    query = select(VersionRow).where(
        VersionRow.collection_id == collection.id, VersionRow.state == COMMITTED
    )
    if match:
        query = query.where(VersionRow.index == int(match.group(1)))
    else:
        # By (collection_id, alias), the unique index: one row, not a scan of versions.
        query = query.join(AliasRow, AliasRow.version_id == VersionRow.id).where(
            AliasRow.collection_id == collection.id, AliasRow.alias == alias_or_version
        )
    # A version number past what the column holds names no version (and must not reach the
    # database, which would refuse the number itself).
    too_large = match is not None and int(match.group(1)) > MAX_VERSION_INDEX
    version = None if too_large else session.scalar(query)
    if version is None:
        available = _version_names(session, collection.id)
        raise ArtifactNotFoundError(
            f"Artifact {where!r} has no version or alias {alias_or_version!r}; "
            f"it has {available}. Use one of those."
        )
    return version_record(session, version, collection)


def _version_names(session: Session, collection_id: int) -> str:
    """A short list of the versions and aliases there are, for a "no such version" message."""
    indices = list(
        session.scalars(
            select(VersionRow.index)
            .where(VersionRow.collection_id == collection_id, VersionRow.state == COMMITTED)
            .order_by(VersionRow.index)
        )
    )
    aliases = list(
        session.scalars(select(AliasRow.alias).where(AliasRow.collection_id == collection_id))
    )
    first, rest = indices[:SHOWN_VERSIONS], indices[SHOWN_VERSIONS:]
    shown = [f"v{i}" for i in first] + (["..."] if rest else [])
    shown += [f"v{i}" for i in rest[-2:]]
    return (
        f"versions {', '.join(shown) or 'none'} and aliases {', '.join(sorted(aliases)) or 'none'}"
    )


def find_committed(
    session: Session,
    entity: str,
    project: str,
    name: str,
    digest: str,
    partition_key: str | None,
) -> VersionRecord | None:
    """The committed version of ``name`` with this digest and partition key, if any."""
    version = session.scalar(
        in_artifact(select(VersionRow), entity, project, name).where(
            *same_content(digest, partition_key)
        )
    )
    return None if version is None else version_records(session, [version])[0]


def collection_type(session: Session, entity: str, project: str, name: str) -> str | None:
    """The type of artifact ``name``, or None if it has never been logged."""
    return session.scalar(
        in_project(select(CollectionRow.type), entity, project).where(CollectionRow.name == name)
    )


def get_version(session: Session, version_id: int) -> VersionRecord:
    """The version with this id, committed or pending; a deleted one is not found."""
    version = session.get(VersionRow, version_id)
    if version is None or version.state == DELETED:
        raise ArtifactNotFoundError(f"Artifact version id {version_id} no longer exists.")
    return version_records(session, [version])[0]


def list_versions(
    session: Session,
    entity: str,
    project: str,
    name: str,
    type: str | None,
    partition_key: str | None,
    tags: Sequence[str] | None = None,
    newest_first: bool = False,
) -> list[VersionRecord]:
    """Committed versions of one artifact, oldest first (or newest first), read as plain rows
    (no ORM objects); with ``tags``, only versions carrying every one of them."""
    query = (
        in_artifact(select(*VERSION_COLUMNS), entity, project, name)
        .where(VersionRow.state == COMMITTED)
        .order_by(VersionRow.index.desc() if newest_first else VersionRow.index)
    )
    if type is not None:
        query = query.where(CollectionRow.type == type)
    if partition_key is not None:
        query = query.where(VersionRow.partition_key == partition_key)
    records = version_records(session, list(session.execute(query)))
    if tags:
        # Tags are a JSON list (a link shows its source's), filtered here: the same on every
        # database, and an artifact's versions are read in one query either way.
        wanted = set(tags)
        records = [record for record in records if wanted <= set(record.tags)]
    return records


def newest_version(
    session: Session, entity: str, project: str, name: str, partition_key: str | None
) -> VersionRecord | None:
    """The committed version of ``name`` with the highest index (among those of
    ``partition_key``; None: the unpartitioned ones), or None if there is none."""
    partition = (
        VersionRow.partition_key.is_(None)
        if partition_key is None
        else VersionRow.partition_key == partition_key
    )
    version = session.scalar(
        in_artifact(select(VersionRow), entity, project, name)
        .where(VersionRow.state == COMMITTED, partition)
        .order_by(VersionRow.index.desc())
        .limit(1)
    )
    return None if version is None else version_records(session, [version])[0]


def find_collection(
    session: Session, entity: str, project: str, name: str
) -> CollectionRecord | None:
    """The collection ``entity/project/name`` with its counts, or None."""
    collection = session.scalar(
        in_project(select(CollectionRow), entity, project).where(CollectionRow.name == name)
    )
    return None if collection is None else collection_record(session, collection, entity, project)


def collection_aliases(session: Session, collection_id: int) -> list[str]:
    """Every alias held by a version of the collection, sorted."""
    return sorted(
        session.scalars(select(AliasRow.alias).where(AliasRow.collection_id == collection_id))
    )


def list_collections(
    session: Session, entity: str, project: str, type: str | None
) -> list[CollectionRecord]:
    """The artifacts of a project by name, with their committed versions' count and size."""
    committed = VersionRow.state == COMMITTED
    query = (
        in_project(
            select(
                CollectionRow,
                func.count(VersionRow.id).filter(committed),
                func.coalesce(func.sum(VersionRow.size).filter(committed), 0),
            ),
            entity,
            project,
        )
        .outerjoin(VersionRow, VersionRow.collection_id == CollectionRow.id)
        .group_by(CollectionRow.id)
        .order_by(CollectionRow.name)
    )
    if type is not None:
        query = query.where(CollectionRow.type == type)
    return [
        collection_record(session, collection, entity, project, (int(count), int(size)))
        for collection, count, size in session.execute(query)
    ]


def list_types(session: Session, entity: str, project: str) -> list[str]:
    """The distinct artifact types of a project, sorted."""
    query = (
        in_project(select(CollectionRow.type), entity, project)
        .distinct()
        .order_by(CollectionRow.type)
    )
    return list(session.scalars(query))


def list_projects(session: Session) -> list[tuple[str, str]]:
    """Every ``(entity, project)`` pair, sorted."""
    rows = session.execute(
        select(ProjectRow.entity, ProjectRow.name).order_by(ProjectRow.entity, ProjectRow.name)
    )
    return [(entity, name) for entity, name in rows]
