"""A content-addressed blob store over any fsspec filesystem.

Layout under the store root (documented, but internal)::

    blobs/<algorithm>/<hex[:2]>/<hex[2:]>   file contents, keyed by digest
    manifests/<hex md5 of manifest JSON>.json  W&B v1 manifests, immutable

Every blob is written once: an existing key is never rewritten. Writes are atomic: on a local
filesystem through a temp file and a rename; on object stores a single PUT is already atomic.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

import fsspec
from fsspec.implementations.local import LocalFileSystem

from dagster_artifacts.digests import b64_to_hex
from dagster_artifacts.errors import StorageError
from dagster_artifacts.storage.parallel import parallel_map
from dagster_artifacts.storage.verified import iter_stream, write_verified

BLOBS = "blobs"
MANIFESTS = "manifests"


@dataclass(frozen=True)
class BlobUpload:
    """One local file to store under ``key``, expected to hash to ``digest``."""

    local_path: str
    key: str
    digest: str | None = None
    algorithm: str = "md5"


class BlobStore:
    """Blobs and manifests under one fsspec root URL."""

    def __init__(self, root_url: str, storage_options: dict[str, Any] | None = None) -> None:
        self.root_url = root_url
        self.fs, root_path = fsspec.core.url_to_fs(root_url, **(storage_options or {}))
        self.root = root_path.rstrip("/")
        self._renames_atomically = isinstance(self.fs, LocalFileSystem)
        if self._renames_atomically:
            self.fs.makedirs(self.root, exist_ok=True)

    # -- keys -----------------------------------------------------------------------------------
    @staticmethod
    def blob_key(digest: str, algorithm: str = "md5") -> str:
        hex_digest = b64_to_hex(digest)
        return f"{BLOBS}/{algorithm}/{hex_digest[:2]}/{hex_digest[2:]}"

    @staticmethod
    def manifest_key(manifest_bytes: bytes) -> str:
        return f"{MANIFESTS}/{hashlib.md5(manifest_bytes, usedforsecurity=False).hexdigest()}.json"

    def path(self, key: str) -> str:
        return f"{self.root}/{key}"

    def url(self, key: str) -> str:
        """A URL a person can paste: the store's protocol and the full path of ``key``."""
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        if protocol in ("file", "local"):
            return f"file://{self.path(key)}"
        return f"{protocol}://{self.path(key).lstrip('/')}"

    # -- queries --------------------------------------------------------------------------------
    def exists(self, key: str) -> bool:
        return bool(self._call("exists", key, self.fs.exists, self.path(key)))

    def size(self, key: str) -> int:
        return int(self._call("size", key, self.fs.size, self.path(key)))

    def iter_keys(self, prefix: str) -> Iterator[str]:
        base = self.path(prefix)
        if not self.fs.exists(base):
            return
        for full in self.fs.find(base):
            yield full[len(self.root) + 1 :] if full.startswith(self.root) else full

    # -- writes ---------------------------------------------------------------------------------
    def put_file(
        self, local_path: str, key: str, *, digest: str | None = None, algorithm: str = "md5"
    ) -> bool:
        """Store a local file under ``key`` unless already there. Returns True if written.

        On a local store the copy is hashed as it is written and only renamed into place when it
        matches ``digest``, so a file changed after it was added can never become a wrong blob.
        """
        if self.exists(key):
            return False
        target = self.path(key)
        if self._renames_atomically:
            with open(local_path, "rb") as stream:
                write_verified(
                    iter_stream(stream),
                    target,
                    expected_digest=digest,
                    algorithm=algorithm,
                    source=local_path,
                )
        else:
            self._call("put", key, self.fs.put_file, local_path, target)
        return True

    def put_files(self, uploads: Iterable[BlobUpload]) -> int:
        """Store many blobs concurrently, skipping keys already present. Returns how many written."""
        unique = list({upload.key: upload for upload in uploads}.values())
        written = parallel_map(
            lambda u: self.put_file(u.local_path, u.key, digest=u.digest, algorithm=u.algorithm),
            unique,
        )
        return sum(written)

    def put_bytes(self, data: bytes, key: str) -> None:
        target = self.path(key)
        self.fs.makedirs(self.fs._parent(target), exist_ok=True)
        if self._renames_atomically:
            tmp = f"{target}.tmp-{uuid.uuid4().hex[:12]}"
            self.fs.pipe_file(tmp, data)
            self.fs.mv(tmp, target)
        else:
            self._call("put", key, self.fs.pipe_file, target, data)

    def delete(self, key: str) -> None:
        self._call("delete", key, self.fs.rm, self.path(key))

    # -- reads ----------------------------------------------------------------------------------
    def read_bytes(self, key: str) -> bytes:
        return bytes(self._call("read", key, self.fs.cat_file, self.path(key)))

    def open(self, key: str) -> BinaryIO:
        return self._call("open", key, self.fs.open, self.path(key), "rb")

    def get_file(
        self, key: str, dest: str, *, digest: str, algorithm: str = "md5", size: int | None = None
    ) -> None:
        """Copy a blob to ``dest``, verifying it against ``digest`` before it becomes visible."""
        with self.open(key) as stream:
            write_verified(
                iter_stream(stream),
                dest,
                expected_digest=digest,
                algorithm=algorithm,
                expected_size=size,
                source=self.url(key),
            )

    def _call(self, action: str, key: str, func: Any, *args: Any) -> Any:
        try:
            return func(*args)
        except FileNotFoundError:
            raise
        except OSError as error:
            raise StorageError(f"Could not {action} {self.url(key)}: {error}") from error

