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
import os
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from dagster_artifacts.digests import CHUNK_SIZE, Hasher, encode_digest, new_hasher
from dagster_artifacts.errors import ChecksumMismatchError
from dagster_artifacts.storage.scratch import temp_path_beside

PIPELINE_DEPTH = 4  # chunks in flight between the hashing and the writing thread
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC

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
    _write_checked(items, None, dest, expected_digest, algorithm, expected_size, source or dest)


def copy_verified(
    source: str,
    dest: str,
    *,
    expected_digest: str | None,
    algorithm: str = "md5",
    expected_size: int | None = None,
    label: str = "",
) -> None:
    """Copy local file ``source`` to ``dest`` atomically, checked; chunks in pooled buffers."""
    fd = os.open(source, os.O_RDONLY | _CLOEXEC)
    try:
        pool = BufferPool()
        _write_checked(
            fd_chunks(fd, pool),
            pool,
            dest,
            expected_digest,
            algorithm,
            expected_size,
            label or source,
        )
    finally:
        os.close(fd)


def _write_checked(
    items: Iterator[tuple[Chunk, int]],
    pool: BufferPool | None,
    dest: str,
    expected_digest: str | None,
    algorithm: str,
    expected_size: int | None,
    source: str,
) -> None:
    directory = os.path.dirname(os.path.abspath(dest))
    os.makedirs(directory, exist_ok=True)
    tmp = temp_path_beside(dest)
    hasher = new_hasher(algorithm)
    try:
        out = os.open(tmp, _CREATE, 0o666)
        try:
            size = hash_and_write(items, out, hasher, pool)
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
