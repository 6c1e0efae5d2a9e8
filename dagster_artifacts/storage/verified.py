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
