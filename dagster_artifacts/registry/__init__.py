"""Registry layer: collections, versions, aliases, runs and lineage in SQL (SQLite/PostgreSQL)."""

from dagster_artifacts.registry.records import (
    CollectionRecord,
    CommitRequest,
    PendingChangedError,
    PendingSnapshot,
    PendingUpsert,
    ReusedVersionGoneError,
    RunRecordView,
    VersionRecord,
)
from dagster_artifacts.registry.registry import Registry

__all__ = [
    "CollectionRecord",
    "CommitRequest",
    "PendingChangedError",
    "PendingSnapshot",
    "PendingUpsert",
    "Registry",
    "ReusedVersionGoneError",
    "RunRecordView",
    "VersionRecord",
]
