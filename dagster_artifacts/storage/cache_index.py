"""The download cache's index: which blobs are cached, where, their size, when each was last used.

A small SQLite file (``<cache dir>/index.db``) shared by every process of the machine. Every
operation is one short ``BEGIN IMMEDIATE`` transaction, so a download of 10,000 files costs a
few statements, not 10,000 transactions. Recency is our own access time (not the filesystem's
atime, which is often disabled or coarse).

Two tables. ``entries``: one row per cached blob (key, size, last use; for a blob kept in a
segment, the segment's name and the blob's position in it; for a large blob kept as a file of
its own, the stat fingerprint recorded when it was verified in). ``segments``: one row per
segment file with its size on disk. The cache's size is the sum of its file entries and of its
segments, so bytes of a segment that no entry points to any more (a blob moved to another
segment by a concurrent download) still count until the segment goes. The unit of eviction is a
file entry or a whole segment, whose recency is its most recently used blob's.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from dagster_artifacts.localdb import LocalDatabase

_SQL_VARIABLES = 500  # keys per ``IN (...)``: under SQLite's oldest limit of 999 variables
_RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)  # UPDATE ... RETURNING
_ADDED_COLUMNS = (("fingerprint", "TEXT"), ("segment", "TEXT"), ("position", "INTEGER"))


@dataclass(frozen=True)
class Location:
    """Where a cached blob lies inside a segment file."""

    segment: str
    position: int


@dataclass(frozen=True)
class Victim:
    """What an eviction removed: a file entry (``key``) or a whole segment (``segment``)."""

    key: str | None
    segment: str | None
    bytes: int
    blobs: int


@dataclass(frozen=True)
class Reservation:
    """What :meth:`CacheIndex.reserve` found: keys to fetch, where the hits are, evictions."""

    misses: list[str]
    fingerprints: dict[str, str]
    evicted: list[Victim]
    locations: dict[str, Location] = field(default_factory=dict)


@dataclass(frozen=True)
class Totals:
    files: int
    bytes: int


class CacheIndex:
    def __init__(self, path: str) -> None:
        self.database = LocalDatabase(path)
        with self.database.transaction() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS entries ("
                " key TEXT PRIMARY KEY, size INTEGER NOT NULL, accessed REAL NOT NULL)"
            )
            # Eviction ranks files and whole segments (a GROUP BY), which an index on the
            # last use cannot serve; keeping one only made stamping 10,000 hits slower.
            db.execute("DROP INDEX IF EXISTS ix_entries_accessed")
            columns = {row[1] for row in db.execute("PRAGMA table_info(entries)")}
            for column, kind in _ADDED_COLUMNS:
                if column not in columns:  # an index written by an older version
                    db.execute(f"ALTER TABLE entries ADD COLUMN {column} {kind}")
            db.execute("CREATE INDEX IF NOT EXISTS ix_entries_segment ON entries(segment)")
            db.execute(
                "CREATE TABLE IF NOT EXISTS segments (name TEXT PRIMARY KEY, bytes INTEGER NOT NULL)"
            )

    def reserve(self, keep: dict[str, int], max_bytes: int) -> Reservation:
        """Stamp ``keep`` (key -> size) as used now, in one transaction, and evict the least
        recently used others until ``max_bytes`` holds.

        Keys not cached (or cached with another size) come back as misses, reserved with their
        size as file entries; hits come back with their segment location, or (large files) the
        fingerprint recorded when they were verified.
        """
        keys = list(keep)
        now = time.time()
        known: dict[str, tuple[int, str | None, str | None, int | None]] = {}
        with self.database.transaction() as db:
            for start in range(0, len(keys), _SQL_VARIABLES):
                chunk = keys[start : start + _SQL_VARIABLES]
                marks = ",".join("?" * len(chunk))
                if _RETURNING:  # stamp and look up the hits in one pass
                    rows = db.execute(
                        f"UPDATE entries SET accessed = ? WHERE key IN ({marks})"
                        " RETURNING key, size, fingerprint, segment, position",
                        [now, *chunk],
                    )
                else:
                    rows = db.execute(
                        "SELECT key, size, fingerprint, segment, position FROM entries"
                        f" WHERE key IN ({marks})",
                        chunk,
                    )
                for key, size, fingerprint, segment, position in rows:
                    known[key] = (size, fingerprint, segment, position)
            db.executemany(
                "INSERT INTO entries(key, size, accessed) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET accessed = excluded.accessed,"
                " fingerprint = CASE WHEN entries.size = excluded.size"
                " THEN entries.fingerprint END,"
                " segment = CASE WHEN entries.size = excluded.size THEN entries.segment END,"
                " position = CASE WHEN entries.size = excluded.size THEN entries.position END,"
                " size = excluded.size",
                [
                    (key, size, now)
                    for key, size in keep.items()
                    if not _RETURNING or key not in known or known[key][0] != size
                ],
            )
            evicted = self._evict_in(db, max_bytes)
        misses = [key for key, size in keep.items() if key not in known or known[key][0] != size]
        fingerprints: dict[str, str] = {}
        locations: dict[str, Location] = {}
        for key, (size, fingerprint, segment, position) in known.items():
            if keep.get(key) != size:
                continue
            if segment is not None and position is not None:
                locations[key] = Location(segment, position)
            elif fingerprint is not None:
                fingerprints[key] = fingerprint
        return Reservation(misses, fingerprints, evicted, locations)

    def record_fingerprints(self, fingerprints: Iterable[tuple[str, str]]) -> None:
        """``(fingerprint, key)`` pairs of files just verified into the cache."""
        rows = list(fingerprints)
        if rows:
            with self.database.transaction() as db:
                db.executemany("UPDATE entries SET fingerprint = ? WHERE key = ?", rows)

    def record_segments(
        self,
        segments: Iterable[tuple[str, int, dict[str, tuple[int, int]]]],
        unstored: Iterable[str],
        max_bytes: int,
    ) -> list[Victim]:
        """Segments just published (``(name, bytes, {key: (position, size)})``) and the blobs
        in them.

        A reserved entry moves into its segment. An entry that another process evicted
        meanwhile is entered again (its bytes are on disk); one that another process already
        put in a segment of its own keeps that place, and its bytes here count in this
        segment's size. Reserved entries that did not make it into a segment (``unstored``)
        are dropped. Then the budget is enforced again; returns what that evicted.
        """
        now = time.time()
        with self.database.transaction() as db:
            db.executemany(
                "DELETE FROM entries WHERE key = ? AND segment IS NULL", [(k,) for k in unstored]
            )
            for name, size, positions in segments:
                db.execute("INSERT INTO segments(name, bytes) VALUES (?, ?)", (name, size))
                db.executemany(
                    "INSERT INTO entries(key, size, accessed, segment, position)"
                    " VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT(key) DO UPDATE SET segment = excluded.segment,"
                    " position = excluded.position, fingerprint = NULL"
                    " WHERE entries.segment IS NULL AND entries.size = excluded.size",
                    [(key, length, now, name, at) for key, (at, length) in positions.items()],
                )
            return self._evict_in(db, max_bytes)

    def forget(self, keys: Iterable[str]) -> None:
        """Drop file entries (reserved ones whose fetch failed, or whose file is gone)."""
        rows = [(key,) for key in keys]
        if rows:
            with self.database.transaction() as db:
                db.executemany("DELETE FROM entries WHERE key = ? AND segment IS NULL", rows)

    def drop_segments(self, names: Iterable[str]) -> None:
        """Forget whole segments (found damaged or missing) and every entry in them."""
        rows = [(name,) for name in set(names)]
        if rows:
            with self.database.transaction() as db:
                db.executemany("DELETE FROM entries WHERE segment = ?", rows)
                db.executemany("DELETE FROM segments WHERE name = ?", rows)

    def totals(self) -> Totals:
        with self.database.transaction() as db:
            return Totals(*self._totals_in(db))

    def lookup(self, key: str) -> tuple[int, Location | None] | None:
        """Size and place (None: a file of its own) of a cached key, without stamping it."""
        with self.database.transaction() as db:
            row = db.execute(
                "SELECT size, segment, position FROM entries WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        size, segment, position = row
        return int(size), None if segment is None else Location(segment, int(position))

    def file_keys(self) -> set[str]:
        """Keys of the entries kept as files of their own."""
        with self.database.transaction() as db:
            return {key for (key,) in db.execute("SELECT key FROM entries WHERE segment IS NULL")}

    def segment_names(self) -> set[str]:
        with self.database.transaction() as db:
            return {name for (name,) in db.execute("SELECT name FROM segments")}

    def evict(self, max_bytes: int) -> list[Victim]:
        """Evict least recently used files and segments until the total fits ``max_bytes``."""
        with self.database.transaction() as db:
            return self._evict_in(db, max_bytes)

    @staticmethod
    def _totals_in(db: sqlite3.Connection) -> tuple[int, int]:
        files, loose = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN segment IS NULL THEN size END), 0)"
            " FROM entries"
        ).fetchone()
        (packed,) = db.execute("SELECT COALESCE(SUM(bytes), 0) FROM segments").fetchone()
        return int(files), int(loose) + int(packed)

    @classmethod
    def _evict_in(cls, db: sqlite3.Connection, max_bytes: int) -> list[Victim]:
        _files, total = cls._totals_in(db)
        victims: list[Victim] = []
        if total <= max_bytes:
            return victims
        units = db.execute(
            "SELECT accessed, key, NULL, size, 1 FROM entries WHERE segment IS NULL"
            " UNION ALL"
            " SELECT COALESCE(MAX(e.accessed), 0), s.name, s.name, s.bytes, COUNT(e.key)"
            " FROM segments s LEFT JOIN entries e ON e.segment = s.name GROUP BY s.name"
            " ORDER BY 1, 2"
        ).fetchall()
        for _accessed, key, segment, size, blobs in units:
            if total <= max_bytes:
                break
            victims.append(Victim(None if segment else key, segment, int(size), int(blobs)))
            total -= int(size)
        db.executemany(
            "DELETE FROM entries WHERE key = ? AND segment IS NULL",
            [(v.key,) for v in victims if v.key is not None],
        )
        dropped = [(v.segment,) for v in victims if v.segment is not None]
        db.executemany("DELETE FROM entries WHERE segment = ?", dropped)
        db.executemany("DELETE FROM segments WHERE name = ?", dropped)
        return victims
