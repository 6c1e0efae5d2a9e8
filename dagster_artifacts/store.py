"""The store: settings + registry + blob store + download cache: the one object that does the work.

``Run``, ``Api``, ``Artifact`` and the Dagster resource are thin faces over a :class:`Store`; the
operations live in modules of their own (:mod:`.commit`, :mod:`.download`, :mod:`.retention`,
:mod:`.garbage`, :mod:`.lineage`), each taking the store. One store per configuration is shared by
the process (:func:`dagster_artifacts.state.open_store`).
"""

from __future__ import annotations

import threading

from dagster_artifacts.clock import SYSTEM_CLOCK, Clock
from dagster_artifacts.manifest import Manifest
from dagster_artifacts.registry import Registry, VersionRecord
from dagster_artifacts.settings import MachineSettings, Settings
from dagster_artifacts.storage import BlobStore, open_blob_store
from dagster_artifacts.storage.cache import DownloadCache


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
        """The manifest of a committed version (read once, then kept: manifests never change)."""
        assert record.manifest_key, "a committed version always has a manifest"
        cached = self._manifests.get(record.manifest_key)
        if cached is None:
            cached = Manifest.from_bytes(self.blobs.read_bytes(record.manifest_key))
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
