"""Memory the VM's host has not taken back, for the next measurement (``--prefault``).

On this project's VM (Firecracker, with DAMON page-out and the balloon's free page reporting),
a guest page the host has reclaimed costs a fault into the host the first time it is touched
again. Writing a file into the page cache needs fresh pages, so at times *every* write runs at
110-230 MB/s, even into memory (``bytearray(512 MiB)``: 2.2-4.6 s; again right after freeing
one: 0.19 s), and at other times at GB/s: the two "write regimes" the benchmark's rows 0 show.
Writing a scratch file and deleting it just before a measurement leaves that many freshly
touched pages free for it (a 256 MiB ``dd`` right after writing and deleting 300 MB: 0.04-0.44 s
against 2.3-2.5 s without), so the measurement times the program, not the host's memory.
Ours, the peers and the floors get the same treatment.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

ENV = "DA_BENCH_PREFAULT"  # "<folder>:<MiB>", set by ``benchmarks.run --prefault``
MIB = 1024 * 1024


def settle() -> None:
    """Before a measurement: flush what the last one wrote, then prefault if asked."""
    os.sync()
    spec = os.environ.get(ENV)
    if spec:
        folder, mib = spec.rsplit(":", 1)
        prefault(Path(folder), int(mib))


def prefault(folder: Path, mib: int) -> None:
    """Write ``mib`` MiB to a scratch file and delete it (no sync: its pages are just freed)."""
    path = folder / f"prefault-{os.getpid()}-{time.time_ns()}"
    chunk = bytes(MIB)
    with open(path, "wb") as out:
        for _ in range(mib):
            out.write(chunk)
    path.unlink()
