"""The store: settings + registry + blob store + download cache: the one object that does the work.

``Run``, ``Api``, ``Artifact`` and the Dagster resource are thin faces over a :class:`Store`; the
operations live in modules of their own (:mod:`.commit`, :mod:`.download`, :mod:`.retention`,
:mod:`.garbage`, :mod:`.lineage`), each taking the store. One store per configuration is shared by
the process (:func:`dagster_artifacts.state.open_store`).
"""

from __future__ import annotations

import threading

from dagster_artifacts.clock import SYSTEM_CLOCK, Clock
from dagster_artifacts.errors import ManifestError, StorageError
from dagster_artifacts.manifest import Manifest
from dagster_artifacts.registry import Registry, VersionRecord
from dagster_artifacts.settings import MachineSettings, Settings
from dagster_artifacts.storage import BlobStore, open_blob_store
from dagster_artifacts.storage.cache import DownloadCache
from dagster_artifacts.storage.layout import manifest_key


class Store:
    """Thread-safe; create through :func:`dagster_artifacts.state.open_store`."""

    def __init__(self, settings: Settings, clock: Clock = SYSTEM_CLOCK) -> None:
        self.settings = settings
        self.clock = clock
        self.blobs: BlobStore = open_blob_store(settings.root, settings.storage_options)
        self.registry = Registry(settings.database)
        self._manifests: dict[str, Manifest] = {}
        self._cache: DownloadCache | None = None
        self._lock = threading.Lock()

    def manifest(self, record: VersionRecord) -> Manifest:
        """The manifest of a committed version, checked against its key and the registry's
        digest (read once, then kept: manifests never change)."""
        assert record.manifest_key, "a committed version always has a manifest"
        cached = self._manifests.get(record.manifest_key)
        if cached is None:
            label = f"{record.entity}/{record.project}/{record.name}:v{record.index}"
            cached = read_manifest(self.blobs, record.manifest_key, label, record.digest)
            self._manifests[record.manifest_key] = cached
        return cached

    @property
    def download_cache(self) -> DownloadCache | None:
        """The machine's download cache when downloads from this store go through it."""
        machine = self.settings.machine
        if not machine.download_cache_enabled(self.blobs.is_local):
            return None
        with self._lock:
            if self._cache is None:
                self._cache = open_download_cache(machine)
            return self._cache

    def close(self) -> None:
        self.registry.dispose()


def open_download_cache(machine: MachineSettings) -> DownloadCache:
    """This machine's download cache, as its settings describe it."""
    return DownloadCache(
        machine.cache_dir,
        machine.cache_max_bytes,
        mode=machine.download_cache,
        verify_always=machine.cache_verify,
    )


def read_manifest(blobs: BlobStore, key: str, label: str, digest: str | None = None) -> Manifest:
    """The manifest stored under ``key``, trusted only once it proves itself (invariant 8).

    Its bytes must hash to ``key`` (manifests are named by their MD5: an edited file no longer
    does), parse as a W&B v1 manifest, and, given the registry's ``digest``, give that digest.
    Anything else is a :class:`ManifestError` naming ``label`` (the version) and what to do.
    """
    url = blobs.url(key)
    fix = "restore it from a backup, or delete the version and log it again"
    try:
        data = blobs.read_bytes(key)
    except FileNotFoundError:
        raise ManifestError(
            f"The manifest of {label} is missing from the store ({url}): {fix}.", url=url
        ) from None
    except StorageError as error:
        raise ManifestError(f"Cannot read the manifest of {label}: {error}", url=url) from error
    if manifest_key(data) != key:
        raise ManifestError(
            f"The manifest of {label} ({url}) was changed after it was committed: its bytes no "
            f"longer hash to its name, so it is not trusted. {fix.capitalize()}.",
            url=url,
        )
    try:
        manifest = Manifest.from_bytes(data)
    except ValueError as error:  # not JSON, or not a manifest's shape (InvalidPathError too)
        raise ManifestError(
            f"The manifest of {label} ({url}) is damaged: {error}. {fix.capitalize()}.", url=url
        ) from error
    if digest is not None and digest not in manifest.accepted_digests():
        raise ManifestError(
            f"The manifest of {label} ({url}) does not give the digest the registry recorded "
            f"({digest}): it is not the one that was committed. {fix.capitalize()}.",
            url=url,
        )
    return manifest
