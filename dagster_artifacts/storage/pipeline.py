"""Hash while writing, and let nothing wrong become visible: the one pipeline for every copy.

Every byte this package writes to a final path (a stored blob, a downloaded file, a staged copy)
goes through :func:`hash_and_write`: this thread hashes each chunk while a second thread writes
the previous one, so on two cores hashing (MD5: about one core's worth) and writing overlap
instead of adding up. Chunks read from a file descriptor live in a small pool of reused buffers
(``readv`` into them): fresh 1 MiB ``bytes`` per read are ``mmap``-ed and page-faulted one by
one, which on a virtual machine costs more than the copy itself. Memory stays at a few chunks.

:func:`write_verified` and :func:`copy_verified` write to a temp name and rename into place only
when digest and size match (invariant 6): a reader never sees a partial or wrong file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

from dagster_artifacts.digests import CHUNK_SIZE, Hasher, encode_digest, new_hasher
from dagster_artifacts.errors import ChecksumMismatchError
from dagster_artifacts.storage.scratch import temp_path_beside

PIPELINE_DEPTH = 4  # chunks in flight between the hashing and the writing thread
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_CREATE_READABLE = os.O_RDWR | os.O_CREAT | os.O_EXCL | _CLOEXEC  # a copy hashed as written

Chunk = bytes | bytearray | memoryview


class BufferPool:
    """Reusable chunk buffers; :meth:`close` wakes a reader waiting for one (the writer stopped)."""

    def __init__(self, count: int = PIPELINE_DEPTH + 2, size: int = CHUNK_SIZE) -> None:
        self._count = count
        self._free: queue.Queue[bytearray] = queue.Queue()
        for _ in range(count):
            self._free.put(bytearray(size))

    def take(self) -> bytearray:
        return self._free.get()

    def give(self, buffer: Chunk) -> None:
        if isinstance(buffer, bytearray) and buffer:
            self._free.put(buffer)

    def close(self) -> None:
        for _ in range(self._count):
            self._free.put(bytearray(0))


def fd_chunks(fd: int, pool: BufferPool, first: bytes = b"") -> Iterator[tuple[Chunk, int]]:
    """``(buffer, length)`` chunks of descriptor ``fd`` (after ``first``), read into ``pool``."""
    if first:
        yield first, len(first)
    while True:
        buffer = pool.take()
        if not buffer:  # the pool was closed: the writer stopped
            return
        length = os.readv(fd, [buffer])
        if not length:
            pool.give(buffer)
            return
        yield buffer, length


def hash_and_write(
    chunks: Iterator[tuple[Chunk, int]], out: int, hasher: Hasher, pool: BufferPool | None = None
) -> int:
    """Hash every ``(buffer, length)`` chunk and write it to descriptor ``out``; return the size.

    A one-chunk stream (most files) is written inline: a thread would cost more than it saves.
    Longer streams are written by a second thread fed through a bounded queue; buffers from
    ``pool`` go back to it once written.
    """
    first = next(chunks, None)
    if first is None:
        return 0
    hasher.update(memoryview(first[0])[: first[1]])
    second = next(chunks, None)
    if second is None:
        write_all(out, memoryview(first[0])[: first[1]])
        if pool is not None:
            pool.give(first[0])
        return first[1]
    pending: queue.Queue[tuple[Chunk, int] | None] = queue.Queue(maxsize=PIPELINE_DEPTH + 2)
    failure: list[BaseException] = []

    def write() -> None:
        try:
            while (item := pending.get()) is not None:
                write_all(out, memoryview(item[0])[: item[1]])
                if pool is not None:
                    pool.give(item[0])
        except BaseException as error:  # re-raised on the hashing thread
            failure.append(error)
            if pool is not None:
                pool.close()  # a reader waiting for a buffer must not wait forever
            while pending.get() is not None:  # drain, so the producer never blocks
                pass

    writer = threading.Thread(target=write, name="dagster-artifacts-writer", daemon=True)
    writer.start()
    size = first[1]
    try:
        pending.put(first)
        item: tuple[Chunk, int] | None = second
        while item is not None and not failure:
            hasher.update(memoryview(item[0])[: item[1]])
            size += item[1]
            pending.put(item)
            item = next(chunks, None)
    finally:
        pending.put(None)
        writer.join()
    if failure:
        raise failure[0]
    return size


#: Bytes per ``copy_file_range`` call: the hashing thread follows a step behind.
COPY_STEP = 8 * 1024 * 1024
#: Errors of ``copy_file_range``/``sendfile`` that mean "not here": fall back to a user copy.
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP}


def copy_and_hash(source: int, out: int, hasher: Hasher, first: bytes = b"") -> int:
    """Copy the rest of descriptor ``source`` (after ``first``) to ``out`` and hash what was
    *written*; return the size. ``out`` must be open for reading and writing.

    The bytes are copied by the kernel (``copy_file_range``, else ``sendfile``, as ``cp``
    does: no trip through Python's memory) on a second thread, while this thread reads back
    what has been written so far (from the page cache) and hashes it. On two cores the copy
    then costs next to nothing: a 1 GiB file takes the time of hashing it. The digest is of
    the copy itself, so a source that changes meanwhile can make a copy that is not the file
    as it is now, but never one whose digest is wrong. Where the kernel cannot copy between
    these two files, :func:`hash_and_write` does it in Python.
    """
    size = len(first)
    if first:
        hasher.update(first)
        write_all(out, first)
    progress = _CopyProgress(size)
    copier = threading.Thread(
        target=progress.run, args=(source, out), name="dagster-artifacts-copier", daemon=True
    )
    copier.start()
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    hashed = size
    try:
        while True:
            limit, finished = progress.wait_past(hashed)
            while hashed < limit:
                length = os.preadv(out, [view[: min(CHUNK_SIZE, limit - hashed)]], hashed)
                if not length:
                    raise OSError(errno.EIO, "a file being copied is shorter than was written")
                hasher.update(view[:length])
                hashed += length
            if finished:
                break
    finally:
        progress.stop()
        copier.join()
    if progress.unsupported:  # nothing was copied: the kernel cannot copy here
        pool = BufferPool()
        return size + hash_and_write(fd_chunks(source, pool), out, hasher, pool)
    if progress.failure is not None:
        raise progress.failure
    return hashed


class _CopyProgress:
    """The copying thread of :func:`copy_and_hash`, and how far it got."""

    def __init__(self, start: int) -> None:
        self.copied = start
        self.done = False
        self.stopped = False
        self.unsupported = False
        self.copied_any = False
        self.failure: BaseException | None = None
        self._changed = threading.Condition()

    def run(self, source: int, out: int) -> None:
        copy = _copy_file_range if hasattr(os, "copy_file_range") else _sendfile_copy
        try:
            while not self.stopped:
                try:
                    length = copy(source, out)
                except OSError as error:
                    if self.copied_any or error.errno not in _NO_KERNEL_COPY:
                        raise
                    if copy is _sendfile_copy:
                        self.unsupported = True  # nothing copied, offsets unmoved
                        return
                    copy = _sendfile_copy
                    continue
                if not length:
                    return
                self.copied_any = True
                with self._changed:
                    self.copied += length
                    self._changed.notify()
        except BaseException as error:  # re-raised on the hashing thread
            self.failure = error
        finally:
            with self._changed:
                self.done = True
                self._changed.notify()

    def wait_past(self, hashed: int) -> tuple[int, bool]:
        """Block until more than ``hashed`` bytes are copied or the copy ended; return how many
        are copied and whether it ended."""
        with self._changed:
            while self.copied <= hashed and not self.done:
                self._changed.wait()
            return self.copied, self.done

    def stop(self) -> None:
        self.stopped = True


def _copy_file_range(source: int, out: int) -> int:
    return os.copy_file_range(source, out, COPY_STEP)


def _sendfile_copy(source: int, out: int) -> int:
    return os.sendfile(out, source, None, COPY_STEP)


def write_all(fd: int, data: Chunk) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def iter_stream(stream: BinaryIO) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK_SIZE):
        yield chunk


def check_content(
    actual_digest: str,
    actual_size: int,
    *,
    expected_digest: str | None,
    expected_size: int | None,
    source: str,
) -> None:
    """Raise :class:`ChecksumMismatchError` naming ``source`` if size or digest disagree."""
    if expected_size is not None and actual_size != expected_size:
        raise ChecksumMismatchError(
            f"{source}: expected {expected_size} bytes but read {actual_size}; the stored "
            "object changed or is damaged. Re-log the artifact from a good copy."
        )
    if expected_digest is not None and actual_digest != expected_digest:
        raise ChecksumMismatchError(
            f"{source}: digest {actual_digest} does not match the manifest's "
            f"{expected_digest}; the stored object changed or is damaged. "
            "Re-log the artifact from a good copy."
        )


def write_verified(
    chunks: Iterable[bytes],
    dest: str,
    *,
    expected_digest: str | None,
    algorithm: str = "md5",
    expected_size: int | None = None,
    source: str = "",
) -> None:
    """Stream ``chunks`` into ``dest`` atomically; raise if digest or size disagree."""
    items = ((chunk, len(chunk)) for chunk in chunks)
    _write_checked(
        lambda out, hasher: hash_and_write(items, out, hasher),
        dest,
        expected_digest,
        algorithm,
        expected_size,
        source or dest,
    )


def copy_verified(
    source: str,
    dest: str,
    *,
    expected_digest: str | None,
    algorithm: str = "md5",
    expected_size: int | None = None,
    label: str = "",
) -> None:
    """Copy local file ``source`` to ``dest`` atomically, checked: copied by the kernel while
    the copy is hashed (:func:`copy_and_hash`)."""
    fd = os.open(source, os.O_RDONLY | _CLOEXEC)
    try:
        _write_checked(
            lambda out, hasher: copy_and_hash(fd, out, hasher),
            dest,
            expected_digest,
            algorithm,
            expected_size,
            label or source,
        )
    finally:
        os.close(fd)


def _write_checked(
    fill: Callable[[int, Hasher], int],
    dest: str,
    expected_digest: str | None,
    algorithm: str,
    expected_size: int | None,
    source: str,
) -> None:
    """``fill(descriptor, hasher)`` writes and hashes a temp file beside ``dest`` (open for
    reading too) and returns its size; it is renamed to ``dest`` only if it checks out."""
    directory = os.path.dirname(os.path.abspath(dest))
    os.makedirs(directory, exist_ok=True)
    tmp = temp_path_beside(dest)
    hasher = new_hasher(algorithm)
    try:
        out = os.open(tmp, _CREATE_READABLE, 0o666)
        try:
            size = fill(out, hasher)
        finally:
            os.close(out)
        check_content(
            encode_digest(hasher.digest()),
            size,
            expected_digest=expected_digest,
            expected_size=expected_size,
            source=source,
        )
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def adopt_verified(
    tmp: str,
    dest: str,
    *,
    expected_digest: str | None,
    algorithm: str = "md5",
    expected_size: int | None = None,
    source: str = "",
) -> None:
    """Move a file downloaded to ``tmp`` into ``dest`` only if it hashes right; else delete it.

    Bulk downloads (fsspec's async ``get``) write straight to a temporary file; this gives them
    the same guarantee as :func:`write_verified`: a reader never sees a wrong or partial ``dest``.
    """
    try:
        hasher = new_hasher(algorithm)
        size = 0
        with open(tmp, "rb") as stream:
            for chunk in iter_stream(stream):
                hasher.update(chunk)
                size += len(chunk)
        check_content(
            encode_digest(hasher.digest()),
            size,
            expected_digest=expected_digest,
            expected_size=expected_size,
            source=source or dest,
        )
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
