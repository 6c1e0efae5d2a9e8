"""Digests in W&B's formats.

A file digest is the base64 of the MD5 of its bytes (``hello`` -> ``XUFAKrxLKna5cZ2REBfFkg==``).
An artifact digest is the hex MD5 of ``"wandb-artifact-manifest-v1\\n"`` followed by
``f"{path}:{digest}\\n"`` for every entry path in sorted order. Both are byte-compatible with W&B,
so a manifest written here has the digest W&B would compute for it.

With ``digest_algorithm="xxh128"`` (W&B spells it ``"XXH128"``; both are taken) files are hashed
with xxh128 and so is the artifact digest, over the same header and lines, as W&B does; W&B tags
each such file entry ``extra={"alg": "XXH128"}`` (:data:`ALGORITHM_EXTRA_KEY`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
from collections.abc import Iterable
from typing import BinaryIO, Protocol

import xxhash

CHUNK_SIZE = 1024 * 1024
ARTIFACT_DIGEST_HEADER = "wandb-artifact-manifest-v1\n"
_DIGEST_BATCH = 10_000  # manifest lines hashed per update
DEFAULT_ALGORITHM = "md5"


class Hasher(Protocol):
    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...

    def digest(self) -> bytes: ...


def new_hasher(algorithm: str = DEFAULT_ALGORITHM) -> Hasher:
    """A fresh incremental hasher: ``md5`` (W&B's default) or ``xxh128`` (opt-in, faster)."""
    if algorithm == "md5":
        return hashlib.md5(usedforsecurity=False)
    if algorithm == "xxh128":
        return xxhash.xxh3_128()
    from dagster_artifacts.errors import ConfigurationError

    raise ConfigurationError(
        f"Unknown digest algorithm {algorithm!r}; use 'md5' (default) or 'xxh128'."
    )


#: The algorithms, in this project's spelling, then in W&B's (``Artifact(digest_algorithm=...)``
#: takes either; :func:`canonical_algorithm` turns them into the first form).
SUPPORTED_ALGORITHMS = ("md5", "xxh128", "MD5", "XXH128")
#: The key of a file entry's ``extra`` that names a digest algorithm other than MD5, and W&B's
#: names for the algorithms there (an entry without it is MD5).
ALGORITHM_EXTRA_KEY = "alg"
WANDB_ALGORITHM_NAMES = {"md5": "MD5", "xxh128": "XXH128"}


def canonical_algorithm(name: str) -> str:
    """``md5`` or ``xxh128`` for any supported spelling; :class:`ConfigurationError` otherwise.

    W&B reads any other name as MD5, silently; a typo here is an error instead.
    """
    canonical = name.lower() if isinstance(name, str) else name
    if canonical not in WANDB_ALGORITHM_NAMES:
        from dagster_artifacts.errors import ConfigurationError

        raise ConfigurationError(
            f"Unknown digest algorithm {name!r}; use 'md5' (default) or 'xxh128' (W&B's "
            "'MD5' and 'XXH128' are taken too)."
        )
    return canonical


def algorithm_extra(algorithm: str) -> dict[str, str]:
    """The ``extra`` W&B gives a file entry hashed with ``algorithm`` (none for MD5)."""
    if algorithm == DEFAULT_ALGORITHM:
        return {}
    return {ALGORITHM_EXTRA_KEY: WANDB_ALGORITHM_NAMES[algorithm]}


def encode_digest(raw: bytes) -> str:
    """W&B's text form of a file digest: base64 of the raw digest bytes."""
    return base64.b64encode(raw).decode("ascii")


def b64_to_hex(digest: str) -> str:
    """Hex form of a base64 digest, used as the blob key in the store.

    ``binascii`` directly: ``base64.b64decode`` costs several times more, which shows when a
    commit computes 10,000 keys. Raises ``ValueError`` (``binascii.Error``) on bad input.
    """
    return binascii.a2b_base64(digest).hex()


def hex_to_b64(hex_digest: str) -> str:
    return base64.b64encode(binascii.unhexlify(hex_digest)).decode("ascii")


def digest_bytes(data: bytes, algorithm: str = DEFAULT_ALGORITHM) -> str:
    hasher = new_hasher(algorithm)
    hasher.update(data)
    return encode_digest(hasher.digest())


def digest_stream(stream: BinaryIO, algorithm: str = DEFAULT_ALGORITHM) -> tuple[str, int]:
    """Digest and size of a stream, read in chunks so memory stays flat."""
    hasher = new_hasher(algorithm)
    size = 0
    while chunk := stream.read(CHUNK_SIZE):
        hasher.update(chunk)
        size += len(chunk)
    return encode_digest(hasher.digest()), size


def digest_file(path: str, algorithm: str = DEFAULT_ALGORITHM) -> tuple[str, int]:
    """Digest and size of a local file, streamed."""
    with open(path, "rb") as stream:
        return digest_stream(stream, algorithm)


def artifact_digest(entries: Iterable[tuple[str, str]], algorithm: str = DEFAULT_ALGORITHM) -> str:
    """The artifact digest over ``(path, digest)`` pairs, in W&B's v1 manifest format: hex MD5,
    or hex xxh128 for an xxh128 artifact (as W&B computes it)."""
    return sorted_artifact_digest(sorted(entries), algorithm)


def sorted_artifact_digest(
    entries: Iterable[tuple[str, str]], algorithm: str = DEFAULT_ALGORITHM
) -> str:
    """:func:`artifact_digest` of pairs already sorted by path (a manifest sorts its paths
    alone, without a million pairs to sort). Lines are hashed a batch at a time."""
    hasher = hashlib.md5(usedforsecurity=False) if algorithm == "md5" else xxhash.xxh3_128()
    hasher.update(ARTIFACT_DIGEST_HEADER.encode("utf-8"))
    pairs = iter(entries)
    while batch := list(itertools.islice(pairs, _DIGEST_BATCH)):
        hasher.update("".join([f"{path}:{digest}\n" for path, digest in batch]).encode())
    return hasher.hexdigest()
