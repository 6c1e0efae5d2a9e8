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
the :data:`KEEP` most recently used are kept. It is rewritten when the folder's paths changed
or more than one file in :data:`REWRITE_RATIO` is not vouched for: a few edited files in a
million are answered by the SQLite tier (where their new digests were recorded) rather than
costing a rewrite of the whole state each time. The format is internal.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

import xxhash

from dagster_artifacts.statcache import FileStats, StatCache
from dagster_artifacts.stathelper import COLUMN_TYPECODES
from dagster_artifacts.storage.scratch import temp_path_beside

FOLDER = "dirstate"
MIN_FILES = 1_000  # below this the SQLite stat cache answers fast enough on its own
KEEP = 16  # dirstates kept: the folders logged most recently
REWRITE_RATIO = 64  # rewritten once more than 1 file in this many is not vouched for
_MAGIC = b"dagster-artifacts dirstate 1\n"
_LENGTH = 8  # bytes of the header length, and of the checksum
_CHUNK = 65_536  # paths or digests encoded at a time
_BLOCK = 4_096  # files whose stats are compared at once


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
            return self._aligned(stats), False
        index = {path: position for position, path in enumerate(self.paths)}
        found: list[str | None] = []
        for path, now in zip(paths, stats.rows(), strict=True):
            position = index.get(path)
            if position is not None and self.settled[position] and self.stats[position] == now:
                found.append(self.digests[position])
            else:
                found.append(None)
        return found, False

    def _aligned(self, stats: FileStats) -> list[str | None]:
        """``trusted`` for the same paths in the same order, some changed: compared a block of
        :data:`_BLOCK` files at a time in C, file by file only in the blocks that differ (a
        few edited files in a million cost a few blocks, not a million tuple comparisons)."""
        found: list[str | None] = list(self.digests)
        then, now = self.stats.columns, stats.columns
        settled = self.settled
        for start in range(0, len(found), _BLOCK):
            end = start + _BLOCK
            if 0 not in settled[start:end] and all(
                old[start:end] == new[start:end] for old, new in zip(then, now, strict=True)
            ):
                continue
            for index in range(start, min(end, len(found))):
                if not settled[index] or any(
                    old[index] != new[index] for old, new in zip(then, now, strict=True)
                ):
                    found[index] = None
        return found


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
                _write(handle, state)
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        _prune(os.path.dirname(path))


# The file: magic, the sections (paths, digests, five stat columns, settled flags), the JSON
# header naming their lengths, the header's length, and the xxh3 of everything before it. The
# header goes last so that the sections can be written a chunk at a time, as they are encoded.


def _write(handle: BinaryIO, state: DirState) -> None:
    checksum = xxhash.xxh3_64()

    def put(data: bytes) -> int:
        checksum.update(data)
        handle.write(data)
        return len(data)

    put(_MAGIC)
    lengths = [
        _put_joined(put, state.paths, "\0", "utf-8"),
        _put_joined(put, state.digests, "\n", "ascii"),
        *(put(column.tobytes()) for column in state.stats.columns),
        put(bytes(state.settled)),
    ]
    header = json.dumps(
        {"count": len(state.paths), "byteorder": sys.byteorder, "lengths": lengths}
    ).encode()
    put(header)
    put(len(header).to_bytes(_LENGTH, "little"))
    handle.write(checksum.intdigest().to_bytes(_LENGTH, "little"))


def _put_joined(put: Callable[[bytes], int], items: list[str], separator: str, codec: str) -> int:
    """Write ``separator.join(items)`` encoded, a chunk at a time (a million paths would
    otherwise be one 50 MB string and its bytes, at once)."""
    written = 0
    for start in range(0, len(items), _CHUNK):
        text = separator.join(items[start : start + _CHUNK])
        if start + _CHUNK < len(items):
            text += separator
        written += put(text.encode(codec, "surrogateescape"))
    return written


def _read(handle: BinaryIO) -> DirState:
    size = handle.seek(0, os.SEEK_END)
    if size < len(_MAGIC) + 2 * _LENGTH:
        raise ValueError("not a dirstate")
    handle.seek(size - 2 * _LENGTH)
    tail = handle.read(2 * _LENGTH)
    header_start = size - 2 * _LENGTH - int.from_bytes(tail[:_LENGTH], "little")
    if header_start < len(_MAGIC):
        raise ValueError("not a dirstate")
    handle.seek(header_start)
    header_bytes = handle.read(size - 2 * _LENGTH - header_start)
    header = json.loads(header_bytes)
    if header["byteorder"] != sys.byteorder:
        raise ValueError("written on a machine of the other byte order")
    handle.seek(0)
    checksum = xxhash.xxh3_64()

    def take(length: int) -> bytes:
        data = handle.read(length)
        if len(data) != length:
            raise ValueError("truncated dirstate")
        checksum.update(data)
        return data

    if take(len(_MAGIC)) != _MAGIC:
        raise ValueError("not a dirstate")
    count = header["count"]
    lengths = iter(header["lengths"])
    paths = str(take(next(lengths)), "utf-8", "surrogateescape").split("\0") if count else []
    digests = str(take(next(lengths)), "ascii").split("\n") if count else []
    columns = []
    for typecode in COLUMN_TYPECODES:
        column = array(typecode)
        column.frombytes(take(next(lengths)))
        columns.append(column)
    settled = take(next(lengths))
    if handle.tell() != header_start:
        raise ValueError("inconsistent dirstate")
    checksum.update(header_bytes)
    checksum.update(tail[:_LENGTH])
    if checksum.intdigest() != int.from_bytes(tail[_LENGTH:], "little"):
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
