"""Where things live under a store root: the one place that knows the key layout.

::

    blobs/<algorithm>/<hex[:2]>/<hex[2:]>       file contents, keyed by digest
    manifests/<hex md5 of manifest JSON>.json   W&B v1 manifests, immutable
    leases/<id>.json                            keys a writer is about to reuse (object stores)
    gc/<id>.json                                keys a running gc batch is deleting (object stores)
    packs/<id>.pack, packs/<id>.idx             small blobs packed together, and their index
                                                (store format v2, see :mod:`.packs`)

The fan-out (256 folders per algorithm) keeps folders small on local disks and lets object
stores answer "which of these blobs exist?" with one listing per folder. The local download
cache uses the same ``<algorithm>/<hex[:2]>/<hex[2:]>`` tail (:func:`digest_path`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

from dagster_artifacts.digests import b64_to_hex
from dagster_artifacts.manifest import Manifest

BLOBS = "blobs"
MANIFESTS = "manifests"
LEASES = "leases"
GC_MARKERS = "gc"
PACKS = "packs"


def digest_path(digest: str, algorithm: str = "md5") -> str:
    """``<algorithm>/<hex[:2]>/<hex[2:]>`` of a base64 digest (``ValueError`` if malformed)."""
    hex_digest = b64_to_hex(digest)
    return f"{algorithm}/{hex_digest[:2]}/{hex_digest[2:]}"


def blob_key(digest: str, algorithm: str = "md5") -> str:
    """The store key of the blob whose base64 digest is ``digest``."""
    return f"{BLOBS}/{digest_path(digest, algorithm)}"


def manifest_key(manifest_bytes: bytes) -> str:
    """The store key of a manifest: named by the MD5 of its exact bytes."""
    return manifest_key_of_md5(hashlib.md5(manifest_bytes, usedforsecurity=False).hexdigest())


def manifest_key_of_md5(hex_md5: str) -> str:
    """The store key of the manifest whose bytes have this MD5 (hashed as they were spooled)."""
    return f"{MANIFESTS}/{hex_md5}.json"


def is_manifest_key(key: str) -> bool:
    return key.startswith(MANIFESTS + "/")


def is_scratch_key(key: str) -> bool:
    """A hidden name (``.<name>.tmp-<tag>``): a writer's temp file, never a blob or manifest."""
    return key.rsplit("/", 1)[-1].startswith(".")


def blob_identity(key: str) -> tuple[str, str]:
    """``blobs/md5/ab/cdef...`` -> ``("md5", "abcdef...")``; any other key maps to ``("", key)``."""
    parts = key.split("/")
    if len(parts) == 4 and parts[0] == BLOBS:
        return parts[1], parts[2] + parts[3]
    return "", key


def stored_blob_keys(manifest: Manifest) -> Iterator[str]:
    """The blob key of every stored (non-reference) entry of ``manifest``, duplicates included."""
    algorithm = manifest.digest_algorithm
    for entry in manifest.entries.values():
        if not entry.is_reference:
            yield blob_key(entry.digest, algorithm)


def keys_of(manifests: Iterable[tuple[Manifest, str]]) -> list[str]:
    """Every key ``(manifest, its manifest key)`` pairs need in the store, sorted, once each."""
    keys: set[str] = set()
    for manifest, key in manifests:
        keys.update(stored_blob_keys(manifest))
        keys.add(key)
    return sorted(keys)
