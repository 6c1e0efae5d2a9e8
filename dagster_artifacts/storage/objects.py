"""Object stores (any fsspec ``AsyncFileSystem``: s3fs, gcsfs): batched, concurrent, retried.

One listing per fan-out folder tells which blobs are already stored; the missing ones go up
concurrently on the filesystem's event loop, at most ``batch_size`` at a time, each retried on
transient errors (:mod:`.retry`). Downloads land in a temporary file and only become visible once
they hash to the manifest's digest.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from fsspec.asyn import sync
from fsspec.callbacks import DEFAULT_CALLBACK, Callback

from dagster_artifacts.errors import ArtifactError, StorageError
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
from dagster_artifacts.storage.packs import Span, Wanted, pack_key, serve_span
from dagster_artifacts.storage.pipeline import adopt_verified, iter_stream
from dagster_artifacts.storage.retry import retry_async, retry_sync, storage_error
from dagster_artifacts.storage.scratch import temp_path_beside

T = TypeVar("T")
DEFAULT_BATCH_SIZE = 32
#: Keys per bulk delete request: S3's DeleteObjects takes at most 1,000; gcsfs splits its JSON
#: batch requests into 100 deletions each by itself.
DELETE_CHUNK = 1000
#: Ranged reads of packs in flight at once (each up to 8 MiB).
SPANS_IN_FLIGHT = 8


class ObjectBlobStore(BlobStore):
    """``batch_size`` bounds how many transfers run at once; ``write_kwargs`` go with every
    write (gcsfs takes encryption keys and fixed metadata per object, not per filesystem)."""

    def __init__(
        self,
        root_url: str,
        storage_options: Mapping[str, Any] | None,
        fs: Any,
        root: str,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        write_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(root_url, storage_options, fs, root)
        self.batch_size = max(1, batch_size)
        self.write_kwargs = dict(write_kwargs or {})

    # -- queries ----------------------------------------------------------------------------
    def exists(self, key: str) -> bool:
        self.fs.invalidate_cache(self.path(key))
        return bool(self._call("check", key, self.fs.exists, self.path(key)))

    def loose_existing(self, keys: Iterable[str]) -> set[str]:
        """One listing per fan-out folder: N blobs cost at most min(N, 256) requests."""
        wanted = set(keys)
        if not wanted:
            return set()
        folders = {key.rsplit("/", 1)[0] for key in wanted}
        # One listing of each parent (blobs/<algorithm>/) says which fan-out folders exist at
        # all: a new or small store then costs one request instead of up to 256.
        parents = {folder.rsplit("/", 1)[0] for folder in folders if "/" in folder}
        parent_listings = self._gather(
            [lambda p=parent: self._list_folder(p) for parent in parents]  # type: ignore[misc]
        )
        existing_folders = set().union(*parent_listings) if parent_listings else set()
        folders = {f for f in folders if f in existing_folders or "/" not in f}
        listings = self._gather(
            [lambda f=folder: self._list_folder(f) for folder in sorted(folders)]  # type: ignore[misc]
        )
        present: set[str] = set()
        for listing in listings:
            present.update(listing)
        return wanted & present

    async def _list_folder(self, folder: str) -> set[str]:
        base = self.path(folder)
        self.fs.invalidate_cache(base)
        try:
            names = await retry_async(
                lambda: self.fs._ls(base, detail=False), "list", self.url(folder)
            )
        except FileNotFoundError:
            return set()
        prefix = self.root + "/"
        return {name[len(prefix) :].rstrip("/") for name in names if name.startswith(prefix)}

    def listing(self, prefix: str) -> Iterator[StoredObject]:
        """A prefix query under the root: one request even when nothing is there (a plain
        ``find`` of a missing "folder" costs three on S3), which matters because writers list
        ``gc/`` on every commit."""
        base = self.path(prefix)
        self.fs.invalidate_cache(base)
        try:
            found = retry_sync(
                lambda: self.fs.find(self.root, prefix=f"{prefix}/", detail=True),
                "list",
                self.url(prefix),
            )
        except FileNotFoundError:
            return
        yield from found_objects(found, self.root, base)

    # -- writes -----------------------------------------------------------------------------
    def put_loose(self, uploads: list[BlobUpload], callback: Callback = DEFAULT_CALLBACK) -> None:
        async def put(upload: BlobUpload) -> None:
            await self._put_one(upload)
            callback.relative_update(upload.size or 0)

        self._gather([lambda u=upload: put(u) for upload in uploads])  # type: ignore[misc]

    async def _put_one(self, upload: BlobUpload) -> None:
        try:
            await asyncio.to_thread(check_source, upload)
        except OSError as error:
            raise put_error(self, upload, error) from error
        target = self.path(upload.key)
        url = self.url(upload.key)
        if self.write_kwargs:
            put = lambda: asyncio.to_thread(self._stream_to, upload.local_path, target)  # noqa: E731
        else:
            put = lambda: self.fs._put_file(upload.local_path, target)  # noqa: E731
        try:
            await retry_async(put, "upload", url)
        except FileNotFoundError as error:  # no such bucket: retrying will not create it
            raise storage_error("upload", url, error) from error

    def _stream_to(self, local_path: str, target: str) -> None:
        """Upload through the file API, which takes the per-object write options."""
        with (
            open(local_path, "rb") as source,
            self.fs.open(target, "wb", **self.write_kwargs) as out,
        ):
            for chunk in iter_stream(source):
                out.write(chunk)

    def _pipe_to(self, target: str, data: bytes) -> None:
        with self.fs.open(target, "wb", **self.write_kwargs) as out:
            out.write(data)

    def put_bytes(self, data: bytes, key: str) -> None:
        target = self.path(key)
        if self.write_kwargs:
            self._call("upload", key, self._pipe_to, target, data)
        else:
            self._call("upload", key, self.fs.pipe_file, target, data)

    def delete_many(self, keys: Iterable[str]) -> list[str]:
        unique = sorted(set(keys))
        if unique:
            chunks = [unique[i : i + DELETE_CHUNK] for i in range(0, len(unique), DELETE_CHUNK)]
            self._gather([lambda c=chunk: self._delete_chunk(c) for chunk in chunks])  # type: ignore[misc]
        return unique

    async def _delete_chunk(self, keys: list[str]) -> None:
        """One bulk request (gcsfs batches its own deletions)."""
        paths = [self.path(key) for key in keys]
        try:
            await retry_async(lambda: self.fs._rm(paths), "delete", self.url(keys[0]))
        except FileNotFoundError:  # every one was already gone
            return

    # -- reads ------------------------------------------------------------------------------
    def get_loose(self, downloads: Iterable[BlobDownload], *, atomic: bool = True) -> None:
        self._gather([lambda d=download: self._get_one(d) for download in downloads])  # type: ignore[misc]

    async def _get_one(self, download: BlobDownload) -> None:
        try:
            await self._fetch_one(download)
        except OSError as error:
            raise get_error(self, download, error) from error

    async def _fetch_one(self, download: BlobDownload) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(download.dest)), exist_ok=True)
        tmp = temp_path_beside(download.dest)
        url = self.url(download.key)
        try:
            await retry_async(
                lambda: self.fs._get_file(self.path(download.key), tmp), "download", url
            )
            await asyncio.to_thread(
                adopt_verified,
                tmp,
                download.dest,
                expected_digest=download.digest,
                algorithm=download.algorithm,
                expected_size=download.size,
                source=url,
            )
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def read_spans(self, spans: list[Span]) -> list[tuple[Wanted, BaseException]]:
        """Ranged GETs on the filesystem's loop, at most :data:`SPANS_IN_FLIGHT` at once (each
        at most :data:`.packs.MAX_SPAN` bytes: memory stays bounded); each span's blobs are
        verified and written on a thread while the next ranges download."""
        semaphore = asyncio.Semaphore(min(self.batch_size, SPANS_IN_FLIGHT))

        async def one(span: Span) -> list[tuple[Wanted, BaseException]]:
            key = pack_key(span.pack)
            url = self.url(key)
            if span.end <= span.start:  # empty blobs (packed by an older writer): no range
                return await asyncio.to_thread(serve_span, span, b"", url)
            async with semaphore:
                try:
                    data = await retry_async(
                        lambda: self.fs._cat_file(self.path(key), start=span.start, end=span.end),
                        "download",
                        url,
                    )
                except (OSError, ArtifactError) as error:
                    return [(item, error) for item in span.wanted]
            return await asyncio.to_thread(serve_span, span, bytes(data), url)

        results = self._gather([lambda s=span: one(s) for span in spans])  # type: ignore[misc]
        return [failure for failures in results for failure in failures]

    # -- plumbing ---------------------------------------------------------------------------
    def _gather(self, factories: list[Callable[[], Awaitable[T]]]) -> list[T]:
        """Run coroutines on the filesystem's loop, at most ``batch_size`` at once.

        Every coroutine finishes (or fails) before this returns, so no transfer is left running
        behind an error; the first error is raised.
        """
        if not factories:
            return []
        semaphore = asyncio.Semaphore(self.batch_size)

        async def bounded(factory: Callable[[], Awaitable[T]]) -> T:
            async with semaphore:
                return await factory()

        async def run_all() -> list[T | BaseException]:
            return await asyncio.gather(*(bounded(f) for f in factories), return_exceptions=True)

        results = sync(self.fs.loop, run_all)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return results


class S3BlobStore(ObjectBlobStore):
    """S3 (and S3-compatible stores): deletions as ``DeleteObjects``, 1,000 keys a request."""

    async def _delete_chunk(self, keys: list[str]) -> None:
        """s3fs's own bulk delete drops per-key errors silently; this reports them."""
        bucket, _prefix, _version = self.fs.split_path(self.path(keys[0]))
        objects = [{"Key": self.fs.split_path(self.path(key))[1]} for key in keys]
        url = self.url(keys[0])
        response = await retry_async(
            lambda: self.fs._call_s3(
                "delete_objects", Bucket=bucket, Delete={"Objects": objects, "Quiet": True}
            ),
            "delete",
            url,
        )
        for key in keys:
            self.fs.invalidate_cache(self.path(key))
        errors = response.get("Errors") or []
        if errors:
            first = errors[0]
            raise StorageError(
                f"Could not delete {len(errors)} of {len(keys)} objects in s3://{bucket}, e.g. "
                f"{first.get('Key')}: {first.get('Code')} {first.get('Message')}; check that "
                "the credentials may s3:DeleteObject there, then run gc again."
            )
