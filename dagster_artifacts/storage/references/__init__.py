"""Reference handlers: track external URIs in a manifest and fetch them back, verified.

A handler turns ``add_reference(uri, ...)`` into manifest entries (``store``) and downloads an
entry back (``load``). Handlers are chosen by URI scheme; :func:`register_handler` adds new ones.
Unknown schemes are tracked by URI only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from dagster_artifacts.errors import InvalidReferenceError
from dagster_artifacts.manifest import ManifestEntry
from dagster_artifacts.storage.cloud import GCS_PROTOCOLS, S3_PROTOCOLS
from dagster_artifacts.storage.references.buckets import ObjectReferenceHandler
from dagster_artifacts.storage.references.files import FileReferenceHandler, is_untracked
from dagster_artifacts.storage.references.handler import (
    DEFAULT_MAX_OBJECTS,
    ReferenceHandler,
    UntrackedReferenceHandler,
)
from dagster_artifacts.storage.references.http import HttpReferenceHandler

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
        return with_options(storage_options)
    return handler


def hashes_content(entry: ManifestEntry) -> bool:
    """Whether ``entry.digest`` is a hash of the entry's bytes (a stored file, a checksummed
    ``file://`` reference), so that a local copy can be checked by hashing it."""
    if entry.ref is None:
        return True
    if entry.digest == entry.ref:  # checksum=False: the URI itself
        return False
    if urlparse(entry.ref).scheme.lower() == "file":  # checksum=False: the MD5 of the URI
        return not is_untracked(entry)
    return handler_for(entry.ref).content_addressed


register_handler("file", FileReferenceHandler())
_http = HttpReferenceHandler()
register_handler("http", _http)
register_handler("https", _http)
for _protocol in (*S3_PROTOCOLS, *GCS_PROTOCOLS):
    register_handler(_protocol, ObjectReferenceHandler(_protocol))

__all__ = [
    "DEFAULT_MAX_OBJECTS",
    "ReferenceHandler",
    "handler_for",
    "hashes_content",
    "register_handler",
]
