"""``Artifact``: a draft you fill with files and references, or a logged, immutable version.

A draft collects manifest entries. As in W&B, each file is hashed as it is added and, with the
default ``policy="mutable"``, copied into the draft's staging area in the same pass, so the draft
is a snapshot of the files at ``add`` time (see :mod:`dagster_artifacts.staging`). Logging moves
it through an explicit state (:class:`CommitState`): ``DRAFT`` -> ``COMMITTING`` -> ``COMMITTED``
(or ``UPSERTED``, for a parallel writer's share); :mod:`dagster_artifacts.commit` drives it, and
once the commit lands the same object answers as the logged version (``name:vN``). Artifacts
fetched from the registry are committed from the start and load their manifest lazily.

Members are grouped by concern and mixed in: the commit protocol in
:class:`~dagster_artifacts.commit.CommitMembers`, identity (names, numbers, digest, timestamps,
URL) in :class:`~dagster_artifacts.identity.IdentityMembers`, links and sources in
:class:`~dagster_artifacts.links.LinkMembers`, reading a logged version's files in
:class:`~dagster_artifacts.entries.FileMembers`. A draft may be derived from a logged version
(:meth:`Artifact.new_draft`, or ``incremental=True``): see :mod:`dagster_artifacts.incremental`.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from datetime import timedelta
from typing import IO, TYPE_CHECKING, Any, ClassVar

from dagster_artifacts import compat, state
from dagster_artifacts.collection import ArtifactCollection, find_collection
from dagster_artifacts.commit import CommitMembers, CommitState
from dagster_artifacts.digests import DEFAULT_ALGORITHM, SUPPORTED_ALGORITHMS
from dagster_artifacts.draft import Draft
from dagster_artifacts.entries import ArtifactEntry, FileMembers, StoredFiles, load_object
from dagster_artifacts.errors import (
    ArtifactError,
    ArtifactFinalizedError,
    ArtifactNotLoggedError,
    ConfigurationError,
    LinkError,
    NotApplicableError,
)
from dagster_artifacts.identity import IdentityMembers
from dagster_artifacts.incremental import DraftBase, draft_of
from dagster_artifacts.lineage import LineageRun
from dagster_artifacts.links import LinkMembers
from dagster_artifacts.manifest import Manifest, ManifestEntry
from dagster_artifacts.names import (
    validate_aliases,
    validate_description,
    validate_metadata,
    validate_name,
    validate_tags,
    validate_type,
)
from dagster_artifacts.registry import RunRecord, VersionRecord
from dagster_artifacts.settings import Settings
from dagster_artifacts.store import Store
from dagster_artifacts.tables import PartitionedTable, Table

if TYPE_CHECKING:
    import pandas as pd


class Artifact(CommitMembers, IdentityMembers["Artifact"], LinkMembers["Artifact"], FileMembers):
    """A W&B-style artifact. Create one with ``Artifact(name, type)``, add content, log it."""

    #: Turns a run record into a ``Run`` for :meth:`logged_by` / :meth:`used_by`. Set once by
    #: :mod:`dagster_artifacts.runs`, which sits above this module (a run logs artifacts, so it
    #: imports them); the hook keeps the import graph free of a cycle.
    run_factory: ClassVar[Callable[[Store, RunRecord], LineageRun[Artifact]] | None] = None
    #: Logs a draft from ``save()`` / ``link()``: in the current run, else in a run of its own
    #: (W&B's job type ``auto``) of ``project`` / ``settings``. Set by :mod:`.runs` likewise.
    draft_logger: ClassVar[Callable[[Artifact, str | None, Settings | None], None] | None] = None

    def __init__(
        self,
        name: str,
        type: str = "unspecified",
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        incremental: bool = False,
        use_as: str | None = None,
        storage_region: str | None = None,
        digest_algorithm: str = DEFAULT_ALGORITHM,
    ) -> None:
        """``incremental=True``: at log time, merge this draft over the newest version of
        ``name`` (see :mod:`.incremental`). ``use_as`` is deprecated in W&B and ignored;
        ``storage_region`` (a W&B-hosted region) has no meaning here."""
        if storage_region is not None:
            raise NotApplicableError(
                "storage_region picks a W&B-hosted storage region; this store keeps its files "
                "at its root URL (DAGSTER_ARTIFACTS_ROOT, e.g. s3://bucket/prefix in any region)."
            )
        if use_as is not None:
            _deprecated(
                "`use_as` argument is deprecated and does not affect the behaviour of "
                "`wandb.Artifact()`"
            )
        digest_algorithm = str(digest_algorithm).lower()  # W&B spells them MD5 / XXH128
        if digest_algorithm not in SUPPORTED_ALGORITHMS:
            raise ConfigurationError(
                f"Unknown digest_algorithm {digest_algorithm!r}; use one of {SUPPORTED_ALGORITHMS}."
            )
        self._name = validate_name(name)
        self._type = validate_type(type)
        self._description = validate_description(description)
        self._metadata: dict[str, Any] = validate_metadata(dict(metadata or {}))
        self._aliases: list[str] = []
        self._tags: list[str] = []
        self._ttl: timedelta | None = None
        self._incremental = bool(incremental)
        self._base: DraftBase | None = None
        self._final = False
        self._manifest: Manifest | None = Manifest(digest_algorithm=digest_algorithm)
        self._draft: Draft | None = Draft(self._name, self._manifest, self._target_store)
        self._state = CommitState.DRAFT
        self._future: Future[None] | None = None
        self._store: Store | None = None
        self._record: VersionRecord | None = None
        self._deduplicated: bool | None = None
        self.partition_key: str | None = None

    @classmethod
    def from_record(cls, store: Store, record: VersionRecord) -> Artifact:
        """The committed version ``record`` of ``store`` (its manifest is read on first use)."""
        artifact = cls.__new__(cls)
        cls._adopt(artifact, store, record)
        return artifact

    def _adopt(self, store: Store, record: VersionRecord) -> None:
        """Become the committed version ``record`` (for :meth:`from_record`)."""
        self._name = record.name
        self._type = record.type
        self._draft = None
        self._state = CommitState.COMMITTED
        self._future = None
        self._store = store
        self._manifest = None
        self._deduplicated = None
        self._incremental = False
        self._base = None
        self._final = True
        self.partition_key = record.partition_key
        self._apply(record)

    def _apply(self, record: VersionRecord) -> None:
        self._record = record
        self._description = record.description
        self._metadata = dict(record.metadata)
        self._aliases = list(record.aliases)
        self._tags = list(record.tags)
        self._ttl = timedelta(seconds=record.ttl_seconds) if record.ttl_seconds else None

    def new_draft(self) -> Artifact:
        """A draft holding every entry of this logged version (its source's, for a link):
        change it with ``add_*`` / ``remove`` and log it as the next version. Entries are
        carried over by digest: no file is read, hashed or uploaded again for them."""
        record = self._logged()
        store = self._logged_store()
        source = record if record.source is None else store.registry.get_version(record.source.id)
        draft = Artifact(source.name, source.type, source.description, dict(source.metadata))
        manifest, base = draft_of(store, source)
        draft._manifest = manifest
        draft._draft = Draft(draft._name, manifest, draft._target_store)
        draft._store = store  # the draft's files go where its base's are
        draft._base = base
        return draft

    def draft_base(self) -> DraftBase | None:
        """The logged version a ``new_draft()`` was made from (None for other drafts)."""
        return self._base

    # -- state ------------------------------------------------------------------------------
    def _logged(self) -> VersionRecord:
        """The committed record, waiting for a pending log; raise if never logged."""
        if self._future is not None:
            self.wait()
        if self._record is None:
            raise ArtifactNotLoggedError(
                f"Artifact {self._name!r} has not been logged yet; call run.log_artifact(artifact) "
                "(and artifact.wait()) before reading its version, digest or aliases."
            )
        return self._record

    def _logged_store(self) -> Store:
        self._logged()
        assert self._store is not None
        return self._store

    def _has_version(self) -> bool:
        """Logged or being logged: identity questions wait for the version."""
        return self._state in (CommitState.COMMITTING, CommitState.COMMITTED)

    def _drop_draft(self) -> None:
        """Logged: the staged copies are in the store now (or no longer needed)."""
        if self._draft is not None:
            self._draft.drop_staging()
            self._draft = None

    def _check_mutable(self) -> None:
        if self._final and self._state is CommitState.DRAFT:
            raise ArtifactFinalizedError(
                f"Artifact {self._name!r} was finalized (finalize()): its files can no longer "
                "change. Log it, or build a new Artifact to add files."
            )
        if self._state is not CommitState.DRAFT:
            raise ArtifactFinalizedError(
                f"Artifact {self._name!r} is logged and immutable; create a new "
                f"Artifact({self._name!r}, type={self._type!r}) to log changed files as a new "
                "version."
            )

    def wait(self, timeout: float | None = None) -> Artifact:
        """Block until an asynchronous ``log_artifact`` has committed; re-raise its error."""
        if self._future is not None:
            self._future.result(timeout=timeout)
        return self

    def is_draft(self) -> bool:
        return self._record is None

    def finalize(self) -> None:
        """Freeze the draft's files, as W&B does before logging: ``add_*`` and ``remove`` are
        refused from now on; logging it still works."""
        self._final = True

    if not TYPE_CHECKING:  # for mypy, a missing attribute stays an error

        def __getattr__(self, name: str) -> Any:
            """A W&B member with no meaning here raises a clear error (see :mod:`.compat`)."""
            compat.refuse("Artifact", compat.ARTIFACT, name)

    @property
    def state(self) -> str:
        """W&B's state: ``PENDING`` until committed, then the registry's (``COMMITTED``)."""
        return "PENDING" if self._record is None else self._record.state

    # -- mutable fields ---------------------------------------------------------------------
    @property
    def description(self) -> str | None:
        return self._description

    @description.setter
    def description(self, value: str | None) -> None:
        self._description = validate_description(value)

    @property
    def metadata(self) -> dict[str, Any]:
        return self._metadata

    @metadata.setter
    def metadata(self, value: dict[str, Any]) -> None:
        self._metadata = validate_metadata(dict(value))

    @property
    def aliases(self) -> list[str]:
        if self._future is not None:
            self.wait()
        return self._aliases

    @aliases.setter
    def aliases(self, value: list[str]) -> None:
        self._aliases = list(validate_aliases(list(value)))

    @property
    def ttl(self) -> timedelta | None:
        """Time to live: ``gc`` removes the version this long after it was created."""
        return self._ttl

    @ttl.setter
    def ttl(self, value: timedelta | None) -> None:
        if value is not None and (not isinstance(value, timedelta) or value.total_seconds() <= 0):
            raise ArtifactError("ttl must be a positive datetime.timedelta, or None for no TTL.")
        if self._record is not None and self._record.source is not None:
            raise LinkError(
                "Cannot set TTL for link artifact. Unlink the artifact first then set the TTL for "
                "the source artifact (artifact.source_artifact)."
            )
        self._ttl = value

    @property
    def tags(self) -> list[str]:
        """Tags of a logged version (a link shows, and edits, its source's); ``save()`` keeps
        changes. As in W&B, a draft has none yet: give them to ``log_artifact(tags=...)``."""
        self._logged()
        return self._tags

    @tags.setter
    def tags(self, tags: list[str]) -> None:
        self._logged()
        self._tags = validate_tags(list(tags))

    @property
    def manifest(self) -> Manifest:
        if self._manifest is None:
            self._manifest = self._logged_store().manifest(self._logged())
        return self._manifest

    # -- adding content (the work is the draft's: see dagster_artifacts.draft) ---------------
    def _drafting(self) -> Draft:
        """The draft to add to; refused once the artifact is logged."""
        self._check_mutable()
        assert self._draft is not None, "a draft artifact always holds its draft"
        return self._draft

    def _target_store(self) -> Store | None:
        """The store files go to: this artifact's, else the current run's (None: unknown yet)."""
        return self._store if self._store is not None else state.current_store()

    def add_file(
        self,
        local_path: str | os.PathLike[str],
        name: str | os.PathLike[str] | None = None,
        is_tmp: bool = False,
        skip_cache: bool | None = None,
        policy: str | None = None,
        overwrite: bool = False,
    ) -> ManifestEntry:
        """Add one local file as entry ``name`` (default: its base name), with W&B's arguments.

        ``policy="mutable"`` (default) snapshots the file now; ``"immutable"`` only hashes it,
        and a change before the commit fails the log (see :meth:`.Draft.add_file`).
        """
        return self._drafting().add_file(local_path, name, is_tmp, policy, overwrite)

    def add_dir(
        self,
        local_path: str | os.PathLike[str],
        name: str | os.PathLike[str] | None = None,
        skip_cache: bool | None = None,
        policy: str | None = None,
        merge: bool = False,
        ignore: list[str] | None = None,
    ) -> None:
        """Add every file under a folder, under the prefix ``name`` (default: none).

        ``ignore`` takes gitignore-style patterns (``["*.tmp", ".git/"]``) matched against paths
        relative to the folder; ``policy`` as for :meth:`add_file`; ``merge`` as in W&B.
        """
        self._drafting().add_dir(local_path, name, policy, merge, ignore)

    @contextlib.contextmanager
    def new_file(
        self, name: str, mode: str = "x", encoding: str | None = None, policy: str | None = None
    ) -> Iterator[IO[Any]]:
        """Open a new file that becomes entry ``name`` when the block ends."""
        with self._drafting().new_file(name, mode, encoding, policy) as handle:
            yield handle

    def add_reference(
        self,
        uri: str | ArtifactEntry,
        name: str | os.PathLike[str] | None = None,
        checksum: bool = True,
        max_objects: int | None = None,
    ) -> list[ManifestEntry]:
        """Track an external URI (``file://``, ``http(s)://``, ``s3://``, ``gs://``; others by
        URI only)."""
        return self._drafting().add_reference(uri, name, checksum, max_objects)

    def add(
        self, obj: Table | PartitionedTable | pd.DataFrame, name: str, overwrite: bool = False
    ) -> ManifestEntry:
        """Add a ``Table`` (``name.table.json``), ``PartitionedTable`` or DataFrame (Parquet)."""
        return self._drafting().add(obj, name, overwrite)

    def remove(self, item: str | os.PathLike[str] | ArtifactEntry | ManifestEntry) -> None:
        """Remove an entry, or every entry under a folder, from the draft; a path that is
        neither is an ``EntryFileNotFoundError`` (a ``FileNotFoundError``, as in W&B)."""
        path = item.path if isinstance(item, (ArtifactEntry, ManifestEntry)) else os.fspath(item)
        self._drafting().remove(path)

    # -- reading a logged artifact (the work is in dagster_artifacts.entries) ------------------
    def _files(self) -> StoredFiles:
        store = self._logged_store()
        default_root = os.path.join(store.settings.download_dir, self.name)
        return StoredFiles(store, self.manifest, default_root, self.name)

    def _checkout_root(self) -> str:
        return os.path.join(self._logged_store().settings.download_dir, self.collection_name)

    def get(self, name: str) -> Any:
        """The object stored as ``name``: a Table, PartitionedTable, DataFrame, or a file path."""
        return load_object(self, name)

    # -- updating a logged artifact ---------------------------------------------------------
    def save(self, project: str | None = None, settings: Settings | None = None) -> Artifact:
        """Persist changes to description, metadata, aliases, tags and ttl of a logged version.

        A draft is logged instead, as in W&B: by the current run, else by a run of its own
        (job type ``auto``) in ``project`` of ``settings`` (default: the configured ones).
        """
        if self._state is CommitState.DRAFT:
            logger = Artifact.draft_logger
            assert logger is not None, "dagster_artifacts.runs sets Artifact.draft_logger"
            logger(self, project, settings)
            return self.wait()
        record = self._logged()
        aliases = validate_aliases(list(self._aliases))
        ttl_seconds = int(self._ttl.total_seconds()) if self._ttl else None
        updated = self._logged_store().registry.update_version(
            record.id,
            self._description,
            validate_metadata(self._metadata),
            aliases,
            ttl_seconds,
            validate_tags(list(self._tags)),
        )
        self._apply(updated)
        return self

    def delete(self, delete_aliases: bool = False) -> None:
        """Delete this version (its blobs become collectable once no other version uses them),
        with its links, as W&B does; on a link, only the link goes (see ``unlink``)."""
        record = self._logged()
        self._logged_store().registry.delete_version(record.id, delete_aliases=delete_aliases)

    # -- lineage ----------------------------------------------------------------------------
    def logged_by(self) -> LineageRun[Artifact] | None:
        """The run that logged this version (first; later re-logs are in the lineage)."""
        store = self._logged_store()
        record = store.registry.logged_by(self.id)
        return None if record is None else _make_run(store, record)

    def used_by(self) -> list[LineageRun[Artifact]]:
        """Runs that used this version, through any of its links too (they share its id)."""
        store = self._logged_store()
        return [_make_run(store, run) for run in store.registry.used_by(self.id)]

    # -- hooks of the mixins (links.LinkMembers, entries.FileMembers) ------------------------
    def _artifact_for(self, record: VersionRecord) -> Artifact:
        return Artifact.from_record(self._logged_store(), record)

    def _collection_of(self, entity: str, project: str, name: str) -> ArtifactCollection[Artifact]:
        store = self._logged_store()
        return find_collection(
            store, entity, project, name, None, lambda r: Artifact.from_record(store, r)
        )

    def _draft_store(self) -> Store | None:
        if self._state is not CommitState.DRAFT:
            return None
        return self._target_store() or state.open_store(Settings.resolve())

    def _log_draft(self) -> None:
        self.save()

    def _type_name(self) -> str:
        return self._type

    def __repr__(self) -> str:
        if self._record is None:
            return f"<Artifact {self._name} (draft, type={self._type})>"
        return f"<Artifact {self.qualified_name} (type={self._type})>"


def _deprecated(message: str) -> None:
    warnings.warn(message, DeprecationWarning, stacklevel=3)


def _make_run(store: Store, record: RunRecord) -> LineageRun[Artifact]:
    factory = Artifact.run_factory
    assert factory is not None, "dagster_artifacts.runs sets Artifact.run_factory on import"
    return factory(store, record)
