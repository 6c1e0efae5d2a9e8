"""Dagster integration (DESIGN.md section 5): ``ArtifactsResource``, ``ArtifactsIOManager`` and its
type handlers, artifacts from outside Dagster as asset specs, sensors on versions and aliases,
``artifact_verified`` asset checks, and ``ArtifactsComponent`` for ``defs.yaml``."""

from dagster_artifacts.dagster.checks import build_artifact_checks
from dagster_artifacts.dagster.component import ArtifactsComponent
from dagster_artifacts.dagster.external import external_artifact_specs
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
from dagster_artifacts.dagster.sensors import build_artifact_sensor

__all__ = [
    "ArrowHandler",
    "ArtifactsComponent",
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
    "build_artifact_checks",
    "build_artifact_sensor",
    "external_artifact_specs",
]
