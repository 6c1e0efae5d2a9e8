"""The local download cache: verified blobs kept by digest, shared by every run on the machine.

Downloading the same artifact twice (two runs, two download roots, a re-run after a crash) should
cost one transfer. The cache keeps each stored blob once, under ``<cache_dir>/blobs/<algorithm>/
<hex[:2]>/<hex[2:]>``, and a small SQLite index (``index.db``) records its size and when it was
last used; eviction removes the least recently *used* files (our own access time, not the
filesystem's atime, which is often disabled or coarse) until the cache fits its byte budget.

Rules that keep it safe:

- Every file enters the cache through a temporary name and a rename, after its digest was checked,
  so a reader never sees a partial or wrong file. Files in the cache are read-only.
- A download root never shares a writable inode with the cache: entries are *copied* out, or,
  when asked (``DAGSTER_ARTIFACTS_CACHE_LINK=hardlink``), hard-linked read-only.
- Every file that leaves the cache is hashed on the way out, in the same pass as the copy (for a
  link: just before linking). A size check alone would be cheaper to write down but not much
  cheaper to run: the bytes are read for the copy anyway, and MD5 of a 4 KiB file costs about
  5 us against the 40-100 us of creating the file, while a large file's hash overlaps its write
  on a second thread. What the hash buys: a cache file damaged on disk, or written through a
  hard link made writable again with ``chmod``, is detected, fetched again, and never placed.
- The budget is a hard bound: the space for a download's misses is reserved, and the least
  recently used files evicted, before they are fetched; what does not fit in the whole budget
  is not cached but fetched straight to its destination.
- Batched: one index transaction per download (look up, stamp as used, reserve, evict), one
  batched fetch of the misses, one multi-threaded pass of verified copies. Not per file.

Configuration (read here, so that the engine needs no settings of its own):

``DAGSTER_ARTIFACTS_CACHE``            ``0`` turns the cache off, ``1`` forces it on even for a local
                                     store; unset (``auto``) uses it for non-local stores only (a
                                     local store already is a local copy), or when hard links
                                     are asked for.
``DAGSTER_ARTIFACTS_CACHE_MAX_BYTES``  budget, e.g. ``10GB`` (default), ``500MiB`` or bytes.
``DAGSTER_ARTIFACTS_CACHE_LINK``       ``copy`` (default) or ``hardlink``: place cached files by a
                                     read-only hard link (same filesystem only; copies otherwise).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from dagster_artifacts.digests import b64_to_hex, digest_file
from dagster_artifacts.errors import ChecksumMismatchError, InvalidArgumentError
from dagster_artifacts.storage.localcopy import (
    SMALL_LIMIT,
    CopyJob,
    copy_trusted,
    copy_verified_many,
)
from dagster_artifacts.storage.verified import check_content, temp_path_beside

ENV_CACHE = "DAGSTER_ARTIFACTS_CACHE"
ENV_CACHE_MAX_BYTES = "DAGSTER_ARTIFACTS_CACHE_MAX_BYTES"
ENV_CACHE_LINK = "DAGSTER_ARTIFACTS_CACHE_LINK"
ENV_CACHE_VERIFY = "DAGSTER_ARTIFACTS_CACHE_VERIFY"
DEFAULT_MAX_BYTES = 10 * 1000**3
INDEX_NAME = "index.db"
BLOBS_DIR = "blobs"
_SQL_VARIABLES = 500  # keys per ``IN (...)``: under SQLite's oldest limit of 999 variables
_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
_RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)  # UPDATE ... RETURNING


@dataclass(frozen=True)
class CacheItem:
    """The bytes of ``digest`` (``size`` bytes) wanted at local path ``dest``."""

    digest: str
    size: int | None
    dest: str


#: ``fetch_many(items, atomic)``: write each item's verified bytes to its ``dest`` in one batch.
FetchMany = Callable[[list[CacheItem], bool], None]


def cache_mode() -> str:
    """``"off"``, ``"on"`` or ``"auto"`` from ``DAGSTER_ARTIFACTS_CACHE``."""
    value = os.environ.get(ENV_CACHE, "").strip().lower()
    if value in ("0", "false", "no", "off"):
        return "off"
    if value in ("1", "true", "yes", "on"):
        return "on"
    return "auto"


def link_mode() -> str:
    """``"copy"`` (default) or ``"hardlink"`` from ``DAGSTER_ARTIFACTS_CACHE_LINK``."""
    value = os.environ.get(ENV_CACHE_LINK, "").strip().lower()
    if value in ("", "copy"):
        return "copy"
    if value in ("hardlink", "link"):
        return "hardlink"
    raise InvalidArgumentError(
        f"{ENV_CACHE_LINK}={value!r} is not a placement mode; use 'copy' (default) or 'hardlink'."
    )


def cache_enabled(store_is_local: bool) -> bool:
    """Whether downloads from this store go through the cache (see the module docstring)."""
    mode = cache_mode()
    if mode == "auto" and store_is_local:
        return link_mode() == "hardlink"  # links come from the cache, never from the store
    return mode != "off"


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
            columns = {row[1] for row in db.execute("PRAGMA table_info(entries)")}
            if "fingerprint" not in columns:  # an index written by an older version
                db.execute("ALTER TABLE entries ADD COLUMN fingerprint TEXT")

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
    def place_many(
        self,
        items: Sequence[CacheItem],
        algorithm: str,
        fetch_many: FetchMany,
        *,
        hardlink: bool = False,
        atomic: bool = True,
    ) -> None:
        """Put the bytes of every item at its ``dest``, through the cache, in one batch.

        ``fetch_many(items, atomic)`` must write each item's verified bytes to its ``dest``
        (``BlobStore.get_files`` does, in one batched transfer). The steps, so that a download of
        10,000 files costs a few index statements, not 10,000 transactions:

        1. One index transaction: which digests are cached (hits) and which are not (misses);
           every one of them is stamped as used now (misses are reserved with their size); the
           least recently used others are evicted until the budget holds. Digests beyond the
           budget (a download bigger than the cache) are not cached at all: fetched straight to
           their destination, so the cache never exceeds its size.
        2. The misses are fetched into the cache in one batch (atomically, verified) and made
           read-only.
        3. Every item is copied out of the cache, checked on the way (see :meth:`_copy_out`), or,
           with ``hardlink``, hashed and then linked read-only. A cached file that is missing (evicted
           by another process) or damaged is fetched into the cache again and copied again; if
           that fails too it is fetched straight to its destination.

        ``atomic=False``: the destinations lie in a private folder published as a whole later
        (see :func:`.localcopy.copy_verified_many`).
        """
        if not items:
            return
        keep: dict[str, int] = {}  # key -> size, in first-use order, within the budget
        room = self.max_bytes
        direct: list[CacheItem] = []
        cached: list[tuple[CacheItem, str]] = []
        for item in items:
            key = self.key(item.digest, algorithm)
            if key not in keep:
                if item.size is None or item.size > room:
                    direct.append(item)
                    continue
                keep[key] = item.size
                room -= item.size
            cached.append((item, key))
        misses, fingerprints = self._reserve(keep)
        if misses:
            by_key = {key: item for item, key in cached}
            self._fetch_into_cache([by_key[key] for key in misses], algorithm, fetch_many)
        failed = self._copy_out(cached, algorithm, hardlink, atomic, fingerprints)
        if failed:  # missing (evicted meanwhile) or damaged: refetch into the cache, once
            self._fetch_into_cache([item for item, _key in failed], algorithm, fetch_many)
            failed = self._copy_out(failed, algorithm, hardlink, atomic, {})
            direct.extend(item for item, _key in failed)
        if direct:
            fetch_many(direct, atomic)

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
        """One file through the cache: :meth:`place_many` for a single ``fetch(path)``.

        ``fetch`` writes the bytes of ``digest`` to the path it is given; the file is checked on
        its way out of the cache.
        """

        def fetch_many(chosen: list[CacheItem], atomic: bool) -> None:
            for item in chosen:
                os.makedirs(os.path.dirname(os.path.abspath(item.dest)), exist_ok=True)
                tmp = temp_path_beside(item.dest)
                try:
                    fetch(tmp)
                    os.replace(tmp, item.dest)
                finally:
                    _unlink(tmp)

        self.place_many([CacheItem(digest, size, dest)], algorithm, fetch_many, hardlink=hardlink)
        return dest

    def _reserve(self, keep: dict[str, int]) -> tuple[list[str], dict[str, str]]:
        """Step 1 (one transaction): stamp ``keep`` as used now.

        Returns the keys not cached, and the recorded fingerprints of the cached large files.
        """
        if not keep:
            return [], {}
        keys = list(keep)
        now = time.time()
        with self._db() as db:
            known: dict[str, tuple[int, str | None]] = {}
            for start in range(0, len(keys), _SQL_VARIABLES):
                chunk = keys[start : start + _SQL_VARIABLES]
                marks = ",".join("?" * len(chunk))
                if _RETURNING:  # stamp and look up the hits in one pass
                    rows = db.execute(
                        f"UPDATE entries SET accessed = ? WHERE key IN ({marks})"
                        " RETURNING key, size, fingerprint",
                        [now, *chunk],
                    )
                else:
                    rows = db.execute(
                        f"SELECT key, size, fingerprint FROM entries WHERE key IN ({marks})", chunk
                    )
                for key, size, fingerprint in rows:
                    known[key] = (size, fingerprint)
            db.executemany(
                "INSERT INTO entries(key, size, accessed) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET size = excluded.size, accessed = excluded.accessed,"
                " fingerprint = CASE WHEN entries.size = excluded.size"
                " THEN entries.fingerprint END",
                [
                    (key, size, now)
                    for key, size in keep.items()
                    if not _RETURNING or key not in known or known[key][0] != size
                ],
            )
            self._evict_in(db, self.max_bytes)
        misses = [key for key, size in keep.items() if key not in known or known[key][0] != size]
        fingerprints = {
            key: fingerprint
            for key, (size, fingerprint) in known.items()
            if fingerprint is not None and keep.get(key) == size
        }
        return misses, fingerprints

    def _fetch_into_cache(
        self, chosen: list[CacheItem], algorithm: str, fetch_many: FetchMany
    ) -> None:
        """Step 2: one batched fetch of ``chosen`` into their cache files, then read-only.

        Large files get their stat fingerprint recorded (after the ``chmod``, which moves ctime)
        so that later copies out can trust them without hashing (see :meth:`_copy_out`).
        """
        targets = [
            CacheItem(item.digest, item.size, self.file_path(self.key(item.digest, algorithm)))
            for item in {item.digest: item for item in chosen}.values()
        ]
        try:
            fetch_many(targets, True)
        except BaseException:
            self._drop_absent([self.key(item.digest, algorithm) for item in targets])
            raise
        recorded = []
        for target in targets:
            os.chmod(target.dest, _READ_ONLY)
            if (target.size or 0) > SMALL_LIMIT:
                recorded.append((_fingerprint(target.dest), self.key(target.digest, algorithm)))
        if recorded:
            with self._db() as db:
                db.executemany("UPDATE entries SET fingerprint = ? WHERE key = ?", recorded)

    def _copy_out(
        self,
        cached: list[tuple[CacheItem, str]],
        algorithm: str,
        hardlink: bool,
        atomic: bool,
        fingerprints: dict[str, str],
    ) -> list[tuple[CacheItem, str]]:
        """Step 3: copies (or links) out of the cache; returns the ones to refetch.

        How a cached file is checked on its way out:

        - Small files (up to :data:`.localcopy.SMALL_LIMIT`) are hashed in the same pass as the
          copy: the bytes are in memory anyway and MD5 of 4 KiB costs about 5 us, far less than
          creating the file.
        - A large file whose stat fingerprint (inode, size, mtime and ctime in ns) is the one
          recorded when it was verified into the cache is copied in the kernel
          (``copy_file_range``, as ``cp`` does) without hashing: it was hashed on the way in,
          and nothing can write to it since without moving its ctime (a write, a ``chmod`` to
          make a hard link writable, a replacement: all change ctime or the inode; no
          unprivileged call can set ctime back). This is the stat cache's rule for logging,
          applied to our own read-only files. Hashing 1 GiB with MD5 takes longer than copying
          it. ``DAGSTER_ARTIFACTS_CACHE_VERIFY=1`` hashes every copy anyway (for disks that can
          rot silently), and any large file whose fingerprint differs is hashed.
        - ``hardlink``: every file is hashed before it is linked.
        """
        jobs = [
            CopyJob(self.file_path(key), item.dest, item.digest, item.size) for item, key in cached
        ]
        trusted: list[int] = []
        if not hardlink and fingerprints and not verify_always():
            for index, (_item, key) in enumerate(cached):
                recorded = fingerprints.get(key)
                if recorded is not None and _fingerprint_or_none(jobs[index].source) == recorded:
                    trusted.append(index)
        chosen = set(trusted)
        hashed = [i for i in range(len(jobs)) if i not in chosen] if trusted else None
        if hardlink:
            failures = _link_verified_many(jobs, algorithm, atomic)
        elif hashed is None:
            failures = copy_verified_many(jobs, algorithm, atomic=atomic)
        else:
            failures = [
                (hashed[i], error)
                for i, error in copy_verified_many(
                    [jobs[i] for i in hashed], algorithm, atomic=atomic
                )
            ]
            for index in trusted:
                try:
                    copy_trusted(jobs[index].source, jobs[index].dest, jobs[index].size, atomic)
                except (FileNotFoundError, ChecksumMismatchError) as error:
                    failures.append((index, error))
        again = []
        for index, error in failures:
            if not isinstance(error, (FileNotFoundError, ChecksumMismatchError)):
                raise error
            again.append(cached[index])
        return again

    def _drop_absent(self, keys: list[str]) -> None:
        """Forget reserved keys whose fetch failed (their file is not there)."""
        absent = [key for key in keys if not os.path.exists(self.file_path(key))]
        with self._db() as db:
            db.executemany("DELETE FROM entries WHERE key = ?", [(key,) for key in absent])

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
        with self._db() as db:
            return self._evict_in(db, max_bytes)

    def _evict_in(self, db: sqlite3.Connection, max_bytes: int) -> CachePruneResult:
        files, total = db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entries").fetchone()
        total = int(total)
        victims: list[tuple[str]] = []
        freed = 0
        if total > max_bytes:
            for key, size in db.execute(
                "SELECT key, size FROM entries ORDER BY accessed, key"
            ).fetchall():
                if total <= max_bytes:
                    break
                victims.append((key,))
                total -= int(size)
                freed += int(size)
            db.executemany("DELETE FROM entries WHERE key = ?", victims)
            for (key,) in victims:
                _unlink(self.file_path(key))
        return CachePruneResult(
            files_removed=len(victims),
            bytes_freed=freed,
            files_left=int(files) - len(victims),
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


def _fingerprint(path: str) -> str:
    info = os.stat(path)
    return f"{info.st_ino}:{info.st_size}:{info.st_mtime_ns}:{info.st_ctime_ns}"


def _fingerprint_or_none(path: str) -> str | None:
    try:
        return _fingerprint(path)
    except OSError:
        return None


def verify_always() -> bool:
    """``DAGSTER_ARTIFACTS_CACHE_VERIFY=1``: hash every file copied out of the cache."""
    return os.environ.get(ENV_CACHE_VERIFY, "").strip().lower() in ("1", "true", "yes", "on")


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
    *,
    atomic: bool = True,
) -> bool:
    """Download stored entries ``(entry, dest)`` via the cache; False if the cache is off.

    The engine's one hook: when this returns False it downloads directly. Misses are fetched
    with one ``blobs.get_files`` call (one batched, concurrent transfer on object stores).
    """
    if not cache_enabled(store_is_local):
        return False
    if not pairs:
        return True
    from dagster_artifacts.storage.blobstore import BlobDownload

    def fetch_many(items: list[CacheItem], atomic: bool) -> None:
        blobs.get_files(
            (
                BlobDownload(
                    blobs.blob_key(item.digest, algorithm),
                    item.dest,
                    item.digest,
                    algorithm,
                    item.size,
                )
                for item in items
            ),
            atomic=atomic,
        )

    download_cache(cache_dir).place_many(
        [CacheItem(entry.digest, entry.size, dest) for entry, dest in pairs],
        algorithm,
        fetch_many,
        hardlink=link_mode() == "hardlink",
        atomic=atomic,
    )
    return True


def _link_verified_many(
    jobs: list[CopyJob], algorithm: str, atomic: bool
) -> list[tuple[int, BaseException]]:
    """Hash each cached file, then hard-link it (read-only) at its ``dest``; copy where links fail.

    The hash is what makes a link safe to hand out: the cache file is checked as a copy would be.
    A user can still ``chmod`` a linked file and write through it into the cache; the next use
    of that cache file hashes it again, finds the damage, and fetches it anew.
    """
    from dagster_artifacts.storage.parallel import parallel_map

    def one(job: CopyJob) -> BaseException | None:
        try:
            actual, size = digest_file(job.source, algorithm)
            check_content(
                actual, size, expected_digest=job.digest, expected_size=job.size, source=job.source
            )
            target = temp_path_beside(job.dest) if atomic else job.dest
            try:
                os.link(job.source, target)
            except OSError as error:
                if isinstance(error, FileNotFoundError):
                    raise
                failure = copy_verified_many([job], algorithm, atomic=atomic)  # another filesystem
                return failure[0][1] if failure else None
            if atomic:
                os.replace(target, job.dest)
            return None
        except BaseException as error:
            return error

    results = parallel_map(one, jobs)
    return [(index, error) for index, error in enumerate(results) if error is not None]
