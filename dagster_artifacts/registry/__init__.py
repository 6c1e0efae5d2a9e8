"""Registry layer: collections, versions, aliases, runs and lineage in SQL (SQLite/PostgreSQL)."""

from dagster_artifacts.registry.records import (
    CollectionRecord,
    CommitRequest,
    RunRecordView,
    VersionRecord,
)
from dagster_artifacts.registry.registry import Registry

__all__ = ["CollectionRecord", "CommitRequest", "Registry", "RunRecordView", "VersionRecord"]
