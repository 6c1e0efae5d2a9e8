"""Registry layer: collections, versions, aliases, runs and lineage in SQL (SQLite/PostgreSQL).

Code above the registry imports from this package only, never from its modules: the ORM rows
(``models``) and the per-concern query modules may change shape without notice.
"""

from dagster_artifacts.registry.locks import wrong_kind
from dagster_artifacts.registry.models import LOGGED, PORTFOLIO, SEQUENCE, USED
from dagster_artifacts.registry.records import (
    BaseVersionChangedError,
    CollectionRecord,
    CommitRequest,
    LinkSource,
    LiveReferences,
    PendingChangedError,
    PendingSnapshot,
    PendingUpsert,
    ReusedVersionGoneError,
    RunRecord,
    VersionRecord,
)
from dagster_artifacts.registry.registry import Registry

__all__ = [
    "LOGGED",
    "PORTFOLIO",
    "SEQUENCE",
    "USED",
    "BaseVersionChangedError",
    "CollectionRecord",
    "CommitRequest",
    "LinkSource",
    "LiveReferences",
    "PendingChangedError",
    "PendingSnapshot",
    "PendingUpsert",
    "Registry",
    "ReusedVersionGoneError",
    "RunRecord",
    "VersionRecord",
    "wrong_kind",
]
