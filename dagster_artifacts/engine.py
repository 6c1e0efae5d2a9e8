"""The engine: settings + registry + blob store, doing all the work behind the thin faces.

``Run``, ``Api``, ``Artifact`` and the Dagster resource hold an :class:`Engine` and call it; none of
them touches storage or SQL directly. One engine per distinct configuration is shared by the
process (see :func:`get_engine`).
"""

from __future__ import annotations

import contextlib
import errno
import gc
import itertools
import os
import secrets
import shutil
import stat
import threading
from collections.abc import Iterable, Iterator
from dataclasses import replace

from dagster_artifacts.digests import digest_file
from dagster_artifacts.errors import ArtifactTypeMismatchError, InvalidPathError
from dagster_artifacts.lifecycle import reuse_lease
from dagster_artifacts.manifest import Manifest, ManifestEntry
from dagster_artifacts.progress import watch_folder
from dagster_artifacts.registry import (
    CommitRequest,
    Registry,
    ReusedVersionGoneError,
    VersionRecord,
)
from dagster_artifacts.settings import Settings
from dagster_artifacts.staging import left_by_dead_process, owner_tag
from dagster_artifacts.storage import BlobStore, handler_for
from dagster_artifacts.storage.blobstore import BlobDownload, BlobUpload
from dagster_artifacts.storage.cache import fetch_through_cache
from dagster_artifacts.storage.localcopy import make_parents
from dagster_artifacts.storage.parallel import parallel_map


class Engine:
    """Does the work: commit, resolve, download. Thread-safe; one per configuration."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.blobs = BlobStore(settings.root, settings.storage_options)
        self.registry = Registry(settings.database)
        self._manifests: dict[str, Manifest] = {}

    # -- writing ----------------------------------------------------------------------------------
    def upload_blobs(self, manifest: Manifest, manifest_key: str | None = None) -> None:
        """Put every stored (non-reference) entry's bytes into the blob store, skipping known ones.

        Staged entries (the draft's own copies, see :mod:`dagster_artifacts.staging`) are moved
        into a local store by rename; the others are copied, verified.
        """
        from dagster_artifacts.lifecycle import refresh_reused

        algorithm = manifest.digest_algorithm
        blob_key = self.blobs.blob_key
        uploads = [
            BlobUpload(
                local_path=entry.local_path or "",
                key=blob_key(entry.digest, algorithm),
                digest=entry.digest,
                algorithm=algorithm,
                staged=entry.staged,
                size=entry.size,
            )
            for entry in manifest.entries.values()
            if not entry.is_reference
        ]
        # Blobs about to be reused stay out of a concurrent gc; on a local store the same
        # ``utime`` tells which are present, so put_files needs no second check.
        present = refresh_reused(
            self, manifest, keys={u.key for u in uploads}, manifest_key=manifest_key
        )
        self.blobs.put_files(uploads, present=present)

    def write_manifest(self, manifest: Manifest, data: bytes | None = None) -> str:
        data = manifest.to_bytes() if data is None else data
        key = self.blobs.manifest_key(data)
        if not self.blobs.exists(key):
            self.blobs.put_bytes(data, key)
        return key

    def check_type(self, entity: str, project: str, name: str, artifact_type: str) -> None:
        """Refuse, before anything is written, to log ``name`` under a second type."""
        existing = self.registry.collection_type(entity, project, name)
        if existing is not None and existing != artifact_type:
            raise ArtifactTypeMismatchError(
                f"Artifact {name!r} in {entity}/{project} has type {existing!r}, not "
                f"{artifact_type!r}; use type={existing!r} or another name."
            )

    def commit(self, request: CommitRequest, manifest: Manifest) -> tuple[VersionRecord, bool]:
        """Blobs first, then the manifest, then one registry transaction (invariant 2).

        When an equal version (same digest, same partition key) is already committed, nothing is
        uploaded and the registry dedupes to it; should that version be deleted before the
        registry transaction, the registry says so and the upload happens after all.
        """
        existing = self.registry.find_committed(
            request.entity, request.project, request.name, request.digest, request.partition_key
        )
        if existing is not None and existing.type == request.type and existing.manifest_key:
            try:
                return self.registry.commit_version(
                    replace(request, manifest_key=existing.manifest_key, manifest_written=False)
                )
            except ReusedVersionGoneError:
                pass  # deleted meanwhile: its bytes may be gone, so upload as for new content
        data = manifest.to_bytes()  # once: 10,000 entries cost tens of ms to serialize
        manifest_key = self.blobs.manifest_key(data)
        # On object stores, a lease keeps a concurrent gc off the blobs this commit reuses.
        with reuse_lease(self, manifest):
            self.upload_blobs(manifest, manifest_key)
            self.write_manifest(manifest, data)
            return self.registry.commit_version(replace(request, manifest_key=manifest_key))

    # -- reading ----------------------------------------------------------------------------------
    def manifest(self, record: VersionRecord) -> Manifest:
        assert record.manifest_key, "a committed version always has a manifest"
        cached = self._manifests.get(record.manifest_key)
        if cached is None:
            cached = Manifest.from_bytes(self.blobs.read_bytes(record.manifest_key))
            self._manifests[record.manifest_key] = cached
        return cached

    def fetch_entry(self, entry: ManifestEntry, dest: str, algorithm: str) -> str:
        """Bring one entry's bytes to ``dest`` unless a file with the right digest is there."""
        if self._is_current(entry, dest, algorithm):
            return dest
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if entry.is_reference:
            ref = entry.ref or ""
            handler_for(ref, self.blobs.options_for(ref)).load(entry, dest)
        else:
            self.blobs.get_file(
                self.blobs.blob_key(entry.digest, algorithm),
                dest,
                digest=entry.digest,
                algorithm=algorithm,
                size=entry.size,
            )
        return dest

    @staticmethod
    def _is_current(entry: ManifestEntry, dest: str, algorithm: str) -> bool:
        """Whether ``dest`` already holds this entry's bytes (hashed: never trusted by size)."""
        try:
            info = os.stat(dest)
        except OSError:
            return False
        if not stat.S_ISREG(info.st_mode):
            return False
        if entry.size is not None and info.st_size != entry.size:
            return False
        if entry.is_reference and entry.digest == entry.ref:
            return False  # nothing to compare against; fetch again
        if entry.is_reference and not entry.ref.startswith("file://"):  # type: ignore[union-attr]
            return False  # ETags are not content hashes
        return digest_file(dest, algorithm)[0] == entry.digest

    def download(
        self,
        manifest: Manifest,
        root: str,
        entries: Iterable[ManifestEntry] | None = None,
        *,
        skip_cache: bool = False,
    ) -> str:
        """Bring ``entries`` (default: all) under ``root``, every byte verified; return ``root``.

        A root that does not exist yet is filled as a hidden sibling folder
        (``.<name>.partial-…``) and renamed into place when every file is there and verified:
        files are written straight to their names (no temp name and rename per file), and the
        root appears complete or not at all; a download killed halfway leaves only the hidden
        folder (the next download into the same root removes it). Into an existing root, each file is written to a temp name and renamed, and
        files already there with the right digest are kept. Either way a file at its final path
        always has the right content.
        """
        with gc_paused():
            return self._download(manifest, root, entries, skip_cache)

    def _download(
        self,
        manifest: Manifest,
        root: str,
        entries: Iterable[ManifestEntry] | None,
        skip_cache: bool,
    ) -> str:
        chosen = list(manifest.entries.values() if entries is None else entries)
        root_abs = os.path.abspath(root)
        final = safe_targets(root_abs, [entry.path for entry in chosen])  # before any write
        algorithm = manifest.digest_algorithm
        fresh = not os.path.lexists(root_abs)
        if fresh:
            work = _staging_folder(root_abs)
            cut = len(root_abs)
            targets = [
                (entry, work + dest[cut:]) for entry, dest in zip(chosen, final, strict=True)
            ]
            pending = targets
        else:
            os.makedirs(root_abs, exist_ok=True)
            work = root_abs
            targets = list(zip(chosen, final, strict=True))
            current = parallel_map(lambda p: self._is_current(p[0], p[1], algorithm), targets)
            pending = [pair for pair, ok in zip(targets, current, strict=True) if not ok]
        try:
            make_parents(dest for _entry, dest in pending)
            # Stored blobs in one batched transfer (one multi-threaded pass of verified copies on
            # a local store); references through their handlers. The local download cache, when
            # on, serves and keeps stored blobs (storage/cache.py).
            stored = [pair for pair in pending if not pair[0].is_reference]
            # A byte bar on stderr when a person is watching (progress.py; off otherwise).
            total = sum(entry.size or 0 for entry, _dest in pending)
            with watch_folder(f"Downloading {len(pending)} files", work, total):
                if skip_cache or not fetch_through_cache(
                    self.blobs,
                    stored,
                    algorithm,
                    self.settings.cache_dir,
                    self.settings.is_local,
                    atomic=not fresh,
                ):
                    self.blobs.get_files(
                        (
                            BlobDownload(
                                self.blobs.blob_key(e.digest, algorithm),
                                d,
                                e.digest,
                                algorithm,
                                e.size,
                            )
                            for e, d in stored
                        ),
                        atomic=not fresh,
                    )
                parallel_map(
                    lambda pair: self.fetch_entry(pair[0], pair[1], algorithm),
                    [pair for pair in pending if pair[0].is_reference],
                )
            if fresh:
                _publish(work, root_abs)
        finally:
            if fresh:
                shutil.rmtree(work, ignore_errors=True)
        return root


_GC_LOCK = threading.Lock()
_GC_PAUSES = 0
_GC_WAS_ENABLED = False


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a download allocates its per-file objects.

    A download of 10,000 files creates some 100,000 small objects (paths, jobs, tuples); each
    700 allocations trigger a collection that walks every tracked object of the process (the
    manifest, the imported modules), which cost about as much as the copies themselves. Nothing
    here makes reference cycles, so collection waits until the download ends (nested and
    concurrent downloads: until the last one ends).
    """
    global _GC_PAUSES, _GC_WAS_ENABLED
    with _GC_LOCK:
        if _GC_PAUSES == 0:
            _GC_WAS_ENABLED = gc.isenabled()
            gc.disable()
        _GC_PAUSES += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _GC_PAUSES -= 1
            if _GC_PAUSES == 0 and _GC_WAS_ENABLED:
                gc.enable()


_STAGING_TOKEN = secrets.token_hex(4)
_STAGING_COUNTER = itertools.count()


def safe_targets(root_abs: str, paths: list[str]) -> list[str]:
    """Join each entry path under ``root_abs`` (one ``normpath`` each), refusing any that would
    land outside it."""
    prefix = root_abs.rstrip(os.sep) + os.sep
    join, normpath = os.path.join, os.path.normpath
    targets = []
    for path in paths:
        target = normpath(join(root_abs, path))
        if not target.startswith(prefix):
            raise InvalidPathError(
                f"Entry path {path!r} would be written outside {root_abs}; refusing."
            )
        targets.append(target)
    return targets


def _staging_folder(root_abs: str) -> str:
    """A new hidden folder beside ``root_abs`` (same filesystem, so it can be renamed into place).

    Named ``.<name>.partial-<host>-<pid>-<token>-<n>``: folders that killed downloads of this
    host left beside ``root_abs`` are removed first (their process is gone), so a download that
    was killed costs no disk space once the next one into the same folder starts.
    """
    parent, name = os.path.split(root_abs)
    os.makedirs(parent, exist_ok=True)
    prefix = f".{name}.partial-"
    _sweep_partial_folders(parent, prefix)
    folder = os.path.join(
        parent, f"{prefix}{owner_tag()}-{_STAGING_TOKEN}-{next(_STAGING_COUNTER)}"
    )
    os.mkdir(folder)
    return folder


def _sweep_partial_folders(parent: str, prefix: str) -> None:
    with contextlib.suppress(OSError):
        for entry in os.listdir(parent):
            if entry.startswith(prefix):
                host, _sep, rest = entry[len(prefix) :].partition("-")
                if left_by_dead_process(f"{host}-{rest.partition('-')[0]}"):
                    shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


def _publish(work: str, root_abs: str) -> None:
    """Rename the filled staging folder to ``root_abs``; merge file by file if it appeared meanwhile.

    Another download into the same new root may have finished first: then every verified file
    is moved over the existing one by an atomic rename (same content, or a stale file replaced).
    """
    try:
        os.rename(work, root_abs)
        return
    except OSError as error:
        if error.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR):
            raise
    for folder, _dirs, files in os.walk(work):
        target_folder = root_abs + folder[len(work) :]
        os.makedirs(target_folder, exist_ok=True)
        for name in files:
            os.replace(os.path.join(folder, name), os.path.join(target_folder, name))


_ENGINES: dict[tuple[object, ...], Engine] = {}
_ENGINES_LOCK = threading.Lock()


def get_engine(settings: Settings) -> Engine:
    """The process-wide engine for these settings (created on first use)."""
    with _ENGINES_LOCK:
        engine = _ENGINES.get(settings.key)
        if engine is None:
            engine = Engine(settings)
            _ENGINES[settings.key] = engine
        return engine


def reset_engines() -> None:
    """Forget all engines (tests, and processes forked after use)."""
    with _ENGINES_LOCK:
        for engine in _ENGINES.values():
            engine.registry.dispose()
        _ENGINES.clear()
