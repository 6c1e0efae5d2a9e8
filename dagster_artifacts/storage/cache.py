"""The local download cache: verified blobs kept by digest, shared by every run on the machine.

Downloading the same artifact twice (two runs, two download roots, a re-run after a crash) should
cost one transfer. The cache keeps each stored blob once: a small one (up to
:data:`.localcopy.SMALL_LIMIT`) in a segment under ``<cache dir>/segments/`` (many blobs end to
end in one file, see :mod:`.cache_segments`), a large one as a file of its own under
``<cache dir>/blobs/<algorithm>/<hex[:2]>/<hex[2:]>``, with an index (:mod:`.cache_index`) of
places, sizes and last use; eviction removes the least recently used files and segments until
the cache fits its byte budget.

Rules that keep it safe:

- Every file and segment enters the cache through a temporary name and a rename, holding only
  bytes whose digest was checked, so a reader never sees a partial or wrong blob. Files and
  segments in the cache are read-only and never change.
- A download root never shares a writable inode with the cache: entries are *copied* out, or,
  when asked (``hardlink``), large ones and those fetched in that mode hard-linked read-only
  (a blob inside a segment cannot be linked: it is copied).
- Every file that leaves the cache is hashed on the way out, in the same pass as the copy (for a
  link: just before linking); large files whose stat fingerprint is unchanged since they were
  verified in are trusted (see :mod:`.cache_copyout`). A cache file damaged on disk,
  or written through a hard link made writable again, is detected, fetched again, never placed.
- The budget is a hard bound: the space for a download's misses is reserved, and the least
  recently used files evicted, before they are fetched; what does not fit in the whole budget
  is not cached but fetched straight to its destination.

Whether a download goes through the cache, its budget and placement are settings
(:class:`dagster_artifacts.settings.CacheSettings`), decided by the caller.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import stat
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from dagster_artifacts.errors import ChecksumMismatchError, InvalidArgumentError
from dagster_artifacts.storage.cache_copyout import copy_out_many, fingerprint, fingerprint_or_none
from dagster_artifacts.storage.cache_index import CacheIndex, Location, Victim
from dagster_artifacts.storage.cache_segments import SEGMENTS_DIR, Placed, SegmentWriter, add_placed
from dagster_artifacts.storage.cache_sweep import sweep_strays
from dagster_artifacts.storage.layout import digest_path
from dagster_artifacts.storage.localcopy import SMALL_LIMIT, CopyJob
from dagster_artifacts.storage.scratch import temp_path_beside

DEFAULT_MAX_BYTES = 10 * 1000**3
INDEX_NAME = "index.db"
BLOBS_DIR = "blobs"
_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH


@dataclass(frozen=True)
class CacheItem:
    """The bytes of ``digest`` (``size`` bytes) wanted at local path ``dest``.

    ``tee``: set by the cache on items it wants to keep; a fetch that holds an item's verified
    bytes in memory may hand them to it (see :class:`.items.BlobDownload`).
    """

    digest: str
    size: int | None
    dest: str
    tee: Callable[[bytes], None] | None = None


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
class CachedBlob:
    """Where the cache keeps a blob: ``size`` bytes at ``offset`` of ``path`` (a segment), or
    the whole file ``path`` (``offset`` None)."""

    path: str
    offset: int | None
    size: int


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
        self.segments_path = os.path.join(self.path, SEGMENTS_DIR)
        os.makedirs(os.path.join(self.path, BLOBS_DIR), exist_ok=True)
        self.index = CacheIndex(os.path.join(self.path, INDEX_NAME))

    @staticmethod
    def key(digest: str, algorithm: str = "md5") -> str:
        return digest_path(digest, algorithm)

    def file_path(self, key: str) -> str:
        if os.sep == "/":  # keys are "/"-separated already: one concatenation per file
            return f"{self.path}/{BLOBS_DIR}/{key}"
        return os.path.join(self.path, BLOBS_DIR, *key.split("/"))

    def locate(self, digest: str, algorithm: str = "md5") -> CachedBlob | None:
        """Where the cache keeps ``digest`` (None: not cached); does not count as a use."""
        key = self.key(digest, algorithm)
        found = self.index.lookup(key)
        if found is None:
            return None
        size, where = found
        if where is None:
            return CachedBlob(self.file_path(key), None, size)
        return CachedBlob(os.path.join(self.segments_path, where.segment), where.position, size)

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
        2. Small misses are fetched straight to their destinations, and their verified bytes
           (handed over by the fetch, or read back from the file just placed) appended to new
           segments, published in one more transaction. Large misses (and, with ``hardlink``,
           every miss) are fetched into cache files of their own in one batch and made
           read-only.
        3. Hits and large misses are copied out of the cache, checked on the way (see
           :meth:`_copy_out`), or, with ``hardlink``, hashed and then linked read-only. A cached
           file that is missing (evicted by another process) or damaged is fetched into the cache
           again and copied again; if that fails too it is fetched straight to its destination.
           A segment that is missing or damaged is dropped, its blobs fetched straight.

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
        self._remove(reservation.evicted)
        misses = set(reservation.misses)
        locations = reservation.locations
        into_segments: list[tuple[CacheItem, str]] = []
        copied: list[tuple[CacheItem, str]] = []  # hits, and misses fetched into cache files
        for item, key in cached:
            small = not hardlink and (item.size or 0) <= SMALL_LIMIT
            (into_segments if key in misses and small else copied).append((item, key))
        into_files = [item for item, key in copied if key in misses]
        if into_files:
            self._fetch_into_cache(into_files, algorithm, fetch_many)
        if into_segments:
            self._fetch_into_segments(into_segments, algorithm, fetch_many, atomic)
        failed = self._copy_out(
            copied, algorithm, hardlink, atomic, reservation.fingerprints, locations
        )
        if failed:
            direct.extend(self._heal(failed, locations, algorithm, fetch_many, hardlink, atomic))
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
        so that later copies out can trust them without hashing (see :mod:`.cache_copyout`).
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
                    recorded.append((fingerprint(target.dest), self.key(target.digest, algorithm)))
            except FileNotFoundError:
                continue  # evicted by another process already: copying it out fetches it again
        self.index.record_fingerprints(recorded)

    def _heal(
        self,
        failed: list[tuple[CacheItem, str, BaseException]],
        locations: dict[str, Location],
        algorithm: str,
        fetch_many: FetchMany,
        hardlink: bool,
        atomic: bool,
    ) -> list[CacheItem]:
        """What to do with hits that could not be copied out; returns those to fetch straight.

        - In a segment (missing: evicted meanwhile; or damaged): the segment is dropped whole.
        - A small file of its own: missing, it is another process's reservation (that process
          is putting it in a segment of its own, or died doing so); damaged, an older version's
          file. Either way its entry is dropped (a live reservation's owner enters it again
          when it publishes; a dead one's is then fetched into a segment by the next
          download), and it is not fetched into a file again here (that file would duplicate
          the other process's segment).
        - A large file (or one fetched to be hard-linked): fetched into the cache again, once.
        """
        direct: list[CacheItem] = []
        lost = {locations[key].segment for _item, key, _error in failed if key in locations}
        if lost:
            self.index.drop_segments(lost)
            self._unlink_segments(lost)
        dropped: list[str] = []
        damaged: list[str] = []
        refetch: list[tuple[CacheItem, str]] = []
        for item, key, error in failed:
            if key in locations:
                direct.append(item)
            elif not hardlink and (item.size or 0) <= SMALL_LIMIT:
                direct.append(item)
                dropped.append(key)
                if isinstance(error, ChecksumMismatchError):
                    damaged.append(key)
            else:
                refetch.append((item, key))
        if dropped:
            self.index.forget(dropped)
            self._unlink_files(damaged)
        if refetch:
            self._fetch_into_cache([item for item, _key in refetch], algorithm, fetch_many)
            again = self._copy_out(refetch, algorithm, hardlink, atomic, {}, {})
            direct.extend(item for item, _key, _error in again)
        return direct

    def _fetch_into_segments(
        self,
        chosen: list[tuple[CacheItem, str]],
        algorithm: str,
        fetch_many: FetchMany,
        atomic: bool,
    ) -> None:
        """Step 2 for small misses: fetched to their destinations, kept in new segments.

        The fetch hands over the bytes it holds in memory (blobs read from packs); the others
        are read back from their destinations, verified. If the cache folder cannot take them
        (full, read-only), the download is still complete: it is just not cached, and a
        warning says so.
        """
        writer = SegmentWriter(self.segments_path)
        try:
            fetch_many(
                [
                    CacheItem(item.digest, item.size, item.dest, functools.partial(writer.add, key))
                    for item, key in chosen
                ],
                atomic,
            )
        except BaseException:
            writer.discard()
            self.index.forget(key for _item, key in chosen)
            raise
        first = {key: item for item, key in reversed(chosen)}
        add_placed(
            writer,
            [
                Placed(key, item.dest, item.digest, item.size or 0)
                for key, item in first.items()
                if key not in writer.keys
            ],
            algorithm,
        )
        segments = writer.publish()
        stored = {key for segment in segments for key in segment.positions}
        try:
            evicted = self.index.record_segments(
                [(segment.name, segment.size, segment.positions) for segment in segments],
                [key for key in first if key not in stored],
                self.max_bytes,
            )
        except BaseException:
            self._unlink_segments(segment.name for segment in segments)
            raise
        self._remove(evicted)
        if writer.error is not None:
            warnings.warn(
                f"The download cache {self.path} cannot keep this download's files "
                f"({writer.error}); the download is complete but not cached. Free space "
                "there, or set DAGSTER_ARTIFACTS_CACHE=0.",
                RuntimeWarning,
                stacklevel=4,
            )

    def _copy_out(
        self,
        cached: list[tuple[CacheItem, str]],
        algorithm: str,
        hardlink: bool,
        atomic: bool,
        fingerprints: dict[str, str],
        locations: dict[str, Location],
    ) -> list[tuple[CacheItem, str, BaseException]]:
        """Step 3: copies (or links) out of the cache, each checked as
        :mod:`.cache_copyout` says; returns the ones that failed, and why."""
        jobs = [self._job(item, key, locations.get(key)) for item, key in cached]
        trusted: list[int] = []
        linked: list[int] = []
        hashed: list[int] = []
        for index, (_item, key) in enumerate(cached):
            if key in locations:
                hashed.append(index)  # a slice of a segment: small, and cannot be linked
            elif hardlink:
                linked.append(index)
            elif (
                not self.verify_always
                and key in fingerprints
                and fingerprint_or_none(jobs[index].source) == fingerprints[key]
            ):
                trusted.append(index)
            else:
                hashed.append(index)
        failures = copy_out_many(
            jobs, algorithm, atomic, hashed=hashed, linked=linked, trusted=trusted
        )
        failed: list[tuple[CacheItem, str, BaseException]] = []
        for index, failure in failures:
            if not isinstance(failure, (FileNotFoundError, ChecksumMismatchError)):
                raise failure
            item, key = cached[index]
            failed.append((item, key, failure))
        return failed

    def _job(self, item: CacheItem, key: str, where: Location | None) -> CopyJob:
        if where is None:
            return CopyJob(self.file_path(key), item.dest, item.digest, item.size)
        source = os.path.join(self.segments_path, where.segment)
        return CopyJob(source, item.dest, item.digest, item.size, offset=where.position)

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
        self._remove(victims)
        totals = self.index.totals()
        return CachePruneResult(
            files_removed=sum(victim.blobs for victim in victims),
            bytes_freed=sum(victim.bytes for victim in victims),
            files_left=totals.files,
            bytes_left=totals.bytes,
        )

    def prune(self, max_bytes: int) -> CachePruneResult:
        """Shrink the cache to ``max_bytes`` now, and drop files the index does not name (crash
        leftovers, see :mod:`.cache_sweep`)."""
        if max_bytes < 0:
            raise InvalidArgumentError(f"Cache size {max_bytes} is negative; give 0 or more bytes.")
        result = self.evict(max_bytes)
        sweep_strays(
            os.path.join(self.path, BLOBS_DIR),
            self.index.file_keys(),
            self.segments_path,
            self.index.segment_names(),
        )
        return result

    def _remove(self, victims: Iterable[Victim]) -> None:
        """Delete the files and segments the index no longer names."""
        victims = list(victims)
        self._unlink_segments(v.segment for v in victims if v.segment is not None)
        self._unlink_files(v.key for v in victims if v.key is not None)

    def _unlink_segments(self, names: Iterable[str]) -> None:
        for name in names:
            _unlink(os.path.join(self.segments_path, name))

    def _unlink_files(self, keys: Iterable[str]) -> None:
        for key in keys:
            _unlink(self.file_path(key))


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
