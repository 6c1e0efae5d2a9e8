"""Write a stream to a local file while hashing it, and keep it only if the digest matches."""

from __future__ import annotations

import os
import queue
import threading
import uuid
from collections.abc import Iterable, Iterator
from typing import BinaryIO, Protocol

from dagster_artifacts.digests import CHUNK_SIZE, Hasher, encode_digest, new_hasher
from dagster_artifacts.errors import ChecksumMismatchError


def temp_path_beside(path: str) -> str:
    """A unique sibling name, so that the final rename is atomic on the same filesystem."""
    directory, base = os.path.split(path)
    return os.path.join(directory, f".{base}.tmp-{uuid.uuid4().hex[:12]}")


def iter_stream(stream: BinaryIO) -> Iterable[bytes]:
    while chunk := stream.read(CHUNK_SIZE):
        yield chunk


def write_verified(
    chunks: Iterable[bytes],
    dest: str,
    *,
    expected_digest: str | None,
    algorithm: str = "md5",
    expected_size: int | None = None,
    source: str = "",
) -> None:
    """Stream ``chunks`` into ``dest`` atomically; raise if digest or size disagree.

    The destination is only replaced once the whole content is checked, so a reader never sees a
    half-written or wrong file (invariant 6).
    """
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    tmp = temp_path_beside(dest)
    hasher = new_hasher(algorithm)
    size = 0
    try:
        with open(tmp, "wb") as out:
            size = _hash_and_write(iter(chunks), out, hasher)
        check_content(
            encode_digest(hasher.digest()),
            size,
            expected_digest=expected_digest,
            expected_size=expected_size,
            source=source or dest,
        )
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


PIPELINE_DEPTH = 4  # chunks in flight between the hashing and the writing thread


class Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...


def _hash_and_write(chunks: Iterator[bytes], out: Writable, hasher: Hasher) -> int:
    """Hash every chunk and write it to ``out``; return the byte count.

    A stream of more than one chunk is written by a second thread fed through a bounded queue,
    so that hashing (MD5: about one core's worth) and writing overlap on two cores instead of
    adding up; memory stays at ``PIPELINE_DEPTH`` chunks. A one-chunk stream (most files) is
    written inline: a thread would cost more than it saves.
    """
    first = next(chunks, b"")
    second = next(chunks, None)
    hasher.update(first)
    if second is None:
        out.write(first)
        return len(first)
    pending: queue.Queue[bytes | None] = queue.Queue(maxsize=PIPELINE_DEPTH)
    failure: list[BaseException] = []

    def write() -> None:
        try:
            while (item := pending.get()) is not None:
                out.write(item)
        except BaseException as error:  # re-raised on the hashing thread
            failure.append(error)
            while pending.get() is not None:  # drain, so the producer never blocks
                pass

    writer = threading.Thread(target=write, name="dagster-artifacts-writer", daemon=True)
    writer.start()
    size = len(first)
    try:
        pending.put(first)
        chunk: bytes | None = second
        while chunk is not None:
            hasher.update(chunk)
            size += len(chunk)
            pending.put(chunk)
            chunk = next(chunks, None)
    finally:
        pending.put(None)
        writer.join()
    if failure:
        raise failure[0]
    return size


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
        with open(tmp, "rb") as stream:
            hasher = new_hasher(algorithm)
            size = 0
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
        if os.path.exists(tmp):
            os.unlink(tmp)
