"""dagster-artifacts: W&B-style artifact versioning, self-hosted on fsspec storage, in Dagster.

``import dagster_artifacts as wandb`` gives the W&B Artifacts API. The Dagster names
(``ArtifactsResource``, ``ArtifactsIOManager``) load lazily so the plain API never imports dagster.
"""

from __future__ import annotations

from typing import Any

from dagster_artifacts import data_types, errors
from dagster_artifacts.api import Api
from dagster_artifacts.artifact import Artifact
from dagster_artifacts.collection import ArtifactCollection, ArtifactType
from dagster_artifacts.entries import ArtifactEntry, VerifyResult
from dagster_artifacts.runs import Run, current_run, init
from dagster_artifacts.settings import Settings
from dagster_artifacts.tables import PartitionedTable, Table

__version__ = "0.1.0"

_DAGSTER_NAMES = {"ArtifactsResource", "ArtifactsIOManager"}


def __getattr__(name: str) -> Any:
    if name == "run":  # wandb.run: the current run, or None
        return current_run()
    if name in _DAGSTER_NAMES:
        from dagster_artifacts import dagster as dagster_integration

        return getattr(dagster_integration, name)
    raise AttributeError(f"module 'dagster_artifacts' has no attribute {name!r}")


def finish() -> None:
    """Finish the current run, as ``wandb.finish()`` does."""
    run = current_run()
    if run is not None:
        run.finish()


__all__ = [
    "Api",
    "Artifact",
    "ArtifactCollection",
    "ArtifactEntry",
    "ArtifactType",
    "ArtifactsIOManager",
    "ArtifactsResource",
    "PartitionedTable",
    "Run",
    "Settings",
    "Table",
    "VerifyResult",
    "data_types",
    "errors",
    "finish",
    "init",
]
