"""Staged copies: the one read of a file being logged, and how it becomes a stored blob.

With the default ``policy="mutable"`` each added file is copied into the draft's staging folder
while it is hashed (:func:`stage_copy`), so the draft is a snapshot of the file at ``add`` time.
At commit a local store takes the copy by ``rename`` (:func:`adopt_staged`): no byte is read or
written twice. :class:`FollowingHasher` hashes a file while a native writer (pyarrow) creates it.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import stat
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from dagster_artifacts.digests import CHUNK_SIZE, digest_file, encode_digest, new_hasher
from dagster_artifacts.errors import InvalidPathError
from dagster_artifacts.storage.localcopy import SMALL_LIMIT
from dagster_artifacts.storage.pipeline import copy_and_hash, write_all

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC
_CREATE_READABLE = os.O_RDWR | os.O_CREAT | os.O_EXCL | _CLOEXEC


def stage_copy(
    source: str,
    staging_dir: str,
    temp_path: Callable[[], str],
    *,
    algorithm: str = "md5",
    size_hint: int = 0,
    slices: SliceSink | None = None,
) -> Staged:
    """Copy ``source`` into ``staging_dir`` while hashing it: the one read of a logged file.

    A file that fits in :data:`SMALL_LIMIT` costs a handful of system calls: one ``read``, the
    hash, then one ``write`` to ``<staging_dir>/<hex[:2]>/<hex[2:]>``, named by its digest. The
    fan-out matters: creating files in one folder of 10,000 entries costs several times more
    than in 256 small ones, and two equal files are staged once (the second finds the first).
    A larger file goes to a new ``temp_path()``: the kernel copies it on a second thread while
    this one hashes the copy (:func:`.pipeline.copy_and_hash`), so copying costs next to nothing
    on two cores and memory stays at one chunk. The digest is of the bytes written, whatever
    the file became meanwhile: the staged copy is the snapshot.

    ``slices``: small files are appended to a few staging files instead (:class:`SliceSink`):
    many small files then cost no file creation at all, which is most of what a small file
    costs; the commit packs them (store format v2) straight from there.
    """
    hasher = new_hasher(algorithm)
    # O_NONBLOCK: a FIFO swapped in since the caller's stat must not block the open.
    fd = os.open(source, os.O_RDONLY | _CLOEXEC | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InvalidPathError(f"{source} is not a regular file: only files can be added.")
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
                if slices is not None:
                    return Staged(encode_digest(raw), len(first), slices.put(hex_digest, first))
                dest = os.path.join(staging_dir, hex_digest[:2], hex_digest[2:])
                _create_with(dest, first)
                return Staged(encode_digest(raw), len(first), dest)
        else:
            first = os.read(fd, CHUNK_SIZE)
        dest = temp_path()
        out = os.open(dest, _CREATE_READABLE, 0o666)
        try:
            size = copy_and_hash(fd, out, hasher, first)
        except BaseException:
            os.close(out)
            with contextlib.suppress(OSError):
                os.unlink(dest)  # a copy that failed halfway is never left to be taken
            raise
        os.close(out)
        return Staged(encode_digest(hasher.digest()), size, dest)
    finally:
        os.close(fd)


def _create_with(dest: str, data: bytes) -> None:
    """Create ``dest`` holding ``data``. An existing ``dest`` holds the same bytes (it is named
    by their digest) unless an earlier write failed halfway (a full disk): then it is shorter,
    and written again. A failed write removes what it wrote, so no partial copy is adopted."""
    try:
        out = os.open(dest, _CREATE, 0o666)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        try:
            out = os.open(dest, _CREATE, 0o666)
        except FileExistsError:
            _settle_existing(dest, data)
            return
    except FileExistsError:
        _settle_existing(dest, data)
        return
    try:
        write_all(out, data)
    except BaseException:
        os.close(out)
        with contextlib.suppress(OSError):
            os.unlink(dest)
        raise
    os.close(out)


def _settle_existing(dest: str, data: bytes) -> None:
    if os.stat(dest).st_size == len(data):
        return
    out = os.open(dest, os.O_WRONLY | os.O_TRUNC | _CLOEXEC)
    try:
        write_all(out, data)
    finally:
        os.close(out)


#: Between a staging file's path and a slice's place in it: no path can hold a NUL byte.
SLICE_MARK = "\0"


def slice_path(path: str, offset: int, length: int) -> str:
    """The "local path" of a staged copy that is ``length`` bytes at ``offset`` of ``path``."""
    return f"{path}{SLICE_MARK}{offset}:{length}"


def parse_slice(local_path: str) -> tuple[str, int, int] | None:
    """``(path, offset, length)`` of a :func:`slice_path`; None for a plain path."""
    path, mark, where = local_path.partition(SLICE_MARK)
    if not mark:
        return None
    offset, _, length = where.partition(":")
    return path, int(offset), int(length)


def read_slice(local_path: str, fds: dict[str, int] | None = None) -> bytes:
    """The bytes of a staged copy (a slice or a whole file). ``fds``: open staging files to
    reuse (the caller closes them), so 10,000 slices of one file cost one ``open``."""
    where = parse_slice(local_path)
    if where is None:
        with open(local_path, "rb") as source:
            return source.read()
    path, offset, length = where
    if fds is None:
        fd = os.open(path, os.O_RDONLY | _CLOEXEC)
        try:
            return _pread_all(fd, length, offset)
        finally:
            os.close(fd)
    return _pread_all(staging_fd(path, fds), length, offset)


def staging_fd(path: str, fds: dict[str, int]) -> int:
    """A read descriptor of staging file ``path``, opened once per ``fds`` (which the caller
    closes), also when several threads ask at once."""
    known = fds.get(path)
    if known is None:
        opened = os.open(path, os.O_RDONLY | _CLOEXEC)
        known = fds.setdefault(path, opened)  # atomic: another thread may have won
        if known != opened:
            os.close(opened)
    return known


def _pread_all(fd: int, length: int, offset: int) -> bytes:
    data = os.pread(fd, length, offset)
    while len(data) < length:
        more = os.pread(fd, length - len(data), offset + len(data))
        if not more:
            raise OSError(errno.EIO, "a staging file is shorter than its slices")
        data += more
    return data


_SLICE_FILE_NUMBERS = itertools.count(1)  # next() is atomic under the GIL


class SliceSink:
    """Small staged copies appended to staging files, one being filled per thread (no file per
    copy).

    Each copy is then known by :func:`slice_path`; equal contents are staged once. A thread's
    copies collect in memory and reach its file a megabyte at a time (one ``write`` per
    ~250 small files, not one each), and a file that reaches ``limit`` bytes is closed and the
    next one begun: a full staging file is exactly a pack's body (blobs end to end), so the
    commit can store it as one pack as it stands (:func:`.packio.packs_from_slices`). The files
    live in the draft's staging folder and go with it. :meth:`close` writes what is buffered:
    until then the slices are not readable, so close it when the batch is staged (a failure
    there fails the batch).
    """

    FLUSH_BYTES = 1024 * 1024

    def __init__(self, folder: str, limit: int = 16 * 1024 * 1024) -> None:
        self._folder = folder
        self._limit = max(1, limit)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._seen: dict[str, str] = {}
        self._files: list[_SliceFile] = []

    def put(self, hex_digest: str, data: bytes) -> str:
        known = self._seen.get(hex_digest)  # dict reads and setdefault are atomic
        if known is not None:
            return known
        current: _SliceFile | None = getattr(self._local, "file", None)
        if current is None or current.size >= self._limit:
            if current is not None:
                current.close()
            current = self._local.file = self._new_file()
        where = slice_path(current.path, current.size, len(data))
        current.append(data)
        return self._seen.setdefault(hex_digest, where)

    def _new_file(self) -> _SliceFile:
        # Numbered per process, not per sink: one draft stages every add_dir (and every batch
        # of a large one) with a sink of its own, into the same folder.
        path = os.path.join(self._folder, f"slices-{os.getpid()}-{next(_SLICE_FILE_NUMBERS)}")
        created = _SliceFile(path, self.FLUSH_BYTES)
        with self._lock:
            self._files.append(created)
        return created

    def close(self) -> None:
        """Write every buffered copy and close the files; the first failure is raised."""
        with self._lock:
            files, self._files = self._files, []
        self._local = threading.local()
        failure: BaseException | None = None
        for file in files:
            try:
                file.close()
            except BaseException as error:  # close the others, then raise the first
                failure = failure or error
        if failure is not None:
            raise failure


class _SliceFile:
    """One staging file being filled by one thread: appends collect in memory, then go out in
    one ``write``."""

    def __init__(self, path: str, flush_bytes: int) -> None:
        self.path = path
        self.size = 0
        self._flush_bytes = flush_bytes
        self._buffer = bytearray()
        self._fd: int | None = os.open(path, _CREATE, 0o666)

    def append(self, data: bytes) -> None:
        self._buffer += data
        self.size += len(data)
        if len(self._buffer) >= self._flush_bytes:
            self._flush()

    def _flush(self) -> None:
        if self._buffer and self._fd is not None:
            write_all(self._fd, self._buffer)
            self._buffer = bytearray()

    def close(self) -> None:
        if self._fd is None:
            return
        try:
            self._flush()
        finally:
            os.close(self._fd)
            self._fd = None


class Staged(NamedTuple):
    """Digest and size of a staged copy, and where it is."""

    digest: str
    size: int
    path: str


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
