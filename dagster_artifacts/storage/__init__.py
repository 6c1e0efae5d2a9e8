"""Storage layer: the content-addressed blob store and the reference handlers."""

from dagster_artifacts.storage.blobstore import BlobStore
from dagster_artifacts.storage.references import ReferenceHandler, handler_for

__all__ = ["BlobStore", "ReferenceHandler", "handler_for"]
