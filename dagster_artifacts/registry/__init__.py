"""Registry layer: collections, versions, aliases, runs and lineage in SQL (SQLite/PostgreSQL).

Code above the registry imports from this package only, never from its modules: the ORM rows
(``models``) and the per-concern query modules may change shape without notice.

Names load lazily (PEP 562, as the top-level package's do): the records and the light
:func:`open_catalog` reader import no SQLAlchemy, which alone takes some 0.3 s to import, so a
command that only lists (``dagster-artifacts ls``) starts without it; :class:`Registry` brings
it in on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dagster_artifacts.registry.locks import wrong_kind
    from dagster_artifacts.registry.records import (
        LOGGED,
        PORTFOLIO,
        SEQUENCE,
        USED,
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
    from dagster_artifacts.registry.sqlite_catalog import Catalog, open_catalog

_RECORDS = "dagster_artifacts.registry.records"
#: Public name -> the module that defines it, imported on first use.
_LAZY = {
    "LOGGED": _RECORDS,
    "PORTFOLIO": _RECORDS,
    "SEQUENCE": _RECORDS,
    "USED": _RECORDS,
    "BaseVersionChangedError": _RECORDS,
    "CollectionRecord": _RECORDS,
    "CommitRequest": _RECORDS,
    "LinkSource": _RECORDS,
    "LiveReferences": _RECORDS,
    "PendingChangedError": _RECORDS,
    "PendingSnapshot": _RECORDS,
    "PendingUpsert": _RECORDS,
    "ReusedVersionGoneError": _RECORDS,
    "RunRecord": _RECORDS,
    "VersionRecord": _RECORDS,
    "Registry": "dagster_artifacts.registry.registry",
    "wrong_kind": "dagster_artifacts.registry.locks",
    "Catalog": "dagster_artifacts.registry.sqlite_catalog",
    "open_catalog": "dagster_artifacts.registry.sqlite_catalog",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        # ``from dagster_artifacts.registry import migrate`` then imports the submodule.
        raise AttributeError(f"module 'dagster_artifacts.registry' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "LOGGED",
    "PORTFOLIO",
    "SEQUENCE",
    "USED",
    "BaseVersionChangedError",
    "Catalog",
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
    "open_catalog",
    "wrong_kind",
]
