"""Write a stream to a local file while hashing it, and keep it only if the digest matches."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from typing import BinaryIO

from dagster_artifacts.digests import CHUNK_SIZE, encode_digest, new_hasher
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
            for chunk in chunks:
                hasher.update(chunk)
                size += len(chunk)
                out.write(chunk)
        actual = encode_digest(hasher.digest())
        if expected_size is not None and size != expected_size:
            raise ChecksumMismatchError(
                f"{source or dest}: expected {expected_size} bytes but read {size}; the stored "
                "object changed or is damaged. Re-log the artifact from a good copy."
            )
        if expected_digest is not None and actual != expected_digest:
            raise ChecksumMismatchError(
                f"{source or dest}: digest {actual} does not match the manifest's "
                f"{expected_digest}; the stored object changed or is damaged. "
                "Re-log the artifact from a good copy."
            )
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
