"""Dagster integration (DESIGN.md section 5): ``ArtifactsResource``, ``ArtifactsIOManager`` and its
type handlers, artifacts from outside Dagster as asset specs, sensors on versions and aliases,
``artifact_verified`` asset checks, and ``ArtifactsComponent`` for ``defs.yaml``."""

from dagster_artifacts.dagster.handlers import (
    ArrowHandler,
    JsonHandler,
    NumpyHandler,
    PandasHandler,
    PathHandler,
    PickleHandler,
    PolarsHandler,
    TableHandler,
    TypeHandler,
)
from dagster_artifacts.dagster.io_manager import ArtifactsIOManager, artifact_name_for
from dagster_artifacts.dagster.resource import ArtifactsResource

__all__ = [
    "ArrowHandler",
    "ArtifactsIOManager",
    "ArtifactsResource",
    "JsonHandler",
    "NumpyHandler",
    "PandasHandler",
    "PathHandler",
    "PickleHandler",
    "PolarsHandler",
    "TableHandler",
    "TypeHandler",
    "artifact_name_for",
]
