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
import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from datetime import datetime, timedelta
from typing import IO, TYPE_CHECKING, Any, ClassVar, Protocol

from dagster_artifacts import state
from dagster_artifacts.digests import (
    DEFAULT_ALGORITHM,
    SUPPORTED_ALGORITHMS,
    digest_bytes,
    digest_file,
)
from dagster_artifacts.download import download
from dagster_artifacts.entries import ArtifactEntry, VerifyResult, verify_folder
from dagster_artifacts.errors import (
    ArtifactError,
    ArtifactFileNotFoundError,
    ArtifactFinalizedError,
    ArtifactNotLoggedError,
    ConfigurationError,
    DuplicateEntryError,
    EntryNotFoundError,
)
from dagster_artifacts.hashing import check_policy, file_entries, walk_folder
from dagster_artifacts.manifest import Manifest, ManifestEntry
from dagster_artifacts.names import (
    normalize_entry_path,
    validate_aliases,
    validate_name,
    validate_type,
)
from dagster_artifacts.registry import CommitRequest, RunRecord, VersionRecord
from dagster_artifacts.settings import MachineSettings
from dagster_artifacts.staging import StagingArea
from dagster_artifacts.storage.references import DEFAULT_MAX_OBJECTS, handler_for
from dagster_artifacts.storage.staged import FollowingHasher
from dagster_artifacts.store import Store
from dagster_artifacts.tables import PARTITIONED_TABLE_SUFFIX, TABLE_SUFFIX, PartitionedTable, Table

if TYPE_CHECKING:
    import pandas as pd

DATAFRAME_SUFFIX = ".parquet"


class LineageRun(Protocol):
    """A run as lineage shows it (:meth:`Artifact.logged_by`, :meth:`Artifact.used_by`): a
    ``dagster_artifacts.Run`` read back from the registry."""

    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def job_type(self) -> str | None: ...

    @property
    def group(self) -> str | None: ...

    @property
    def path(self) -> str: ...

    @property
    def state(self) -> str: ...

    @property
    def created_at(self) -> datetime | None: ...

    def logged_artifacts(self) -> list[Artifact]: ...

    def used_artifacts(self) -> list[Artifact]: ...


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
    run_factory: ClassVar[Callable[[Store, RunRecord], LineageRun] | None] = None

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
        self._description = description
        self._metadata: dict[str, Any] = _check_metadata(dict(metadata or {}))
        self._aliases: list[str] = []
        self._ttl: timedelta | None = None
        self._manifest: Manifest | None = Manifest(digest_algorithm=digest_algorithm)
        self._staging: StagingArea | None = None
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
        self._staging = None
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

    def commit_request(
        self, entity: str, project: str, run_id: str | None, aliases: list[str]
    ) -> CommitRequest:
        """What the registry needs to commit this draft's manifest for ``run_id``."""
        manifest = self._draft_manifest()
        return CommitRequest(
            entity=entity,
            project=project,
            name=self._name,
            type=self._type,
            digest=manifest.digest(),
            manifest_key="",
            size=manifest.size,
            file_count=len(manifest.entries),
            description=self._description,
            metadata=dict(self._metadata),
            aliases=tuple(aliases),
            run_id=run_id,
            partition_key=self.partition_key,
            ttl_seconds=int(self._ttl.total_seconds()) if self._ttl else None,
        )

    def begin_commit(self, store: Store) -> Manifest:
        """DRAFT -> COMMITTING: no more changes; returns the manifest to commit."""
        self.ensure_draft("log_artifact")
        self._state = CommitState.COMMITTING
        self._store = store
        return self._draft_manifest()

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
        self._drop_staging()

    def finish_upsert(self, store: Store) -> None:
        """DRAFT -> UPSERTED: a parallel writer's files now belong to the pending version."""
        self._state = CommitState.UPSERTED
        self._store = store
        self._drop_staging()

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

    def _draft_manifest(self) -> Manifest:
        assert self._manifest is not None, "a draft always holds its manifest"
        return self._manifest

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
            return self._draft_manifest().digest()
        digest = self._logged().digest
        assert digest is not None
        return digest

    @property
    def size(self) -> int:
        if not self._has_version():
            return self._draft_manifest().size
        return self._logged().size

    @property
    def file_count(self) -> int:
        if not self._has_version():
            return len(self._draft_manifest().entries)
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
        self._description = value

    @property
    def metadata(self) -> dict[str, Any]:
        return self._metadata

    @metadata.setter
    def metadata(self, value: dict[str, Any]) -> None:
        self._metadata = _check_metadata(dict(value))

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

    # -- adding content ---------------------------------------------------------------------
    def _add_entries(self, entries: list[ManifestEntry]) -> None:
        """Add all entries or none: every conflict is found before anything changes."""
        self._check_mutable()
        manifest = self._draft_manifest()
        incoming: dict[str, ManifestEntry] = {}
        for entry in entries:
            current = manifest.entries.get(entry.path) or incoming.get(entry.path)
            if current is not None and current.digest != entry.digest:
                raise DuplicateEntryError(
                    f"Artifact {self._name!r} already has {entry.path!r} with other content; "
                    "add the new file under another name=..., or build a new Artifact."
                )
            incoming[entry.path] = entry
        manifest.entries.update(incoming)

    def _target_store(self) -> Store | None:
        """The store files go to: this artifact's, else the current run's (None: unknown yet)."""
        return self._store if self._store is not None else state.current_store()

    def _machine(self) -> MachineSettings:
        store = self._target_store()
        return store.settings.machine if store is not None else MachineSettings.resolve()

    def _file_entries(self, pairs: list[tuple[str, str]], policy: str) -> list[ManifestEntry]:
        algorithm = self._draft_manifest().digest_algorithm
        store = self._target_store()
        stored = None
        if store is not None:
            blobs = store.blobs

            def stored(digests: set[str]) -> set[str]:
                return blobs.stored_digests(digests, algorithm)

        return file_entries(
            pairs,
            policy,
            algorithm,
            staging=self._staging_area,
            cache=state.stat_cache_for(self._machine()),
            stored=stored,
        )

    def add_file(
        self,
        local_path: str | os.PathLike[str],
        name: str | None = None,
        is_tmp: bool = False,
        skip_cache: bool | None = None,
        policy: str | None = None,
        overwrite: bool = False,
    ) -> ManifestEntry:
        """Add one local file, stored as ``name`` (default: its base name).

        ``policy="mutable"`` (default, as in W&B) snapshots the file now: it is copied into the
        draft's staging area while it is hashed, and changing it afterwards does not change the
        artifact. ``policy="immutable"`` promises the file will not change until the log is
        committed: it is only hashed now and read again at commit, and a change in between
        fails the log with ``ChecksumMismatchError``.
        """
        self._check_mutable()
        policy = check_policy(policy)
        path = os.fspath(local_path)
        entry_path = normalize_entry_path(name if name is not None else os.path.basename(path))
        if not os.path.isfile(path):
            raise ArtifactFileNotFoundError(
                f"No such file {path!r}; check the path (use add_dir() for folders)."
            )
        (entry,) = self._file_entries([(os.path.abspath(path), entry_path)], policy)
        if overwrite:
            self._draft_manifest().entries.pop(entry_path, None)
        self._add_entries([entry])
        return entry

    def add_dir(
        self,
        local_path: str | os.PathLike[str],
        name: str | None = None,
        skip_cache: bool | None = None,
        policy: str | None = None,
        ignore: list[str] | None = None,
    ) -> None:
        """Add every file under a folder, under the prefix ``name`` (default: none).

        ``ignore`` takes gitignore-style patterns (``["*.tmp", ".git/"]``) matched against paths
        relative to the folder. ``policy`` is as for :meth:`add_file`.
        """
        self._check_mutable()
        policy = check_policy(policy)
        root = os.fspath(local_path)
        if not os.path.isdir(root):
            raise ArtifactFileNotFoundError(
                f"No such folder {root!r}; check the path (use add_file() for single files)."
            )
        prefix = normalize_entry_path(name) if name else None
        with state.gc_paused():  # tens of thousands of small objects: no use scanning them
            pairs = walk_folder(root, prefix, ignore)
            self._add_entries(self._file_entries(pairs, policy))

    @contextlib.contextmanager
    def new_file(
        self, name: str, mode: str = "x", encoding: str | None = None
    ) -> Iterator[IO[Any]]:
        """Open a new file that becomes entry ``name`` when the block ends."""
        self._check_mutable()
        entry_path = normalize_entry_path(name)
        if entry_path in self._draft_manifest().entries:
            raise DuplicateEntryError(
                f"Artifact {self._name!r} already has {entry_path!r}; pick another name."
            )
        target = self._staging_area().new_path()
        if "b" not in mode and encoding is None:
            encoding = "utf-8"
        with open(target, mode, encoding=encoding) as handle:
            yield handle
        digest, size = digest_file(target, self._draft_manifest().digest_algorithm)
        self._add_entries([_staged_entry(target, entry_path, digest, size)])

    def add_reference(
        self,
        uri: str,
        name: str | None = None,
        checksum: bool = True,
        max_objects: int | None = None,
    ) -> list[ManifestEntry]:
        """Track an external URI (``file://``, ``http(s)://``, ``s3://``, ``gs://``; others by
        URI only)."""
        self._check_mutable()
        if name is not None:
            name = normalize_entry_path(name)
        limit = DEFAULT_MAX_OBJECTS if max_objects is None else max_objects
        store = self._target_store()
        options = store.blobs.options_for(uri) if store is not None else None
        entries = handler_for(uri, options).store(uri, name, checksum, limit)
        self._add_entries(entries)
        return entries

    def add(self, obj: Table | PartitionedTable | pd.DataFrame, name: str) -> ManifestEntry:
        """Add a ``Table`` (``name.table.json``), ``PartitionedTable`` or DataFrame (Parquet)."""
        self._check_mutable()
        entry_name = normalize_entry_path(name)
        import pandas as pd

        if isinstance(obj, Table):
            return self._add_bytes(entry_name + TABLE_SUFFIX, obj.to_bytes())
        if isinstance(obj, PartitionedTable):
            return self._add_bytes(entry_name + PARTITIONED_TABLE_SUFFIX, obj.to_bytes())
        if isinstance(obj, pd.DataFrame):
            entry_path = entry_name + DATAFRAME_SUFFIX
            target = self._staging_area().new_path()
            # Hashed while pyarrow writes it (natively, by path): one write, no second pass.
            with FollowingHasher(target, self._draft_manifest().digest_algorithm) as hashed:
                obj.to_parquet(target, engine="pyarrow")
            entry = _staged_entry(target, entry_path, hashed.digest, hashed.size)
            self._add_entries([entry])
            return entry
        raise ArtifactError(
            f"artifact.add() takes a Table, PartitionedTable or pandas.DataFrame, not "
            f"{type(obj).__name__}; use add_file() for other objects."
        )

    def _add_bytes(self, entry_path: str, data: bytes) -> ManifestEntry:
        # Staged files are named by a counter, never by their entry: a refused duplicate add()
        # cannot overwrite the bytes of the entry it collided with.
        target = self._staging_area().new_path()
        with open(target, "wb") as handle:
            handle.write(data)
        digest = digest_bytes(data, self._draft_manifest().digest_algorithm)
        entry = _staged_entry(target, entry_path, digest, len(data))
        self._add_entries([entry])
        return entry

    def _staging_area(self) -> StagingArea:
        """This draft's staging area (created on first use; see :mod:`dagster_artifacts.staging`).

        A draft that is never logged does not leave its copies behind: the area is removed when
        the draft is garbage collected or the process exits.
        """
        if self._staging is None:
            self._staging = StagingArea(self._machine().cache_dir)
        return self._staging

    def _drop_staging(self) -> None:
        if self._staging is not None:
            self._staging.cleanup()
            self._staging = None

    def remove(self, item: str) -> None:
        self._check_mutable()
        path = normalize_entry_path(item)
        entries = self._draft_manifest().entries
        if path not in entries:
            raise EntryNotFoundError(f"Artifact {self._name!r} has no entry {path!r}.")
        del entries[path]

    # -- reading a logged artifact ----------------------------------------------------------
    def default_root(self) -> str:
        """Where :meth:`download` puts files by default: ``<download dir>/<name>:<version>``."""
        return os.path.join(self._logged_store().settings.download_dir, self.name)

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
        store = self._logged_store()
        target = os.path.abspath(str(root) if root is not None else self.default_root())
        with state.gc_paused():  # reading a manifest of 10,000s of entries allocates as much
            entries = [
                entry
                for entry in self.manifest.entries.values()
                if path_prefix is None or entry.path.startswith(path_prefix)
            ]
            return download(store, self.manifest, target, entries, skip_cache=bool(skip_cache))

    def _entry_view(self, entry: ManifestEntry) -> ArtifactEntry:
        return ArtifactEntry(entry, self._fetch_entry)

    def _fetch_entry(self, entry: ManifestEntry, root: str | None) -> str:
        folder = os.path.abspath(root if root is not None else self.default_root())
        download(self._logged_store(), self.manifest, folder, [entry])
        return folder

    def get_entry(self, name: str) -> ArtifactEntry:
        path = normalize_entry_path(name)
        entry = self.manifest.entries.get(path)
        if entry is None:
            raise EntryNotFoundError(
                f"Artifact {self.name!r} has no entry {path!r}; artifact.files() lists them."
            )
        return self._entry_view(entry)

    get_path = get_entry

    def get(self, name: str) -> Any:
        """The object stored as ``name``: a Table, PartitionedTable, DataFrame, or a file path."""
        entries = self.manifest.entries
        path = normalize_entry_path(name)
        loaders: tuple[tuple[str, Callable[[str], Any]], ...] = (
            (TABLE_SUFFIX, self._load_table),
            (PARTITIONED_TABLE_SUFFIX, self._load_partitioned),
            (DATAFRAME_SUFFIX, self._load_dataframe),
        )
        for suffix, loader in loaders:
            candidate = path if path.endswith(suffix) else path + suffix
            if candidate in entries:
                return loader(candidate)
        if path in entries:
            return self.get_entry(path).download()
        raise EntryNotFoundError(
            f"Artifact {self.name!r} has no object {path!r}; artifact.files() lists its entries."
        )

    def _read_entry(self, path: str) -> bytes:
        with open(self.get_entry(path).download(), "rb") as handle:
            return handle.read()

    def _load_table(self, path: str) -> Table:
        return Table.from_json(json.loads(self._read_entry(path)))

    def _load_partitioned(self, path: str) -> PartitionedTable:
        return PartitionedTable.from_json(json.loads(self._read_entry(path)), artifact=self)

    def _load_dataframe(self, path: str) -> pd.DataFrame:
        import pandas as pd

        return pd.read_parquet(self.get_entry(path).download(), engine="pyarrow")

    def files(self, names: list[str] | None = None) -> list[ArtifactEntry]:
        wanted = set(names) if names else None
        return [
            self._entry_view(entry)
            for path, entry in sorted(self.manifest.entries.items())
            if wanted is None or path in wanted
        ]

    def verify(self, root: str | os.PathLike[str] | None = None) -> VerifyResult:
        """Check a downloaded copy against the manifest; raise VerificationError on any difference."""
        self._logged()
        target = os.path.abspath(str(root) if root is not None else self.default_root())
        return verify_folder(self.manifest, target, self.name)

    # -- updating a logged artifact ---------------------------------------------------------
    def save(self) -> Artifact:
        """Persist changes to description, metadata, aliases and ttl of a logged version."""
        record = self._logged()
        aliases = validate_aliases(list(self._aliases))
        ttl_seconds = int(self._ttl.total_seconds()) if self._ttl else None
        updated = self._logged_store().registry.update_version(
            record.id, self._description, _check_metadata(self._metadata), aliases, ttl_seconds
        )
        self._apply(updated)
        return self

    def delete(self, delete_aliases: bool = False) -> None:
        """Delete this version (its blobs become collectable once no other version uses them)."""
        record = self._logged()
        self._logged_store().registry.delete_version(record.id, delete_aliases=delete_aliases)

    # -- lineage ----------------------------------------------------------------------------
    def logged_by(self) -> LineageRun | None:
        """The run that logged this version (first; later re-logs are in the lineage)."""
        store = self._logged_store()
        record = store.registry.logged_by(self._logged().id)
        return None if record is None else _make_run(store, record)

    def used_by(self) -> list[LineageRun]:
        store = self._logged_store()
        return [_make_run(store, run) for run in store.registry.used_by(self._logged().id)]

    def __repr__(self) -> str:
        if self._record is None:
            return f"<Artifact {self._name} (draft, type={self._type})>"
        return f"<Artifact {self.qualified_name} (type={self._type})>"


def _make_run(store: Store, record: RunRecord) -> LineageRun:
    factory = Artifact.run_factory
    assert factory is not None, "dagster_artifacts.runs sets Artifact.run_factory on import"
    return factory(store, record)


def _staged_entry(target: str, entry_path: str, digest: str, size: int) -> ManifestEntry:
    """An entry for a file this draft wrote into its own staging area (already hashed)."""
    return ManifestEntry(path=entry_path, digest=digest, size=size, local_path=target, staged=True)


def _check_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    try:
        json.dumps(metadata, allow_nan=True)
    except (TypeError, ValueError) as error:
        raise ArtifactError(
            f"Artifact metadata must be JSON-serializable ({error}); convert values to plain "
            "numbers, strings, lists and dicts."
        ) from error
    return metadata
