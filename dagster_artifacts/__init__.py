"""dagster-artifacts: W&B-style artifact versioning, self-hosted on fsspec storage, in Dagster.

``import dagster_artifacts as wandb`` gives the W&B Artifacts API. The Dagster names
(``ArtifactsResource``, ``ArtifactsIOManager``) load lazily so the plain API never imports dagster.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dagster_artifacts import data_types, errors
    from dagster_artifacts.api import Api
    from dagster_artifacts.artifact import Artifact
    from dagster_artifacts.collection import ArtifactCollection, ArtifactType
    from dagster_artifacts.entries import ArtifactEntry, VerifyResult
    from dagster_artifacts.runs import Run, init
    from dagster_artifacts.settings import Settings
    from dagster_artifacts.tables import PartitionedTable, Table

__version__ = "0.1.0"

#: Public name -> the module that defines it. Loaded on first use (PEP 562), so that a command
#: that needs none of them (``dagster-artifacts --help``) never imports SQLAlchemy or fsspec.
_LAZY = {
    "Api": "dagster_artifacts.api",
    # Through runs, whose import gives artifacts their hooks into runs (``save()`` and
    # ``link()`` outside a run, ``logged_by()``): the artifact layer cannot import it.
    "Artifact": "dagster_artifacts.runs",
    "ArtifactCollection": "dagster_artifacts.collection",
    "ArtifactType": "dagster_artifacts.collection",
    "ArtifactEntry": "dagster_artifacts.entries",
    "VerifyResult": "dagster_artifacts.entries",
    "Run": "dagster_artifacts.runs",
    "init": "dagster_artifacts.runs",
    "Settings": "dagster_artifacts.settings",
    "PartitionedTable": "dagster_artifacts.tables",
    "Table": "dagster_artifacts.tables",
    "ArtifactsResource": "dagster_artifacts.dagster",
    "ArtifactsIOManager": "dagster_artifacts.dagster",
    "ArtifactsComponent": "dagster_artifacts.dagster",
    "build_artifact_checks": "dagster_artifacts.dagster",
    "build_artifact_sensor": "dagster_artifacts.dagster",
    "external_artifact_specs": "dagster_artifacts.dagster",
}
_LAZY_MODULES = {"data_types", "errors"}


def __getattr__(name: str) -> Any:
    if name == "run":  # wandb.run: the current run, or None
        from dagster_artifacts.runs import current_run

        return current_run()
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _LAZY_MODULES:
        value = importlib.import_module(f"dagster_artifacts.{name}")
    else:
        raise AttributeError(f"module 'dagster_artifacts' has no attribute {name!r}")
    if _LAZY.get(name) != "dagster_artifacts.dagster":
        globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | _LAZY_MODULES | {"run"})


def finish() -> None:
    """Finish the current run, as ``wandb.finish()`` does."""
    from dagster_artifacts.runs import current_run

    run = current_run()
    if run is not None:
        run.finish()


__all__ = [
    "Api",
    "Artifact",
    "ArtifactCollection",
    "ArtifactEntry",
    "ArtifactType",
    "ArtifactsComponent",
    "ArtifactsIOManager",
    "ArtifactsResource",
    "PartitionedTable",
    "Run",
    "Settings",
    "Table",
    "VerifyResult",
    "build_artifact_checks",
    "build_artifact_sensor",
    "data_types",
    "errors",
    "external_artifact_specs",
    "finish",
    "init",
]
