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
import errno
import hashlib
import itertools
import os
import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from dagster_artifacts.digests import CHUNK_SIZE, Hasher, encode_digest, new_hasher
from dagster_artifacts.errors import ChecksumMismatchError
from dagster_artifacts.storage.verified import PIPELINE_DEPTH, check_content

SMALL_LIMIT = 256 * 1024
_TOKEN = secrets.token_hex(4)  # temp names: unique across processes and hosts sharing a folder
_COUNTER = itertools.count()


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
    _write_atomically(dest, data)
    return True


def _write_atomically(dest: str, data: bytes) -> None:
    directory, base = os.path.split(dest)
    tmp = os.path.join(directory, f".{base}.tmp-{_TOKEN}-{os.getpid()}-{next(_COUNTER)}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(tmp, flags, 0o666)
    except FileNotFoundError:
        os.makedirs(directory, exist_ok=True)
        fd = os.open(tmp, flags, 0o666)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
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
    """One verified copy: ``source`` must hold ``size`` bytes hashing to ``digest``."""

    source: str
    dest: str
    digest: str
    size: int | None
    label: str = ""  # how errors name the source (a store URL); default: ``source``


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
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)


def _copy_slice(
    jobs: Sequence[CopyJob],
    indices: range,
    algorithm: str,
    atomic: bool,
    failures: list[tuple[int, BaseException]],
) -> None:
    """The per-file loop, kept free of calls that are not needed (it runs 10,000s of times)."""
    new = hashlib.md5 if algorithm == "md5" else None
    read, write, open_, close = os.read, os.write, os.open, os.close
    for index in indices:
        job = jobs[index]
        try:
            size = job.size
            if size is None or size > SMALL_LIMIT:
                _copy_large(job, algorithm)
                continue
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
            if atomic:
                _write_atomically(job.dest, data)
                continue
            fd = open_(job.dest, _CREATE_FLAGS, 0o666)
            try:
                view = memoryview(data)
                while view:
                    view = view[write(fd, view) :]
            finally:
                close(fd)
        except BaseException as error:  # reported per file; the caller decides
            failures.append((index, error))


def _copy_large(job: CopyJob, algorithm: str) -> None:
    """Stream a large file: hash and write overlapped on two threads, renamed when it matches."""
    from dagster_artifacts.storage.verified import iter_stream, write_verified

    with open(job.source, "rb") as stream:
        write_verified(
            iter_stream(stream),
            job.dest,
            expected_digest=job.digest,
            algorithm=algorithm,
            expected_size=job.size,
            source=job.label or job.source,
        )


def copy_trusted(source: str, dest: str, size: int | None, atomic: bool = True) -> None:
    """Copy ``source`` to ``dest`` in the kernel (``copy_file_range``, as ``cp`` does), unhashed.

    Only for a source already known to be intact (the download cache's own read-only files,
    checked by their stat fingerprint). The byte count is still checked against ``size``.
    """
    target = _temp_name(dest) if atomic else dest
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


def _temp_name(dest: str) -> str:
    directory, base = os.path.split(dest)
    return os.path.join(directory, f".{base}.tmp-{_TOKEN}-{os.getpid()}-{next(_COUNTER)}")


# -- staging: the one read of a file being logged -------------------------------------------------
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC


def stage_copy(
    source: str,
    staging_dir: str,
    temp_path: Callable[[], str],
    *,
    algorithm: str = "md5",
    size_hint: int = 0,
) -> Staged:
    """Copy ``source`` into ``staging_dir`` while hashing it: the one read of a logged file.

    A file that fits in :data:`SMALL_LIMIT` costs a handful of system calls: one ``read``, the
    hash, then one ``write`` to ``<staging_dir>/<hex[:2]>/<hex[2:]>``, named by its digest. The
    fan-out matters: creating files in one folder of 10,000 entries costs several times more
    than in 256 small ones, and two equal files are staged once (the second finds the first).
    A larger file streams in :data:`~dagster_artifacts.digests.CHUNK_SIZE` chunks to a new
    ``temp_path()``, hashed on this thread while a second thread writes, so hashing and writing
    overlap on two cores and memory stays at a few chunks. The digest is of the bytes written,
    whatever the file became meanwhile: the staged copy is the snapshot.
    """
    hasher = new_hasher(algorithm)
    fd = os.open(source, os.O_RDONLY | _CLOEXEC)
    try:
        if size_hint <= SMALL_LIMIT:
            first = os.read(fd, max(size_hint + 1, 4096))  # whole file, plus a peek at its end
            while 0 < len(first) < size_hint:  # a short read (FUSE, NFS, signals): read on
                more = os.read(fd, size_hint + 1 - len(first))
                if not more:
                    break
                first += more
            if len(first) <= size_hint:  # the usual case: the file is as stat said
                hasher.update(first)
                raw = hasher.digest()
                hex_digest = raw.hex()
                dest = os.path.join(staging_dir, hex_digest[:2], hex_digest[2:])
                _create_with(dest, first)
                return Staged(encode_digest(raw), len(first), dest)
        else:
            first = os.read(fd, CHUNK_SIZE)
        dest = temp_path()
        out = os.open(dest, _CREATE, 0o666)
        try:
            size = copy_hashing(fd, out, hasher, first)
        finally:
            os.close(out)
        return Staged(encode_digest(hasher.digest()), size, dest)
    finally:
        os.close(fd)


def _create_with(dest: str, data: bytes) -> None:
    """Create ``dest`` holding ``data``; an existing ``dest`` already holds it (same digest)."""
    try:
        out = os.open(dest, _CREATE, 0o666)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        try:
            out = os.open(dest, _CREATE, 0o666)
        except FileExistsError:
            return
    except FileExistsError:
        return
    try:
        _write_all(out, data)
    finally:
        os.close(out)


class Staged(NamedTuple):
    """Digest and size of a staged copy, and where it is."""

    digest: str
    size: int
    path: str


def copy_hashing(source: int, out: int, hasher: Hasher, first: bytes = b"") -> int:
    """Copy descriptor ``source`` to ``out`` (after ``first``), hashing every byte; return the size.

    This thread reads and hashes; a second thread writes, so the two overlap on two cores. The
    chunks live in a small pool of reused buffers (``readv`` into them) instead of a fresh 1 MiB
    ``bytes`` per ``read``: fresh buffers this size are ``mmap``-ed and page-faulted one by one,
    which on a virtual machine costs more than the copy itself (2.7 s instead of 0.25 s for
    1 GiB). Memory stays at ``PIPELINE_DEPTH + 2`` chunks.
    """
    free: queue.Queue[bytearray] = queue.Queue()
    for _ in range(PIPELINE_DEPTH + 2):
        free.put(bytearray(CHUNK_SIZE))
    pending: queue.Queue[tuple[bytes | bytearray, int] | None] = queue.Queue()
    failure: list[BaseException] = []

    def write() -> None:
        try:
            while (item := pending.get()) is not None:
                buffer, length = item
                _write_all(out, memoryview(buffer)[:length])
                if isinstance(buffer, bytearray):
                    free.put(buffer)
        except BaseException as error:  # re-raised on the reading thread
            failure.append(error)
            while pending.get() is not None:  # drain, so the reader never waits forever
                pass
        finally:
            for _ in range(PIPELINE_DEPTH + 2):  # unblock a reader waiting for a buffer
                free.put(bytearray(0))

    writer = threading.Thread(target=write, name="dagster-artifacts-writer", daemon=True)
    writer.start()
    size = 0
    try:
        if first:
            hasher.update(first)
            pending.put((first, len(first)))
            size += len(first)
        while not failure:
            buffer = free.get()
            if not buffer:  # the writer stopped
                break
            length = os.readv(source, [buffer])
            if not length:
                free.put(buffer)
                break
            hasher.update(memoryview(buffer)[:length])
            pending.put((buffer, length))
            size += length
    finally:
        pending.put(None)
        writer.join()
    if failure:
        raise failure[0]
    return size


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class FollowingHasher:
    """Hash a file *while another writer creates it*, from a second thread: one write, no re-read.

    Use it around a serializer that writes a file sequentially by path with its own native I/O
    (pyarrow's Parquet writer)::

        with FollowingHasher(path, "md5") as hashed:
            frame.to_parquet(path)
        hashed.digest, hashed.size

    The thread reads what has been written so far (from the page cache, into one reused
    buffer) and hashes it, so hashing overlaps the encoding on two cores instead of a second
    pass over the file afterwards. Handing the serializer a Python file object that hashes
    instead costs more: every write crosses into Python and allocates a buffer, and on a
    virtual machine the page faults of that churn outweigh the hashing.

    The writer must only append: pyarrow writes Parquet through an ``OutputStream``, a type
    that cannot seek, so this holds by construction there. As a cheap sanity check the final
    size is compared with the file's, and if they differ the file is hashed again from the start.
    """

    POLL_SECONDS = 0.001

    def __init__(self, path: str, algorithm: str = "md5") -> None:
        self.path = path
        self.algorithm = algorithm
        self.size = 0
        self.digest = ""
        self._hasher = new_hasher(algorithm)
        self._done = threading.Event()
        self._failure: list[BaseException] = []
        self._thread = threading.Thread(target=self._follow, name="dagster-artifacts-follower")
        self._thread.daemon = True

    def __enter__(self) -> FollowingHasher:
        self._thread.start()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._done.set()
        self._thread.join()
        if exc_type is not None:
            return
        if self._failure:
            raise self._failure[0]
        if os.stat(self.path).st_size != self.size:  # not an append-only writer after all
            from dagster_artifacts.digests import digest_file

            self.digest, self.size = digest_file(self.path, self.algorithm)
            return
        self.digest = encode_digest(self._hasher.digest())

    def _follow(self) -> None:
        buffer = bytearray(CHUNK_SIZE)
        view = memoryview(buffer)
        fd: int | None = None
        try:
            while True:
                finished = self._done.is_set()  # before the read: then EOF means the end
                if fd is None:
                    try:
                        fd = os.open(self.path, os.O_RDONLY | _CLOEXEC)
                    except FileNotFoundError:
                        if finished:
                            return
                        time.sleep(self.POLL_SECONDS)
                        continue
                length = os.preadv(fd, [buffer], self.size)
                if length:
                    self._hasher.update(view[:length])
                    self.size += length
                elif finished:
                    return
                else:
                    time.sleep(self.POLL_SECONDS)
        except BaseException as error:  # raised on the caller's thread
            self._failure.append(error)
        finally:
            if fd is not None:
                os.close(fd)


def adopt_staged(staged: str, dest: str) -> bool:
    """Move a staged copy into the store by ``rename``: no byte is read or written again.

    The rename is atomic, so a reader sees no blob or the whole one; replacing an existing blob
    (a concurrent writer stored the same content) swaps in identical bytes. Returns False when
    the staging area is on another filesystem (``EXDEV``): the caller then copies, verified.
    """
    try:
        return _rename(staged, dest)
    except FileNotFoundError:
        if not os.path.exists(staged):
            raise
    os.makedirs(os.path.dirname(dest), exist_ok=True)  # the first blob of its fan-out folder
    return _rename(staged, dest)


def _rename(source: str, dest: str) -> bool:
    try:
        os.rename(source, dest)
    except OSError as error:
        if error.errno == errno.EXDEV:
            return False
        raise
    return True
