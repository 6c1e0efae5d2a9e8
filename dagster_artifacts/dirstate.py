"""A folder's files as its last ``add_dir`` saw them, kept as columns (git's index, Mercurial's
dirstate): the fast tier of the stat cache for big folders.

Re-logging a folder of a million unchanged files asked the SQLite stat cache for a million
rows (2.5 s of the 11 s). A dirstate holds the same facts for one folder (each file's path,
device, inode, size, mtime, ctime, digest, and whether it had aged past the racy window when
it was hashed) as one file of columns: it is read in one go, and when the folder's files and
their stats are exactly the ones it holds, the whole comparison is a list and five array
comparisons done in C.

The rule for trusting a digest is the stat cache's, unchanged (see :mod:`.statcache`): same
path, device, inode, size, ``mtime_ns`` and ``ctime_ns``, and the file had aged past the racy
window before its hash began. Files a dirstate does not vouch for go to the SQLite cache as
before, so a dirstate only ever saves work. Any damage (a truncated or edited file, another
format, another byte order) makes it unknown, never wrong: the body ends with its xxh3 checksum.

One file per folder and digest algorithm under ``<cache_dir>/dirstate/``, replaced atomically;
the :data:`KEEP` most recently used are kept. The format is internal.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

import xxhash

from dagster_artifacts.statcache import FileStats, StatCache
from dagster_artifacts.storage.scratch import temp_path_beside

FOLDER = "dirstate"
MIN_FILES = 1_000  # below this the SQLite stat cache answers fast enough on its own
KEEP = 16  # dirstates kept: the folders logged most recently
_MAGIC = b"dagster-artifacts dirstate 1\n"
_LENGTH = 8  # bytes of each section length, and of the checksum


@dataclass
class DirState:
    """The files of one folder: ``paths[i]`` had stat ``stats[i]`` and digest ``digests[i]``;
    ``settled[i]`` is 1 when it had aged past the racy window when it was hashed."""

    paths: list[str]
    stats: FileStats
    digests: list[str]
    settled: bytes

    def trusted(self, paths: list[str], stats: FileStats) -> tuple[list[str | None], bool]:
        """The digest of each of ``paths`` (with its current ``stats``) this state vouches for,
        None for the others; and whether it vouches for all of them, in its own order (then
        there is nothing new to save)."""
        if paths == self.paths:
            if self.stats.columns == stats.columns and 0 not in self.settled:
                return list(self.digests), True  # the common re-log: all in C
            return [
                digest if settled and now == then else None
                for now, then, digest, settled in zip(
                    stats.rows(), self.stats.rows(), self.digests, self.settled, strict=True
                )
            ], False
        index = {path: position for position, path in enumerate(self.paths)}
        found: list[str | None] = []
        for path, now in zip(paths, stats.rows(), strict=True):
            position = index.get(path)
            if position is not None and self.settled[position] and self.stats[position] == now:
                found.append(self.digests[position])
            else:
                found.append(None)
        return found, False


def dirstate_file(cache: StatCache, folder: str, algorithm: str) -> str:
    """Where the dirstate of ``folder`` (absolute) for ``algorithm`` lives, beside ``cache``."""
    key = hashlib.sha256(f"{algorithm}\0{folder}".encode("utf-8", "surrogateescape")).hexdigest()
    return os.path.join(os.path.dirname(cache.path), FOLDER, key[:32])


def settled_flags(
    stats: FileStats, sizes_read: Sequence[int], begun_ns: int, window_ns: int
) -> bytes:
    """1 for each file whose ``mtime`` and ``ctime`` were older than ``begun_ns`` (before any
    of them was hashed) by more than the racy window, and whose bytes read were as many as its
    stat said (a file that changed while it was read is not vouched for)."""
    _device, _inode, size, mtime, ctime = stats.columns
    return bytes(
        max(m, c) + window_ns < begun_ns and read == expected
        for m, c, expected, read in zip(mtime, ctime, size, sizes_read, strict=True)
    )


def load(path: str) -> DirState | None:
    """The dirstate stored at ``path``; None when there is none or it cannot be trusted.

    Read section by section, each checked into the running checksum and turned into its
    objects before the next is read: the peak is one section's bytes, not the whole file's.
    """
    try:
        with open(path, "rb") as handle:
            state = _read(handle)
    except (OSError, ValueError, KeyError, TypeError, StopIteration):
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # used now: kept by the pruning
    return state


def save(path: str, state: DirState) -> None:
    """Store ``state`` at ``path`` atomically, then prune the oldest beyond :data:`KEEP`.
    A failure (a full or read-only cache folder) is ignored: the dirstate only saves work."""
    with contextlib.suppress(OSError):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = temp_path_beside(path)
        try:
            with open(tmp, "wb") as handle:
                checksum = xxhash.xxh3_64()
                for part in _encode(state):
                    checksum.update(part)
                    handle.write(part)
                handle.write(checksum.intdigest().to_bytes(_LENGTH, "little"))
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        _prune(os.path.dirname(path))


def _encode(state: DirState) -> list[bytes]:
    sections = [
        "\0".join(state.paths).encode("utf-8", "surrogateescape"),
        "\n".join(state.digests).encode("ascii"),
        *(column.tobytes() for column in state.stats.columns),
        bytes(state.settled),
    ]
    header = json.dumps(
        {
            "count": len(state.paths),
            "byteorder": sys.byteorder,
            "lengths": [len(s) for s in sections],
        }
    ).encode()
    return [_MAGIC, len(header).to_bytes(_LENGTH, "little"), header, *sections]


def _read(handle: BinaryIO) -> DirState:
    checksum = xxhash.xxh3_64()

    def take(length: int) -> bytes:
        data = handle.read(length)
        if len(data) != length:
            raise ValueError("truncated dirstate")
        checksum.update(data)
        return data

    if take(len(_MAGIC)) != _MAGIC:
        raise ValueError("not a dirstate")
    header = json.loads(take(int.from_bytes(take(_LENGTH), "little")))
    if header["byteorder"] != sys.byteorder:
        raise ValueError("written on a machine of the other byte order")
    count = header["count"]
    lengths = iter(header["lengths"])
    paths = str(take(next(lengths)), "utf-8", "surrogateescape").split("\0") if count else []
    digests = str(take(next(lengths)), "ascii").split("\n") if count else []
    columns = []
    for template in FileStats().columns:
        column = array(template.typecode)
        column.frombytes(take(next(lengths)))
        columns.append(column)
    settled = take(next(lengths))
    if handle.read(_LENGTH + 1) != checksum.intdigest().to_bytes(_LENGTH, "little"):
        raise ValueError("damaged dirstate")
    if not (len(paths) == len(digests) == len(settled) == count) or any(
        len(column) != count for column in columns
    ):
        raise ValueError("inconsistent dirstate")
    return DirState(paths, FileStats(tuple(columns)), digests, settled)


def _prune(folder: str) -> None:
    with os.scandir(folder) as entries:
        found = [
            (entry.stat().st_mtime_ns, entry.path)
            for entry in entries
            if entry.is_file() and not entry.name.startswith(".")  # not another's temp file
        ]
    for _mtime, path in sorted(found, reverse=True)[KEEP:]:
        with contextlib.suppress(OSError):
            os.unlink(path)
