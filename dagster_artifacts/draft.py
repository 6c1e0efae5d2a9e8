"""What a draft holds while it is filled: its manifest, and the staging area of its copies.

Every ``add_*`` call of :class:`~dagster_artifacts.artifact.Artifact` lands here. Files are
hashed as they are added and, with ``policy="mutable"``, copied into the staging area in the same
pass (:mod:`dagster_artifacts.hashing`); tables and frames are written there by us. Entries are
added all or none: a conflict is found before anything changes.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import threading
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any, TypeVar

from dagster_artifacts import state
from dagster_artifacts.digests import algorithm_extra, b64_to_hex, digest_bytes, digest_file
from dagster_artifacts.errors import (
    ArtifactError,
    ArtifactFileNotFoundError,
    DuplicateEntryError,
    EntryFileNotFoundError,
    InvalidReferenceError,
    StorageError,
)
from dagster_artifacts.hashing import check_policy, file_entries, walk_folder
from dagster_artifacts.manifest import Manifest, ManifestEntry
from dagster_artifacts.names import normalize_entry_path
from dagster_artifacts.settings import MachineSettings
from dagster_artifacts.staging import STAGING, StagingArea
from dagster_artifacts.storage.references import DEFAULT_MAX_OBJECTS, handler_for
from dagster_artifacts.storage.retry import storage_error
from dagster_artifacts.storage.staged import FollowingHasher
from dagster_artifacts.store import Store
from dagster_artifacts.tables import (
    DATAFRAME_SUFFIX,
    PARTITIONED_TABLE_SUFFIX,
    TABLE_SUFFIX,
    PartitionedTable,
    Table,
)

if TYPE_CHECKING:
    import pandas as pd


F = TypeVar("F", bound=Callable[..., Any])


def _typed_os_errors(func: F) -> F:
    """Turn an ``OSError`` of adding (a source that cannot be read, a staging folder on a full
    or read-only disk) into a :class:`StorageError` naming the artifact and the place."""

    @functools.wraps(func)
    def wrapper(self: Draft, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(self, *args, **kwargs)
        except ArtifactError:
            raise
        except OSError as error:
            raise self.add_error(error) from error

    return wrapper  # type: ignore[return-value]


class Draft:
    """The entries of one draft artifact ``name``.

    ``target_store`` says where the files will go when that is known (the artifact's store, or
    the current run's): unchanged files whose blob it holds are then neither read nor copied.
    """

    def __init__(
        self, name: str, manifest: Manifest, target_store: Callable[[], Store | None]
    ) -> None:
        self.name = name
        self.manifest = manifest
        self._target_store = target_store
        self._staging: StagingArea | None = None
        #: Entry paths written by ``new_file``: a second ``new_file(name, mode="x")`` is
        #: refused, as W&B's is (its temp file exists), whatever the bytes.
        self._new_files: set[str] = set()

    def add_entries(self, entries: list[ManifestEntry], *, overwrite: bool = False) -> None:
        """Add all entries or none: every conflict is found before anything changes.

        A path already present with other content is a conflict (W&B: "Cannot add the same
        path twice"), unless ``overwrite`` (W&B's ``overwrite=``/``merge=``) replaces it.
        """
        present = self.manifest.entries
        incoming = {entry.path: entry for entry in entries}
        if len(incoming) < len(entries):  # a path twice in one call: same content or refused
            incoming = {}
            for entry in entries:
                self._check_same(incoming.get(entry.path), entry)
                incoming[entry.path] = entry
        if not overwrite:  # only the paths both hold are compared (a folder: often none)
            for path in incoming.keys() & present.keys():
                self._check_same(present[path], incoming[path])
        present.update(incoming)

    def _check_same(self, current: ManifestEntry | None, entry: ManifestEntry) -> None:
        if current is not None and current.digest != entry.digest:
            raise DuplicateEntryError(
                f"Artifact {self.name!r} already has {entry.path!r} with other content; "
                "add the new file under another name=..., pass overwrite=True (add_file, "
                "add) or merge=True (add_dir) to replace it, or build a new Artifact."
            )

    def add_error(self, error: OSError) -> StorageError:
        """What a failed ``add`` tells the user: which artifact, which file, what to do."""
        staging = os.path.join(os.path.abspath(self._machine().cache_dir), STAGING)
        filename = str(getattr(error, "filename", None) or "")
        # A write that fails on an open file carries no file name: adding writes only into the
        # staging area, so a full or read-only disk without a name is the staging area's.
        unnamed_write = not filename and error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS)
        if filename.startswith(staging) or unnamed_write:
            failed = storage_error(f"stage a copy for artifact {self.name!r} in", staging, error)
            return StorageError(
                f"{failed} Drafts copy added files there (set DAGSTER_ARTIFACTS_CACHE_DIR to move "
                "it, or use policy='immutable' to hash files without copying them).",
                url=staging,
                errno=error.errno,
            )
        failed = storage_error(f"add to artifact {self.name!r} the file", filename or "?", error)
        return StorageError(str(failed), url=filename or None, errno=error.errno)

    def _machine(self) -> MachineSettings:
        store = self._target_store()
        return store.settings.machine if store is not None else MachineSettings.resolve()

    def _file_entries(
        self,
        pairs: list[tuple[str, str]],
        policy: str,
        *,
        skip_others: bool = False,
        ready: Callable[[], None] | None = None,
        folder: str | None = None,
    ) -> list[ManifestEntry]:
        """``ready``: waited for before the store is asked what it holds (a loading index);
        ``folder``: the folder ``add_dir`` walked (see :func:`.hashing.file_entries`)."""
        algorithm = self.manifest.digest_algorithm
        store = self._target_store()
        stored = None
        if store is not None:
            blobs = store.blobs

            def stored(digests: set[str]) -> set[str]:
                if ready is not None:
                    ready()
                return blobs.stored_digests(digests, algorithm)

        return file_entries(
            pairs,
            policy,
            algorithm,
            staging=self.staging_area,
            cache=state.stat_cache_for(self._machine()),
            stored=stored,
            skip_others=skip_others,
            folder=folder,
        )

    @_typed_os_errors
    def add_file(
        self,
        local_path: str | os.PathLike[str],
        name: str | os.PathLike[str] | None,
        is_tmp: bool | None,
        policy: str | None,
        overwrite: bool,
    ) -> ManifestEntry:
        """One file as entry ``name`` (default, and for ``name=""`` as in W&B: its base name).

        ``is_tmp`` renames it as W&B does: the part of the file name before its first dot
        becomes the first 20 hex digits of its digest (``data.tar.gz`` -> ``<hex>.tar.gz``).
        """
        policy = check_policy(policy)
        path = os.fspath(local_path)
        entry_path = normalize_entry_path(os.fspath(name or "") or os.path.basename(path))
        if os.path.isdir(path) or not os.path.lexists(path):
            raise ArtifactFileNotFoundError(
                f"No such file {path!r}; check the path (use add_dir() for folders)."
            )
        (entry,) = self._file_entries([(os.path.abspath(path), entry_path)], policy)
        if is_tmp:
            entry.path = normalize_entry_path(digest_named(entry.path, entry.digest))
        self.add_entries([entry], overwrite=overwrite)
        return entry

    @_typed_os_errors
    def add_dir(
        self,
        local_path: str | os.PathLike[str],
        name: str | os.PathLike[str] | None,
        policy: str | None,
        merge: bool,
        ignore: list[str] | None,
    ) -> None:
        """Every file under ``local_path`` (links to files and folders followed, loops left
        out), under the prefix ``name``; ``merge`` replaces entries whose content changed."""
        policy = check_policy(policy)
        root = os.fspath(local_path)
        if not os.path.isdir(root):
            raise ArtifactFileNotFoundError(
                f"No such folder {root!r}; check the path (use add_file() for single files)."
            )
        prefix = normalize_entry_path(os.fspath(name)) if name else None
        with state.gc_frozen():  # tens of thousands of small objects: no use scanning them
            index_loaded = self._load_pack_index_meanwhile()
            try:
                pairs = walk_folder(root, prefix, ignore)
                state.gc_freeze_built()
                entries = self._file_entries(
                    pairs,
                    policy,
                    skip_others=True,
                    ready=index_loaded,
                    folder=os.path.abspath(root),
                )
            finally:
                index_loaded()  # no loader outlives the call
            self.add_entries(entries, overwrite=merge)

    def _load_pack_index_meanwhile(self) -> Callable[[], None]:
        """Start loading the store's pack index on a thread; returns the wait for it.

        "Which of these digests are stored?" (asked for every stat-cache hit) first loads the
        index of every pack (a million blobs: 0.6 s); on its own thread that overlaps the walk
        and the ``stat`` calls, which spend their time in the kernel. A failure is left for the
        question itself to raise, with its context, when it loads the index again.
        """
        store = self._target_store()
        if store is None:
            return _nothing_to_wait_for
        loader = threading.Thread(
            target=_quietly, args=(store.blobs.pack_index.refresh,), name="pack-index", daemon=True
        )
        loader.start()
        return loader.join

    @contextlib.contextmanager
    def new_file(
        self, name: str, mode: str, encoding: str | None, policy: str | None
    ) -> Iterator[IO[Any]]:
        """A file to write that becomes entry ``name`` when the block ends.

        As in W&B, a mode without ``x`` (``"w"``, ``"wb"``) replaces an entry of that name; with
        ``x`` a second ``new_file`` of the same name is refused before anything is written.
        ``policy`` is checked and otherwise moot: the file is the draft's own copy already.
        """
        check_policy(policy)
        entry_path = normalize_entry_path(name)
        overwrite = "x" not in mode
        if not overwrite and entry_path in self._new_files:
            raise DuplicateEntryError(
                f"Artifact {self.name!r} already has {entry_path!r} from new_file(); pick "
                "another name, or open it with mode='w' to replace it."
            )
        if "b" not in mode and encoding is None:
            encoding = "utf-8"
        try:
            target = self.staging_area().new_path()
            handle = open(target, mode, encoding=encoding)  # noqa: SIM115 - yielded below
        except OSError as error:
            raise self.add_error(error) from error
        try:
            with handle:
                yield handle
        except OSError as error:
            if isinstance(error, ArtifactError):
                raise
            raise self.add_error(error) from error
        algorithm = self.manifest.digest_algorithm
        digest, size = digest_file(target, algorithm)
        self.add_entries(
            [_staged_entry(target, entry_path, digest, size, algorithm)], overwrite=overwrite
        )
        self._new_files.add(entry_path)

    @_typed_os_errors
    def add_reference(
        self, uri: Any, name: str | os.PathLike[str] | None, checksum: bool, max_objects: int | None
    ) -> list[ManifestEntry]:
        """Entries tracking ``uri`` (a URI, or the entry of a logged artifact that is itself a
        reference: its URI is used, as W&B does). ``max_objects`` None or 0: W&B's default."""
        uri = reference_uri(uri)
        if name is not None:
            name = normalize_entry_path(os.fspath(name))
        limit = max_objects or DEFAULT_MAX_OBJECTS
        store = self._target_store()
        options = store.blobs.options_for(uri) if store is not None else None
        entries = handler_for(uri, options).store(uri, name, checksum, limit)
        self.add_entries(entries)
        return entries

    @_typed_os_errors
    def add(
        self, obj: Table | PartitionedTable | pd.DataFrame, name: str, overwrite: bool
    ) -> ManifestEntry:
        """A table as W&B stores it (``name`` + ``.table.json`` unless it ends so already;
        under ``media/tables/`` renamed after its digest, as W&B does), or a frame as Parquet."""
        import pandas as pd

        if isinstance(obj, (Table, PartitionedTable)):
            suffix = TABLE_SUFFIX if isinstance(obj, Table) else PARTITIONED_TABLE_SUFFIX
            entry_path = normalize_entry_path(name if name.endswith(suffix) else name + suffix)
            entry = self._add_bytes(entry_path, obj.to_bytes(), overwrite=overwrite, add=False)
            if entry_path.startswith(MEDIA_TABLES):
                entry.path = normalize_entry_path(digest_named(entry_path, entry.digest))
            self.add_entries([entry], overwrite=overwrite)
            return entry
        if isinstance(obj, pd.DataFrame):
            entry_path = normalize_entry_path(name) + DATAFRAME_SUFFIX
            target = self.staging_area().new_path()
            algorithm = self.manifest.digest_algorithm
            # Hashed while pyarrow writes it (natively, by path): one write, no second pass.
            with FollowingHasher(target, algorithm) as hashed:
                obj.to_parquet(target, engine="pyarrow")
            entry = _staged_entry(target, entry_path, hashed.digest, hashed.size, algorithm)
            self.add_entries([entry], overwrite=overwrite)
            return entry
        raise ArtifactError(
            f"artifact.add() takes a Table, PartitionedTable or pandas.DataFrame, not "
            f"{type(obj).__name__}; use add_file() for other objects."
        )

    def _add_bytes(
        self, entry_path: str, data: bytes, *, overwrite: bool = False, add: bool = True
    ) -> ManifestEntry:
        # Staged files are named by a counter, never by their entry: a refused duplicate add()
        # cannot overwrite the bytes of the entry it collided with.
        target = self.staging_area().new_path()
        with open(target, "wb") as handle:
            handle.write(data)
        algorithm = self.manifest.digest_algorithm
        entry = _staged_entry(
            target, entry_path, digest_bytes(data, algorithm), len(data), algorithm
        )
        if add:
            self.add_entries([entry], overwrite=overwrite)
        return entry

    def remove(self, item: str) -> None:
        """Remove the entry ``item``, or every entry under the folder ``item``, as W&B does.

        Only the manifest changes: a ``new_draft()`` of a million files drops a folder without
        touching a file or a blob, and a staged copy stays in the staging area until the draft
        is logged or dropped. A path that is neither is an :class:`EntryFileNotFoundError`
        (also ``FileNotFoundError``, W&B's error) and changes nothing.
        """
        path = normalize_entry_path(item)
        entries = self.manifest.entries
        if path in entries:
            del entries[path]
            return
        prefix = path + "/"
        inside = [entry_path for entry_path in entries if entry_path.startswith(prefix)]
        if not inside:
            raise EntryFileNotFoundError(
                f"Artifact {self.name!r} has no file or folder {path!r}; "
                "artifact.manifest.entries lists its paths."
            )
        for entry_path in inside:
            del entries[entry_path]

    def staging_area(self) -> StagingArea:
        """The staging area (created on first use; see :mod:`dagster_artifacts.staging`).

        A draft that is never logged does not leave its copies behind: the area is removed when
        the draft is garbage collected or the process exits.
        """
        if self._staging is None:
            self._staging = StagingArea(self._machine().cache_dir)
        return self._staging

    def drop_staging(self) -> None:
        """The copies were stored (or are not needed): remove them now."""
        if self._staging is not None:
            self._staging.cleanup()
            self._staging = None


def _staged_entry(
    target: str, entry_path: str, digest: str, size: int, algorithm: str
) -> ManifestEntry:
    """An entry for a file this draft wrote into its own staging area (already hashed)."""
    return ManifestEntry(
        path=entry_path,
        digest=digest,
        size=size,
        extra=algorithm_extra(algorithm),
        local_path=target,
        staged=True,
    )


#: W&B renames tables added under this folder after their digest (``Artifact.add``).
MEDIA_TABLES = "media/tables"


def digest_named(entry_path: str, digest: str) -> str:
    """W&B's ``is_tmp`` name: the file name's part before its first dot becomes the first 20
    hex digits of ``digest`` (``a/data.tar.gz`` -> ``a/<hex20>.tar.gz``)."""
    folder, _, file_name = entry_path.rpartition("/")
    parts = file_name.split(".")
    parts[0] = b64_to_hex(digest)[:20]
    return (folder + "/" if folder else "") + ".".join(parts)


def reference_uri(uri: Any) -> str:
    """The URI ``add_reference`` was given: a string, or an entry of a logged artifact (its
    ``ref``, as W&B's ``entry.ref_url()``), refused with the reason otherwise."""
    if isinstance(uri, str):
        return uri
    ref = getattr(uri, "ref", None)
    ref = ref() if callable(ref) else ref
    if isinstance(ref, str) and ref:
        return ref
    if hasattr(uri, "digest") and hasattr(uri, "path"):
        raise InvalidReferenceError(
            f"Entry {getattr(uri, 'path', '?')!r} is a file stored in its artifact, not a "
            "reference: W&B would track it as wandb-artifact://..., which a self-hosted store "
            "has no server for. Use artifact.add_file(entry.download()) to copy it, or "
            "run.use_artifact() to record the dependency."
        )
    raise InvalidReferenceError(
        f"add_reference() takes a URI string (or a reference entry), not {type(uri).__name__}."
    )


def _nothing_to_wait_for() -> None:
    return None


def _quietly(load: Callable[[], None]) -> None:
    with contextlib.suppress(Exception):
        load()
