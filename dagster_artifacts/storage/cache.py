"""The local download cache: verified blobs kept by digest, shared by every run on the machine.

Downloading the same artifact twice (two runs, two download roots, a re-run after a crash) should
cost one transfer. The cache keeps each stored blob once, under ``<cache_dir>/blobs/<algorithm>/
<hex[:2]>/<hex[2:]>``, and a small SQLite index (``index.db``) records its size and when it was
last used; eviction removes the least recently *used* files (our own access time, not the
filesystem's atime, which is often disabled or coarse) until the cache fits its byte budget.

Rules that keep it safe:

- Every file enters the cache through a temporary name and a rename, after its digest was checked,
  so a reader never sees a partial or wrong file. Files in the cache are read-only.
- A download root never shares a writable inode with the cache: entries are *copied* out (and the
  copy is hashed again on the way, so a damaged cache file is detected, dropped and refetched), or,
  when asked, hard-linked read-only.
- The budget is a hard bound: after every insertion the least recently used files are evicted
  until the total is at most ``max_bytes``; a file bigger than the whole budget is not kept.

Configuration (read here, so that the engine needs no settings of its own):

``DAGSTER_ARTIFACTS_CACHE``            ``0`` turns the cache off, ``1`` forces it on even for a local
                                     store; unset (``auto``) uses it for non-local stores only (a
                                     local store already is a local copy).
``DAGSTER_ARTIFACTS_CACHE_MAX_BYTES``  budget, e.g. ``10GB`` (default), ``500MiB`` or bytes.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from dagster_artifacts.digests import b64_to_hex
from dagster_artifacts.errors import ChecksumMismatchError, InvalidArgumentError
from dagster_artifacts.storage.verified import iter_stream, temp_path_beside, write_verified

ENV_CACHE = "DAGSTER_ARTIFACTS_CACHE"
ENV_CACHE_MAX_BYTES = "DAGSTER_ARTIFACTS_CACHE_MAX_BYTES"
DEFAULT_MAX_BYTES = 10 * 1000**3
INDEX_NAME = "index.db"
BLOBS_DIR = "blobs"


def cache_mode() -> str:
    """``"off"``, ``"on"`` or ``"auto"`` from ``DAGSTER_ARTIFACTS_CACHE``."""
    value = os.environ.get(ENV_CACHE, "").strip().lower()
    if value in ("0", "false", "no", "off"):
        return "off"
    if value in ("1", "true", "yes", "on"):
        return "on"
    return "auto"


def cache_enabled(store_is_local: bool) -> bool:
    """Whether downloads from this store go through the cache (see the module docstring)."""
    mode = cache_mode()
    return mode == "on" or (mode == "auto" and not store_is_local)


def max_bytes_from_env() -> int:
    """The byte budget from ``DAGSTER_ARTIFACTS_CACHE_MAX_BYTES`` (default 10 GB)."""
    raw = os.environ.get(ENV_CACHE_MAX_BYTES, "").strip()
    if not raw:
        return DEFAULT_MAX_BYTES
    from dagster_artifacts.lifecycle import parse_size

    return parse_size(raw)


@dataclass(frozen=True)
class CacheInfo:
    """What ``dagster-artifacts cache info`` shows."""

    path: str
    files: int
    bytes: int
    max_bytes: int
    enabled: str


@dataclass(frozen=True)
class CachePruneResult:
    files_removed: int
    bytes_freed: int
    files_left: int
    bytes_left: int


class DownloadCache:
    """A byte-bounded, LRU, digest-keyed cache of verified blobs in ``path``.

    Safe to share between threads and processes: the index is SQLite (WAL, busy timeout), files
    appear by atomic rename, and an evicted file that another process is copying stays readable
    through its open handle (or the copy fails with FileNotFoundError and is fetched again).
    """

    def __init__(self, path: str | os.PathLike[str], max_bytes: int | None = None) -> None:
        self.path = os.path.abspath(os.fspath(path))
        if max_bytes is not None and max_bytes < 0:
            raise InvalidArgumentError(f"Cache size {max_bytes} is negative; give 0 or more bytes.")
        self.max_bytes = max_bytes_from_env() if max_bytes is None else max_bytes
        os.makedirs(os.path.join(self.path, BLOBS_DIR), exist_ok=True)
        self._local = threading.local()
        with self._db() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS entries ("
                " key TEXT PRIMARY KEY, size INTEGER NOT NULL, accessed REAL NOT NULL)"
            )
            db.execute("CREATE INDEX IF NOT EXISTS ix_entries_accessed ON entries(accessed)")

    # -- index ------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """One connection per thread; each ``with`` block is one immediate transaction."""
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(
                os.path.join(self.path, INDEX_NAME), timeout=60, isolation_level=None
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            self._local.connection = connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    @staticmethod
    def key(digest: str, algorithm: str = "md5") -> str:
        hex_digest = b64_to_hex(digest)
        return f"{algorithm}/{hex_digest[:2]}/{hex_digest[2:]}"

    def file_path(self, key: str) -> str:
        return os.path.join(self.path, BLOBS_DIR, *key.split("/"))

    # -- the main operation ---------------------------------------------------------------------------
    def get_or_fetch(
        self,
        digest: str,
        algorithm: str,
        size: int | None,
        fetch: Callable[[str], None],
    ) -> str:
        """The cached file for ``digest``, fetching it first if needed (``fetch(tmp_path)``).

        ``fetch`` must write the verified bytes to the path it is given (as
        ``BlobStore.get_file`` does). The returned path is read-only; copy it with
        :meth:`place`, never hand it to a user. With a budget smaller than the file, the file is
        still returned but removed again by the next eviction.
        """
        key = self.key(digest, algorithm)
        target = self.file_path(key)
        if self._usable(target, size):
            self._touch(key, size if size is not None else os.path.getsize(target))
            return target
        os.makedirs(os.path.dirname(target), exist_ok=True)
        tmp = temp_path_beside(target)
        try:
            fetch(tmp)
            actual = os.path.getsize(tmp)
            if size is not None and actual != size:
                raise ChecksumMismatchError(
                    f"Fetched {actual} bytes for {digest} but the manifest says {size}; the "
                    "stored object changed or is damaged. Re-log the artifact from a good copy."
                )
            os.chmod(tmp, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        self._touch(key, actual)
        return target

    def place(
        self,
        digest: str,
        algorithm: str,
        size: int | None,
        dest: str,
        fetch: Callable[[str], None],
        *,
        hardlink: bool = False,
    ) -> str:
        """Put the bytes of ``digest`` at ``dest`` through the cache, then keep within budget.

        The copy is hashed as it is written, so a cache file damaged on disk is detected: it is
        dropped and fetched again once. ``hardlink=True`` links the (read-only) cache file
        instead of copying, where the filesystem allows it.
        """
        for attempt in (1, 2):
            cached = self.get_or_fetch(digest, algorithm, size, fetch)
            try:
                if hardlink and self._link(cached, dest, digest, algorithm):
                    break
                with open(cached, "rb") as stream:
                    write_verified(
                        iter_stream(stream),
                        dest,
                        expected_digest=digest,
                        algorithm=algorithm,
                        expected_size=size,
                        source=cached,
                    )
                break
            except (FileNotFoundError, ChecksumMismatchError):
                self._forget(self.key(digest, algorithm))
                if attempt == 2:
                    raise
        self.evict(self.max_bytes)
        return dest

    def _link(self, cached: str, dest: str, digest: str, algorithm: str) -> bool:
        from dagster_artifacts.digests import digest_file

        if digest_file(cached, algorithm)[0] != digest:
            raise ChecksumMismatchError(f"{cached}: cache file is damaged; fetching it again.")
        os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
        tmp = temp_path_beside(dest)
        try:
            os.link(cached, tmp)
        except OSError:
            return False  # another filesystem, or links not allowed: copy instead
        os.replace(tmp, dest)
        return True

    @staticmethod
    def _usable(target: str, size: int | None) -> bool:
        try:
            actual = os.path.getsize(target)
        except OSError:
            return False
        return size is None or actual == size

    def _touch(self, key: str, size: int) -> None:
        with self._db() as db:
            db.execute(
                "INSERT INTO entries(key, size, accessed) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET size = excluded.size, accessed = excluded.accessed",
                (key, size, time.time()),
            )

    def _forget(self, key: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM entries WHERE key = ?", (key,))
            _unlink(self.file_path(key))

    # -- bookkeeping --------------------------------------------------------------------------------
    def info(self) -> CacheInfo:
        with self._db() as db:
            files, total = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entries"
            ).fetchone()
        return CacheInfo(
            path=self.path,
            files=int(files),
            bytes=int(total),
            max_bytes=self.max_bytes,
            enabled=cache_mode(),
        )

    def evict(self, max_bytes: int) -> CachePruneResult:
        """Remove least recently used files until the cache holds at most ``max_bytes``."""
        removed = 0
        freed = 0
        with self._db() as db:
            files, total = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entries"
            ).fetchone()
            total = int(total)
            if total > max_bytes:
                for key, size in db.execute(
                    "SELECT key, size FROM entries ORDER BY accessed, key"
                ).fetchall():
                    if total <= max_bytes:
                        break
                    db.execute("DELETE FROM entries WHERE key = ?", (key,))
                    _unlink(self.file_path(key))
                    total -= int(size)
                    freed += int(size)
                    removed += 1
        return CachePruneResult(
            files_removed=removed,
            bytes_freed=freed,
            files_left=int(files) - removed,
            bytes_left=total,
        )

    def prune(self, max_bytes: int) -> CachePruneResult:
        """Shrink the cache to ``max_bytes`` now, and drop files the index does not know (crash leftovers)."""
        if max_bytes < 0:
            raise InvalidArgumentError(f"Cache size {max_bytes} is negative; give 0 or more bytes.")
        result = self.evict(max_bytes)
        self._drop_strays()
        return result

    def _drop_strays(self) -> None:
        with self._db() as db:
            known = {key for (key,) in db.execute("SELECT key FROM entries")}
            base = os.path.join(self.path, BLOBS_DIR)
            now = time.time()
            for directory, _dirs, files in os.walk(base):
                for name in files:
                    full = os.path.join(directory, name)
                    key = os.path.relpath(full, base).replace(os.sep, "/")
                    if key in known:
                        continue
                    with contextlib.suppress(OSError):
                        if now - os.path.getmtime(full) > 3600:  # not someone's download in flight
                            _unlink(full)


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


_CACHES: dict[tuple[str, int], DownloadCache] = {}
_CACHES_LOCK = threading.Lock()


def download_cache(path: str, max_bytes: int | None = None) -> DownloadCache:
    """The process-wide :class:`DownloadCache` for ``path`` (one index connection per thread)."""
    budget = max_bytes_from_env() if max_bytes is None else max_bytes
    with _CACHES_LOCK:
        cache = _CACHES.get((os.path.abspath(path), budget))
        if cache is None:
            cache = DownloadCache(path, budget)
            _CACHES[(os.path.abspath(path), budget)] = cache
        return cache


def fetch_through_cache(
    blobs: Any,
    pairs: list[tuple[Any, str]],
    algorithm: str,
    cache_dir: str,
    store_is_local: bool,
) -> bool:
    """Download stored entries ``(entry, dest)`` via the cache; False if the cache is off.

    The engine's one hook: when this returns False it downloads directly as before.
    """
    if not cache_enabled(store_is_local):
        return False
    if not pairs:
        return True
    from dagster_artifacts.storage.parallel import parallel_map

    cache = download_cache(cache_dir)

    def one(pair: tuple[Any, str]) -> str:
        entry, dest = pair
        key = blobs.blob_key(entry.digest, algorithm)

        def fetch(tmp: str) -> None:
            blobs.get_file(key, tmp, digest=entry.digest, algorithm=algorithm, size=entry.size)

        return cache.place(entry.digest, algorithm, entry.size, dest, fetch)

    parallel_map(one, pairs)
    return True
