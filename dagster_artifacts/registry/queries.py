"""Query building blocks shared by the concern modules, and the rows-to-records conversion.

Two things every concern needs and none should write again: restricting a query to one
project or one artifact (:func:`in_project`, :func:`in_artifact`), and turning ORM rows into the
detached records the layers above receive (:func:`version_records`, :func:`run_record`) in a
fixed number of queries, however many versions there are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import Row, Select, func, select
from sqlalchemy.orm import Session

from dagster_artifacts.registry.models import (
    COMMITTED,
    AliasRow,
    CollectionRow,
    ProjectRow,
    RunRow,
    VersionRow,
)
from dagster_artifacts.registry.records import (
    CollectionRecord,
    LinkSource,
    RunRecord,
    VersionRecord,
)

#: Any select, whatever it returns: a bare ``Select`` reads as "any row shape" both on
#: SQLAlchemy 2.0 (one tuple type parameter) and 2.1 (a type parameter per column).
SelectT = TypeVar("SelectT", bound=Select)

#: Every column a VersionRecord needs; rows of these carry the ORM attribute names, so
#: :func:`version_records` takes them in place of ORM objects (cheaper for long lists).
VERSION_COLUMNS = (
    VersionRow.id,
    VersionRow.collection_id,
    VersionRow.index,
    VersionRow.state,
    VersionRow.digest,
    VersionRow.manifest_key,
    VersionRow.size,
    VersionRow.file_count,
    VersionRow.description,
    VersionRow.metadata_,
    VersionRow.created_at,
    VersionRow.committed_at,
    VersionRow.producer_run_id,
    VersionRow.partition_key,
    VersionRow.ttl_seconds,
    VersionRow.tags,
    VersionRow.updated_at,
    VersionRow.source_version_id,
)
#: Up to this many versions, their aliases are read by version id; beyond, by collection.
ALIAS_BY_VERSION_LIMIT = 100


def in_project(query: SelectT, entity: str, project: str) -> SelectT:
    """``query`` (over collections or runs, which belong to a project) restricted to one project."""
    return query.join(ProjectRow).where(ProjectRow.entity == entity, ProjectRow.name == project)


def in_artifact(query: SelectT, entity: str, project: str, name: str) -> SelectT:
    """``query`` over versions restricted to those of artifact ``entity/project/name``.

    Versions reach their project through their collection, hence the two joins.
    """
    return in_project(query.join(CollectionRow), entity, project).where(CollectionRow.name == name)


def project_row(session: Session, entity: str, project: str, create: bool) -> ProjectRow | None:
    """The project ``entity/project``; created on first use when ``create`` (a first log/run)."""
    found = session.scalar(
        select(ProjectRow).where(ProjectRow.entity == entity, ProjectRow.name == project)
    )
    if found is None and create:
        found = ProjectRow(entity=entity, name=project)
        session.add(found)
        session.flush()
    return found


def same_content(digest: str, partition_key: str | None) -> tuple[Any, ...]:
    """Conditions matching the committed version that a commit of ``digest`` would dedupe to.

    The partition key is part of a version's identity: the same bytes logged for another
    partition are another version, tied to that partition (the two partial unique indexes of
    ``models.VersionRow`` enforce the same rule).
    """
    partition = (
        VersionRow.partition_key.is_(None)
        if partition_key is None
        else VersionRow.partition_key == partition_key
    )
    return (
        VersionRow.digest == digest,
        VersionRow.state == COMMITTED,
        partition,
        VersionRow.source_version_id.is_(None),
    )


def run_record(run: RunRow, entity: str, project: str) -> RunRecord:
    """The detached record of ``run``; the caller knows its project's names already."""
    return RunRecord(
        id=run.id,
        entity=entity,
        project=project,
        name=run.name,
        job_type=run.job_type,
        group=run.group,
        config=dict(run.config or {}),
        state=run.state,
        created_at=run.created_at,
        finished_at=run.finished_at,
    )


def run_record_by_id(session: Session, run_id: str) -> RunRecord:
    """The record of a run known to exist (a lineage edge or a version points at it)."""
    run = session.get(RunRow, run_id)
    assert run is not None
    project = session.get(ProjectRow, run.project_id)
    assert project is not None
    return run_record(run, project.entity, project.name)


def version_record(
    session: Session, version: VersionRow, collection: CollectionRow
) -> VersionRecord:
    """The record of one version whose collection the caller has loaded already."""
    return version_records(session, [version], {collection.id: collection})[0]


def version_records(
    session: Session,
    versions: Sequence[VersionRow] | Sequence[Row[Any]],
    collections: dict[int, CollectionRow] | None = None,
) -> list[VersionRecord]:
    """Detached records of ``versions`` in a fixed number of queries, however many there are.

    ``versions`` are ORM objects, or rows of :data:`VERSION_COLUMNS` (cheaper for long
    lists: no ORM object per row). ``collections`` are ones the caller has loaded already.

    Collections and projects are fetched once per distinct id (usually one), and aliases
    in one query: by version id for a few versions, else by collection (an artifact has
    few aliases), so listing 10,000 versions never issues a query per version. The sources
    of links are read in one more query (their own fields stand in for the link's).
    """
    if not versions:
        return []
    source_ids = {v.source_version_id for v in versions if v.source_version_id is not None}
    sources = _load(session, source_ids)
    known = dict(collections or {})
    wanted_collections = {v.collection_id for v in versions}
    wanted_collections |= {source.collection_id for source in sources.values()}
    for collection_id in wanted_collections - known.keys():
        found = session.get(CollectionRow, collection_id)
        assert found is not None
        known[collection_id] = found
    projects: dict[int, ProjectRow] = {}
    for project_id in {collection.project_id for collection in known.values()}:
        project = session.get(ProjectRow, project_id)
        assert project is not None
        projects[project_id] = project
    aliases = _aliases(session, versions, known)
    records = []
    for version in versions:
        collection = known[version.collection_id]
        project = projects[collection.project_id]
        source = sources.get(version.source_version_id) if version.source_version_id else None
        own = source if source is not None else version  # whose descriptive fields to show
        link = None
        if source is not None:
            source_collection = known[source.collection_id]
            source_project = projects[source_collection.project_id]
            link = LinkSource(
                id=source.id,
                entity=source_project.entity,
                project=source_project.name,
                name=source_collection.name,
                index=source.index or 0,
                collection_id=source_collection.id,
            )
        records.append(
            VersionRecord(
                id=version.id,
                entity=project.entity,
                project=project.name,
                name=collection.name,
                type=collection.type,
                # A Row's ``index`` column shadows Sequence.index at run time; typing can't tell.
                index=cast("int | None", version.index),
                state=version.state,
                digest=version.digest,
                manifest_key=version.manifest_key,
                size=version.size,
                file_count=version.file_count,
                description=own.description,
                metadata=dict(own.metadata_ or {}),
                aliases=sorted(aliases.get(version.id, [])),  # one order everywhere
                created_at=own.created_at,
                committed_at=version.committed_at,
                producer_run_id=own.producer_run_id,
                partition_key=version.partition_key,
                ttl_seconds=own.ttl_seconds,
                collection_id=collection.id,
                tags=list(own.tags or []),
                updated_at=own.updated_at,
                source=link,
                linked_at=version.created_at if link is not None else None,
            )
        )
    return records


def _load(session: Session, version_ids: set[int]) -> dict[int, VersionRow]:
    """Version rows by id, in one query per 500 ids."""
    ids = sorted(version_ids)
    found: dict[int, VersionRow] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        found.update(
            (row.id, row)
            for row in session.scalars(select(VersionRow).where(VersionRow.id.in_(chunk)))
        )
    return found


def _aliases(
    session: Session,
    versions: Sequence[VersionRow] | Sequence[Row[Any]],
    collections: dict[int, CollectionRow],
) -> dict[int, list[str]]:
    """The aliases of ``versions`` in one query: by version id for a few, else by collection."""
    wanted = {version.id for version in versions}
    query = select(AliasRow.version_id, AliasRow.alias).order_by(AliasRow.id)
    if len(wanted) <= ALIAS_BY_VERSION_LIMIT:
        query = query.where(AliasRow.version_id.in_(wanted))
    else:
        query = query.where(
            AliasRow.collection_id.in_({version.collection_id for version in versions})
        )
    aliases: dict[int, list[str]] = {}
    for version_id, alias in session.execute(query):
        if version_id in wanted:
            aliases.setdefault(version_id, []).append(alias)
    return aliases


def collection_record(
    session: Session,
    collection: CollectionRow,
    entity: str,
    project: str,
    counts: tuple[int, int] | None = None,
) -> CollectionRecord:
    """The record of one collection; ``counts`` (versions, size) when the caller has them."""
    if counts is None:
        committed = session.execute(
            select(func.count(VersionRow.id), func.coalesce(func.sum(VersionRow.size), 0)).where(
                VersionRow.collection_id == collection.id, VersionRow.state == COMMITTED
            )
        ).one()
        counts = (int(committed[0]), int(committed[1]))
    return CollectionRecord(
        id=collection.id,
        entity=entity,
        project=project,
        name=collection.name,
        type=collection.type,
        description=collection.description,
        version_count=counts[0],
        size=counts[1],
        kind=collection.kind,
        tags=list(collection.tags or []),
        created_at=collection.created_at,
        updated_at=collection.updated_at,
    )
