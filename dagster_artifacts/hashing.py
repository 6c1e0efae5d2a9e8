"""Hash the files a draft adds, as cheaply as the machine allows.

Two things make ``add_file``/``add_dir`` cheap:

1. The stat cache (:mod:`dagster_artifacts.statcache`): a file whose path, inode, size, mtime and
   ctime are unchanged since it was last hashed is not opened at all.
2. Many files are hashed on a few threads: ``open``/``read`` and hashing of chunks over 2 KiB
   release the GIL, so on two cores the waits of one file overlap the hashing of another.

Files stream through :data:`~dagster_artifacts.digests.CHUNK_SIZE` chunks; none is read whole.
The bytes are read again when the commit stores them (hashed once more on the way, so a file
changed after it was added can never become a wrong blob); see ``docs/readme/speed.md``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from dagster_artifacts.digests import digest_file
from dagster_artifacts.statcache import FileStat, StatCache, now_ns
from dagster_artifacts.storage.parallel import parallel_map

HASH_WORKERS = 4


@dataclass(frozen=True)
class Hashed:
    """One file's digest and size (the size of the bytes actually hashed)."""

    path: str
    digest: str
    size: int


def hash_files(
    paths: Sequence[str],
    algorithm: str,
    *,
    cache: StatCache | None = None,
    workers: int = HASH_WORKERS,
) -> list[Hashed]:
    """Digest and size of each absolute path, in order.

    ``cache`` answers unchanged files; the others are hashed on ``workers`` threads and recorded
    in the cache afterwards, with the stat taken *before* their read (so a write during the read
    makes the entry stale, never wrong).
    """
    stats = [FileStat.of(os.stat(path)) for path in paths]
    known = cache.lookup_many(list(zip(paths, stats, strict=True)), algorithm) if cache else {}
    missing = [i for i, path in enumerate(paths) if path not in known]

    def one(index: int) -> tuple[Hashed, int]:
        started = now_ns()
        digest, size = digest_file(paths[index], algorithm)
        return Hashed(paths[index], digest, size), started

    fresh = parallel_map(one, missing, workers=workers)
    if cache is not None and fresh:
        cache.record_many(
            (
                (hashed.path, stats[i], hashed.digest, started)
                for i, (hashed, started) in zip(missing, fresh, strict=True)
                if hashed.size == stats[i].size  # changed while we read: do not remember
            ),
            algorithm,
        )
    by_index = dict(zip(missing, (hashed for hashed, _ in fresh), strict=True))
    return [
        by_index[i] if i in by_index else Hashed(path, known[path], stats[i].size)
        for i, path in enumerate(paths)
    ]
