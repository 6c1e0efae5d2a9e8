"""The local download cache: verified blobs kept by digest, shared by every run on the machine.

Downloading the same artifact twice (two runs, two download roots, a re-run after a crash) should
cost one transfer. The cache keeps each stored blob once, under ``<cache dir>/blobs/<algorithm>/
<hex[:2]>/<hex[2:]>``, with an index (:mod:`.cache_index`) of sizes and last use; eviction removes
the least recently used files until the cache fits its byte budget.

Rules that keep it safe:

- Every file enters the cache through a temporary name and a rename, after its digest was checked,
  so a reader never sees a partial or wrong file. Files in the cache are read-only.
- A download root never shares a writable inode with the cache: entries are *copied* out, or,
  when asked (``hardlink``), hard-linked read-only.
- Every file that leaves the cache is hashed on the way out, in the same pass as the copy (for a
  link: just before linking); large files whose stat fingerprint is unchanged since they were
  verified in are trusted (see :meth:`DownloadCache._copy_out`). A cache file damaged on disk,
  or written through a hard link made writable again, is detected, fetched again, never placed.
- The budget is a hard bound: the space for a download's misses is reserved, and the least
  recently used files evicted, before they are fetched; what does not fit in the whole budget
  is not cached but fetched straight to its destination.

Whether a download goes through the cache, its budget and placement are settings
(:class:`dagster_artifacts.settings.CacheSettings`), decided by the caller.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from dagster_artifacts.digests import digest_file
from dagster_artifacts.errors import ChecksumMismatchError, InvalidArgumentError
from dagster_artifacts.storage.cache_index import CacheIndex
from dagster_artifacts.storage.layout import digest_path
from dagster_artifacts.storage.localcopy import (
    SMALL_LIMIT,
    CopyJob,
    copy_trusted,
    copy_verified_many,
)
from dagster_artifacts.storage.pipeline import check_content
from dagster_artifacts.storage.scratch import temp_path_beside
from dagster_artifacts.storage.threads import parallel_map

DEFAULT_MAX_BYTES = 10 * 1000**3
INDEX_NAME = "index.db"
BLOBS_DIR = "blobs"
_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH


@dataclass(frozen=True)
class CacheItem:
    """The bytes of ``digest`` (``size`` bytes) wanted at local path ``dest``."""

    digest: str
    size: int | None
    dest: str


#: ``fetch_many(items, atomic)``: write each item's verified bytes to its ``dest`` in one batch.
FetchMany = Callable[[list[CacheItem], bool], None]


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
    ``mode`` is only reported (``cache info``); ``verify_always`` hashes large files too when
    they leave the cache.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        max_bytes: int = DEFAULT_MAX_BYTES,
        *,
        mode: str = "auto",
        verify_always: bool = False,
    ) -> None:
        self.path = os.path.abspath(os.fspath(path))
        if max_bytes < 0:
            raise InvalidArgumentError(f"Cache size {max_bytes} is negative; give 0 or more bytes.")
        self.max_bytes = max_bytes
        self.mode = mode
        self.verify_always = verify_always
        os.makedirs(os.path.join(self.path, BLOBS_DIR), exist_ok=True)
        self.index = CacheIndex(os.path.join(self.path, INDEX_NAME))

    @staticmethod
    def key(digest: str, algorithm: str = "md5") -> str:
        return digest_path(digest, algorithm)

    def file_path(self, key: str) -> str:
        if os.sep == "/":  # keys are "/"-separated already: one concatenation per file
            return f"{self.path}/{BLOBS_DIR}/{key}"
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
        reservation = self.index.reserve(keep, self.max_bytes)
        self._unlink_all(key for key, _size in reservation.evicted)
        misses, fingerprints = reservation.misses, reservation.fingerprints
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
            keys = [self.key(item.digest, algorithm) for item in targets]
            self.index.forget(key for key in keys if not os.path.exists(self.file_path(key)))
            raise
        recorded = []
        for target in targets:
            try:
                os.chmod(target.dest, _READ_ONLY)
                if (target.size or 0) > SMALL_LIMIT:
                    recorded.append((_fingerprint(target.dest), self.key(target.digest, algorithm)))
            except FileNotFoundError:
                continue  # evicted by another process already: copying it out fetches it again
        self.index.record_fingerprints(recorded)

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
        if not hardlink and fingerprints and not self.verify_always:
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
        for index, failure in failures:
            if not isinstance(failure, (FileNotFoundError, ChecksumMismatchError)):
                raise failure
            again.append(cached[index])
        return again

    def failed_itself(self, error: BaseException) -> bool:
        """Whether ``error`` (or its cause) is the cache's own folder or index refusing work (a
        full or read-only disk): the caller can then do without the cache."""
        seen: BaseException | None = error
        while seen is not None:
            if isinstance(seen, sqlite3.Error):
                return True
            filename = getattr(seen, "filename", None)
            if isinstance(filename, str) and filename.startswith(self.path + os.sep):
                return True
            seen = seen.__cause__ or seen.__context__
        return False

    # -- bookkeeping --------------------------------------------------------------------------
    def info(self) -> CacheInfo:
        totals = self.index.totals()
        return CacheInfo(self.path, totals.files, totals.bytes, self.max_bytes, self.mode)

    def evict(self, max_bytes: int) -> CachePruneResult:
        """Remove least recently used files until the cache holds at most ``max_bytes``."""
        victims = self.index.evict(max_bytes)
        self._unlink_all(key for key, _size in victims)
        totals = self.index.totals()
        return CachePruneResult(
            files_removed=len(victims),
            bytes_freed=sum(size for _key, size in victims),
            files_left=totals.files,
            bytes_left=totals.bytes,
        )

    def prune(self, max_bytes: int) -> CachePruneResult:
        """Shrink the cache to ``max_bytes`` now, and drop files the index does not know (crash
        leftovers)."""
        if max_bytes < 0:
            raise InvalidArgumentError(f"Cache size {max_bytes} is negative; give 0 or more bytes.")
        result = self.evict(max_bytes)
        self._drop_strays()
        return result

    def _drop_strays(self) -> None:
        known = self.index.keys()
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

    def _unlink_all(self, keys: Iterable[str]) -> None:
        for key in keys:
            _unlink(self.file_path(key))


def _fingerprint(path: str) -> str:
    info = os.stat(path)
    return f"{info.st_ino}:{info.st_size}:{info.st_mtime_ns}:{info.st_ctime_ns}"


def _fingerprint_or_none(path: str) -> str | None:
    try:
        return _fingerprint(path)
    except OSError:
        return None


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _link_verified_many(
    jobs: list[CopyJob], algorithm: str, atomic: bool
) -> list[tuple[int, BaseException]]:
    """Hash each cached file, then hard-link it (read-only) at its ``dest``; copy where links fail.

    The hash is what makes a link safe to hand out: the cache file is checked as a copy would be.
    A user can still ``chmod`` a linked file and write through it into the cache; the next use
    of that cache file hashes it again, finds the damage, and fetches it anew.
    """

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
                try:
                    os.replace(target, job.dest)
                except BaseException:
                    _unlink(target)  # never leave the temp link behind
                    raise
            return None
        except BaseException as error:
            return error

    results = parallel_map(one, jobs)
    return [(index, error) for index, error in enumerate(results) if error is not None]
