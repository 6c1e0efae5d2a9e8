"""Dagster integration: ``ArtifactsResource`` and ``ArtifactsIOManager`` (DESIGN.md section 5)."""

from dagster_artifacts.dagster.io_manager import ArtifactsIOManager, artifact_name_for
from dagster_artifacts.dagster.resource import ArtifactsResource

__all__ = ["ArtifactsIOManager", "ArtifactsResource", "artifact_name_for"]
