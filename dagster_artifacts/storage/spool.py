"""Large generated objects (a million-entry manifest, a commit's gc lease) stored without
holding them in memory.

A manifest of a million entries is about 80 MB of JSON, and its commit's lease lists as many
keys: kept as ``bytes`` while the blobs upload, they were a fifth of the peak memory of such a
log. A :class:`Spool` takes the object's chunks as they are encoded, keeps them in memory while
they are small (almost every commit: no file, no extra system call) and in a temp file once
they pass :data:`SPOOL_LIMIT`; it hashes them on the way (a manifest is named by its MD5), and
stores them later, from memory or from the file (a hard link on a local store).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterable
from types import TracebackType
from typing import BinaryIO

from dagster_artifacts.storage.base import BlobStore
from dagster_artifacts.storage.scratch import scratch_tag

#: Past this many bytes a spool goes to a temp file.
SPOOL_LIMIT = 8 * 1024 * 1024


class Spool:
    """The bytes of ``chunks``, their MD5 and size; a context manager that removes its file."""

    def __init__(self, chunks: Iterable[bytes], spool_dir: str) -> None:
        hasher = hashlib.md5(usedforsecurity=False)
        self.size = 0
        self._held: list[bytes] = []
        self._path: str | None = None
        out: BinaryIO | None = None
        try:
            for chunk in chunks:
                hasher.update(chunk)
                self.size += len(chunk)
                if out is None:
                    self._held.append(chunk)
                    if self.size > SPOOL_LIMIT:
                        out = self._open_file(spool_dir)
                        out.writelines(self._held)
                        self._held = []
                else:
                    out.write(chunk)
        except BaseException:
            self.close()
            raise
        finally:
            if out is not None:
                out.close()
        self.md5 = hasher.hexdigest()

    def _open_file(self, spool_dir: str) -> BinaryIO:
        """A file named by a scratch tag: if this process is killed, the next one to sweep
        ``spool_dir`` (the staging area's parent) removes it."""
        os.makedirs(spool_dir, exist_ok=True)
        self._path = os.path.join(spool_dir, scratch_tag())
        return open(self._path, "xb")  # noqa: SIM115 - closed by __init__

    def put(self, blobs: BlobStore, key: str) -> None:
        """Store the bytes as ``key``."""
        if self._path is None:
            blobs.put_bytes(b"".join(self._held), key)
        else:
            blobs.put_file_copy(self._path, key)

    def close(self) -> None:
        self._held = []
        if self._path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path)
            self._path = None

    def __enter__(self) -> Spool:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
