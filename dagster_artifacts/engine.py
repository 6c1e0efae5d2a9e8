"""The engine: settings + registry + blob store, doing all the work behind the thin faces.

``Run``, ``Api``, ``Artifact`` and the Dagster resource hold an :class:`Engine` and call it; none of
them touches storage or SQL directly. One engine per distinct configuration is shared by the
process (see :func:`get_engine`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import replace

from dagster_artifacts.digests import digest_file
from dagster_artifacts.errors import ArtifactTypeMismatchError, InvalidPathError
from dagster_artifacts.manifest import Manifest, ManifestEntry
from dagster_artifacts.progress import watch_folder
from dagster_artifacts.registry import CommitRequest, Registry, VersionRecord
from dagster_artifacts.settings import Settings
from dagster_artifacts.storage import BlobStore, handler_for
from dagster_artifacts.storage.blobstore import BlobDownload, BlobUpload
from dagster_artifacts.storage.cache import fetch_through_cache
from dagster_artifacts.storage.parallel import parallel_map


def safe_join(root: str, entry_path: str) -> str:
    """Join an entry path under ``root``, refusing anything that would land outside it."""
    root_abs = os.path.abspath(root)
    target = os.path.abspath(os.path.join(root_abs, entry_path))
    if os.path.commonpath([root_abs, target]) != root_abs:
        raise InvalidPathError(
            f"Entry path {entry_path!r} would be written outside {root_abs}; refusing."
        )
    return target


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
        """Blobs first, then the manifest, then one registry transaction (invariant 2)."""
        existing = self.registry.find_committed(
            request.entity, request.project, request.name, request.digest
        )
        if existing is None or existing.type != request.type:
            data = manifest.to_bytes()  # once: 10,000 entries cost tens of ms to serialize
            manifest_key = self.blobs.manifest_key(data)
            self.upload_blobs(manifest, manifest_key)
            self.write_manifest(manifest, data)
        else:  # same content is already committed: nothing to upload
            manifest_key = existing.manifest_key or ""
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
        if not os.path.isfile(dest):
            return False
        if entry.size is not None and os.path.getsize(dest) != entry.size:
            return False
        if entry.is_reference and entry.digest == entry.ref:
            return False  # nothing to compare against; fetch again
        if entry.is_reference and not entry.ref.startswith("file://"):  # type: ignore[union-attr]
            return False  # ETags are not content hashes
        return digest_file(dest, algorithm)[0] == entry.digest

    def download(
        self, manifest: Manifest, root: str, entries: Iterable[ManifestEntry] | None = None
    ) -> str:
        chosen = list(manifest.entries.values() if entries is None else entries)
        targets = [(entry, safe_join(root, entry.path)) for entry in chosen]
        os.makedirs(root, exist_ok=True)
        algorithm = manifest.digest_algorithm
        current = parallel_map(lambda pair: self._is_current(pair[0], pair[1], algorithm), targets)
        pending = [pair for pair, ok in zip(targets, current, strict=True) if not ok]
        # Stored blobs in one batched, concurrent transfer; references through their handlers.
        # The local download cache, when on, serves and keeps stored blobs (storage/cache.py).
        stored = [pair for pair in pending if not pair[0].is_reference]
        # A byte bar on stderr when a person is watching (progress.py; off otherwise).
        total = sum(entry.size or 0 for entry, _dest in pending)
        with watch_folder(f"Downloading {len(pending)} files", root, total):
            if not fetch_through_cache(
                self.blobs, stored, algorithm, self.settings.cache_dir, self.settings.is_local
            ):
                self.blobs.get_files(
                    BlobDownload(
                        self.blobs.blob_key(e.digest, algorithm), d, e.digest, algorithm, e.size
                    )
                    for e, d in stored
                )
            parallel_map(
                lambda pair: self.fetch_entry(pair[0], pair[1], algorithm),
                [pair for pair in pending if pair[0].is_reference],
            )
        return root


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
