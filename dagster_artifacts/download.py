"""Bring a version's files to a local folder, every byte verified, through the cache when on.

A root that does not exist yet is filled as a hidden sibling folder (``.<name>.partial-…``, a
scratch name) and renamed into place when every file is there and verified: files are written
straight to their names (no temp name and rename per file), and the root appears complete or
not at all; a download killed halfway leaves only the hidden folder (the next download into the
same root removes it). Into an existing root, each file is written to a temp name and renamed,
and files already there with the right digest are kept. Either way a file at its final path
always has the right content (invariant 6), and no entry path can escape the root.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import stat
import warnings
from collections.abc import Iterable, Sequence

from dagster_artifacts.digests import digest_file
from dagster_artifacts.errors import ArtifactError, InvalidPathError, StorageError
from dagster_artifacts.manifest import Manifest, ManifestEntry
from dagster_artifacts.progress import watch_folder
from dagster_artifacts.storage import BlobDownload
from dagster_artifacts.storage.cache import CacheItem
from dagster_artifacts.storage.layout import blob_key
from dagster_artifacts.storage.localcopy import make_parents
from dagster_artifacts.storage.references import handler_for, hashes_content
from dagster_artifacts.storage.retry import storage_error
from dagster_artifacts.storage.scratch import partial_folder_beside, sweep_dead_temp_files
from dagster_artifacts.storage.threads import parallel_map
from dagster_artifacts.store import Store

Target = tuple[ManifestEntry, str]

#: Stored files fetched per batch: large enough that a batch fills a few packs' worth of ranged
#: reads (and the cache index gets one transaction per batch), small enough to bound memory.
DOWNLOAD_BATCH = 20_000


def download(
    store: Store,
    manifest: Manifest,
    root: str,
    entries: Iterable[ManifestEntry] | None = None,
    *,
    skip_cache: bool = False,
    label: str = "the artifact",
) -> str:
    """Bring ``entries`` (default: all) of ``manifest`` under ``root``; return ``root``.

    Every failure is a typed error naming ``label`` (the artifact), the entry and the place.
    Callers with many entries spare existing objects from the cyclic collector around it (``state.gc_frozen``).
    """
    chosen = list(manifest.entries.values() if entries is None else entries)
    root_abs = os.path.abspath(root)
    final = safe_targets(root_abs, [entry.path for entry in chosen])  # before any write
    try:
        _download(store, manifest, root_abs, chosen, final, skip_cache)
    except ArtifactError as error:
        raise _in_context(store, error, label, chosen, manifest.digest_algorithm) from error
    except OSError as error:
        raise storage_error(
            f"write into {root_abs}, downloading {label}", root_abs, error
        ) from error
    return root


def _download(
    store: Store,
    manifest: Manifest,
    root_abs: str,
    chosen: list[ManifestEntry],
    final: list[str],
    skip_cache: bool,
) -> None:
    algorithm = manifest.digest_algorithm
    fresh = not os.path.lexists(root_abs)
    todo: Sequence[int] = range(len(chosen))
    if fresh:
        work = partial_folder_beside(root_abs)
        cut = len(root_abs)

        def place(index: int) -> str:
            return work + final[index][cut:]
    else:
        os.makedirs(root_abs, exist_ok=True)
        sweep_dead_temp_files(root_abs)  # what a killed download into this root left behind
        work = root_abs
        current = parallel_map(
            lambda i: is_current(chosen[i], final[i], manifest.algorithm_of(chosen[i])), todo
        )
        todo = [i for i, ok in zip(todo, current, strict=True) if not ok]

        def place(index: int) -> str:
            return final[index]

    try:
        make_parents(place(i) for i in todo)
        total = sum(chosen[i].size or 0 for i in todo)
        with watch_folder(f"Downloading {len(todo)} files", work, total):
            # In batches: what a transfer builds per file (its destination, its request, its
            # place in a pack, its cache slot) then exists for one batch at a time, not for a
            # million files at once.
            for start in range(0, len(todo), DOWNLOAD_BATCH):
                batch = [
                    (chosen[i], place(i))
                    for i in todo[start : start + DOWNLOAD_BATCH]
                    if not chosen[i].is_reference
                ]
                _fetch_stored(store, batch, algorithm, atomic=not fresh, skip_cache=skip_cache)
            parallel_map(
                lambda t: fetch_reference(store, t[0], t[1], manifest.algorithm_of(t[0])),
                [(chosen[i], place(i)) for i in todo if chosen[i].is_reference],
            )
        if fresh:
            _publish(work, root_abs)
    finally:
        if fresh:
            shutil.rmtree(work, ignore_errors=True)


def _in_context(
    store: Store,
    error: ArtifactError,
    label: str,
    entries: list[ManifestEntry],
    algorithm: str,
) -> ArtifactError:
    """``error`` (naming a store URL) restated with the artifact and the entry it concerns."""
    if not isinstance(error, StorageError) or error.url is None:
        return error
    paths = [
        entry.path
        for entry in entries
        if not entry.is_reference
        and store.blobs.url(blob_key(entry.digest, algorithm)) == error.url
    ]
    where = f" (entry {paths[0]!r})" if paths else ""
    return StorageError(f"Downloading {label}{where}: {error}", url=error.url, errno=error.errno)


def _fetch_stored(
    store: Store, targets: list[Target], algorithm: str, *, atomic: bool, skip_cache: bool
) -> None:
    """Stored blobs in one batched transfer, through the download cache when it is on."""
    blobs = store.blobs

    def fetch_many(items: list[CacheItem], atomic: bool) -> None:
        blobs.get_files(
            (
                BlobDownload(
                    blob_key(item.digest, algorithm),
                    item.dest,
                    item.digest,
                    algorithm,
                    item.size,
                    item.tee,
                )
                for item in items
            ),
            atomic=atomic,
        )

    items = [CacheItem(entry.digest, entry.size, dest) for entry, dest in targets]
    cache = None if skip_cache else store.download_cache
    if cache is None:
        fetch_many(items, atomic)
        return
    hardlink = store.settings.machine.cache_link == "hardlink"
    try:
        cache.place_many(items, algorithm, fetch_many, hardlink=hardlink, atomic=atomic)
    except (OSError, sqlite3.Error) as error:
        if not cache.failed_itself(error):
            raise
        # The cache only saves transfers: a full or read-only cache folder must not fail the
        # download. Every file is fetched straight to its place instead (atomically, verified).
        warnings.warn(
            f"The download cache {cache.path} cannot be used ({error}); downloading without "
            "it. Free space there, or set DAGSTER_ARTIFACTS_CACHE=0.",
            RuntimeWarning,
            stacklevel=2,
        )
        fetch_many(items, atomic)


def fetch_reference(store: Store, entry: ManifestEntry, dest: str, algorithm: str) -> str:
    """Bring one reference's bytes to ``dest`` unless a file with the right digest is there."""
    if is_current(entry, dest, algorithm):
        return dest
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    ref = entry.ref or ""
    handler_for(ref, store.blobs.options_for(ref)).load(entry, dest)
    return dest


def is_current(entry: ManifestEntry, dest: str, algorithm: str) -> bool:
    """Whether ``dest`` already holds this entry's bytes (hashed: never trusted by size)."""
    try:
        info = os.stat(dest)
    except OSError:
        return False
    if not stat.S_ISREG(info.st_mode):
        return False
    if entry.size is not None and info.st_size != entry.size:
        return False
    if not hashes_content(entry):
        return False  # an ETag or a URI: nothing to compare a local file against; fetch again
    return digest_file(dest, algorithm)[0] == entry.digest


def safe_targets(root_abs: str, paths: list[str]) -> list[str]:
    """Join each entry path under ``root_abs`` (one ``normpath`` each), refusing any that would
    land outside it."""
    prefix = root_abs.rstrip(os.sep) + os.sep
    join, normpath = os.path.join, os.path.normpath
    targets = []
    for path in paths:
        if _plain(path):
            targets.append(prefix + path)  # what normpath(join(...)) gives, for less
            continue
        target = normpath(join(root_abs, path))
        if not target.startswith(prefix):
            raise InvalidPathError(
                f"Entry path {path!r} would be written outside {root_abs}; refusing."
            )
        targets.append(target)
    return targets


def _plain(path: str) -> bool:
    """Whether ``path`` has nothing :func:`os.path.normpath` would change or resolve: relative,
    no empty, ``.`` or ``..`` part (any part starting with a dot goes the long way), on a
    system whose separator is ``/``."""
    return (
        os.sep == "/"
        and path != ""
        and path[0] not in "/."
        and path[-1] != "/"
        and "//" not in path
        and "/." not in path
    )


def _publish(work: str, root_abs: str) -> None:
    """Rename the filled private folder to ``root_abs``; merge file by file if it appeared
    meanwhile (another download into the same new root finished first: every verified file is
    moved over the existing one by an atomic rename)."""
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
