"""A stat cache: ``(path, device, inode, size, mtime, ctime) -> digest``, per digest algorithm.

Logging a folder that did not change should not read it again. Before a file is hashed we look
up its path; when the file's identity and timestamps still equal what they were when it was
hashed, the recorded digest is used and the file is not opened. The cache is a small SQLite file
(``<cache_dir>/statcache.db``) shared by every process on the machine: WAL mode and a busy
timeout make concurrent readers and writers safe, and every write is one short transaction.

What it can and cannot detect
-----------------------------
A hit needs all of: same absolute path, same device and inode (a file replaced by rename or
re-created is a miss), same size, same ``mtime_ns`` and same ``ctime_ns``. ``ctime`` is the key to
``os.utime``: a program can set ``mtime`` back to its old value after changing a file, but the
kernel then sets ``ctime`` to now, and no unprivileged call can set ``ctime``. So the cache is
fooled only by a change that keeps size, inode, ``mtime`` *and* ``ctime``: a clock moved back, a
raw disk edit, or a filesystem that does not keep ``ctime`` (some FUSE and network mounts).
Whoever must exclude even that can turn the cache off (``DAGSTER_ARTIFACTS_STAT_CACHE=0``).

Racy entries (git's "racy clean" rule): a file written in the same timestamp tick as the moment
we hashed it could be written again after our read without its ``mtime`` changing. So each entry
records when the hash began, and an entry whose ``mtime``/``ctime`` is not older than that
moment by more than the timestamp granularity (:data:`RACY_WINDOW_NS`, 2 s, which also covers
FAT and SMB) is not trusted: the file is hashed again, and the fresh entry becomes trustworthy
once the file has aged.

The cache only ever *saves* work: any SQLite error (read-only or full disk, corrupt file) turns
it into a no-op for the rest of the process, and hashing proceeds as if it did not exist. It is
turned off with ``DAGSTER_ARTIFACTS_STAT_CACHE=0`` (:class:`~dagster_artifacts.settings.MachineSettings`).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import warnings
from array import array
from collections.abc import Iterable, Iterator
from typing import NamedTuple, overload

from dagster_artifacts.clock import SYSTEM_CLOCK, Clock
from dagster_artifacts.localdb import LocalDatabase
from dagster_artifacts.settings import ENV_STAT_CACHE
from dagster_artifacts.stathelper import COLUMN_TYPECODES

FILE_NAME = "statcache.db"
RACY_WINDOW_NS = 2_000_000_000
MAX_ENTRIES = 2_000_000  # about 300 MB of SQLite; the oldest-hashed entries go first
_LOOKUP_BATCH = 500  # below SQLite's default limit of host parameters
_RANGE_BATCH = 2_000  # sorted paths looked up by one range query
_RANGE_SLACK = 4  # a range may hold this many times its batch before keys are asked instead
_LOOKUP_COLUMNS = "path, device, inode, size, mtime_ns, ctime_ns, digest, hashed_at_ns"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS stat_cache (
    path TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    device INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    digest TEXT NOT NULL,
    hashed_at_ns INTEGER NOT NULL,
    PRIMARY KEY (path, algorithm)
) WITHOUT ROWID
"""


#: A file's stat as a plain tuple: device, inode, size, mtime_ns, ctime_ns (a FileStat's fields).
StatRow = tuple[int, int, int, int, int]


class FileStat(NamedTuple):
    """The parts of ``os.stat`` that identify one state of a file's content.

    A named tuple, not a dataclass: tens of thousands are built and compared per ``add_dir``,
    and tuple construction and equality run in C.
    """

    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStat:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class FileStats:
    """Many files' :class:`FileStat`, kept as five 64-bit columns: 40 bytes a file instead of
    about 250 as objects (a tuple and five ints), which for a million files is the difference
    between 40 MB and 250 MB. An item comes out as a :class:`FileStat`, made when asked for;
    a slice is a :class:`FileStats` of its own (columns still), and :meth:`rows` gives plain
    tuples for bulk comparisons."""

    def __init__(self, columns: tuple[array[int], ...] | None = None) -> None:
        # device, inode, size, mtime_ns, ctime_ns (times before 1970 are negative)
        self._columns = columns or tuple(array(typecode) for typecode in COLUMN_TYPECODES)

    def append(self, st: os.stat_result) -> None:
        device, inode, size, mtime, ctime = self._columns
        device.append(st.st_dev)
        inode.append(st.st_ino)
        size.append(st.st_size)
        mtime.append(st.st_mtime_ns)
        ctime.append(st.st_ctime_ns)

    @classmethod
    def of_paths(cls, paths: Iterable[str]) -> FileStats:
        stats = cls()
        for path in paths:
            stats.append(os.stat(path))
        return stats

    def total_size(self) -> int:
        return sum(self._columns[2])

    @property
    def columns(self) -> tuple[array[int], ...]:
        """device, inode, size, mtime_ns, ctime_ns: one array each, in file order."""
        return self._columns

    @property
    def sizes(self) -> array[int]:
        """The size column: ``sizes[i]`` without building the i-th :class:`FileStat`."""
        return self._columns[2]

    def rows(self) -> Iterator[StatRow]:
        """Each file's stat as a plain tuple (equal to its :class:`FileStat`), built in C."""
        return zip(*self._columns, strict=True)

    def __len__(self) -> int:
        return len(self._columns[0])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FileStats) and self._columns == other._columns

    __hash__ = None  # type: ignore[assignment]  # mutable, like a list

    @overload
    def __getitem__(self, index: int) -> FileStat: ...

    @overload
    def __getitem__(self, index: slice) -> FileStats: ...

    def __getitem__(self, index: int | slice) -> FileStat | FileStats:
        if isinstance(index, slice):
            return FileStats(tuple(column[index] for column in self._columns))
        return FileStat(*(column[index] for column in self._columns))


class StatCache:
    """Digests of files that were already hashed, keyed by path and algorithm.

    Thread-safe (one connection per thread) and process-safe (SQLite WAL, busy timeout).
    ``clock`` stamps when a hash begins (:meth:`now_ns`), the moment racy entries are judged by.
    """

    def __init__(
        self, path: str, *, window_ns: int = RACY_WINDOW_NS, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.path = path
        self.window_ns = window_ns
        self.clock = clock
        self.database = LocalDatabase(path, timeout=30.0)
        self._broken = False
        self._lock = threading.Lock()
        with self._guard():
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            connection = self._connection()
            if connection is not None:
                connection.execute(_SCHEMA)
                self._prune()

    def now_ns(self) -> int:
        """The moment a hash begins, on the clock the filesystem stamps ``mtime`` with."""
        return self.clock.time_ns()

    # -- public -------------------------------------------------------------------------------
    def lookup_many(self, files: Iterable[tuple[str, StatRow]], algorithm: str) -> dict[str, str]:
        """Trusted digests for those of ``files`` (absolute path, current stat) that are known.

        The paths are looked up sorted, a range of them per query: an index range scan, where
        a list of keys costs one index search each (a million files: a third of the time). A
        range holding many more cached paths than asked for (another tree interleaved) is
        asked for by its keys instead, so no query reads more than a few times its batch.
        """
        found: dict[str, str] = {}
        wanted = dict(files)
        if self._broken or not wanted:
            return found
        paths = sorted(wanted)
        window = self.window_ns
        with self._guard():
            connection = self._connection()
            if connection is None:
                return found
            for start in range(0, len(paths), _RANGE_BATCH):
                batch = paths[start : start + _RANGE_BATCH]
                limit = _RANGE_SLACK * len(batch)
                rows = connection.execute(
                    f"SELECT {_LOOKUP_COLUMNS} FROM stat_cache "
                    "WHERE path BETWEEN ? AND ? AND algorithm = ? LIMIT ?",
                    (batch[0], batch[-1], algorithm, limit + 1),
                ).fetchall()
                if len(rows) > limit:
                    rows = self._rows_of(connection, batch, algorithm)
                for path, device, inode, size, mtime_ns, ctime_ns, digest, hashed_at in rows:
                    # Same stat, and not racy: changed more than the window before the hash
                    # began (see the module's docstring). A million files pass here.
                    if wanted.get(path) == (device, inode, size, mtime_ns, ctime_ns) and (
                        max(mtime_ns, ctime_ns) + window < hashed_at
                    ):
                        found[path] = digest
        return found

    @staticmethod
    def _rows_of(
        connection: sqlite3.Connection, paths: list[str], algorithm: str
    ) -> list[tuple[str, int, int, int, int, int, str, int]]:
        rows = []
        for start in range(0, len(paths), _LOOKUP_BATCH):
            batch = paths[start : start + _LOOKUP_BATCH]
            marks = ",".join("?" * len(batch))
            rows.extend(
                connection.execute(
                    f"SELECT {_LOOKUP_COLUMNS} FROM stat_cache "
                    f"WHERE algorithm = ? AND path IN ({marks})",
                    [algorithm, *batch],
                ).fetchall()
            )
        return rows

    def lookup(self, path: str, stat: FileStat, algorithm: str) -> str | None:
        return self.lookup_many([(path, stat)], algorithm).get(path)

    def record_many(
        self, records: Iterable[tuple[str, FileStat, str, int]], algorithm: str
    ) -> None:
        """Remember ``(absolute path, stat before hashing, digest, hash start time_ns)``.

        Racy entries are recorded too: they are refused on lookup until a later hash, made once
        the file has aged, replaces them.
        """
        if self._broken:
            return
        rows = [
            (
                path,
                algorithm,
                s.device,
                s.inode,
                s.size,
                s.mtime_ns,
                s.ctime_ns,
                digest,
                hashed_at,
            )
            for path, s, digest, hashed_at in records
        ]
        if not rows:
            return
        with self._guard():
            if self._broken:
                return
            with self.database.transaction() as connection:
                connection.executemany(
                    "INSERT OR REPLACE INTO stat_cache (path, algorithm, device, inode, size, "
                    "mtime_ns, ctime_ns, digest, hashed_at_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )

    def __len__(self) -> int:
        with self._guard():
            connection = self._connection()
            if connection is None:
                return 0
            return int(connection.execute("SELECT COUNT(*) FROM stat_cache").fetchone()[0])

    def close(self) -> None:
        self.database.close()

    # -- plumbing -----------------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection | None:
        return None if self._broken else self.database.connection()

    def _prune(self) -> None:
        with self.database.transaction() as connection:
            (count,) = connection.execute("SELECT COUNT(*) FROM stat_cache").fetchone()
            if count > MAX_ENTRIES:
                connection.execute(
                    "DELETE FROM stat_cache WHERE (path, algorithm) IN (SELECT path, algorithm "
                    "FROM stat_cache ORDER BY hashed_at_ns LIMIT ?)",
                    (count - MAX_ENTRIES,),
                )

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn any SQLite or filesystem failure into a disabled cache, with one warning."""
        try:
            yield
        except (sqlite3.Error, OSError) as error:
            with self._lock:
                if not self._broken:
                    self._broken = True
                    warnings.warn(
                        f"The stat cache {self.path} is unusable ({error}); files are hashed "
                        f"without it. Delete the file, or set {ENV_STAT_CACHE}=0 to silence this.",
                        RuntimeWarning,
                        stacklevel=3,
                    )
