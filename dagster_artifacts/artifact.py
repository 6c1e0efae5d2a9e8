"""``Artifact``: a draft you fill with files and references, or a logged, immutable version.

A draft collects manifest entries. As in W&B, each file is hashed as it is added and, with the
default ``policy="mutable"``, copied into the draft's staging area in the same pass, so the draft
is a snapshot of the files at ``add`` time (see :mod:`dagster_artifacts.staging`). Logging moves
it through an explicit state (:class:`CommitState`): ``DRAFT`` -> ``COMMITTING`` -> ``COMMITTED``
(or ``UPSERTED``, for a parallel writer's share); :mod:`dagster_artifacts.commit` drives it, and
once the commit lands the same object answers as the logged version (``name:vN``). Artifacts
fetched from the registry are committed from the start and load their manifest lazily.
"""

from __future__ import annotations

import contextlib
import enum
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from datetime import datetime, timedelta
from typing import IO, TYPE_CHECKING, Any, ClassVar

from dagster_artifacts import state
from dagster_artifacts.digests import (
    DEFAULT_ALGORITHM,
    SUPPORTED_ALGORITHMS,
)
from dagster_artifacts.draft import Draft
from dagster_artifacts.entries import ArtifactEntry, StoredFiles, VerifyResult, load_object
from dagster_artifacts.errors import (
    ArtifactError,
    ArtifactFinalizedError,
    ArtifactNotLoggedError,
    ConfigurationError,
)
from dagster_artifacts.lineage import LineageRun
from dagster_artifacts.manifest import Manifest, ManifestEntry
from dagster_artifacts.names import (
    validate_aliases,
    validate_description,
    validate_metadata,
    validate_name,
    validate_type,
)
from dagster_artifacts.registry import RunRecord, VersionRecord
from dagster_artifacts.store import Store
from dagster_artifacts.tables import PartitionedTable, Table

if TYPE_CHECKING:
    import pandas as pd


class CommitState(enum.Enum):
    """Where an artifact is on its way into the store."""

    DRAFT = "draft"  # being filled; nothing stored yet
    COMMITTING = "committing"  # frozen; blobs, manifest and registry commit under way
    COMMITTED = "committed"  # a logged version (or one read back from the registry)
    UPSERTED = "upserted"  # a parallel writer's files handed to a pending version


class Artifact:
    """A W&B-style artifact. Create one with ``Artifact(name, type)``, add content, log it."""

    #: Turns a run record into a ``Run`` for :meth:`logged_by` / :meth:`used_by`. Set once by
    #: :mod:`dagster_artifacts.runs`, which sits above this module (a run logs artifacts, so it
    #: imports them); the hook keeps the import graph free of a cycle.
    run_factory: ClassVar[Callable[[Store, RunRecord], LineageRun[Artifact]] | None] = None

    def __init__(
        self,
        name: str,
        type: str = "unspecified",
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        digest_algorithm: str = DEFAULT_ALGORITHM,
    ) -> None:
        if digest_algorithm not in SUPPORTED_ALGORITHMS:
            raise ConfigurationError(
                f"Unknown digest_algorithm {digest_algorithm!r}; use one of {SUPPORTED_ALGORITHMS}."
            )
        self._name = validate_name(name)
        self._type = validate_type(type)
        self._description = validate_description(description)
        self._metadata: dict[str, Any] = validate_metadata(dict(metadata or {}))
        self._aliases: list[str] = []
        self._ttl: timedelta | None = None
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
        self.partition_key = record.partition_key
        self._apply(record)

    def _apply(self, record: VersionRecord) -> None:
        self._record = record
        self._description = record.description
        self._metadata = dict(record.metadata)
        self._aliases = list(record.aliases)
        self._ttl = timedelta(seconds=record.ttl_seconds) if record.ttl_seconds else None

    # -- the commit protocol (driven by dagster_artifacts.commit) ---------------------------
    @property
    def commit_state(self) -> CommitState:
        return self._state

    def ensure_draft(self, action: str) -> None:
        """Refuse to log, upsert or finish an artifact that already went that way once."""
        if self._state is CommitState.DRAFT:
            return
        if action == "log_artifact":
            raise ArtifactError(
                f"Artifact {self._name!r} was already logged; build a new Artifact to log "
                "another version."
            )
        raise ArtifactError(
            f"Artifact {self._name!r} was already logged, upserted or finished; build a new "
            f"Artifact for each {action} call."
        )

    def begin_commit(self, store: Store) -> Manifest:
        """DRAFT -> COMMITTING: no more changes; returns the manifest to commit."""
        self.ensure_draft("log_artifact")
        self._state = CommitState.COMMITTING
        self._store = store
        return self.manifest

    def track_commit(self, future: Future[None]) -> None:
        """The background commit of an asynchronous ``log_artifact`` (``wait()`` joins it)."""
        self._future = future

    def finish_commit(
        self, record: VersionRecord, *, deduplicated: bool, manifest: Manifest | None = None
    ) -> None:
        """COMMITTING -> COMMITTED: this object now answers as version ``record``.

        ``manifest``: what was committed when it is not the draft's own (a parallel finish
        merges every writer's files).
        """
        if manifest is not None:
            self._manifest = manifest
        self._deduplicated = deduplicated
        self._apply(record)
        self._state = CommitState.COMMITTED
        self._drop_draft()

    def finish_upsert(self, store: Store) -> None:
        """DRAFT -> UPSERTED: a parallel writer's files now belong to the pending version."""
        self._state = CommitState.UPSERTED
        self._store = store
        self._drop_draft()

    def requested_aliases(self) -> list[str]:
        """The aliases set on the draft itself, added to the ones given to ``log_artifact``."""
        return list(self._aliases)

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

    @property
    def state(self) -> str:
        """W&B's state: ``PENDING`` until committed, then the registry's (``COMMITTED``)."""
        return "PENDING" if self._record is None else self._record.state

    # -- identity ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """``bike-dataset:v1`` once logged; the bare name for a draft."""
        if not self._has_version():
            return self._name
        return f"{self._name}:v{self._logged().index}"

    @property
    def collection_name(self) -> str:
        return self._name

    @property
    def version(self) -> str:
        return f"v{self._logged().index}"

    @property
    def version_index(self) -> int:
        index = self._logged().index
        assert index is not None
        return index

    @property
    def id(self) -> int:
        return self._logged().id

    @property
    def entity(self) -> str:
        return self._logged().entity

    @property
    def project(self) -> str:
        return self._logged().project

    @property
    def qualified_name(self) -> str:
        record = self._logged()
        return f"{record.entity}/{record.project}/{record.name}:v{record.index}"

    @property
    def source_qualified_name(self) -> str:
        return self.qualified_name

    @property
    def type(self) -> str:
        return self._type

    @property
    def digest(self) -> str:
        if not self._has_version():
            return self.manifest.digest()
        digest = self._logged().digest
        assert digest is not None
        return digest

    @property
    def size(self) -> int:
        if not self._has_version():
            return self.manifest.size
        return self._logged().size

    @property
    def file_count(self) -> int:
        if not self._has_version():
            return len(self.manifest.entries)
        return self._logged().file_count

    @property
    def created_at(self) -> datetime:
        return self._logged().created_at

    @property
    def deduplicated(self) -> bool:
        """True when logging found an existing version with the same content."""
        self._logged()
        return bool(self._deduplicated)

    @property
    def digest_algorithm(self) -> str:
        return self.manifest.digest_algorithm

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
        self._ttl = value

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

    def remove(self, item: str) -> None:
        self._drafting().remove(item)

    # -- reading a logged artifact (the work is in dagster_artifacts.entries) ------------------
    def _files(self) -> StoredFiles:
        store = self._logged_store()
        default_root = os.path.join(store.settings.download_dir, self.name)
        return StoredFiles(store, self.manifest, default_root, self.name)

    def default_root(self) -> str:
        """Where :meth:`download` puts files by default: ``<download dir>/<name>:<version>``."""
        return self._files().default_root

    def download(
        self,
        root: str | os.PathLike[str] | None = None,
        allow_missing_references: bool = False,
        skip_cache: bool | None = None,
        path_prefix: str | None = None,
    ) -> str:
        """Fetch every entry not already present with the right digest; return the folder.

        ``skip_cache=True`` bypasses the local download cache (as W&B's argument does): files
        come straight from the store and are not kept in the cache.
        """
        return self._files().download(root, path_prefix, skip_cache=bool(skip_cache))

    def get_entry(self, name: str) -> ArtifactEntry:
        return self._files().entry(name)

    get_path = get_entry

    def get(self, name: str) -> Any:
        """The object stored as ``name``: a Table, PartitionedTable, DataFrame, or a file path."""
        return load_object(self, name)

    def files(self, names: list[str] | None = None) -> list[ArtifactEntry]:
        return self._files().entries(names)

    def verify(self, root: str | os.PathLike[str] | None = None) -> VerifyResult:
        """Check a downloaded copy against the manifest; raise VerificationError on any difference."""
        return self._files().verify(root)

    # -- updating a logged artifact ---------------------------------------------------------
    def save(self) -> Artifact:
        """Persist changes to description, metadata, aliases and ttl of a logged version."""
        record = self._logged()
        aliases = validate_aliases(list(self._aliases))
        ttl_seconds = int(self._ttl.total_seconds()) if self._ttl else None
        updated = self._logged_store().registry.update_version(
            record.id, self._description, validate_metadata(self._metadata), aliases, ttl_seconds
        )
        self._apply(updated)
        return self

    def delete(self, delete_aliases: bool = False) -> None:
        """Delete this version (its blobs become collectable once no other version uses them)."""
        record = self._logged()
        self._logged_store().registry.delete_version(record.id, delete_aliases=delete_aliases)

    # -- lineage ----------------------------------------------------------------------------
    def logged_by(self) -> LineageRun[Artifact] | None:
        """The run that logged this version (first; later re-logs are in the lineage)."""
        store = self._logged_store()
        record = store.registry.logged_by(self._logged().id)
        return None if record is None else _make_run(store, record)

    def used_by(self) -> list[LineageRun[Artifact]]:
        store = self._logged_store()
        return [_make_run(store, run) for run in store.registry.used_by(self._logged().id)]

    def __repr__(self) -> str:
        if self._record is None:
            return f"<Artifact {self._name} (draft, type={self._type})>"
        return f"<Artifact {self.qualified_name} (type={self._type})>"


def _make_run(store: Store, record: RunRecord) -> LineageRun[Artifact]:
    factory = Artifact.run_factory
    assert factory is not None, "dagster_artifacts.runs sets Artifact.run_factory on import"
    return factory(store, record)
