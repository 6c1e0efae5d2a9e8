"""The ``stat`` loop of :mod:`.statpaths`, standard library only: imported by the logging
process, and run as a script by its helper interpreter (``python -I -S stathelper.py``), which
reads the paths from stdin and writes the columns to stdout.

Each path gets a kind: 0 for a regular file (links followed), -1 for anything else that exists,
else the ``errno`` of its failed ``stat`` (its stat columns are then zeros).
"""

from __future__ import annotations

import os
import stat
import sys
from array import array
from collections.abc import Sequence

REGULAR = 0
OTHER = -1
KIND_TYPECODE = "q"
#: device, inode, size, mtime_ns, ctime_ns: the columns of :class:`.statcache.FileStats`
COLUMN_TYPECODES = ("Q", "Q", "Q", "q", "q")
COUNT_BYTES = 8


def stat_columns(paths: Sequence[str]) -> tuple[array[int], ...]:
    """The kind of each path, then its five stat columns."""
    kinds = array(KIND_TYPECODE)
    columns = tuple(array(typecode) for typecode in COLUMN_TYPECODES)
    device, inode, size, mtime, ctime = columns
    is_regular = stat.S_ISREG
    for path in paths:
        try:
            info = os.stat(path)
        except OSError as error:
            kinds.append(error.errno or 1)
            for column in columns:
                column.append(0)
            continue
        kinds.append(REGULAR if is_regular(info.st_mode) else OTHER)
        device.append(info.st_dev)
        inode.append(info.st_ino)
        size.append(info.st_size)
        mtime.append(info.st_mtime_ns)
        ctime.append(info.st_ctime_ns)
    return (kinds, *columns)


def main() -> None:
    """stdin: the number of paths, the byte length of the rest, the paths joined by NUL
    (UTF-8, surrogates escaped). stdout: the kinds, then each column, as raw arrays."""
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    count = int.from_bytes(source.read(COUNT_BYTES), "little")
    length = int.from_bytes(source.read(COUNT_BYTES), "little")
    text = source.read(length).decode("utf-8", "surrogateescape")
    for column in stat_columns(text.split("\0") if count else []):
        sink.write(column.tobytes())
    sink.flush()


if __name__ == "__main__":
    main()
