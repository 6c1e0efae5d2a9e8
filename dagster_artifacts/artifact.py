"""``Artifact``: a draft you fill with files and references, or a logged, immutable version.

A draft collects manifest entries. As in W&B, each file is hashed as it is added and, with the
default ``policy="mutable"``, copied into the draft's staging area in the same pass, so the draft
is a snapshot of the files at ``add`` time (see :mod:`dagster_artifacts.staging`). Logging freezes
it; once the commit lands the same object answers as the logged version (``name:vN``). Artifacts
fetched from the registry are logged versions from the start and load their manifest lazily.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import IO, TYPE_CHECKING, Any

import pathspec

from dagster_artifacts.digests import (
    DEFAULT_ALGORITHM,
    SUPPORTED_ALGORITHMS,
    digest_bytes,
    digest_file,
)
from dagster_artifacts.errors import (
    ArtifactError,
    ArtifactFileNotFoundError,
    ArtifactFinalizedError,
    ArtifactNotLoggedError,
    ConfigurationError,
    DuplicateEntryError,
    EntryNotFoundError,
    VerificationError,
)
from dagster_artifacts.manifest import Manifest, ManifestEntry
from dagster_artifacts.names import (
    normalize_entry_path,
    validate_aliases,
    validate_name,
    validate_type,
)
from dagster_artifacts.storage.references import DEFAULT_MAX_OBJECTS, handler_for
from dagster_artifacts.tables import PARTITIONED_TABLE_SUFFIX, TABLE_SUFFIX, PartitionedTable, Table

if TYPE_CHECKING:
    import pandas as pd

    from dagster_artifacts.engine import Engine
    from dagster_artifacts.registry import VersionRecord
    from dagster_artifacts.runs import Run
    from dagster_artifacts.staging import StagingArea

DATAFRAME_SUFFIX = ".parquet"
MUTABLE = "mutable"
IMMUTABLE = "immutable"
POLICIES = (MUTABLE, IMMUTABLE)


@dataclass
class VerifyResult:
    """What :meth:`Artifact.verify` checked. Truthy; a failed check raises instead."""

    root: str
    checked: int
    skipped_references: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return True


class ArtifactEntry:
    """One entry of a logged artifact, as returned by ``get_entry``/``get_path``."""

    def __init__(self, artifact: Artifact, entry: ManifestEntry) -> None:
        self._artifact = artifact
        self._entry = entry

    path = property(lambda self: self._entry.path)
    digest = property(lambda self: self._entry.digest)
    size = property(lambda self: self._entry.size)
    extra = property(lambda self: self._entry.extra)

    def ref(self) -> str | None:
        """The URI of a reference entry; ``None`` for a stored file."""
        return self._entry.ref

    ref_url = ref

    def download(self, root: str | os.PathLike[str] | None = None) -> str:
        """Fetch this one file (verified) and return its local path."""
        artifact = self._artifact
        target_root = str(root) if root is not None else artifact._default_root()
        artifact._engine_required().download(artifact.manifest, target_root, [self._entry])
        return os.path.join(os.path.abspath(target_root), self._entry.path)

    def __repr__(self) -> str:
        return f"ArtifactEntry(path={self.path!r}, digest={self.digest!r}, size={self.size!r})"


class Artifact:
    """A W&B-style artifact. Create one with ``Artifact(name, type)``, add content, log it."""

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
        self._manifest = Manifest(digest_algorithm=digest_algorithm)
        self._staging: StagingArea | None = None
        self._finalized = False
        self._future: Future[None] | None = None
        self._engine: Engine | None = None
        self._record: VersionRecord | None = None
        self._deduplicated: bool | None = None
        self.partition_key: str | None = None

    # -- construction from the registry ---------------------------------------------------------
    @classmethod
    def _from_record(cls, engine: Engine, record: VersionRecord) -> Artifact:
        artifact = cls.__new__(cls)
        artifact._name = record.name
        artifact._type = record.type
        artifact._staging = None
        artifact._finalized = True
        artifact._future = None
        artifact._engine = engine
        artifact._manifest = None  # type: ignore[assignment]  # loaded on first use
        artifact._deduplicated = None
        artifact.partition_key = record.partition_key
        artifact._apply_record(record)
        return artifact

    def _apply_record(self, record: VersionRecord) -> None:
        self._record = record
        self._description = record.description
        self._metadata = dict(record.metadata)
        self._aliases = list(record.aliases)
        self._ttl = timedelta(seconds=record.ttl_seconds) if record.ttl_seconds else None

    # -- state ------------------------------------------------------------------------------------
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

    def _engine_required(self) -> Engine:
        self._logged()
        assert self._engine is not None
        return self._engine

    def _check_mutable(self) -> None:
        if self._finalized:
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
        return "PENDING" if self._record is None else self._record.state

    # -- identity ----------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """``bike-dataset:v1`` once logged; the bare name for a draft."""
        if self._record is None and self._future is None:
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
        if self._record is None and self._future is None:
            return self._manifest.digest()
        digest = self._logged().digest
        assert digest is not None
        return digest

    @property
    def size(self) -> int:
        if self._record is None and self._future is None:
            return self._manifest.size
        return self._logged().size

    @property
    def file_count(self) -> int:
        if self._record is None and self._future is None:
            return len(self._manifest.entries)
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

    # -- mutable fields ----------------------------------------------------------------------------
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
            record = self._logged()
            assert self._engine is not None
            self._manifest = self._engine.manifest(record)
        return self._manifest

    # -- adding content ----------------------------------------------------------------------------
    def _add_entries(self, entries: list[ManifestEntry]) -> None:
        """Add all entries or none: every conflict is found before anything changes."""
        self._check_mutable()
        incoming: dict[str, ManifestEntry] = {}
        for entry in entries:
            current = self._manifest.entries.get(entry.path) or incoming.get(entry.path)
            if current is not None and current.digest != entry.digest:
                raise DuplicateEntryError(
                    f"Artifact {self._name!r} already has {entry.path!r} with other content; "
                    "add the new file under another name=..., or build a new Artifact."
                )
            incoming[entry.path] = entry
        self._manifest.entries.update(incoming)

    def _add_engine(self) -> Engine | None:
        """The engine of this artifact, else of the current run: the store files go to."""
        if self._engine is not None:
            return self._engine
        from dagster_artifacts.runs import current_run

        run = current_run()
        return run._engine if run is not None else None

    def _cache_dir(self) -> str:
        engine = self._add_engine()
        if engine is not None:
            return engine.settings.cache_dir
        from dagster_artifacts.settings import ENV_CACHE_DIR, default_cache_dir

        return os.environ.get(ENV_CACHE_DIR) or default_cache_dir()

    def _file_entries(self, pairs: list[tuple[str, str]], policy: str) -> list[ManifestEntry]:
        """Entries for ``(absolute local path, entry path)`` pairs, as cheaply as possible.

        ``mutable`` (W&B's default): each file is copied into the staging area while it is
        hashed (one read), so later changes to it do not change the artifact; unchanged files
        whose blob the store already holds are neither read nor copied (stat cache).
        ``immutable``: files are only hashed; the commit reads them again, verified. See
        :mod:`dagster_artifacts.hashing`.
        """
        from dagster_artifacts.hashing import hash_files, stage_files
        from dagster_artifacts.statcache import stat_cache_for

        algorithm = self._manifest.digest_algorithm
        cache = stat_cache_for(self._cache_dir())
        locals_ = [local for local, _ in pairs]
        if policy == IMMUTABLE:
            hashed = hash_files(locals_, algorithm, cache=cache)
        else:
            engine = self._add_engine()
            stored = None
            if engine is not None:
                blobs = engine.blobs

                def stored(digests: set[str]) -> set[str]:
                    return blobs.stored_digests(digests, algorithm)

            hashed = stage_files(
                locals_, algorithm, self._staging_area(), cache=cache, stored=stored
            )
        return [
            ManifestEntry(
                path=entry_path,
                digest=h.digest,
                size=h.size,
                local_path=h.staged or local,
                staged=h.staged is not None,
            )
            for (local, entry_path), h in zip(pairs, hashed, strict=True)
        ]

    def _staged_entry(self, target: str, entry_path: str, digest: str, size: int) -> ManifestEntry:
        """An entry for a file this draft wrote into its own staging area (already hashed)."""
        return ManifestEntry(
            path=entry_path, digest=digest, size=size, local_path=target, staged=True
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
        policy = _check_policy(policy)
        path = os.fspath(local_path)
        entry_path = normalize_entry_path(name if name is not None else os.path.basename(path))
        if not os.path.isfile(path):
            raise ArtifactFileNotFoundError(
                f"No such file {path!r}; check the path (use add_dir() for folders)."
            )
        (entry,) = self._file_entries([(os.path.abspath(path), entry_path)], policy)
        if overwrite:
            self._manifest.entries.pop(entry_path, None)
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
        policy = _check_policy(policy)
        root = os.fspath(local_path)
        if not os.path.isdir(root):
            raise ArtifactFileNotFoundError(
                f"No such folder {root!r}; check the path (use add_file() for single files)."
            )
        prefix = normalize_entry_path(name) if name else None
        spec = pathspec.PathSpec.from_lines("gitwildmatch", ignore) if ignore else None
        from dagster_artifacts.hashing import paused_gc

        root = os.path.abspath(root)  # os.walk then yields absolute, normalized folders
        paths: list[tuple[str, str]] = []
        with paused_gc():  # tens of thousands of small objects: no use scanning them midway
            for directory, dirs, files in os.walk(root):
                relative_dir = os.path.relpath(directory, root).replace(os.sep, "/")
                relative_dir = "" if relative_dir == "." else relative_dir + "/"
                if spec is not None:
                    dirs[:] = [d for d in dirs if not spec.match_file(relative_dir + d + "/")]
                dirs.sort()
                # The folder part of the entry paths is normalized once per folder; a file name
                # from os.walk has no "/" and is never "." or "..", so only a backslash (which
                # normalize_entry_path turns into "/") needs the full treatment.
                entry_dir = f"{prefix}/{relative_dir}" if prefix else relative_dir
                if entry_dir:
                    entry_dir = normalize_entry_path(entry_dir) + "/"
                folder = directory if directory.endswith(os.sep) else directory + os.sep
                for file_name in sorted(files):
                    if spec is not None and spec.match_file(relative_dir + file_name):
                        continue
                    entry_path = entry_dir + file_name
                    if "\\" in file_name:
                        entry_path = normalize_entry_path(entry_path)
                    paths.append((folder + file_name, entry_path))
            self._add_entries(self._file_entries(paths, policy))

    @contextlib.contextmanager
    def new_file(
        self, name: str, mode: str = "x", encoding: str | None = None
    ) -> Iterator[IO[Any]]:
        """Open a new file that becomes entry ``name`` when the block ends."""
        self._check_mutable()
        entry_path = normalize_entry_path(name)
        if entry_path in self._manifest.entries:
            raise DuplicateEntryError(
                f"Artifact {self._name!r} already has {entry_path!r}; pick another name."
            )
        target = self._staging_path(entry_path)
        if "b" not in mode and encoding is None:
            encoding = "utf-8"
        with open(target, mode, encoding=encoding) as handle:
            yield handle
        digest, size = digest_file(target, self._manifest.digest_algorithm)
        self._add_entries([self._staged_entry(target, entry_path, digest, size)])

    def add_reference(
        self,
        uri: str,
        name: str | None = None,
        checksum: bool = True,
        max_objects: int | None = None,
    ) -> list[ManifestEntry]:
        """Track an external URI (``file://``, ``http(s)://``; others by URI only)."""
        self._check_mutable()
        if name is not None:
            name = normalize_entry_path(name)
        limit = DEFAULT_MAX_OBJECTS if max_objects is None else max_objects
        entries = handler_for(uri, self._reference_options(uri)).store(uri, name, checksum, limit)
        self._add_entries(entries)
        return entries

    def _reference_options(self, uri: str) -> dict[str, Any] | None:
        """The store's connection options for ``uri`` (this artifact's, or the current run's)."""
        engine = self._engine
        if engine is None:
            from dagster_artifacts.runs import current_run

            run = current_run()
            engine = run._engine if run is not None else None
        return engine.blobs.options_for(uri) if engine is not None else None

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
            from dagster_artifacts.storage.localcopy import FollowingHasher

            entry_path = entry_name + DATAFRAME_SUFFIX
            target = self._staging_path(entry_path)
            # Hashed while pyarrow writes it (natively, by path): one write, no second pass.
            with FollowingHasher(target, self._manifest.digest_algorithm) as hashed:
                obj.to_parquet(target, engine="pyarrow")
            entry = self._staged_entry(target, entry_path, hashed.digest, hashed.size)
            self._add_entries([entry])
            return entry
        raise ArtifactError(
            f"artifact.add() takes a Table, PartitionedTable or pandas.DataFrame, not "
            f"{type(obj).__name__}; use add_file() for other objects."
        )

    def _add_bytes(self, entry_path: str, data: bytes) -> ManifestEntry:
        target = self._staging_path(entry_path)
        with open(target, "wb") as handle:
            handle.write(data)
        digest = digest_bytes(data, self._manifest.digest_algorithm)
        entry = self._staged_entry(target, entry_path, digest, len(data))
        self._add_entries([entry])
        return entry

    def _staging_area(self) -> StagingArea:
        """This draft's staging area (created on first use; see :mod:`dagster_artifacts.staging`).

        A draft that is never logged does not leave its copies behind: the area is removed when
        the draft is garbage collected or the process exits.
        """
        if self._staging is None:
            from dagster_artifacts.staging import StagingArea

            self._staging = StagingArea(self._cache_dir())
        return self._staging

    def _staging_path(self, entry_path: str) -> str:
        """A fresh staged file for ``entry_path``: never one an earlier entry owns, so that a
        refused duplicate ``add`` cannot overwrite the bytes of the entry it collided with."""
        del entry_path  # named by a counter, not by the entry: duplicates are checked later
        return self._staging_area().new_path()

    def _cleanup_staging(self) -> None:
        if self._staging is not None:
            self._staging.cleanup()
            self._staging = None

    def remove(self, item: str) -> None:
        self._check_mutable()
        path = normalize_entry_path(item)
        if path not in self._manifest.entries:
            raise EntryNotFoundError(f"Artifact {self._name!r} has no entry {path!r}.")
        del self._manifest.entries[path]

    # -- reading a logged artifact -------------------------------------------------------------
    def _default_root(self) -> str:
        assert self._engine is not None
        return os.path.join(self._engine.settings.download_dir, self.name)

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
        from dagster_artifacts.engine import gc_paused

        engine = self._engine_required()
        target = os.path.abspath(str(root) if root is not None else self._default_root())
        with gc_paused():  # reading a manifest of 10,000s of entries allocates as much
            entries = [
                entry
                for entry in self.manifest.entries.values()
                if path_prefix is None or entry.path.startswith(path_prefix)
            ]
            return engine.download(self.manifest, target, entries, skip_cache=bool(skip_cache))

    def get_entry(self, name: str) -> ArtifactEntry:
        path = normalize_entry_path(name)
        entry = self.manifest.entries.get(path)
        if entry is None:
            raise EntryNotFoundError(
                f"Artifact {self.name!r} has no entry {path!r}; artifact.files() lists them."
            )
        return ArtifactEntry(self, entry)

    get_path = get_entry

    def get(self, name: str) -> Any:
        """The object stored as ``name``: a Table, PartitionedTable, DataFrame, or a file path."""
        entries = self.manifest.entries
        path = normalize_entry_path(name)
        for suffix, loader in (
            (TABLE_SUFFIX, self._load_table),
            (PARTITIONED_TABLE_SUFFIX, self._load_partitioned),
            (DATAFRAME_SUFFIX, self._load_dataframe),
        ):
            candidate = path if path.endswith(suffix) else path + suffix
            if candidate in entries:
                return loader(candidate)
        if path in entries:
            return self.get_entry(path).download()
        raise EntryNotFoundError(
            f"Artifact {self.name!r} has no object {path!r}; artifact.files() lists its entries."
        )

    def _read_entry(self, path: str) -> bytes:
        local = self.get_entry(path).download()
        with open(local, "rb") as handle:
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
            ArtifactEntry(self, entry)
            for path, entry in sorted(self.manifest.entries.items())
            if wanted is None or path in wanted
        ]

    def verify(self, root: str | os.PathLike[str] | None = None) -> VerifyResult:
        """Check a downloaded copy against the manifest; raise VerificationError on any difference."""
        self._logged()
        target = os.path.abspath(str(root) if root is not None else self._default_root())
        algorithm = self.manifest.digest_algorithm
        problems: list[str] = []
        checked = 0
        skipped: list[str] = []
        expected: set[str] = set()
        for path, entry in sorted(self.manifest.entries.items()):
            local = os.path.join(target, path)
            expected.add(os.path.normpath(local))
            if entry.is_reference and not (entry.ref or "").startswith("file://"):
                if not os.path.isfile(local):
                    skipped.append(path)
                    continue
                if entry.size is not None and os.path.getsize(local) != entry.size:
                    problems.append(f"{path}: size differs from the reference's")
                checked += 1
                continue
            if not os.path.isfile(local):
                problems.append(f"{path}: missing")
                continue
            if digest_file(local, algorithm)[0] != entry.digest:
                problems.append(f"{path}: content differs from the logged version")
            checked += 1
        if os.path.isdir(target):
            for directory, _dirs, files in os.walk(target):
                for file_name in files:
                    local = os.path.normpath(os.path.join(directory, file_name))
                    if local not in expected:
                        problems.append(f"{os.path.relpath(local, target)}: not in the artifact")
        if not os.path.isdir(target):
            raise VerificationError(f"Nothing to verify at {target}; download the artifact first.")
        if problems:
            shown = "; ".join(problems[:20]) + (" ..." if len(problems) > 20 else "")
            raise VerificationError(
                f"{target} does not match {self.name}: {shown}. Download it again into an empty "
                "folder to get a faithful copy."
            )
        return VerifyResult(root=target, checked=checked, skipped_references=skipped)

    # -- updating a logged artifact ------------------------------------------------------------
    def save(self) -> Artifact:
        """Persist changes to description, metadata, aliases and ttl of a logged version."""
        record = self._logged()
        engine = self._engine_required()
        aliases = validate_aliases(list(self._aliases))
        ttl_seconds = int(self._ttl.total_seconds()) if self._ttl else None
        updated = engine.registry.update_version(
            record.id, self._description, _check_metadata(self._metadata), aliases, ttl_seconds
        )
        self._apply_record(updated)
        return self

    def delete(self, delete_aliases: bool = False) -> None:
        """Delete this version (its blobs become collectable once no other version uses them)."""
        record = self._logged()
        self._engine_required().registry.delete_version(record.id, delete_aliases=delete_aliases)

    # -- lineage -----------------------------------------------------------------------------------
    def logged_by(self) -> Run | None:
        from dagster_artifacts.runs import Run

        record = self._logged()
        engine = self._engine_required()
        run = engine.registry.logged_by(record.id)
        return None if run is None else Run._from_record(engine, run)

    def used_by(self) -> list[Run]:
        from dagster_artifacts.runs import Run

        record = self._logged()
        engine = self._engine_required()
        return [Run._from_record(engine, run) for run in engine.registry.used_by(record.id)]

    def __repr__(self) -> str:
        if self._record is None:
            return f"<Artifact {self._name} (draft, type={self._type})>"
        return f"<Artifact {self.qualified_name} (type={self._type})>"


def _check_policy(policy: str | None) -> str:
    if policy is None:
        return MUTABLE
    if policy not in POLICIES:
        raise ConfigurationError(
            f"Unknown policy {policy!r}; use 'mutable' (default: the file is copied when added, "
            "so later changes do not matter) or 'immutable' (no copy; the file must not change "
            "until the log is committed)."
        )
    return policy


def _check_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    try:
        json.dumps(metadata, allow_nan=True)
    except (TypeError, ValueError) as error:
        raise ArtifactError(
            f"Artifact metadata must be JSON-serializable ({error}); convert values to plain "
            "numbers, strings, lists and dicts."
        ) from error
    return metadata
