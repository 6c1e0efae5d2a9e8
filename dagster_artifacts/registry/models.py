"""SQLAlchemy 2 typed ORM models of the registry.

Every model is named ``...Row`` so it is never mistaken for the detached ``...Record`` of
:mod:`dagster_artifacts.registry.records` that the layers above receive: rows live only inside a
registry transaction and never leave the registry package.

The schema is created and upgraded only by the Alembic migrations in ``migrations/``; a test
checks that these models and the migrated schema never drift apart.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# The stored vocabulary lives with the records (importable without SQLAlchemy); re-exported.
from dagster_artifacts.registry.records import COMMITTED as COMMITTED
from dagster_artifacts.registry.records import DELETED as DELETED
from dagster_artifacts.registry.records import LOGGED as LOGGED
from dagster_artifacts.registry.records import PENDING as PENDING
from dagster_artifacts.registry.records import PORTFOLIO as PORTFOLIO
from dagster_artifacts.registry.records import SEQUENCE as SEQUENCE
from dagster_artifacts.registry.records import USED as USED

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Predicates of the two partial unique indexes that enforce dedupe (also used by migrations).
#: Links are not logged content: a collection of links holds one membership per source version
#: (:data:`LINKED_COMMITTED`), whatever its digest.
UNPARTITIONED_COMMITTED = (
    "state = 'COMMITTED' AND partition_key IS NULL AND source_version_id IS NULL"
)
PARTITIONED_COMMITTED = "state = 'COMMITTED' AND partition_key IS NOT NULL"
LINKED_COMMITTED = "state = 'COMMITTED' AND source_version_id IS NOT NULL"


def utcnow() -> datetime:
    """Aware UTC now: timestamps compare the same on SQLite (naive) and PostgreSQL (aware)."""
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    """The registry's metadata: named constraints (Alembic needs names to alter them on SQLite)
    and JSON / aware timestamps on both dialects."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class ProjectRow(Base):
    """An ``entity/project`` namespace; collections and runs hang off it."""

    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("entity", "name", name="uq_projects_entity_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entity: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CollectionRow(Base):
    """An artifact: a name and a type in a project, holding versions."""

    __tablename__ = "collections"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_collections_project_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(128), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    #: The next version index to hand out; incremented under the row lock so numbers never repeat.
    next_index: Mapped[int] = mapped_column(Integer, default=0)
    #: :data:`SEQUENCE` (logged versions) or :data:`PORTFOLIO` (links); fixed at creation.
    kind: Mapped[str] = mapped_column(String(16), default=SEQUENCE, server_default=SEQUENCE)
    tags: Mapped[list[str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column()


class VersionRow(Base):
    """One version of a collection: committed (numbered), pending (parallel writers) or deleted."""

    __tablename__ = "versions"
    __table_args__ = (
        UniqueConstraint("collection_id", "index", name="uq_versions_collection_index"),
        # Same content, same version (invariant 4), with the partition key part of a version's
        # identity: at most one committed version per digest among the unpartitioned versions,
        # and at most one per (partition key, digest) among the partitioned ones. Two partial
        # indexes because NULLs never collide in a unique index (on either backend).
        Index(
            "uq_versions_digest_unpartitioned",
            "collection_id",
            "digest",
            unique=True,
            sqlite_where=text(UNPARTITIONED_COMMITTED),
            postgresql_where=text(UNPARTITIONED_COMMITTED),
        ),
        Index(
            "uq_versions_partition_digest",
            "collection_id",
            "partition_key",
            "digest",
            unique=True,
            sqlite_where=text(PARTITIONED_COMMITTED),
            postgresql_where=text(PARTITIONED_COMMITTED),
        ),
        # A version is linked into a collection once: linking it again finds that membership.
        Index(
            "uq_versions_link_source",
            "collection_id",
            "source_version_id",
            unique=True,
            sqlite_where=text(LINKED_COMMITTED),
            postgresql_where=text(LINKED_COMMITTED),
        ),
        Index(
            "uq_versions_collection_distributed_pending",
            "collection_id",
            "distributed_id",
            unique=True,
            sqlite_where=text("state = 'PENDING'"),
            postgresql_where=text("state = 'PENDING'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    index: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default=COMMITTED)
    digest: Mapped[str | None] = mapped_column(String(64))
    manifest_key: Mapped[str | None] = mapped_column(String(512))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    file_count: Mapped[int] = mapped_column(Integer, default=0)
    description: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    partition_key: Mapped[str | None] = mapped_column(String(512), index=True)
    distributed_id: Mapped[str | None] = mapped_column(String(256))
    #: While PENDING (parallel writers): the digest algorithm every writer must hash with, and
    #: the aliases they asked for, applied when the version is finished. Cleared on commit;
    #: a pending version's ``metadata`` and ``description`` are its own columns, merged as
    #: writers upsert.
    digest_algorithm: Mapped[str | None] = mapped_column(String(16))
    pending_aliases: Mapped[list[str] | None] = mapped_column(JSON)
    ttl_seconds: Mapped[int | None] = mapped_column(BigInteger)
    producer_run_id: Mapped[str | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL"), index=True
    )
    #: Set on a link (a version of a portfolio collection): the version it points at. A link
    #: copies its source's digest, manifest key, size and file count (so resolving, downloading
    #: and gc's liveness work on it unchanged, and no byte is copied); its description,
    #: metadata, tags and TTL are its source's, read through this key. Not a foreign key
    #: (SQLite could not add one in place, see migration 0004): deleting a source deletes its
    #: links in the same transaction (:func:`.commits.delete_version`).
    source_version_id: Mapped[int | None] = mapped_column(Integer, index=True)
    tags: Mapped[list[str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    committed_at: Mapped[datetime | None] = mapped_column()
    #: When description, metadata, aliases, tags or TTL last changed (None: never since commit).
    updated_at: Mapped[datetime | None] = mapped_column()


class AliasRow(Base):
    """A movable name (``latest``, ``best``) pointing at one version; unique per collection."""

    __tablename__ = "aliases"
    __table_args__ = (
        UniqueConstraint("collection_id", "alias", name="uq_aliases_collection_alias"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    version_id: Mapped[int] = mapped_column(
        ForeignKey("versions.id", ondelete="CASCADE"), index=True
    )
    alias: Mapped[str] = mapped_column(String(128))


class RunRow(Base):
    """A run as stored; the layers above see it as :class:`~.records.RunRecord`."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(256))
    job_type: Mapped[str | None] = mapped_column(String(128))
    group: Mapped[str | None] = mapped_column("group_name", String(256), index=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), default="running")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()


class LineageRow(Base):
    """An edge between a run and a version: the run logged it, or used it."""

    __tablename__ = "lineage"
    __table_args__ = (
        UniqueConstraint("run_id", "version_id", "direction", name="uq_lineage_run_version_dir"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("versions.id", ondelete="CASCADE"), index=True
    )
    direction: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PendingEntryRow(Base):
    """A file that a parallel writer upserted into a pending version, until it is finished."""

    __tablename__ = "pending_entries"
    __table_args__ = (
        UniqueConstraint("version_id", "path", name="uq_pending_entries_version_path"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(String(1024))
    entry: Mapped[dict[str, Any]] = mapped_column(JSON)
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
