"""The registry: artifacts, versions, aliases, runs and lineage in one SQL database.

:class:`Registry` is the only door into it. Each public method is one transaction, retried as a
whole on a lost race or a dropped connection (:mod:`.connection`), around one function of a
concern module that does the work on the open session:

- :mod:`.runs`: runs and lineage edges;
- :mod:`.catalog`: name resolution and listings;
- :mod:`.commits`: commit (dedupe, alias moves), update and delete of versions;
- :mod:`.pending`: the pending versions of parallel writers;
- :mod:`.links`: versions linked into other collections (W&B's registry promotion);
- :mod:`.collections`: renaming, retyping, tagging and deleting whole collections;
- :mod:`.liveness`: what garbage collection must keep, and what has expired.

One implementation serves SQLite and PostgreSQL through SQLAlchemy; what the layers above get
back are the detached records of :mod:`.records`, never ORM rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from dagster_artifacts.registry import (
    catalog,
    collections,
    commits,
    links,
    liveness,
    pending,
    provenance,
)
from dagster_artifacts.registry.connection import (
    MAX_ATTEMPTS,
    open_engine,
    read_only,
    run_transaction,
)
from dagster_artifacts.registry.models import LOGGED, USED
from dagster_artifacts.registry.records import (
    CollectionRecord,
    CommitRequest,
    LiveReferences,
    PendingSnapshot,
    PendingUpsert,
    RunRecord,
    VersionRecord,
)

T = TypeVar("T")


class Registry:
    """All registry reads and writes. Every public method is one transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        #: How many times a transaction is tried before a race or an outage becomes an error
        #: (lower it to fail fast, e.g. in a test of an outage).
        self.max_attempts = MAX_ATTEMPTS
        #: The SQLAlchemy engine (not to be confused with the package's store engine).
        self.sql_engine = open_engine(url)
        self._read_engine = read_only(self.sql_engine)

    def dispose(self) -> None:
        """Close every pooled connection (at exit, or before a fork)."""
        self.sql_engine.dispose()

    # -- transactions -----------------------------------------------------------------------------
    def _write(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in a write transaction (SQLite: ``BEGIN IMMEDIATE``, the write lock)."""
        return run_transaction(self.sql_engine, work, attempts=self.max_attempts, url=self.url)

    def _read(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in a read transaction, which on SQLite never queues behind writers."""
        return run_transaction(self._read_engine, work, attempts=self.max_attempts, url=self.url)

    # -- runs and lineage -------------------------------------------------------------------------
    def create_run(
        self,
        entity: str,
        project: str,
        run_id: str,
        name: str,
        job_type: str | None,
        group: str | None,
        config: dict[str, Any],
    ) -> RunRecord:
        """Record a run (creating its project); an existing ``run_id`` is resumed."""
        return self._write(
            lambda session: provenance.create_run(
                session, entity, project, run_id, name, job_type, group, config
            )
        )

    def finish_run(self, run_id: str, state: str = "finished") -> None:
        """Set the final state of a run."""
        self._write(lambda session: provenance.finish_run(session, run_id, state))

    def get_run(
        self, run_id: str, entity: str | None = None, project: str | None = None
    ) -> RunRecord:
        """The run ``run_id`` (in ``entity/project`` when given), or RunNotFoundError."""
        return self._read(lambda session: provenance.get_run(session, run_id, entity, project))

    def list_runs(
        self,
        entity: str,
        project: str,
        job_type: str | None = None,
        group: str | None = None,
    ) -> list[RunRecord]:
        """Runs of a project, oldest first."""
        return self._read(
            lambda session: provenance.list_runs(session, entity, project, job_type, group)
        )

    def add_lineage(self, run_id: str, version_id: int, direction: str = USED) -> None:
        """Record that a run used (or logged) a version; recording it twice is a no-op."""
        self._write(lambda session: provenance.add_edge(session, run_id, version_id, direction))

    def logged_by(self, version_id: int) -> RunRecord | None:
        """The run that first logged the version, if known."""
        return self._read(lambda session: provenance.logged_by(session, version_id))

    def used_by(self, version_id: int) -> list[RunRecord]:
        """Every run that used the version, in the order they did."""
        return self._read(lambda session: provenance.edge_runs(session, version_id, USED))

    def logging_runs(self, version_id: int) -> list[RunRecord]:
        """Every run that logged this version (the producer and each deduplicated re-log)."""
        return self._read(lambda session: provenance.edge_runs(session, version_id, LOGGED))

    def run_versions(self, run_id: str, direction: str) -> list[VersionRecord]:
        """The committed versions a run logged or used (``direction``), in order."""
        return self._read(lambda session: provenance.run_versions(session, run_id, direction))

    # -- commits and changes ----------------------------------------------------------------------
    def commit_version(self, request: CommitRequest) -> tuple[VersionRecord, bool]:
        """Commit a version atomically; returns it and whether it is new (False = deduplicated).

        Safe against any number of concurrent committers of the same artifact: see
        :func:`.commits.commit_version` for dedupe, reuse and sealing of pending versions.
        """
        return self._write(lambda session: commits.commit_version(session, request))

    def update_version(
        self,
        version_id: int,
        description: str | None,
        metadata: dict[str, Any],
        aliases: Sequence[str],
        ttl_seconds: int | None = None,
        tags: Sequence[str] | None = None,
    ) -> VersionRecord:
        """Set the mutable fields of a version; ``aliases`` becomes its full alias set, and
        ``tags`` (unless None) its full tag set. A link's fields other than its aliases are its
        source's (see :func:`.commits.update_version`)."""
        return self._write(
            lambda session: commits.update_version(
                session, version_id, description, metadata, aliases, ttl_seconds, tags
            )
        )

    def delete_version(self, version_id: int, delete_aliases: bool = False) -> None:
        """Mark a version deleted (with its links; a link is only unlinked); its bytes go with
        the next garbage collection."""
        self._write(lambda session: commits.delete_version(session, version_id, delete_aliases))

    # -- links and collections --------------------------------------------------------------------
    def link_version(
        self, version_id: int, entity: str, project: str, name: str, aliases: Sequence[str] = ()
    ) -> tuple[VersionRecord, bool]:
        """Link a version into the collection of links ``entity/project/name`` (created on first
        use); ``latest`` and ``aliases`` move to it. Returns the link and whether it is new."""
        return self._write(
            lambda session: links.link_version(session, version_id, entity, project, name, aliases)
        )

    def unlink_version(self, version_id: int) -> None:
        """Remove a link from its collection; its source is untouched."""
        self._write(lambda session: links.unlink_version(session, version_id))

    def linked_versions(self, version_id: int) -> list[VersionRecord]:
        """The links of a logged version, oldest first."""
        return self._read(lambda session: links.linked_versions(session, version_id))

    def find_collection(self, entity: str, project: str, name: str) -> CollectionRecord | None:
        """The collection ``entity/project/name``, or None."""
        return self._read(lambda session: catalog.find_collection(session, entity, project, name))

    def collection_aliases(self, collection_id: int) -> list[str]:
        """Every alias held in a collection, sorted."""
        return self._read(lambda session: catalog.collection_aliases(session, collection_id))

    def update_collection(
        self,
        collection_id: int,
        name: str,
        artifact_type: str,
        description: str | None,
        tags: Sequence[str],
    ) -> CollectionRecord:
        """Set a collection's name, type, description and tags."""
        return self._write(
            lambda session: collections.update_collection(
                session, collection_id, name, artifact_type, description, tags
            )
        )

    def delete_collection(self, collection_id: int) -> None:
        """Delete a collection with its versions (and the links to them elsewhere)."""
        self._write(lambda session: collections.delete_collection(session, collection_id))

    # -- parallel writers (upsert_artifact / finish_artifact) -------------------------------------
    def pending_conflicts(
        self,
        entity: str,
        project: str,
        name: str,
        distributed_id: str,
        entries: dict[str, dict[str, Any]],
    ) -> list[str]:
        """Paths of ``entries`` that the pending version already holds with other content.

        A cheap read before uploading anything; :meth:`upsert_pending` checks again
        authoritatively under the collection lock.
        """
        return self._read(
            lambda session: pending.pending_conflicts(
                session, entity, project, name, distributed_id, entries
            )
        )

    def upsert_pending(self, request: PendingUpsert) -> int:
        """Add a writer's entries to the pending version of its ``distributed_id``; its id."""
        return self._write(lambda session: pending.upsert_pending(session, request))

    def pending_snapshot(
        self, entity: str, project: str, name: str, distributed_id: str
    ) -> PendingSnapshot | None:
        """Everything upserted so far into the pending version of ``distributed_id``, if any."""
        return self._read(
            lambda session: pending.pending_snapshot(session, entity, project, name, distributed_id)
        )

    # -- lookups ----------------------------------------------------------------------------------
    def resolve(
        self,
        entity: str,
        project: str,
        name: str,
        alias_or_version: str,
        type: str | None = None,
    ) -> VersionRecord:
        """Find the committed version ``name:alias_or_version`` or raise ArtifactNotFoundError."""
        return self._read(
            lambda session: catalog.resolve(session, entity, project, name, alias_or_version, type)
        )

    def find_committed(
        self, entity: str, project: str, name: str, digest: str, partition_key: str | None = None
    ) -> VersionRecord | None:
        """The committed version of ``name`` with this digest and partition key, if any.

        A cheap dedupe probe before uploading; :meth:`commit_version` decides again under the
        collection lock.
        """
        return self._read(
            lambda session: catalog.find_committed(
                session, entity, project, name, digest, partition_key
            )
        )

    def collection_type(self, entity: str, project: str, name: str) -> str | None:
        """The type of artifact ``name``, or None if it has never been logged."""
        return self._read(lambda session: catalog.collection_type(session, entity, project, name))

    def get_version(self, version_id: int) -> VersionRecord:
        """The version with this id, or ArtifactNotFoundError if it was deleted."""
        return self._read(lambda session: catalog.get_version(session, version_id))

    def list_versions(
        self,
        entity: str,
        project: str,
        name: str,
        type: str | None = None,
        partition_key: str | None = None,
        tags: Sequence[str] | None = None,
        newest_first: bool = False,
    ) -> list[VersionRecord]:
        """Committed versions of one artifact, oldest first (or newest first), only those with
        every tag of ``tags`` when given."""
        return self._read(
            lambda session: catalog.list_versions(
                session, entity, project, name, type, partition_key, tags, newest_first
            )
        )

    def newest_version(
        self, entity: str, project: str, name: str, partition_key: str | None = None
    ) -> VersionRecord | None:
        """The committed version with the highest index (of ``partition_key``), or None."""
        return self._read(
            lambda session: catalog.newest_version(session, entity, project, name, partition_key)
        )

    def list_collections(
        self, entity: str, project: str, type: str | None = None
    ) -> list[CollectionRecord]:
        """The artifacts of a project, by name."""
        return self._read(lambda session: catalog.list_collections(session, entity, project, type))

    def list_types(self, entity: str, project: str) -> list[str]:
        """The artifact types used in a project."""
        return self._read(lambda session: catalog.list_types(session, entity, project))

    def list_projects(self) -> list[tuple[str, str]]:
        """Every ``(entity, project)`` with a run or an artifact."""
        return self._read(catalog.list_projects)

    # -- life cycle (gc, TTL) ---------------------------------------------------------------------
    def live_references(self) -> LiveReferences:
        """Manifest keys and pending digests that no garbage collection may remove.

        A write transaction, as gc has always read it: on SQLite it waits for a commit in
        flight instead of reading the snapshot from before it, so that commit's manifest is
        seen as live.
        """
        return self._write(liveness.live_references)

    def expired_versions(self, now: datetime | None = None) -> list[VersionRecord]:
        """Committed versions whose TTL has run out by ``now`` (default: now), oldest first.

        A write transaction, like :meth:`live_references`, so it sees every commit before it.
        """
        moment = now or datetime.now(timezone.utc)
        return self._write(lambda session: liveness.expired_versions(session, moment))
