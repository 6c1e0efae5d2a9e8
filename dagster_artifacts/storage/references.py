"""Reference handlers: track external URIs in a manifest and fetch them back, verified.

A handler turns ``add_reference(uri, ...)`` into manifest entries (``store``) and downloads an
entry back (``load``). Handlers are chosen by URI scheme; :func:`register_handler` adds new ones
(the s3/gs handlers register themselves the same way). Unknown schemes are tracked by URI only.
"""

from __future__ import annotations

import os
import posixpath
import shutil
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

import requests

from dagster_artifacts.digests import digest_file
from dagster_artifacts.errors import (
    ArtifactFileNotFoundError,
    ChecksumMismatchError,
    InvalidReferenceError,
    ReferenceLimitError,
    ReferenceNotDownloadableError,
)
from dagster_artifacts.manifest import ManifestEntry
from dagster_artifacts.names import normalize_entry_path
from dagster_artifacts.storage.verified import iter_stream, write_verified

DEFAULT_MAX_OBJECTS = 10_000


class ReferenceHandler(Protocol):
    """Turns a URI into manifest entries and brings an entry's bytes back."""

    def store(
        self, uri: str, name: str | None, checksum: bool, max_objects: int
    ) -> list[ManifestEntry]: ...

    def load(self, entry: ManifestEntry, dest: str) -> None: ...


def _join(prefix: str | None, relative: str) -> str:
    return normalize_entry_path(posixpath.join(prefix, relative) if prefix else relative)


def _untracked_entry(uri: str, name: str | None) -> ManifestEntry:
    """``checksum=False``: W&B stores the URI itself as the digest."""
    default = posixpath.basename(urlparse(uri).path.rstrip("/"))
    path = name or default
    if not path:
        raise InvalidReferenceError(f"Cannot infer an entry name from {uri!r}; pass name=...")
    return ManifestEntry(path=normalize_entry_path(path), digest=uri, ref=uri)


def check_limit(count: int, max_objects: int, uri: str) -> None:
    if count > max_objects:
        raise ReferenceLimitError(
            f"{uri!r} expands to more than max_objects={max_objects} objects; pass a larger "
            "max_objects=..., or reference a narrower prefix. Nothing was added."
        )


class FileReferenceHandler:
    """``file://`` URIs: a file, or a folder expanded into its files."""

    @staticmethod
    def _local(uri: str) -> str:
        return unquote(urlparse(uri).path)

    def store(
        self, uri: str, name: str | None, checksum: bool, max_objects: int
    ) -> list[ManifestEntry]:
        local = self._local(uri)
        if not checksum:
            return [_untracked_entry(uri, name)]
        if os.path.isfile(local):
            digest, size = digest_file(local)
            path = normalize_entry_path(name or os.path.basename(local))
            return [ManifestEntry(path=path, digest=digest, size=size, ref=f"file://{local}")]
        if not os.path.isdir(local):
            raise ArtifactFileNotFoundError(
                f"Reference {uri!r} points at nothing on this machine; check the path."
            )
        files: list[str] = []
        for directory, _dirs, names in os.walk(local):
            for file_name in names:
                files.append(os.path.join(directory, file_name))
                check_limit(len(files), max_objects, uri)
        entries = []
        for full in sorted(files):
            digest, size = digest_file(full)
            relative = os.path.relpath(full, local).replace(os.sep, "/")
            entries.append(
                ManifestEntry(
                    path=_join(name, relative), digest=digest, size=size, ref=f"file://{full}"
                )
            )
        return entries

    def load(self, entry: ManifestEntry, dest: str) -> None:
        assert entry.ref is not None
        if entry.digest == entry.ref:  # checksum=False: nothing to verify against
            shutil.copyfile(self._local(entry.ref), dest)
            return
        local = self._local(entry.ref)
        if not os.path.exists(local):
            raise ArtifactFileNotFoundError(
                f"Referenced file {entry.ref} no longer exists; restore it or re-log the artifact."
            )
        with open(local, "rb") as stream:
            write_verified(
                iter_stream(stream),
                dest,
                expected_digest=entry.digest,
                expected_size=entry.size,
                source=entry.ref,
            )


class HttpReferenceHandler:
    """``http(s)://`` URIs: ETag (quotes stripped) as digest, Content-Length as size."""

    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.session = requests.Session()

    @staticmethod
    def _etag(headers: Any) -> str | None:
        etag = headers.get("ETag")
        if not etag:
            return None
        if etag.startswith("W/"):
            etag = etag[2:]
        return etag.strip('"')

    def store(
        self, uri: str, name: str | None, checksum: bool, max_objects: int
    ) -> list[ManifestEntry]:
        if not checksum:
            return [_untracked_entry(uri, name)]
        from dagster_artifacts.storage.retry import retry_sync

        def head() -> requests.Response:
            answer = self.session.head(uri, allow_redirects=True, timeout=self.timeout)
            answer.raise_for_status()
            return answer

        try:
            response = retry_sync(head, "read", uri)  # transient failures are retried
        except (requests.RequestException, OSError) as error:
            raise InvalidReferenceError(f"Cannot reach {uri}: {error}") from error
        etag = self._etag(response.headers)
        length = response.headers.get("Content-Length")
        entry = _untracked_entry(uri, name)
        entry.digest = etag or uri
        entry.size = int(length) if length is not None else None
        if etag:
            entry.extra = {"etag": etag}
        return [entry]

    def load(self, entry: ManifestEntry, dest: str) -> None:
        """Download, refusing a changed ETag, and checking size (and MD5 for MD5 ETags).

        Transient failures (connection resets, 5xx, 429) are retried with backoff.
        """
        from dagster_artifacts.storage.cloud import md5_from_etag
        from dagster_artifacts.storage.retry import retry_sync

        ref = entry.ref
        assert ref is not None
        untracked = entry.digest == ref and not entry.extra  # checksum=False
        recorded = entry.extra.get("etag") if entry.extra else None

        def attempt() -> None:
            with self.session.get(ref, stream=True, timeout=self.timeout) as response:
                if response.status_code in (404, 410):
                    raise ArtifactFileNotFoundError(
                        f"Referenced URL {ref} is gone (HTTP {response.status_code}); restore "
                        "it or re-log the artifact."
                    )
                response.raise_for_status()
                served = self._etag(response.headers)
                if recorded and served != recorded:
                    raise ChecksumMismatchError(
                        f"{ref} changed since it was referenced (ETag {served!r}, "
                        f"recorded {recorded!r}); re-log the artifact to track the new content."
                    )
                write_verified(
                    response.iter_content(1024 * 1024),
                    dest,
                    expected_digest=None if untracked else md5_from_etag(recorded),
                    expected_size=None if untracked else entry.size,
                    source=ref,
                )

        retry_sync(attempt, "download", ref)


class UntrackedReferenceHandler:
    """Any other scheme: tracked by URI, never downloaded."""

    def store(
        self, uri: str, name: str | None, checksum: bool, max_objects: int
    ) -> list[ManifestEntry]:
        if not name:
            raise InvalidReferenceError(
                f"{uri!r} has a scheme dagster-artifacts cannot read, so it is tracked by URI "
                "only; pass name='...' to say which entry path it gets."
            )
        return [ManifestEntry(path=normalize_entry_path(name), digest=uri, ref=uri)]

    def load(self, entry: ManifestEntry, dest: str) -> None:
        raise ReferenceNotDownloadableError(
            f"Entry {entry.path!r} references {entry.ref}, whose scheme is tracked only; "
            "use entry.ref() to get the URI and fetch it yourself."
        )


_HANDLERS: dict[str, ReferenceHandler] = {}
_UNTRACKED = UntrackedReferenceHandler()


def register_handler(scheme: str, handler: ReferenceHandler) -> None:
    _HANDLERS[scheme] = handler


def handler_for(uri: str, storage_options: Mapping[str, Any] | None = None) -> ReferenceHandler:
    """The handler for ``uri``'s scheme.

    ``storage_options`` are the fsspec options of the store when it has the same scheme (see
    :meth:`BlobStore.options_for`): a handler that connects somewhere (s3, gs) uses them for its
    endpoint and credentials, on top of the cloud's standard environment variables. Handlers
    that need nothing ignore them.
    """
    scheme = urlparse(uri).scheme.lower()
    if not scheme:
        raise InvalidReferenceError(
            f"Reference {uri!r} has no scheme; use file:///absolute/path or add_file() for "
            "local files."
        )
    handler = _HANDLERS.get(scheme, _UNTRACKED)
    with_options = getattr(handler, "with_options", None)
    if storage_options and with_options is not None:
        return with_options(storage_options)  # type: ignore[no-any-return]
    return handler


register_handler("file", FileReferenceHandler())
_http = HttpReferenceHandler()
register_handler("http", _http)
register_handler("https", _http)


def _register_object_stores() -> None:
    from dagster_artifacts.storage.cloud import (
        GCS_PROTOCOLS,
        S3_PROTOCOLS,
        ObjectReferenceHandler,
    )

    for protocol in (*S3_PROTOCOLS, *GCS_PROTOCOLS):
        register_handler(protocol, ObjectReferenceHandler(protocol))


_register_object_stores()
