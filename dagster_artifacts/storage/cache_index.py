"""The download cache's index: which blobs are cached, their size, when each was last used.

A small SQLite file (``<cache dir>/index.db``) shared by every process of the machine. Every
operation is one short ``BEGIN IMMEDIATE`` transaction, so a download of 10,000 files costs a
few statements, not 10,000 transactions. Recency is our own access time (not the filesystem's
atime, which is often disabled or coarse).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass

from dagster_artifacts.localdb import LocalDatabase

_SQL_VARIABLES = 500  # keys per ``IN (...)``: under SQLite's oldest limit of 999 variables
_RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)  # UPDATE ... RETURNING


@dataclass(frozen=True)
class Reservation:
    """What :meth:`CacheIndex.reserve` found: keys to fetch, trusted fingerprints, evictions."""

    misses: list[str]
    fingerprints: dict[str, str]
    evicted: list[tuple[str, int]]


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
            db.execute("CREATE INDEX IF NOT EXISTS ix_entries_accessed ON entries(accessed)")
            columns = {row[1] for row in db.execute("PRAGMA table_info(entries)")}
            if "fingerprint" not in columns:  # an index written by an older version
                db.execute("ALTER TABLE entries ADD COLUMN fingerprint TEXT")

    def reserve(self, keep: dict[str, int], max_bytes: int) -> Reservation:
        """Stamp ``keep`` (key -> size) as used now, in one transaction, and evict the least
        recently used others until ``max_bytes`` holds.

        Keys not cached (or cached with another size) come back as misses, reserved with their
        size; cached large files come back with the fingerprint recorded when they were verified.
        """
        keys = list(keep)
        now = time.time()
        known: dict[str, tuple[int, str | None]] = {}
        with self.database.transaction() as db:
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
            evicted = self._evict_in(db, max_bytes)
        misses = [key for key, size in keep.items() if key not in known or known[key][0] != size]
        fingerprints = {
            key: fingerprint
            for key, (size, fingerprint) in known.items()
            if fingerprint is not None and keep.get(key) == size
        }
        return Reservation(misses, fingerprints, evicted)

    def record_fingerprints(self, fingerprints: Iterable[tuple[str, str]]) -> None:
        """``(fingerprint, key)`` pairs of files just verified into the cache."""
        rows = list(fingerprints)
        if rows:
            with self.database.transaction() as db:
                db.executemany("UPDATE entries SET fingerprint = ? WHERE key = ?", rows)

    def forget(self, keys: Iterable[str]) -> None:
        rows = [(key,) for key in keys]
        if rows:
            with self.database.transaction() as db:
                db.executemany("DELETE FROM entries WHERE key = ?", rows)

    def totals(self) -> Totals:
        with self.database.transaction() as db:
            files, size = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entries"
            ).fetchone()
        return Totals(int(files), int(size))

    def keys(self) -> set[str]:
        with self.database.transaction() as db:
            return {key for (key,) in db.execute("SELECT key FROM entries")}

    def evict(self, max_bytes: int) -> list[tuple[str, int]]:
        """Forget least recently used keys until the total fits ``max_bytes``; return them with
        their sizes."""
        with self.database.transaction() as db:
            return self._evict_in(db, max_bytes)

    @staticmethod
    def _evict_in(db: sqlite3.Connection, max_bytes: int) -> list[tuple[str, int]]:
        (total,) = db.execute("SELECT COALESCE(SUM(size), 0) FROM entries").fetchone()
        total = int(total)
        victims: list[tuple[str, int]] = []
        if total > max_bytes:
            for key, size in db.execute(
                "SELECT key, size FROM entries ORDER BY accessed, key"
            ).fetchall():
                if total <= max_bytes:
                    break
                victims.append((key, int(size)))
                total -= int(size)
            db.executemany("DELETE FROM entries WHERE key = ?", [(key,) for key, _ in victims])
        return victims
