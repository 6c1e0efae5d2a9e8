"""A content-addressed blob store over any fsspec filesystem.

Layout under the store root (documented, but internal)::

    blobs/<algorithm>/<hex[:2]>/<hex[2:]>   file contents, keyed by digest
    manifests/<hex md5 of manifest JSON>.json  W&B v1 manifests, immutable

Every blob is written once: an existing key is never rewritten. Writes are atomic: on a local
filesystem through a temp file and a rename; on object stores a single PUT is already atomic.

On object stores (any fsspec ``AsyncFileSystem``: s3fs, gcsfs) transfers are batched: one
listing per fan-out folder tells which blobs are already stored, then the missing ones go up
concurrently on the filesystem's event loop, at most ``batch_size`` at a time, each retried on
transient errors (see :mod:`.retry`). Downloads land in a temporary file and only become visible
once they hash to the manifest's digest (:func:`.verified.adopt_verified`).
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import hashlib
import os
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar

import fsspec
from fsspec.asyn import AsyncFileSystem, sync
from fsspec.implementations.local import LocalFileSystem

from dagster_artifacts.digests import b64_to_hex, digest_file
from dagster_artifacts.errors import ChecksumMismatchError, StorageError
from dagster_artifacts.progress import counted
from dagster_artifacts.storage.cloud import (
    GCS_PROTOCOLS,
    GCS_WRITE_OPTIONS,
    S3_PROTOCOLS,
    cloud_options,
    protocol_of,
)
from dagster_artifacts.storage.localcopy import (
    CopyJob,
    adopt_staged,
    copy_small_verified,
    copy_verified_many,
    make_parents,
)
from dagster_artifacts.storage.parallel import parallel_map
from dagster_artifacts.storage.retry import retry_async, retry_sync, storage_error
from dagster_artifacts.storage.verified import (
    adopt_verified,
    iter_stream,
    temp_path_beside,
    write_verified,
)

T = TypeVar("T")
DEFAULT_BATCH_SIZE = 32
#: Keys per bulk delete request: S3's DeleteObjects takes at most 1,000; gcsfs splits its JSON
#: batch requests into 100 deletions each by itself.
DELETE_CHUNK = 1000

BLOBS = "blobs"
MANIFESTS = "manifests"


@dataclass(frozen=True)
class BlobUpload:
    """One local file to store under ``key``, expected to hash to ``digest``.

    ``staged`` marks a private copy made (and hashed) when the file was added to the artifact
    (see :func:`.localcopy.stage_copy`): it is not hashed again, and a local store takes it by
    ``rename`` instead of copying it. The file is consumed: after the upload it may be gone.
    """

    local_path: str
    key: str
    digest: str | None = None
    algorithm: str = "md5"
    staged: bool = False
    size: int | None = None  # for progress bars only


@dataclass(frozen=True)
class BlobDownload:
    """One stored blob to copy to local ``dest``, verified against ``digest`` (and ``size``)."""

    key: str
    dest: str
    digest: str
    algorithm: str = "md5"
    size: int | None = None


class BlobStore:
    """Blobs and manifests under one fsspec root URL.

    ``batch_size`` bounds how many transfers run at once on an object store.
    """

    def __init__(
        self,
        root_url: str,
        storage_options: Mapping[str, Any] | None = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self.root_url = root_url
        self.protocol = protocol_of(root_url)
        self.storage_options = dict(storage_options or {})
        options = cloud_options(self.protocol, self.storage_options)
        # GCS encryption and fixed metadata are per-object arguments in gcsfs, not filesystem
        # options: keep them aside and pass them to every write.
        self._write_kwargs = {
            name: options.pop(name)
            for name in GCS_WRITE_OPTIONS
            if self.protocol in GCS_PROTOCOLS and name in options
        }
        self.fs, root_path = fsspec.core.url_to_fs(root_url, **options)
        self.root = root_path.rstrip("/")
        self.batch_size = max(1, batch_size)
        self._renames_atomically = isinstance(self.fs, LocalFileSystem)
        #: Whether stored objects can be touched (their mtime set without rewriting them): true
        #: on a filesystem. gc's grace period then works by touching reused blobs; object
        #: stores cannot, so writers there hold leases instead (lifecycle.reuse_lease).
        self.can_touch = self._renames_atomically
        self._async = isinstance(self.fs, AsyncFileSystem) and not self._renames_atomically
        if self._renames_atomically:
            self.fs.makedirs(self.root, exist_ok=True)

    def options_for(self, uri: str) -> dict[str, Any] | None:
        """The store's fsspec options if ``uri`` lives on the same kind of store, else None.

        Reference handlers use them so that references into the store's own endpoint (a MinIO,
        an emulator, a bucket needing the same credentials) work without more configuration.
        """
        return dict(self.storage_options) if protocol_of(uri) == self.protocol else None

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
        if self._async:
            self.fs.invalidate_cache(self.path(key))
        return bool(self._call("check", key, self.fs.exists, self.path(key)))

    def size(self, key: str) -> int:
        return int(self._call("size", key, self.fs.size, self.path(key)))

    def iter_keys(self, prefix: str) -> Iterator[str]:
        base = self.path(prefix)
        if self._async:
            self.fs.invalidate_cache(base)
        if not self._call("check", prefix, self.fs.exists, base):
            return
        for full in self._call("list", prefix, self.fs.find, base):
            yield full[len(self.root) + 1 :] if full.startswith(self.root) else full

    def listing(self, prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(key, info)`` for every file under ``prefix``, in one listing (fsspec ``info``).

        On object stores the listing is a prefix query under the root, which costs one request
        even when nothing is there (a plain ``find`` of a missing "folder" costs three on S3):
        writers list ``gc/`` on every commit. Transient failures are retried; a permanent one is
        a StorageError naming the URL.
        """
        base = self.path(prefix)
        invalidate = getattr(self.fs, "invalidate_cache", None)
        if invalidate is not None:
            invalidate(base)
        try:
            if self._renames_atomically:
                found = self.fs.find(base, detail=True)
            else:
                found = retry_sync(
                    lambda: self.fs.find(self.root, prefix=f"{prefix}/", detail=True),
                    "list",
                    self.url(prefix),
                )
        except FileNotFoundError:
            return
        for full, info in found.items():
            if info.get("type", "file") != "file" or not full.startswith(f"{base}/"):
                continue
            key = full[len(self.root) + 1 :] if full.startswith(self.root + "/") else full
            yield key, info

    def existing(self, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` the store already has, with one listing per fan-out folder.

        Blob keys share 256 folders per algorithm, so a batch of N blobs costs at most
        min(N, 256) listings instead of N HEAD requests.
        """
        wanted = set(keys)
        if not wanted:
            return set()
        if self._renames_atomically:  # a local folder: no retry machinery needed
            return self._existing_local(wanted)
        if not self._async:
            return {key for key in wanted if self.exists(key)}
        folders = {key.rsplit("/", 1)[0] for key in wanted}
        # One listing of each parent (blobs/<algorithm>/) says which fan-out folders exist at
        # all: a new or small store then costs one request instead of up to 256.
        parents = {folder.rsplit("/", 1)[0] for folder in folders if "/" in folder}
        parent_listings = self._gather(
            [lambda p=parent: self._list_folder(p) for parent in parents]
        )
        existing_folders = set().union(*parent_listings) if parent_listings else set()
        folders = {f for f in folders if f in existing_folders or "/" not in f}
        listings = self._gather(
            [lambda f=folder: self._list_folder(f) for folder in sorted(folders)]
        )
        present: set[str] = set()
        for listing in listings:
            present.update(listing)
        return wanted & present

    def stored_digests(self, digests: Iterable[str], algorithm: str = "md5") -> set[str]:
        """Which of ``digests`` have their blob in the store (a malformed digest: none).

        Asked at ``add`` time for every stat-cache hit, so on a local store it works on the hex
        digests directly, one folder at a time, without building 10,000 keys twice.
        """
        if not self._renames_atomically:
            keys: dict[str, str] = {}
            for digest in digests:
                with contextlib.suppress(ValueError):
                    keys[self.blob_key(digest, algorithm)] = digest
            return {keys[key] for key in self.existing(keys)}
        by_folder: dict[str, list[tuple[str, str]]] = {}
        for digest in digests:
            try:
                hex_digest = binascii.a2b_base64(digest).hex()
            except ValueError:
                continue
            by_folder.setdefault(hex_digest[:2], []).append((hex_digest[2:], digest))
        present: set[str] = set()
        for folder, names in by_folder.items():
            listed = self._listing_or_none(f"{BLOBS}/{algorithm}/{folder}", len(names))
            if listed is None:
                base = self.path(f"{BLOBS}/{algorithm}/{folder}")
                present.update(d for n, d in names if os.path.exists(f"{base}/{n}"))
            else:
                present.update(d for n, d in names if n in listed)
        return present

    def _listing_or_none(self, folder: str, wanted: int) -> set[str] | None:
        """The names in a local fan-out folder when listing it is cheaper than ``wanted`` stats.

        Asking about 10,000 blobs of a store that holds about as many, one ``listdir`` of each of
        the 256 small folders costs a fifth of 10,000 ``stat`` calls; in a store with millions
        of blobs a listing is long and a few ``stat`` calls are cheaper. The folder's size on
        disk tells which (about 32 bytes per entry on ext4/xfs; a guess, only for speed). A
        missing folder lists as empty.
        """
        if wanted < 4:
            return None
        try:
            if os.stat(self.path(folder)).st_size // 32 > 8 * wanted:
                return None
            return set(os.listdir(self.path(folder)))
        except FileNotFoundError:
            return set()

    def _existing_local(self, wanted: set[str]) -> set[str]:
        """``existing`` on a local folder: per fan-out folder, a listing or a ``stat`` per key."""
        by_folder: dict[str, list[str]] = {}
        for key in wanted:
            folder, _, name = key.rpartition("/")
            by_folder.setdefault(folder, []).append(name)
        present: set[str] = set()
        for folder, names in by_folder.items():
            listed = self._listing_or_none(folder, len(names))
            if listed is None:
                base = self.path(folder)
                listed = {name for name in names if os.path.exists(f"{base}/{name}")}
            present.update(f"{folder}/{name}" for name in names if name in listed)
        return present

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

    # -- writes ---------------------------------------------------------------------------------
    def put_file(
        self, local_path: str, key: str, *, digest: str | None = None, algorithm: str = "md5"
    ) -> bool:
        """Store a local file under ``key`` unless already there. Returns True if written.

        The bytes are checked against ``digest`` so that a file changed after it was added can
        never become a wrong blob: on a local store the copy is hashed as it is written and only
        renamed into place when it matches; on an object store the file is hashed just before
        its single PUT. A staged upload (``BlobUpload.staged``) was hashed as it was written
        into staging and is not read again.
        """
        return self.put_files([BlobUpload(local_path, key, digest, algorithm)]) == 1

    def put_files(self, uploads: Iterable[BlobUpload], present: set[str] | None = None) -> int:
        """Store many blobs concurrently, skipping keys already present. Returns how many written.

        ``present``: keys the caller already knows are stored (it just checked them), which
        saves asking the store again; ``None`` asks.
        """
        by_key: dict[str, BlobUpload] = {}
        for upload in uploads:  # one upload per key; a staged copy is the cheapest source
            if upload.key not in by_key or (upload.staged and not by_key[upload.key].staged):
                by_key[upload.key] = upload
        unique = list(by_key.values())
        if not unique:
            return 0
        if present is None:
            present = self.existing(upload.key for upload in unique)
        missing = [upload for upload in unique if upload.key not in present]
        total = sum(upload.size or 0 for upload in missing)
        with counted(f"Storing {len(missing)} files", total) as advance:
            if self._async:

                async def put(upload: BlobUpload) -> None:
                    await self._put_async(upload)
                    advance(upload.size or 0)

                self._gather([lambda u=upload: put(u) for upload in missing])
            else:

                def put_sync(upload: BlobUpload) -> None:
                    self._put_sync(upload)
                    advance(upload.size or 0)

                parallel_map(put_sync, missing)
        return len(missing)

    def _put_sync(self, upload: BlobUpload) -> None:
        target = self.path(upload.key)
        if self._renames_atomically:
            if upload.staged and adopt_staged(upload.local_path, target):
                return
            if copy_small_verified(
                upload.local_path,
                target,
                expected_digest=upload.digest,
                algorithm=upload.algorithm,
            ):
                return
            with open(upload.local_path, "rb") as stream:
                write_verified(
                    iter_stream(stream),
                    target,
                    expected_digest=upload.digest,
                    algorithm=upload.algorithm,
                    source=upload.local_path,
                )
        else:
            self._check_source(upload)
            self._call("upload", upload.key, self.fs.put_file, upload.local_path, target)

    @staticmethod
    def _check_source(upload: BlobUpload) -> None:
        if upload.digest is None or upload.staged:  # a staged copy was hashed as it was written
            return
        actual, _size = digest_file(upload.local_path, upload.algorithm)
        if actual != upload.digest:
            raise ChecksumMismatchError(
                f"{upload.local_path} changed after it was added to the artifact (digest "
                f"{actual}, added as {upload.digest}); add it again and re-log."
            )

    async def _put_async(self, upload: BlobUpload) -> None:
        await asyncio.to_thread(self._check_source, upload)
        target = self.path(upload.key)
        url = self.url(upload.key)
        if self._write_kwargs:
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
            self.fs.open(target, "wb", **self._write_kwargs) as out,
        ):
            for chunk in iter_stream(source):
                out.write(chunk)

    def _pipe_to(self, target: str, data: bytes) -> None:
        with self.fs.open(target, "wb", **self._write_kwargs) as out:
            out.write(data)

    def put_bytes(self, data: bytes, key: str) -> None:
        target = self.path(key)
        if self._renames_atomically:
            self.fs.makedirs(self.fs._parent(target), exist_ok=True)
            tmp = f"{target}.tmp-{uuid.uuid4().hex[:12]}"
            self.fs.pipe_file(tmp, data)
            self.fs.mv(tmp, target)
        elif self._write_kwargs:
            self._call("upload", key, self._pipe_to, target, data)
        else:
            self._call("upload", key, self.fs.pipe_file, target, data)

    def delete(self, key: str) -> None:
        self._call("delete", key, self.fs.rm, self.path(key))

    def delete_many(self, keys: Iterable[str]) -> list[str]:
        """Delete many keys in as few requests as the store allows; a missing key is no error.

        S3: ``DeleteObjects`` with up to 1,000 keys a request (several requests at once); GCS:
        gcsfs's JSON batch requests (100 deletions each); a local folder: one ``unlink`` each.
        Returns the keys asked for, sorted, once every request has succeeded; any key the store
        refused to delete raises :class:`StorageError` naming it (transient failures are
        retried first), so callers never report bytes as freed that are still stored.
        """
        unique = sorted(set(keys))
        if not unique:
            return []
        if self._renames_atomically:
            for key in unique:
                try:
                    os.unlink(self.path(key))
                except FileNotFoundError:
                    continue
                except OSError as error:  # read-only store, permissions: name the key
                    raise storage_error("delete", self.url(key), error) from error
            return unique
        chunks = [unique[i : i + DELETE_CHUNK] for i in range(0, len(unique), DELETE_CHUNK)]
        if self._async and self.protocol in S3_PROTOCOLS:
            self._gather([lambda c=chunk: self._delete_objects_s3(c) for chunk in chunks])
        elif self._async:
            self._gather([lambda c=chunk: self._rm_async(c) for chunk in chunks])
        else:
            for key in unique:
                try:
                    self.delete(key)
                except FileNotFoundError:
                    continue
        return unique

    async def _delete_objects_s3(self, keys: list[str]) -> None:
        """One ``DeleteObjects`` request; s3fs's own bulk delete drops per-key errors silently."""
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

    async def _rm_async(self, keys: list[str]) -> None:
        paths = [self.path(key) for key in keys]
        try:
            await retry_async(lambda: self.fs._rm(paths), "delete", self.url(keys[0]))
        except FileNotFoundError:  # every one was already gone
            return

    # -- reads ----------------------------------------------------------------------------------
    def read_bytes(self, key: str) -> bytes:
        return bytes(self._call("read", key, self.fs.cat_file, self.path(key)))

    def open(self, key: str) -> BinaryIO:
        return self._call("open", key, self.fs.open, self.path(key), "rb")  # type: ignore[no-any-return]

    def get_file(
        self, key: str, dest: str, *, digest: str, algorithm: str = "md5", size: int | None = None
    ) -> None:
        """Copy a blob to ``dest``, verifying it against ``digest`` before it becomes visible."""
        self.get_files([BlobDownload(key, dest, digest, algorithm, size)])

    def get_files(self, downloads: Iterable[BlobDownload], *, atomic: bool = True) -> None:
        """Copy many blobs to local files concurrently, each verified before it becomes visible.

        On a local store the whole batch is one call of
        :func:`.localcopy.copy_verified_many` (folders created once, a few threads, a handful of
        system calls per small file, no fsspec per file). ``atomic=False`` is for destinations
        in a private folder that is published as a whole afterwards: files are written straight
        to their names instead of a temp name and a rename. The first failure is raised, after
        every other copy has finished.
        """
        items = list(downloads)
        if not items:
            return
        if self._renames_atomically:
            prefix = self.path("")
            jobs = [
                CopyJob(prefix + d.key, d.dest, d.digest, d.size, "file://" + prefix + d.key)
                for d in items
            ]
            make_parents(job.dest for job in jobs)
            algorithms = {d.algorithm for d in items}
            failures = []
            for algorithm in sorted(algorithms):
                chosen = [i for i, d in enumerate(items) if d.algorithm == algorithm]
                batch = jobs if len(algorithms) == 1 else [jobs[i] for i in chosen]
                failures += copy_verified_many(batch, algorithm, atomic=atomic)
            if failures:
                raise failures[0][1]
        elif self._async:
            self._gather([lambda d=download: self._get_async(d) for download in items])
        else:
            parallel_map(self._get_sync, items)

    def _get_sync(self, download: BlobDownload) -> None:
        if self._renames_atomically and copy_small_verified(
            self.path(download.key),
            download.dest,
            expected_digest=download.digest,
            algorithm=download.algorithm,
            expected_size=download.size,
            label=self.url(download.key),
        ):
            return
        with self.open(download.key) as stream:
            write_verified(
                iter_stream(stream),
                download.dest,
                expected_digest=download.digest,
                algorithm=download.algorithm,
                expected_size=download.size,
                source=self.url(download.key),
            )

    async def _get_async(self, download: BlobDownload) -> None:
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
            if os.path.exists(tmp):
                os.unlink(tmp)

    # -- plumbing -------------------------------------------------------------------------------
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
        return results  # type: ignore[return-value]

    def _call(self, action: str, key: str, func: Any, *args: Any) -> Any:
        try:
            return retry_sync(lambda: func(*args), action, self.url(key))
        except StorageError:
            raise
        except FileNotFoundError as error:
            if action in ("upload", "list"):
                raise storage_error(action, self.url(key), error) from error
            raise
