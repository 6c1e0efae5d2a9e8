"""The blob store contract: what every backend (local folder, object store, any fsspec
filesystem) does, in the manner of fsspec's ``AbstractFileSystem``.

A backend is picked once, by :func:`dagster_artifacts.storage.open_blob_store`, from the root URL;
code above storage calls only the methods here and never asks which backend it holds. What a
backend can *promise* is an attribute, not a protocol check: :attr:`BlobStore.can_touch` says
whether a stored object's modification time can be refreshed without rewriting it (a
filesystem can; object stores cannot), which decides how writers keep a concurrent gc away from
blobs they reuse (:mod:`.protection`).

Keys are ``/``-separated paths under the root (:mod:`.layout`). Every write is atomic: a reader
sees a whole object or none. Every read of a blob is verified against its digest.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, BinaryIO

from fsspec.callbacks import DEFAULT_CALLBACK, Callback

from dagster_artifacts.digests import digest_file
from dagster_artifacts.errors import ChecksumMismatchError, StorageError
from dagster_artifacts.storage.cloud import protocol_of
from dagster_artifacts.storage.layout import blob_key
from dagster_artifacts.storage.retry import retry_sync, storage_error


@dataclass(frozen=True)
class BlobUpload:
    """One local file to store under ``key``, expected to hash to ``digest``.

    ``staged`` marks a private copy made (and hashed) when the file was added to the artifact
    (:func:`.staged.stage_copy`): it is not hashed again, and a local store takes it by
    ``rename`` instead of copying it. The file is consumed: after the upload it may be gone.
    """

    local_path: str
    key: str
    digest: str | None = None
    algorithm: str = "md5"
    staged: bool = False
    size: int | None = None  # for progress only


@dataclass(frozen=True)
class BlobDownload:
    """One stored blob to copy to local ``dest``, verified against ``digest`` (and ``size``)."""

    key: str
    dest: str
    digest: str
    algorithm: str = "md5"
    size: int | None = None


@dataclass(frozen=True)
class StoredObject:
    """One object of a listing. ``modified`` is seconds since the epoch, whatever the backend
    calls it (``mtime``, ``LastModified``, ``updated``); None when the store does not say."""

    key: str
    size: int
    modified: float | None


class BlobStore(ABC):
    """Blobs, manifests, leases and gc markers under one root URL."""

    #: Whether a stored object's modification time can be refreshed without rewriting it.
    can_touch: bool = False
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

    @abstractmethod
    def existing(self, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` the store holds, asked in as few requests as the store allows."""

    def stored_digests(self, digests: Iterable[str], algorithm: str = "md5") -> set[str]:
        """Which of ``digests`` have their blob in the store (a malformed digest: none)."""
        keys: dict[str, str] = {}
        for digest in digests:
            try:
                keys[blob_key(digest, algorithm)] = digest
            except ValueError:
                continue
        return {keys[key] for key in self.existing(keys)}

    @abstractmethod
    def listing(self, prefix: str) -> Iterator[StoredObject]:
        """Every object under ``prefix`` (a missing prefix lists nothing)."""

    def touch(self, keys: Iterable[str]) -> set[str]:
        """Refresh the modification time of those ``keys`` that exist; return them.

        Only for stores with :attr:`can_touch`; the others cannot keep the content while
        changing the time, and say so.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot touch stored objects")

    def modified(self, key: str) -> float | None:
        """The modification time of ``key`` now (``FileNotFoundError`` if it is gone)."""
        info = self._call("check", key, self.fs.info, self.path(key))
        return modified_time(info)

    # -- writes -----------------------------------------------------------------------------
    def missing(
        self, uploads: Iterable[BlobUpload], present: set[str] | None = None
    ) -> list[BlobUpload]:
        """The uploads whose key the store lacks, one per key (a staged copy preferred: the
        cheapest source). ``present``: keys the caller already knows are stored (it just
        checked them), which saves asking again; ``None`` asks."""
        by_key: dict[str, BlobUpload] = {}
        for upload in uploads:
            if upload.key not in by_key or (upload.staged and not by_key[upload.key].staged):
                by_key[upload.key] = upload
        if not by_key:
            return []
        if present is None:
            present = self.existing(by_key)
        return [upload for key, upload in by_key.items() if key not in present]

    @abstractmethod
    def put_many(self, uploads: list[BlobUpload], callback: Callback = DEFAULT_CALLBACK) -> None:
        """Write every upload, each checked against its digest; ``callback.relative_update(size)``
        after each. Uploads should be :meth:`missing` ones (rewriting a present key is harmless,
        only wasted work)."""

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

    @abstractmethod
    def get_files(self, downloads: Iterable[BlobDownload], *, atomic: bool = True) -> None:
        """Copy many blobs to local files, each verified before it becomes visible.

        ``atomic=False`` is for destinations in a private folder that is published as a whole
        afterwards: files may be written straight to their names. The first failure is raised
        once every other copy has finished.
        """

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
