"""Storage layer: content-addressed blob stores over fsspec, reference handlers, the local
download cache, and the writer/gc protection protocol.

:func:`open_blob_store` picks the backend once, from the root URL (as dvc-objects' ``get_odb``
does); everything above storage talks to the :class:`BlobStore` contract only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import fsspec
from fsspec.asyn import AsyncFileSystem
from fsspec.implementations.local import LocalFileSystem

from dagster_artifacts.storage.base import BlobDownload, BlobStore, BlobUpload, StoredObject
from dagster_artifacts.storage.cloud import GCS_PROTOCOLS, GCS_WRITE_OPTIONS, cloud_options
from dagster_artifacts.storage.cloud import protocol_of as _protocol_of
from dagster_artifacts.storage.generic import FsspecBlobStore
from dagster_artifacts.storage.local import LocalBlobStore
from dagster_artifacts.storage.objects import DEFAULT_BATCH_SIZE, ObjectBlobStore, S3BlobStore
from dagster_artifacts.storage.references import handler_for


def open_blob_store(
    root_url: str,
    storage_options: Mapping[str, Any] | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> BlobStore:
    """The backend for ``root_url``: a local folder, an object store, or any other fsspec
    filesystem (``memory://`` included). ``batch_size`` bounds concurrent object transfers."""
    protocol = _protocol_of(root_url)
    options = cloud_options(protocol, storage_options)
    # GCS encryption and fixed metadata are per-object arguments in gcsfs, not filesystem
    # options: keep them aside and pass them to every write.
    write_kwargs = {
        name: options.pop(name)
        for name in GCS_WRITE_OPTIONS
        if protocol in GCS_PROTOCOLS and name in options
    }
    fs, root = fsspec.core.url_to_fs(root_url, **options)
    if isinstance(fs, LocalFileSystem):
        return LocalBlobStore(root_url, storage_options, fs, root)
    if isinstance(fs, AsyncFileSystem):
        kind = S3BlobStore if hasattr(fs, "_call_s3") else ObjectBlobStore
        return kind(
            root_url, storage_options, fs, root, batch_size=batch_size, write_kwargs=write_kwargs
        )
    return FsspecBlobStore(root_url, storage_options, fs, root)


__all__ = [
    "BlobDownload",
    "BlobStore",
    "BlobUpload",
    "StoredObject",
    "handler_for",
    "open_blob_store",
]
