"""The blob store contract: what every backend (local folder, object store, any fsspec
filesystem) does, in the manner of fsspec's ``AbstractFileSystem``.

A backend is picked once, by :func:`dagster_artifacts.storage.open_blob_store`, from the root URL;
code above storage calls only the methods here and never asks which backend it holds. What a
backend can *promise* is an attribute, not a protocol check (:attr:`BlobStore.is_local`: its
bytes are on this machine already). Writers and gc keep out of each other's way through leases
and markers written with these same methods, on every backend (:mod:`.protection`).

Keys are ``/``-separated paths under the root (:mod:`.layout`). Every write is atomic: a reader
sees a whole object or none. Every read of a blob is verified against its digest.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, BinaryIO

from fsspec.callbacks import DEFAULT_CALLBACK, Callback

from dagster_artifacts.digests import digest_file
from dagster_artifacts.errors import ArtifactError, ChecksumMismatchError, StorageError
from dagster_artifacts.storage.cloud import protocol_of
from dagster_artifacts.storage.items import BlobDownload, BlobUpload
from dagster_artifacts.storage.layout import PACKS, blob_key
from dagster_artifacts.storage.packindex import PackIndex
from dagster_artifacts.storage.packio import get_packed_and_loose, write_packs
from dagster_artifacts.storage.packs import (
    PackPolicy,
    Span,
    Wanted,
    pack_key,
    serve_span,
)
from dagster_artifacts.storage.retry import retry_sync, storage_error
from dagster_artifacts.storage.staged import parse_slice, read_slice
from dagster_artifacts.storage.threads import parallel_map


@dataclass(frozen=True)
class StoredObject:
    """One object of a listing. ``modified`` is seconds since the epoch, whatever the backend
    calls it (``mtime``, ``LastModified``, ``updated``); None when the store does not say."""

    key: str
    size: int
    modified: float | None


class BlobStore(ABC):
    """Blobs, manifests, leases and gc markers under one root URL."""

    #: Whether the bytes are on this machine's disks already (a download cache would only hold a
    #: second copy of them).
    is_local: bool = False

    def __init__(
        self, root_url: str, storage_options: Mapping[str, Any] | None, fs: Any, root: str
    ) -> None:
        self.root_url = root_url
        self.protocol = protocol_of(root_url)
        self.storage_options = dict(storage_options or {})  # may hold credentials: never shown
        self.fs = fs
        self.root = root.rstrip("/")
        #: When blobs go into packs (store format v2, :mod:`.packs`); readers read both layouts.
        self.pack_policy = PackPolicy.from_env()
        #: Every published pack's index, loaded on demand (:meth:`packed`).
        self.pack_index = PackIndex(self.pack_listing, self.read_bytes)

    # -- locations --------------------------------------------------------------------------
    def path(self, key: str) -> str:
        return f"{self.root}/{key}"

    def url(self, key: str) -> str:
        """A URL a person can paste: the store's protocol and the full path of ``key``."""
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        if protocol in ("file", "local"):
            return f"file://{self.path(key)}"
        return f"{protocol}://{self.path(key).lstrip('/')}"

    def options_for(self, uri: str) -> dict[str, Any] | None:
        """The store's fsspec options if ``uri`` lives on the same kind of store, else None.

        Reference handlers use them so that references into the store's own endpoint (a MinIO,
        an emulator, a bucket needing the same credentials) work without more configuration.
        """
        return dict(self.storage_options) if protocol_of(uri) == self.protocol else None

    # -- queries ----------------------------------------------------------------------------
    @abstractmethod
    def exists(self, key: str) -> bool: ...

    def existing(self, keys: Iterable[str], *, refresh: bool = True) -> set[str]:
        """Which of ``keys`` the store holds, packed or loose, asked in as few requests as the
        store allows (one listing of ``packs/``, then the backend's loose check). Without
        ``refresh`` packs are looked up in the index as this process last loaded it."""
        wanted = set(keys)
        if not wanted:
            return set()
        packed = set(self.packed(wanted, refresh=refresh))
        return packed | self.loose_existing(wanted - packed)

    @abstractmethod
    def loose_existing(self, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` the store holds as objects of their own (the v1 layout)."""

    def packed(self, keys: Iterable[str], *, refresh: bool = True) -> dict[str, Any]:
        """Where each of ``keys`` that lives in a pack is (a :class:`.packs.PackedBlob`);
        ``refresh`` first lists ``packs/`` to see packs other writers published."""
        if refresh:
            self.pack_index.refresh()
        return self.pack_index.locate(keys)

    def pack_listing(self) -> Iterator[str]:
        """The keys under ``packs/`` (indexes, packs, retirement notes)."""
        return (item.key for item in self.listing(PACKS))

    def stored_digests(self, digests: Iterable[str], algorithm: str = "md5") -> set[str]:
        """Which of ``digests`` have their blob in the store (a malformed digest: none)."""
        wanted = list(digests)
        self.pack_index.refresh()
        packed = self.pack_index.packed_digests(wanted, algorithm)
        keys: dict[str, str] = {}
        for digest in wanted:
            if digest in packed:
                continue
            try:
                keys[blob_key(digest, algorithm)] = digest
            except ValueError:
                continue
        return packed | {keys[key] for key in self.loose_existing(keys)}

    @abstractmethod
    def listing(self, prefix: str) -> Iterator[StoredObject]:
        """Every object under ``prefix`` (a missing prefix lists nothing)."""

    # -- writes -----------------------------------------------------------------------------
    def missing(
        self,
        uploads: Iterable[BlobUpload],
        present: set[str] | None = None,
        *,
        refresh: bool = True,
    ) -> list[BlobUpload]:
        """The uploads whose key the store lacks, one per key (a staged copy preferred: the
        cheapest source). ``present``: keys the caller already knows are stored (it just
        checked them), which saves asking again; ``None`` asks (``refresh``: see
        :meth:`existing`)."""
        by_key: dict[str, BlobUpload] = {}
        for upload in uploads:
            if upload.key not in by_key or (upload.staged and not by_key[upload.key].staged):
                by_key[upload.key] = upload
        if not by_key:
            return []
        if present is None:
            present = self.existing(by_key, refresh=refresh)
        return [upload for key, upload in by_key.items() if key not in present]

    def put_many(self, uploads: list[BlobUpload], callback: Callback = DEFAULT_CALLBACK) -> None:
        """Write every upload, each checked against its digest; ``callback.relative_update(size)``
        after each. Uploads should be :meth:`missing` ones (rewriting a present key is harmless,
        only wasted work). Many small blobs go into packs (:attr:`pack_policy`), the rest loose."""
        packable = [u for u in uploads if self.pack_policy.packable(u.key, u.size)]
        if len(packable) < self.pack_policy.min_blobs:
            packable = []
        chosen = {id(u) for u in packable}
        loose = [u for u in uploads if id(u) not in chosen] if packable else uploads
        sliced = [u for u in loose if parse_slice(u.local_path) is not None]
        if sliced:  # staged as slices of a staging file, yet to be stored loose
            loose = [u for u in loose if parse_slice(u.local_path) is None]
            self.put_slices(sliced, callback)
        if loose:
            self.put_loose(loose, callback)
        if packable:
            write_packs(self, packable, callback)

    def put_slices(self, uploads: list[BlobUpload], callback: Callback = DEFAULT_CALLBACK) -> None:
        """Store staged slices (:class:`.staged.SliceSink`) as loose blobs: each is small, so
        its bytes go up whole with :meth:`put_bytes` (atomic on every backend)."""
        fds: dict[str, int] = {}

        def put(upload: BlobUpload) -> None:
            try:
                data = read_slice(upload.local_path, fds)
            except OSError as error:
                raise put_error(self, upload, error) from error
            self.put_bytes(data, upload.key)
            callback.relative_update(len(data))

        try:
            parallel_map(put, uploads)
        finally:
            for fd in fds.values():
                os.close(fd)

    @abstractmethod
    def put_loose(self, uploads: list[BlobUpload], callback: Callback = DEFAULT_CALLBACK) -> None:
        """Write every upload as an object of its own (see :meth:`put_many`)."""

    def put_files(
        self,
        uploads: Iterable[BlobUpload],
        present: set[str] | None = None,
        callback: Callback = DEFAULT_CALLBACK,
    ) -> int:
        """Store the blobs the store lacks; return how many were written."""
        missing = self.missing(uploads, present)
        if missing:
            self.put_many(missing, callback)
        return len(missing)

    @abstractmethod
    def put_bytes(self, data: bytes, key: str) -> None: ...

    def put_file_copy(self, local_path: str, key: str) -> None:
        """Store the whole local file ``local_path`` as ``key`` (streamed), leaving the file where
        it is: a full staging file published as a pack (:func:`.packio.publish_pack`)."""
        self.put_loose([BlobUpload(local_path, key)])

    @abstractmethod
    def delete_many(self, keys: Iterable[str]) -> list[str]:
        """Delete ``keys`` in as few requests as the store allows; a missing key is no error.

        Returns the keys asked for, sorted, once every deletion succeeded; a key the store
        refused to delete raises :class:`StorageError` naming it, so that callers never report
        bytes as freed that are still stored.
        """

    # -- reads ------------------------------------------------------------------------------
    def read_bytes(self, key: str) -> bytes:
        """The whole object (small ones: manifests, leases). ``FileNotFoundError`` if missing."""
        return bytes(self._call("read", key, self.fs.cat_file, self.path(key)))

    def open(self, key: str) -> BinaryIO:
        return self._call("open", key, self.fs.open, self.path(key), "rb")

    def get_files(self, downloads: Iterable[BlobDownload], *, atomic: bool = True) -> None:
        """Copy many blobs to local files, each verified before it becomes visible.

        ``atomic=False`` is for destinations in a private folder that is published as a whole
        afterwards: files may be written straight to their names. The first failure is raised
        once every other copy has finished. Packed blobs are read pack by pack, in coalesced
        ranges (:meth:`read_spans`); loose ones by the backend (:meth:`get_loose`).
        """
        get_packed_and_loose(self, list(downloads), atomic)

    @abstractmethod
    def get_loose(self, downloads: Iterable[BlobDownload], *, atomic: bool = True) -> None:
        """:meth:`get_files` for blobs stored as objects of their own."""

    def read_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``start`` to ``end`` of an object (``FileNotFoundError`` if missing)."""
        return bytes(self._call("read", key, self.fs.cat_file, self.path(key), start, end))

    def read_spans(self, spans: list[Span]) -> list[tuple[Wanted, BaseException]]:
        """Read each span of a pack and serve its blobs (see :func:`.packs.serve_span`);
        return the failures. This default reads spans on a few threads, one call each."""

        def one(span: Span) -> list[tuple[Wanted, BaseException]]:
            key = pack_key(span.pack)
            try:
                data = self.read_range(key, span.start, span.end) if span.end > span.start else b""
            except (OSError, ArtifactError) as error:
                return [(item, error) for item in span.wanted]
            return serve_span(span, data, self.url(key))

        return [failure for failures in parallel_map(one, spans) for failure in failures]

    # -- shared plumbing --------------------------------------------------------------------
    def _call(self, action: str, key: str, func: Any, *args: Any) -> Any:
        """``func(*args)`` with retries; ``FileNotFoundError`` passes through for "is it there?"
        questions, and is a :class:`StorageError` for writes and listings."""
        try:
            return retry_sync(lambda: func(*args), action, self.url(key))
        except StorageError:
            raise
        except FileNotFoundError as error:
            if action in ("upload", "list"):
                raise storage_error(action, self.url(key), error) from error
            raise


def put_error(store: BlobStore, upload: BlobUpload, error: BaseException) -> BaseException:
    """A failed upload as a typed error naming what failed: the local file it read, or the
    place in the store it wrote."""
    if isinstance(error, ArtifactError) or not isinstance(error, OSError):
        return error
    if getattr(error, "filename", None) == upload.local_path:
        return storage_error(
            f"read {upload.local_path} to store it as", store.url(upload.key), error
        )
    return storage_error("store", store.url(upload.key), error)


def get_error(store: BlobStore, download: BlobDownload, error: BaseException) -> BaseException:
    """A failed download as a typed error: the blob missing from the store, or the local
    destination refusing the write (a full or read-only disk)."""
    if isinstance(error, ArtifactError) or not isinstance(error, OSError):
        return error
    url = store.url(download.key)
    if isinstance(error, FileNotFoundError) and getattr(error, "filename", None) in (
        None,
        store.path(download.key),
    ):
        return StorageError(
            f"The blob {url} is missing from the store: it was deleted by hand or by an "
            "unsafe gc. Restore it from a backup, or delete the version and log it again.",
            url=url,
            errno=error.errno,
        )
    return storage_error(f"write {download.dest}, downloading", url, error)


def check_source(upload: BlobUpload) -> None:
    """Refuse a local file that changed since it was hashed (a staged copy cannot change)."""
    if upload.digest is None or upload.staged:
        return
    actual, _size = digest_file(upload.local_path, upload.algorithm)
    if actual != upload.digest:
        raise ChecksumMismatchError(
            f"{upload.local_path} changed after it was added to the artifact (digest "
            f"{actual}, added as {upload.digest}); add it again and re-log."
        )


def found_objects(
    found: Mapping[str, Mapping[str, Any]], root: str, base: str
) -> Iterator[StoredObject]:
    """The files of an fsspec ``find(..., detail=True)`` answer that lie under ``base``, keyed
    relative to ``root``, with sizes and normalized modification times."""
    cut = len(root) + 1
    for full, info in found.items():
        if info.get("type", "file") != "file" or not full.startswith(f"{base}/"):
            continue
        yield StoredObject(full[cut:], int(info.get("size") or 0), modified_time(info))


def modified_time(info: Mapping[str, Any]) -> float | None:
    """Modification time (epoch seconds) from an fsspec info dict, whatever the backend."""
    for name in ("mtime", "LastModified", "updated", "last_modified", "created"):
        value = info.get(name)
        if value is None:
            continue
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, datetime):
            return _aware(value).timestamp()
        if isinstance(value, str):
            try:
                return _aware(datetime.fromisoformat(value.replace("Z", "+00:00"))).timestamp()
            except ValueError:
                continue
    return None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
