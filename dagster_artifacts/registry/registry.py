"""The registry: artifacts, versions, aliases, runs and lineage in one SQL database.

One implementation serves SQLite and PostgreSQL through SQLAlchemy; the few dialect details
(SQLite's WAL and ``BEGIN IMMEDIATE``, PostgreSQL's row locks) stay inside this module.
Concurrency safety comes from the database, not the client: the collection row is locked while a
version number is handed out, unique constraints catch every race that slips through, and the
whole transaction is retried with jitter when one does.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Engine, Row, create_engine, delete, event, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from dagster_artifacts.errors import (
    ArtifactHasAliasesError,
    ArtifactNotFoundError,
    ArtifactTypeMismatchError,
    ConfigurationError,
    ConflictError,
    RegistryError,
    RunNotFoundError,
)
from dagster_artifacts.names import VERSION_PATTERN
from dagster_artifacts.registry import migrate
from dagster_artifacts.registry.models import (
    COMMITTED,
    DELETED,
    LOGGED,
    PENDING,
    USED,
    Alias,
    Collection,
    Lineage,
    PendingEntry,
    Project,
    RunRecord,
    Version,
    utcnow,
)
from dagster_artifacts.registry.records import (
    CollectionRecord,
    CommitRequest,
    PendingChangedError,
    PendingSnapshot,
    PendingUpsert,
    ReusedVersionGoneError,
    RunRecordView,
    VersionRecord,
)

T = TypeVar("T")
#: Every column a VersionRecord needs; rows of these carry the ORM attribute names.
VERSION_COLUMNS = (
    Version.id,
    Version.collection_id,
    Version.index,
    Version.state,
    Version.digest,
    Version.manifest_key,
    Version.size,
    Version.file_count,
    Version.description,
    Version.metadata_,
    Version.created_at,
    Version.committed_at,
    Version.producer_run_id,
    Version.partition_key,
    Version.ttl_seconds,
)
MAX_ATTEMPTS = 12
#: Up to this many versions, their aliases are read by version id; beyond, by collection.
ALIAS_BY_VERSION_LIMIT = 100
#: Execution option marking a read-only transaction (SQLite: deferred instead of IMMEDIATE).
READ_ONLY_OPTION = "dagster_artifacts_read_only"
#: SQLSTATEs of PostgreSQL errors that a retry of the whole transaction can fix: unique
#: violation (a race lost), serialization failure, deadlock, lock timeout, admin shutdown and
#: the connection exceptions class.
RETRYABLE_SQLSTATES = ("23505", "40001", "40P01", "55P03", "57P01", "57P02", "57P03")
SQLITE_BUSY_TIMEOUT_MS = 60_000


def make_engine(url: str) -> Engine:
    """A SQLAlchemy engine tuned for the registry's access pattern."""
    if url.startswith("sqlite"):
        if url in ("sqlite://", "sqlite:///:memory:"):
            engine = create_engine(
                url, poolclass=StaticPool, connect_args={"check_same_thread": False}
            )
        else:
            engine = create_engine(
                url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, pool_pre_ping=True
            )
        _configure_sqlite(engine)
        return engine
    try:
        return create_engine(url, pool_pre_ping=True)
    except Exception as error:  # unknown dialect, missing driver
        raise ConfigurationError(
            f"Cannot open registry database {_redact(url)}: {error}. For PostgreSQL install "
            "the extra: pip install 'dagster-artifacts[postgres]'."
        ) from error


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Writers take the write lock up front so two of them never both read the same next
        # index; readers use a deferred transaction, which WAL never blocks behind a writer.
        if connection.get_execution_options().get(READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def _redact(url: str) -> str:
    """Hide the password of a database URL before it reaches a message or a log."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<database url>"


class Registry:
    """All registry reads and writes. Every public method is one transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        #: How many times a transaction is tried before a race or an outage becomes an error.
        self.max_attempts = MAX_ATTEMPTS
        if url.startswith("sqlite:///"):
            from pathlib import Path

            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(url)
        self._read_engine = self.engine.execution_options(**{READ_ONLY_OPTION: True})
        try:
            migrate.upgrade(self.engine)
        except OperationalError as error:
            self.engine.dispose()
            raise RegistryError(
                f"Cannot reach the registry database {_redact(url)}: {_first_line(error.orig)}. "
                "Check that it is running and that DAGSTER_ARTIFACTS_DATABASE is right."
            ) from error
        except DBAPIError as error:
            self.engine.dispose()
            raise RegistryError(
                f"Cannot prepare the registry database {_redact(url)}: "
                f"{_first_line(error.orig)}. Check the URL, the user's rights and that the "
                "database exists."
            ) from error
        except RegistryError:  # a schema newer than this package
            self.engine.dispose()
            raise

    def dispose(self) -> None:
        self.engine.dispose()

    # -- transactions ---------------------------------------------------------------------------
    def _transaction(self, work: Callable[[Session], T], write: bool = True) -> T:
        """Run ``work`` in one transaction, retrying races with jittered backoff.

        A retry re-runs ``work`` from the start in a new transaction, so a lost race (a unique
        violation, a deadlock, a serialization failure) or a dropped connection never leaves
        half of a change behind. ``write=False`` marks a read: on SQLite it does not take the
        write lock, so readers never queue behind writers.
        """
        engine = self.engine if write else self._read_engine
        attempts = self.max_attempts
        for attempt in range(attempts):
            try:
                with Session(engine, expire_on_commit=False) as session, session.begin():
                    return work(session)
            except DBAPIError as error:
                if not _is_retryable(error):
                    raise RegistryError(
                        f"Registry error on {_redact(self.url)}: {_first_line(error.orig)}"
                    ) from error
                if attempt == attempts - 1:
                    if _is_disconnect(error):
                        raise RegistryError(
                            f"Lost the registry database {_redact(self.url)} and could not "
                            f"reconnect after {attempts} attempts: "
                            f"{_first_line(error.orig)}. Nothing was half-committed; check that "
                            "the database is running, then run the same step again."
                        ) from error
                    raise RegistryError(
                        f"Registry transaction on {_redact(self.url)} kept losing races after "
                        f"{attempts} attempts: {_first_line(error.orig)}"
                    ) from error
                time.sleep(min(2.0, 0.01 * 2**attempt) * (0.5 + random.random()))
        raise AssertionError("unreachable")

    # -- projects and runs ----------------------------------------------------------------------
    @staticmethod
    def _project(session: Session, entity: str, project: str, create: bool) -> Project | None:
        found = session.scalar(
            select(Project).where(Project.entity == entity, Project.name == project)
        )
        if found is None and create:
            found = Project(entity=entity, name=project)
            session.add(found)
            session.flush()
        return found

    def create_run(
        self,
        entity: str,
        project: str,
        run_id: str,
        name: str,
        job_type: str | None,
        group: str | None,
        config: dict[str, Any],
    ) -> RunRecordView:
        def work(session: Session) -> RunRecordView:
            project_row = self._project(session, entity, project, create=True)
            assert project_row is not None
            existing = session.get(RunRecord, run_id)
            if existing is None:
                existing = RunRecord(
                    id=run_id,
                    project_id=project_row.id,
                    name=name,
                    job_type=job_type,
                    group=group,
                    config=config,
                    state="running",
                )
                session.add(existing)
                session.flush()
            else:  # resume, as wandb.init(id=..., resume=True) does
                existing.state = "running"
                existing.finished_at = None
            return _run_view(existing, entity, project)

        return self._transaction(work)

    def finish_run(self, run_id: str, state: str = "finished") -> None:
        def work(session: Session) -> None:
            session.execute(
                update(RunRecord)
                .where(RunRecord.id == run_id)
                .values(state=state, finished_at=utcnow())
            )

        self._transaction(work)

    def get_run(
        self, run_id: str, entity: str | None = None, project: str | None = None
    ) -> RunRecordView:
        def work(session: Session) -> RunRecordView:
            query = select(RunRecord, Project).join(Project).where(RunRecord.id == run_id)
            if entity:
                query = query.where(Project.entity == entity)
            if project:
                query = query.where(Project.name == project)
            row = session.execute(query).first()
            if row is None:
                where = f" in {entity}/{project}" if entity and project else ""
                raise RunNotFoundError(
                    f"No run {run_id!r}{where}; list runs with Api().runs() to find its id."
                )
            return _run_view(row[0], row[1].entity, row[1].name)

        return self._transaction(work, write=False)

    def list_runs(
        self,
        entity: str,
        project: str,
        job_type: str | None = None,
        group: str | None = None,
    ) -> list[RunRecordView]:
        def work(session: Session) -> list[RunRecordView]:
            query = (
                select(RunRecord)
                .join(Project)
                .where(Project.entity == entity, Project.name == project)
                .order_by(RunRecord.created_at, RunRecord.id)
            )
            if job_type:
                query = query.where(RunRecord.job_type == job_type)
            if group:
                query = query.where(RunRecord.group == group)
            return [_run_view(run, entity, project) for run in session.scalars(query)]

        return self._transaction(work, write=False)

    # -- commit -----------------------------------------------------------------------------------
    def commit_version(self, request: CommitRequest) -> tuple[VersionRecord, bool]:
        """Commit a version atomically; returns it and whether it is new (False = deduplicated).

        The collection row is locked first (``SELECT ... FOR UPDATE``; SQLite's ``BEGIN
        IMMEDIATE`` locks the whole database), so the dedupe probe, the next index and the alias
        moves all see every earlier commit. Dedupe matches a committed version with the same
        digest *and* the same partition key (None matches only unpartitioned versions). With
        ``manifest_written=False`` the request reuses an equal version's manifest without having
        written it; if that version is gone by now, :class:`ReusedVersionGoneError` tells the
        caller to upload and try again. With ``pending_version_id`` (``finish_artifact``) the
        pending version is sealed in place, after checking that no writer upserted into it since
        its entries were read (``pending_marker``); otherwise :class:`PendingChangedError` asks
        the caller to read them again.
        """

        def work(session: Session) -> tuple[VersionRecord, bool]:
            collection = self._locked_collection(session, request, create=True)
            assert collection is not None
            pending: Version | None = None
            if request.pending_version_id is not None:
                pending = self._check_pending(session, collection, request)
            version = session.scalar(
                select(Version).where(
                    Version.collection_id == collection.id,
                    *_same_content(request.digest, request.partition_key),
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
                if pending is not None:
                    version = pending
                    session.execute(
                        delete(PendingEntry).where(PendingEntry.version_id == pending.id)
                    )
                else:
                    version = Version(collection_id=collection.id, created_at=utcnow())
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
                version.producer_run_id = request.run_id
                version.committed_at = utcnow()
                version.digest_algorithm = None  # pending-only state, now in the manifest
                version.pending_aliases = None  # applied below with the request's aliases
                session.flush()
            elif pending is not None:
                # The finished parallel artifact equals an existing version: the writers' edges
                # move to that version and the pending one goes away.
                writers = session.scalars(
                    select(Lineage.run_id).where(
                        Lineage.version_id == pending.id, Lineage.direction == LOGGED
                    )
                )
                for writer in list(writers):
                    self._add_edge(session, writer, version.id, LOGGED)
                session.execute(delete(Version).where(Version.id == pending.id))
            self._move_aliases(session, collection.id, version.id, request.aliases)
            if request.run_id:
                self._add_edge(session, request.run_id, version.id, LOGGED)
            return self._record(session, version, collection), created

        return self._transaction(work)

    @staticmethod
    def _check_pending(session: Session, collection: Collection, request: CommitRequest) -> Version:
        """The pending version ``request`` seals, unchanged since the caller read it."""
        pending = session.get(Version, request.pending_version_id)
        if pending is None or pending.state != PENDING or pending.collection_id != collection.id:
            raise ConflictError(
                f"The parallel artifact {request.name!r} that this finish_artifact read was "
                "finished (or removed) by another run meanwhile; call finish_artifact once per "
                "distributed_id, after every writer is done."
            )
        if request.pending_marker is not None:
            marker = _pending_marker(session, pending.id)
            if marker != request.pending_marker:
                raise PendingChangedError(
                    f"Writers upserted into {request.name!r} while it was being finished."
                )
        return pending

    def _locked_collection(
        self, session: Session, request: CommitRequest, create: bool
    ) -> Collection | None:
        return self._lock_collection(
            session, request.entity, request.project, request.name, request.type, create
        )

    def _lock_collection(
        self,
        session: Session,
        entity: str,
        project_name: str,
        name: str,
        artifact_type: str,
        create: bool,
    ) -> Collection | None:
        """Lock (creating if asked) the collection row that serializes writes to one artifact."""
        project = self._project(session, entity, project_name, create=create)
        if project is None:
            return None
        query = select(Collection).where(
            Collection.project_id == project.id, Collection.name == name
        )
        collection = session.scalar(query.with_for_update())
        if collection is None:
            if not create:
                return None
            collection = Collection(project_id=project.id, name=name, type=artifact_type)
            session.add(collection)
            session.flush()
        elif collection.type != artifact_type:
            raise ArtifactTypeMismatchError(
                f"Artifact {name!r} in {entity}/{project_name} has type "
                f"{collection.type!r}, not {artifact_type!r}; use type={collection.type!r} or "
                "another name."
            )
        return collection

    # -- parallel writers (upsert_artifact / finish_artifact) --------------------------------------
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

        def work(session: Session) -> list[str]:
            version_id = session.scalar(
                select(Version.id)
                .join(Collection)
                .join(Project)
                .where(
                    Project.entity == entity,
                    Project.name == project,
                    Collection.name == name,
                    Version.distributed_id == distributed_id,
                    Version.state == PENDING,
                )
            )
            if version_id is None:
                return []
            held = _pending_entries(session, version_id, entries)
            return sorted(
                path
                for path, entry in entries.items()
                if path in held and held[path][0].get("digest") != entry.get("digest")
            )

        return self._transaction(work, write=False)

    def upsert_pending(self, request: PendingUpsert) -> int:
        """Add a writer's entries to the pending version of ``distributed_id``; its id.

        Creates the pending version on first use (after a finish, the partial unique index on
        ``(collection_id, distributed_id) WHERE state = 'PENDING'`` lets a new one start). A
        path already held with another digest is a :class:`ConflictError`, and then nothing is
        recorded. The writer's run gets a ``logged`` edge, which becomes visible when the
        version is committed.
        """

        def work(session: Session) -> int:
            collection = self._lock_collection(
                session, request.entity, request.project, request.name, request.type, True
            )
            assert collection is not None
            version = session.scalar(
                select(Version).where(
                    Version.collection_id == collection.id,
                    Version.distributed_id == request.distributed_id,
                    Version.state == PENDING,
                )
            )
            if version is None:
                version = Version(
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
            held_algorithm = version.digest_algorithm or request.digest_algorithm
            if held_algorithm != request.digest_algorithm:
                raise ConflictError(
                    f"Parallel artifact {request.name!r} ({request.distributed_id}) hashes with "
                    f"{held_algorithm}, this writer with "
                    f"{request.digest_algorithm}; every writer must use the same "
                    "digest_algorithm."
                )
            held = _pending_entries(session, version.id, request.entries)
            conflicts = sorted(
                path
                for path, entry in request.entries.items()
                if path in held and held[path][0].get("digest") != entry.get("digest")
            )
            if conflicts:
                owners = sorted({held[path][1] or "?" for path in conflicts})
                raise ConflictError(
                    f"Parallel artifact {request.name!r} ({request.distributed_id}) already has "
                    f"{', '.join(conflicts[:10])}{' ...' if len(conflicts) > 10 else ''} with "
                    f"other content (upserted by run {', '.join(owners)}); give each writer its "
                    "own file names, e.g. parts/table_<writer>."
                )
            fresh = [
                {"version_id": version.id, "path": path, "entry": entry, "run_id": request.run_id}
                for path, entry in request.entries.items()
                if path not in held
            ]
            if fresh:
                session.execute(insert(PendingEntry), fresh)
            # New objects, not in-place edits, so the ORM sees the JSON columns change.
            version.pending_aliases = list(
                dict.fromkeys([*(version.pending_aliases or []), *request.aliases])
            )
            version.metadata_ = {**(version.metadata_ or {}), **request.metadata}
            if request.description is not None:
                version.description = request.description
            if request.run_id:
                self._add_edge(session, request.run_id, version.id, LOGGED)
            return version.id

        return self._transaction(work)

    def pending_snapshot(
        self, entity: str, project: str, name: str, distributed_id: str
    ) -> PendingSnapshot | None:
        """Everything upserted so far into the pending version of ``distributed_id``, if any."""

        def work(session: Session) -> PendingSnapshot | None:
            version = session.scalar(
                select(Version)
                .join(Collection)
                .join(Project)
                .where(
                    Project.entity == entity,
                    Project.name == project,
                    Collection.name == name,
                    Version.distributed_id == distributed_id,
                    Version.state == PENDING,
                )
            )
            if version is None:
                return None
            entries = {
                path: entry for path, (entry, _run) in _pending_entries(session, version.id).items()
            }
            return PendingSnapshot(
                version_id=version.id,
                entries=entries,
                marker=_pending_marker(session, version.id),
                digest_algorithm=version.digest_algorithm or "",
                aliases=tuple(version.pending_aliases or ()),
                metadata=dict(version.metadata_ or {}),
                description=version.description,
            )

        return self._transaction(work, write=False)

    @staticmethod
    def _move_aliases(
        session: Session, collection_id: int, version_id: int, aliases: Iterable[str]
    ) -> None:
        for alias in aliases:
            session.execute(
                delete(Alias).where(Alias.collection_id == collection_id, Alias.alias == alias)
            )
            session.add(Alias(collection_id=collection_id, version_id=version_id, alias=alias))
        session.flush()

    @staticmethod
    def _add_edge(session: Session, run_id: str, version_id: int, direction: str) -> None:
        exists = session.scalar(
            select(Lineage.id).where(
                Lineage.run_id == run_id,
                Lineage.version_id == version_id,
                Lineage.direction == direction,
            )
        )
        if exists is None:
            session.add(Lineage(run_id=run_id, version_id=version_id, direction=direction))
            session.flush()

    def add_lineage(self, run_id: str, version_id: int, direction: str = USED) -> None:
        self._transaction(lambda session: self._add_edge(session, run_id, version_id, direction))

    # -- reads ------------------------------------------------------------------------------------
    def _record(self, session: Session, version: Version, collection: Collection) -> VersionRecord:
        return self._records(session, [version], {collection.id: collection})[0]

    def _records(
        self,
        session: Session,
        versions: Sequence[Version] | Sequence[Row[Any]],
        collections: dict[int, Collection] | None = None,
    ) -> list[VersionRecord]:
        """Detached records of ``versions`` in a fixed number of queries, however many there are.

        ``versions`` are ORM objects, or rows of :data:`VERSION_COLUMNS` (cheaper for long
        lists: no ORM object per row).

        Collections and projects are fetched once per distinct id (usually one), and aliases
        in one query: by version id for a few versions, else by collection (an artifact has
        few aliases), so listing 10,000 versions never issues a query per version.
        """
        if not versions:
            return []
        known = dict(collections or {})
        for collection_id in {version.collection_id for version in versions} - known.keys():
            found = session.get(Collection, collection_id)
            assert found is not None
            known[collection_id] = found
        projects: dict[int, Project] = {}
        for project_id in {collection.project_id for collection in known.values()}:
            project = session.get(Project, project_id)
            assert project is not None
            projects[project_id] = project
        wanted = {version.id for version in versions}
        query = select(Alias.version_id, Alias.alias).order_by(Alias.id)
        if len(wanted) <= ALIAS_BY_VERSION_LIMIT:
            query = query.where(Alias.version_id.in_(wanted))
        else:
            query = query.where(Alias.collection_id.in_(list(known)))
        aliases: dict[int, list[str]] = {}
        for version_id, alias in session.execute(query):
            if version_id in wanted:
                aliases.setdefault(version_id, []).append(alias)
        records = []
        for version in versions:
            collection = known[version.collection_id]
            project = projects[collection.project_id]
            records.append(
                VersionRecord(
                    id=version.id,
                    entity=project.entity,
                    project=project.name,
                    name=collection.name,
                    type=collection.type,
                    index=version.index,
                    state=version.state,
                    digest=version.digest,
                    manifest_key=version.manifest_key,
                    size=version.size,
                    file_count=version.file_count,
                    description=version.description,
                    metadata=dict(version.metadata_ or {}),
                    aliases=aliases.get(version.id, []),
                    created_at=version.created_at,
                    committed_at=version.committed_at,
                    producer_run_id=version.producer_run_id,
                    partition_key=version.partition_key,
                    ttl_seconds=version.ttl_seconds,
                    collection_id=collection.id,
                )
            )
        return records

    def resolve(
        self,
        entity: str,
        project: str,
        name: str,
        alias_or_version: str,
        type: str | None = None,
    ) -> VersionRecord:
        """Find the committed version ``name:alias_or_version`` or raise ArtifactNotFoundError."""

        def work(session: Session) -> VersionRecord:
            # The project is loaded with the collection so the record needs no query for it.
            row = session.execute(
                select(Collection, Project)
                .join(Project)
                .where(Project.entity == entity, Project.name == project, Collection.name == name)
            ).first()
            collection = None if row is None else row[0]
            where = f"{entity}/{project}/{name}"
            if collection is None:
                raise ArtifactNotFoundError(
                    f"No artifact {where!r}; log it first, or check the name and project "
                    "(Api().artifact_collections() lists them)."
                )
            if type is not None and collection.type != type:
                raise ArtifactNotFoundError(
                    f"Artifact {where!r} has type {collection.type!r}, not {type!r}."
                )
            match = VERSION_PATTERN.match(alias_or_version)
            query = select(Version).where(
                Version.collection_id == collection.id, Version.state == COMMITTED
            )
            if match:
                query = query.where(Version.index == int(match.group(1)))
            else:
                # By (collection_id, alias), the unique index: one row, not a scan of versions.
                query = query.join(Alias, Alias.version_id == Version.id).where(
                    Alias.collection_id == collection.id, Alias.alias == alias_or_version
                )
            version = session.scalar(query)
            if version is None:
                available = self._version_names(session, collection.id)
                raise ArtifactNotFoundError(
                    f"Artifact {where!r} has no version or alias {alias_or_version!r}; "
                    f"it has {available}. Use one of those."
                )
            return self._record(session, version, collection)

        return self._transaction(work, write=False)

    @staticmethod
    def _version_names(session: Session, collection_id: int) -> str:
        indices = list(
            session.scalars(
                select(Version.index)
                .where(Version.collection_id == collection_id, Version.state == COMMITTED)
                .order_by(Version.index)
            )
        )
        aliases = list(
            session.scalars(select(Alias.alias).where(Alias.collection_id == collection_id))
        )
        shown = [f"v{i}" for i in indices[:5]] + (["..."] if len(indices) > 5 else [])
        shown += [f"v{i}" for i in indices[5:][-2:]] if len(indices) > 5 else []
        return f"versions {', '.join(shown) or 'none'} and aliases {', '.join(sorted(aliases)) or 'none'}"

    def find_committed(
        self, entity: str, project: str, name: str, digest: str, partition_key: str | None = None
    ) -> VersionRecord | None:
        """The committed version of ``name`` with this digest and partition key, if any.

        A cheap dedupe probe before uploading; :meth:`commit_version` decides again under the
        collection lock.
        """

        def work(session: Session) -> VersionRecord | None:
            version = session.scalar(
                select(Version)
                .join(Collection)
                .join(Project)
                .where(
                    Project.entity == entity,
                    Project.name == project,
                    Collection.name == name,
                    *_same_content(digest, partition_key),
                )
            )
            return None if version is None else self._records(session, [version])[0]

        return self._transaction(work, write=False)

    def collection_type(self, entity: str, project: str, name: str) -> str | None:
        """The type of artifact ``name``, or None if it has never been logged."""

        def work(session: Session) -> str | None:
            return session.scalar(
                select(Collection.type)
                .join(Project)
                .where(Project.entity == entity, Project.name == project, Collection.name == name)
            )

        return self._transaction(work, write=False)

    def get_version(self, version_id: int) -> VersionRecord:
        def work(session: Session) -> VersionRecord:
            version = session.get(Version, version_id)
            if version is None or version.state == DELETED:
                raise ArtifactNotFoundError(f"Artifact version id {version_id} no longer exists.")
            return self._records(session, [version])[0]

        return self._transaction(work, write=False)

    def list_versions(
        self,
        entity: str,
        project: str,
        name: str,
        type: str | None = None,
        partition_key: str | None = None,
    ) -> list[VersionRecord]:
        """Committed versions of one artifact, oldest first."""

        def work(session: Session) -> list[VersionRecord]:
            query = (
                select(*VERSION_COLUMNS)
                .join(Collection)
                .join(Project)
                .where(
                    Project.entity == entity,
                    Project.name == project,
                    Collection.name == name,
                    Version.state == COMMITTED,
                )
                .order_by(Version.index)
            )
            if type is not None:
                query = query.where(Collection.type == type)
            if partition_key is not None:
                query = query.where(Version.partition_key == partition_key)
            return self._records(session, list(session.execute(query)))

        return self._transaction(work, write=False)

    def list_collections(
        self, entity: str, project: str, type: str | None = None
    ) -> list[CollectionRecord]:
        def work(session: Session) -> list[CollectionRecord]:
            committed = Version.state == COMMITTED
            query = (
                select(
                    Collection,
                    func.count(Version.id).filter(committed),
                    func.coalesce(func.sum(Version.size).filter(committed), 0),
                )
                .join(Project)
                .outerjoin(Version, Version.collection_id == Collection.id)
                .where(Project.entity == entity, Project.name == project)
                .group_by(Collection.id)
                .order_by(Collection.name)
            )
            if type is not None:
                query = query.where(Collection.type == type)
            return [
                CollectionRecord(
                    id=collection.id,
                    entity=entity,
                    project=project,
                    name=collection.name,
                    type=collection.type,
                    description=collection.description,
                    version_count=int(count),
                    size=int(size),
                )
                for collection, count, size in session.execute(query)
            ]

        return self._transaction(work, write=False)

    def list_types(self, entity: str, project: str) -> list[str]:
        def work(session: Session) -> list[str]:
            query = (
                select(Collection.type)
                .join(Project)
                .where(Project.entity == entity, Project.name == project)
                .distinct()
                .order_by(Collection.type)
            )
            return list(session.scalars(query))

        return self._transaction(work, write=False)

    def list_projects(self) -> list[tuple[str, str]]:
        def work(session: Session) -> list[tuple[str, str]]:
            rows = session.execute(
                select(Project.entity, Project.name).order_by(Project.entity, Project.name)
            )
            return [(entity, name) for entity, name in rows]

        return self._transaction(work, write=False)

    # -- updates ----------------------------------------------------------------------------------
    def update_version(
        self,
        version_id: int,
        description: str | None,
        metadata: dict[str, Any],
        aliases: Sequence[str],
        ttl_seconds: int | None = None,
    ) -> VersionRecord:
        """Set the mutable fields of a version; ``aliases`` becomes its full alias set."""

        def work(session: Session) -> VersionRecord:
            # Lock the collection before the version, in the same order as commit_version, so
            # two writers can never deadlock on each other's rows.
            collection = self._collection_of(session, version_id)
            version = session.get(Version, version_id, with_for_update=True)
            if collection is None or version is None or version.state != COMMITTED:
                raise ArtifactNotFoundError(f"Artifact version id {version_id} no longer exists.")
            version.description = description
            version.metadata_ = dict(metadata)
            version.ttl_seconds = ttl_seconds
            session.execute(
                delete(Alias).where(
                    Alias.version_id == version.id, Alias.alias.not_in(list(aliases))
                )
            )
            self._move_aliases(session, collection.id, version.id, aliases)
            return self._record(session, version, collection)

        return self._transaction(work)

    @staticmethod
    def _collection_of(session: Session, version_id: int) -> Collection | None:
        """Lock and return the collection that holds ``version_id`` (None if it is gone)."""
        collection_id = session.scalar(
            select(Version.collection_id).where(Version.id == version_id)
        )
        if collection_id is None:
            return None
        return session.get(Collection, collection_id, with_for_update=True)

    def delete_version(self, version_id: int, delete_aliases: bool = False) -> None:
        def work(session: Session) -> None:
            self._collection_of(session, version_id)  # lock order: collection, then version
            version = session.get(Version, version_id, with_for_update=True)
            if version is None or version.state == DELETED:
                raise ArtifactNotFoundError(f"Artifact version id {version_id} no longer exists.")
            aliases = list(
                session.scalars(select(Alias.alias).where(Alias.version_id == version_id))
            )
            if aliases and not delete_aliases:
                raise ArtifactHasAliasesError(
                    f"Version v{version.index} still has aliases {aliases}; remove them first, "
                    "or call delete(delete_aliases=True)."
                )
            session.execute(delete(Alias).where(Alias.version_id == version_id))
            version.state = DELETED

        self._transaction(work)

    # -- lineage ----------------------------------------------------------------------------------
    def logged_by(self, version_id: int) -> RunRecordView | None:
        def work(session: Session) -> RunRecordView | None:
            version = session.get(Version, version_id)
            if version is None or version.producer_run_id is None:
                return None
            return self._run_by_id(session, version.producer_run_id)

        return self._transaction(work, write=False)

    def used_by(self, version_id: int) -> list[RunRecordView]:
        return self._edge_runs(version_id, USED)

    def logging_runs(self, version_id: int) -> list[RunRecordView]:
        """Every run that logged this version (the producer and each deduplicated re-log)."""
        return self._edge_runs(version_id, LOGGED)

    def _edge_runs(self, version_id: int, direction: str) -> list[RunRecordView]:
        def work(session: Session) -> list[RunRecordView]:
            run_ids = session.scalars(
                select(Lineage.run_id)
                .where(Lineage.version_id == version_id, Lineage.direction == direction)
                .order_by(Lineage.id)
            )
            return [self._run_by_id(session, run_id) for run_id in run_ids]

        return self._transaction(work, write=False)

    def run_versions(self, run_id: str, direction: str) -> list[VersionRecord]:
        def work(session: Session) -> list[VersionRecord]:
            query = (
                select(*VERSION_COLUMNS)
                .join(Lineage, Lineage.version_id == Version.id)
                .where(
                    Lineage.run_id == run_id,
                    Lineage.direction == direction,
                    Version.state == COMMITTED,
                )
                .order_by(Lineage.id)
            )
            return self._records(session, list(session.execute(query)))

        return self._transaction(work, write=False)

    @staticmethod
    def _run_by_id(session: Session, run_id: str) -> RunRecordView:
        run = session.get(RunRecord, run_id)
        assert run is not None
        project = session.get(Project, run.project_id)
        assert project is not None
        return _run_view(run, project.entity, project.name)


def _same_content(digest: str, partition_key: str | None) -> tuple[Any, ...]:
    """Conditions matching the committed version that a commit of ``digest`` would dedupe to.

    The partition key is part of a version's identity: the same bytes logged for another
    partition are another version, tied to that partition (the two partial unique indexes of
    ``models.Version`` enforce the same rule).
    """
    partition = (
        Version.partition_key.is_(None)
        if partition_key is None
        else Version.partition_key == partition_key
    )
    return (Version.digest == digest, Version.state == COMMITTED, partition)


def _run_view(run: RunRecord, entity: str, project: str) -> RunRecordView:
    return RunRecordView(
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


#: Above this many paths, reading the whole pending version is cheaper than an IN list.
PATH_FILTER_LIMIT = 500


def _pending_entries(
    session: Session, version_id: int, paths: Iterable[str] | None = None
) -> dict[str, tuple[dict[str, Any], str | None]]:
    """Entries of a pending version (only those at ``paths`` when given and few)."""
    query = select(PendingEntry.path, PendingEntry.entry, PendingEntry.run_id).where(
        PendingEntry.version_id == version_id
    )
    wanted = None if paths is None else list(paths)
    if wanted is not None and len(wanted) <= PATH_FILTER_LIMIT:
        query = query.where(PendingEntry.path.in_(wanted))
    return {path: (dict(entry or {}), run_id) for path, entry, run_id in session.execute(query)}


def _pending_marker(session: Session, version_id: int) -> tuple[int, int]:
    """(count, max id) of a pending version's entries: entries are only ever added while it is
    pending, so the pair changes whenever a writer upserts."""
    count, last = session.execute(
        select(func.count(PendingEntry.id), func.coalesce(func.max(PendingEntry.id), 0)).where(
            PendingEntry.version_id == version_id
        )
    ).one()
    return int(count), int(last)


def _first_line(error: BaseException | None) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else repr(error)


def _is_disconnect(error: DBAPIError) -> bool:
    if error.connection_invalidated:
        return True
    sqlstate = str(getattr(error.orig, "sqlstate", "") or "")
    if sqlstate.startswith("08") or sqlstate in ("57P01", "57P02", "57P03"):
        return True
    message = str(error.orig).lower()
    return any(
        marker in message
        for marker in ("connection", "terminating", "server closed", "could not connect")
    )


def _is_retryable(error: DBAPIError) -> bool:
    """Races (unique violations, lock timeouts, serialization failures) and lost connections.

    Other integrity errors (a foreign key or NOT NULL violation) are bugs or bad input that a
    retry cannot fix, so they are not retried.
    """
    sqlstate = str(getattr(error.orig, "sqlstate", "") or "")
    if sqlstate:
        return sqlstate in RETRYABLE_SQLSTATES or sqlstate.startswith("08")
    message = str(error.orig).lower()
    if isinstance(error, IntegrityError):
        return "unique constraint" in message
    if _is_disconnect(error):
        return True
    return isinstance(error, OperationalError) and any(
        marker in message for marker in ("locked", "busy", "deadlock", "serializ")
    )
