"""Any other fsspec filesystem (``memory://``, an SFTP or WebDAV mount...): one call per object,
each retried. Correct everywhere, fast nowhere; the local and object-store backends are the fast
paths."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from fsspec.callbacks import DEFAULT_CALLBACK, Callback

from dagster_artifacts.storage.base import (
    BlobDownload,
    BlobStore,
    BlobUpload,
    StoredObject,
    check_source,
    found_objects,
    get_error,
    put_error,
)
from dagster_artifacts.storage.pipeline import iter_stream, write_verified
from dagster_artifacts.storage.retry import retry_sync
from dagster_artifacts.storage.threads import parallel_map


class FsspecBlobStore(BlobStore):
    def exists(self, key: str) -> bool:
        return bool(self._call("check", key, self.fs.exists, self.path(key)))

    def loose_existing(self, keys: Iterable[str]) -> set[str]:
        return {key for key in set(keys) if self.exists(key)}

    def listing(self, prefix: str) -> Iterator[StoredObject]:
        base = self.path(prefix)
        try:
            found = retry_sync(lambda: self.fs.find(base, detail=True), "list", self.url(prefix))
        except FileNotFoundError:
            return
        yield from found_objects(found, self.root, base)

    def put_loose(self, uploads: list[BlobUpload], callback: Callback = DEFAULT_CALLBACK) -> None:
        def put(upload: BlobUpload) -> None:
            try:
                check_source(upload)
                self._call(
                    "upload", upload.key, self.fs.put_file, upload.local_path, self.path(upload.key)
                )
            except OSError as error:
                raise put_error(self, upload, error) from error
            callback.relative_update(upload.size or 0)

        parallel_map(put, uploads)

    def put_bytes(self, data: bytes, key: str) -> None:
        self._call("upload", key, self.fs.pipe_file, self.path(key), data)

    def delete_many(self, keys: Iterable[str]) -> list[str]:
        unique = sorted(set(keys))
        for key in unique:
            try:
                self._call("delete", key, self.fs.rm, self.path(key))
            except FileNotFoundError:
                continue
        return unique

    def get_loose(self, downloads: Iterable[BlobDownload], *, atomic: bool = True) -> None:
        parallel_map(self._get_one, list(downloads))

    def _get_one(self, download: BlobDownload) -> None:
        try:
            with self.open(download.key) as stream:
                write_verified(
                    iter_stream(stream),
                    download.dest,
                    expected_digest=download.digest,
                    algorithm=download.algorithm,
                    expected_size=download.size,
                    source=self.url(download.key),
                )
        except OSError as error:
            raise get_error(self, download, error) from error
