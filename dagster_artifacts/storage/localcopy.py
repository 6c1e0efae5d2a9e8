"""The small-file fast path for local stores: verified copies in a handful of system calls.

Storing or downloading 10,000 files of 4 KiB is not about bandwidth but about what each file
costs. ``cp -r`` spends about 35 microseconds per file; Python's buffered ``open``, a 1 MiB read
buffer, ``os.makedirs`` and a UUID per temp name cost several times that. A file that fits in
:data:`SMALL_LIMIT` is therefore read whole with ``os.read`` (one buffer the size of the file),
hashed and checked *before* anything is written, then written with ``os.write`` to a temp name
and renamed into place: the same guarantees as :func:`.verified.write_verified` (nothing wrong
or partial ever becomes visible), with no thread, no buffered file objects, and the target
folder created only when the first write finds it missing.

Larger files return ``False`` so the caller streams them (hash and write overlapped).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dagster_artifacts.digests import encode_digest, new_hasher
from dagster_artifacts.errors import ChecksumMismatchError
from dagster_artifacts.storage.pipeline import check_content, copy_verified, write_all
from dagster_artifacts.storage.scratch import temp_path_beside

SMALL_LIMIT = 256 * 1024


def copy_small_verified(
    source: str,
    dest: str,
    *,
    expected_digest: str | None,
    algorithm: str = "md5",
    expected_size: int | None = None,
    label: str = "",
) -> bool:
    """Copy ``source`` to ``dest`` if it is small, checked first; False (nothing done) if large.

    Raises :class:`~dagster_artifacts.errors.ChecksumMismatchError` naming ``label`` (default:
    ``source``) when the bytes do not match ``expected_digest``/``expected_size``.
    """
    fd = os.open(source, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if size > SMALL_LIMIT:
            return False
        parts = []
        total = 0
        step = max(size + 1, 4096)  # one read for the file, one (empty) to see its end
        while chunk := os.read(fd, step):
            parts.append(chunk)
            total += len(chunk)
            if total > SMALL_LIMIT:  # grew while we read: let the streaming path handle it
                return False
    finally:
        os.close(fd)
    data = parts[0] if len(parts) == 1 else b"".join(parts)
    hasher = new_hasher(algorithm)
    hasher.update(data)
    try:
        check_content(
            encode_digest(hasher.digest()),
            len(data),
            expected_digest=expected_digest,
            expected_size=expected_size,
            source=label or source,
        )
    except ChecksumMismatchError:
        # as the streaming path leaves it: the target folder exists, holding no partial file
        os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
        raise
    write_file(dest, data, atomic=True)
    return True


def write_file(dest: str, data: bytes, *, atomic: bool) -> None:
    """Write verified bytes to ``dest``: through a temp name and a rename when ``atomic``."""
    target = temp_path_beside(dest) if atomic else dest
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(target, flags, 0o666)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
        fd = os.open(target, flags, 0o666)
    try:
        try:
            write_all(fd, data)
        finally:
            os.close(fd)
        if atomic:
            os.replace(target, dest)
    except BaseException:
        if atomic:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(target)
        raise


# -- the download side: many verified copies in one call ------------------------------------------
#
# Downloading 10,000 small files from a local store (or from the local download cache) is the
# same problem as storing them, seen from the other side. What each file may cost is set by
# ``cp -r`` (about 35 us): so the whole batch is planned once (folders created once, before any
# copy), split into a few contiguous slices run on their own threads (``open``/``read``/``write``
# and MD5 of more than 2 KiB release the GIL, so two cores work), and each small file takes
# open, read, close, hash, open, write, close: the size is known from the manifest, so one read
# of ``size + 1`` bytes both fetches the file and shows that it has no more.


@dataclass(frozen=True)
class CopyJob:
    """One verified copy: ``source`` must hold ``size`` bytes hashing to ``digest``; or, with
    ``offset``, the ``size`` bytes at ``offset`` of ``source`` must (a small blob in a segment
    of the download cache)."""

    source: str
    dest: str
    digest: str
    size: int | None
    label: str = ""  # how errors name the source (a store URL); default: ``source``
    offset: int | None = None


#: Threads for :func:`copy_verified_many`: one per core, at most 4. Nearly all of a small file's
#: cost is in the kernel (creating the file); more threads than cores only add contention on
#: the destination folder's lock (measured on 2 cores: 2 threads beat 1, 4 and 8).
COPY_WORKERS = max(1, min(4, os.cpu_count() or 1))


def make_parents(dests: Iterable[str]) -> None:
    """Create every folder the ``dests`` need, each once (instead of a check per file)."""
    sep = os.sep
    for folder in sorted({dest.rpartition(sep)[0] for dest in dests}):
        if folder:
            os.makedirs(folder, exist_ok=True)


def copy_verified_many(
    jobs: Sequence[CopyJob],
    algorithm: str = "md5",
    *,
    atomic: bool = True,
    workers: int = COPY_WORKERS,
) -> list[tuple[int, BaseException]]:
    """Copy every job's bytes to its ``dest``, each checked against its digest and size.

    Returns the failures as ``(index into jobs, error)`` (a missing source raises
    ``FileNotFoundError``, wrong bytes :class:`ChecksumMismatchError`); the caller decides
    whether to refetch or raise. Nothing wrong is ever written: a small file is checked before
    its first byte is written, a large one is streamed to a temp name and renamed when it matches.

    ``atomic=True`` writes each small file to a temp name and renames it into place, so that a
    reader (or a download killed halfway) never sees a partial file at a final path. With
    ``atomic=False`` the caller promises that ``dest`` lies in a private folder that becomes
    visible only after this returns (the engine's fresh download root, renamed into place as a
    whole): files are then written straight to their names, saving one rename per file.

    The folders of every ``dest`` must exist (:func:`make_parents`).
    """
    failures: list[tuple[int, BaseException]] = []
    if not jobs:
        return failures
    threads = max(1, min(workers, len(jobs) // 64 + 1))
    step = -(-len(jobs) // threads)
    slices = [range(start, min(start + step, len(jobs))) for start in range(0, len(jobs), step)]
    if len(slices) == 1:
        _copy_slice(jobs, slices[0], algorithm, atomic, failures)
        return failures
    pool = [
        threading.Thread(
            target=_copy_slice,
            args=(jobs, indices, algorithm, atomic, failures),
            name="dagster-artifacts-copy",
            daemon=True,
        )
        for indices in slices
    ]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    failures.sort(key=lambda failure: failure[0])
    return failures


_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


def _copy_slice(
    jobs: Sequence[CopyJob],
    indices: range,
    algorithm: str,
    atomic: bool,
    failures: list[tuple[int, BaseException]],
) -> None:
    shared: dict[str, int] = {}  # segment files, opened once per thread
    try:
        _copy_each(jobs, indices, algorithm, atomic, failures, shared)
    finally:
        for fd in shared.values():
            os.close(fd)


def _copy_each(
    jobs: Sequence[CopyJob],
    indices: range,
    algorithm: str,
    atomic: bool,
    failures: list[tuple[int, BaseException]],
    shared: dict[str, int],
) -> None:
    """The per-file loop, kept free of calls that are not needed (it runs 10,000s of times)."""
    new = hashlib.md5 if algorithm == "md5" else None
    read, open_, close = os.read, os.open, os.close
    for index in indices:
        job = jobs[index]
        try:
            size = job.size
            if job.offset is not None and size is not None:
                data = _read_at(job.source, job.offset, size, shared)
            elif size is None or size > SMALL_LIMIT:
                _copy_large(job, algorithm)
                continue
            else:
                fd = open_(job.source, _READ_FLAGS)
                try:
                    data = read(fd, size + 1)
                    while 0 < len(data) < size:  # a short read: keep reading to the end
                        more = read(fd, size + 1 - len(data))
                        if not more:
                            break
                        data += more
                finally:
                    close(fd)
            if new is not None:
                raw = new(data, usedforsecurity=False).digest()
            else:
                hasher = new_hasher(algorithm)
                hasher.update(data)
                raw = hasher.digest()
            if len(data) != size or encode_digest(raw) != job.digest:
                check_content(
                    encode_digest(raw),
                    len(data),
                    expected_digest=job.digest,
                    expected_size=size,
                    source=job.label or job.source,
                )
            write_file(job.dest, data, atomic=atomic)
        except BaseException as error:  # reported per file; the caller decides
            failures.append((index, error))


def _read_at(path: str, offset: int, size: int, shared: dict[str, int]) -> bytes:
    """``size`` bytes at ``offset`` of ``path`` (fewer if the file is shorter)."""
    fd = shared.get(path)
    if fd is None:
        fd = shared[path] = os.open(path, _READ_FLAGS)
    data = os.pread(fd, size, offset)
    while 0 < len(data) < size:
        more = os.pread(fd, size - len(data), offset + len(data))
        if not more:
            break
        data += more
    return data


def _copy_large(job: CopyJob, algorithm: str) -> None:
    """Stream a large file: hash and write overlapped on two threads, renamed when it matches."""
    copy_verified(
        job.source,
        job.dest,
        expected_digest=job.digest,
        algorithm=algorithm,
        expected_size=job.size,
        label=job.label or job.source,
    )


def copy_trusted(source: str, dest: str, size: int | None, atomic: bool = True) -> None:
    """Copy ``source`` to ``dest`` in the kernel (``copy_file_range``, as ``cp`` does), unhashed.

    Only for a source already known to be intact (the download cache's own read-only files,
    checked by their stat fingerprint). The byte count is still checked against ``size``.
    """
    target = temp_path_beside(dest) if atomic else dest
    try:
        with open(source, "rb") as src, open(target, "wb") as out:
            copied = 0
            in_fd, out_fd = src.fileno(), out.fileno()
            try:
                while chunk := os.copy_file_range(in_fd, out_fd, 1 << 30):
                    copied += chunk
            except (OSError, AttributeError):  # not on this platform/filesystem: sendfile
                out.seek(0)
                out.truncate()
                src.seek(0)
                copied = 0
                while chunk := os.sendfile(out_fd, in_fd, None, 1 << 30):
                    copied += chunk
        if size is not None and copied != size:
            raise ChecksumMismatchError(
                f"{source}: expected {size} bytes but copied {copied}; fetching it again."
            )
        if atomic:
            os.replace(target, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)
        raise
