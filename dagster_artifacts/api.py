"""``Api``: read and manage artifacts and runs outside of a run (W&B's public API)."""

from __future__ import annotations

from typing import Any

from dagster_artifacts.artifact import Artifact
from dagster_artifacts.engine import Engine, get_engine
from dagster_artifacts.names import parse_artifact_path, validate_name
from dagster_artifacts.registry import CollectionRecord
from dagster_artifacts.runs import Run
from dagster_artifacts.settings import Settings


class Api:
    """``Api(overrides={"entity": ..., "project": ..., "root": ..., "database": ...})``."""

    def __init__(
        self,
        overrides: dict[str, Any] | None = None,
        *,
        settings: Settings | None = None,
        **kwargs: Any,
    ) -> None:
        options = {**(overrides or {}), **kwargs}
        known = {
            "root",
            "database",
            "entity",
            "project",
            "cache_dir",
            "download_dir",
            "storage_options",
        }
        unknown = set(options) - known
        if unknown:
            raise TypeError(f"Unknown Api options {sorted(unknown)}; use {sorted(known)}.")
        if settings is None:
            settings = Settings.resolve(**options)
        else:
            settings = settings.with_overrides(**options)
        self.settings = settings
        self._engine: Engine = get_engine(settings)

    @property
    def default_entity(self) -> str:
        return self.settings.entity

    @property
    def default_project(self) -> str:
        return self.settings.project

    def _scope(self, project: str | None, entity: str | None) -> tuple[str, str]:
        return (
            validate_name(entity) if entity else self.settings.entity,
            validate_name(project) if project else self.settings.project,
        )

    def _split_name(self, name: str) -> tuple[str, str, str]:
        """``[[entity/]project/]name`` -> (entity, project, name)."""
        parsed = parse_artifact_path(name if ":" in name else f"{name}:latest")
        entity, project = self._scope(parsed.project, parsed.entity)
        return entity, project, parsed.name

    # -- artifacts ---------------------------------------------------------------------------------
    def artifact(self, name: str, type: str | None = None) -> Artifact:
        """``Api().artifact("[[entity/]project/]name:alias_or_version")``."""
        parsed = parse_artifact_path(name)
        entity, project = self._scope(parsed.project, parsed.entity)
        record = self._engine.registry.resolve(
            entity, project, parsed.name, parsed.alias_or_version, type=type
        )
        return Artifact._from_record(self._engine, record)

    def artifact_exists(self, name: str, type: str | None = None) -> bool:
        from dagster_artifacts.errors import ArtifactNotFoundError

        try:
            self.artifact(name, type)
        except ArtifactNotFoundError:
            return False
        return True

    def artifact_versions(
        self, type_name: str | None = None, name: str = "", per_page: int = 50
    ) -> list[Artifact]:
        """Every committed version of ``name`` (oldest first)."""
        entity, project, collection = self._split_name(name)
        records = self._engine.registry.list_versions(entity, project, collection, type=type_name)
        return [Artifact._from_record(self._engine, record) for record in records]

    def artifacts(
        self, type_name: str | None = None, name: str = "", per_page: int = 50
    ) -> list[Artifact]:
        return self.artifact_versions(type_name, name, per_page)

    def artifact_types(self, project: str | None = None) -> list[str]:
        entity, project_name = self._scope(project, None)
        return self._engine.registry.list_types(entity, project_name)

    def artifact_collections(
        self, project_name: str | None = None, type_name: str | None = None
    ) -> list[CollectionRecord]:
        entity, project = self._scope(project_name, None)
        return self._engine.registry.list_collections(entity, project, type=type_name)

    def prune(self, name: str, keep_last: int, **options: Any) -> Any:
        """Delete old versions of ``name``; see :func:`dagster_artifacts.lifecycle.prune`."""
        from dagster_artifacts.lifecycle import prune

        return prune(self._engine, name, keep_last, **options)

    def projects(self) -> list[tuple[str, str]]:
        return self._engine.registry.list_projects()

    # -- runs ----------------------------------------------------------------------------------------
    def run(self, path: str) -> Run:
        """``Api().run("entity/project/run_id")`` (or ``project/run_id``, or ``run_id``)."""
        parts = path.split("/")
        run_id = parts[-1]
        project = parts[-2] if len(parts) >= 2 else None
        entity = parts[-3] if len(parts) >= 3 else None
        record = self._engine.registry.get_run(run_id, entity=entity, project=project)
        return Run._from_record(self._engine, record)

    def runs(
        self,
        path: str | None = None,
        filters: dict[str, Any] | None = None,
    ) -> list[Run]:
        """Runs of ``entity/project`` (default project), filterable by job_type and group."""
        entity, project = self.settings.entity, self.settings.project
        if path:
            parts = path.split("/")
            project = parts[-1]
            if len(parts) > 1:
                entity = parts[-2]
        filters = dict(filters or {})
        records = self._engine.registry.list_runs(
            entity,
            project,
            job_type=filters.pop("job_type", None),
            group=filters.pop("group", None),
        )
        if filters:
            raise TypeError(f"Unsupported run filters {sorted(filters)}; use job_type or group.")
        return [Run._from_record(self._engine, record) for record in records]
