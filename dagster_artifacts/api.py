"""``Api``: read and manage artifacts and runs outside of a run (W&B's public API), plus what a
self-hosted store needs besides (retention, garbage collection, lineage as data). The CLI and the
Dagster integration use this class and nothing below it."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from dagster_artifacts import compat
from dagster_artifacts.collection import (
    ArtifactCollection,
    ArtifactType,
    find_collection,
    no_cursor,
    sort_collections,
)
from dagster_artifacts.errors import ArtifactNotFoundError, InvalidArgumentError
from dagster_artifacts.lineage import DEFAULT_BREADTH, lineage_tree
from dagster_artifacts.names import parse_artifact_path, validate_name, validate_tags
from dagster_artifacts.registry import open_catalog
from dagster_artifacts.settings import Settings

# What only some methods need is imported in them: a listing (``dagster-artifacts ls``) then
# loads neither the store (fsspec), the registry's SQLAlchemy, nor the write path.
if TYPE_CHECKING:
    from dagster_artifacts import garbage, retention
    from dagster_artifacts.artifact import Artifact
    from dagster_artifacts.registry import Catalog, VersionRecord
    from dagster_artifacts.runs import Run
    from dagster_artifacts.storage.cache import CacheInfo, CachePruneResult, DownloadCache
    from dagster_artifacts.store import Store

#: ``gc``'s default grace period: ``garbage.DEFAULT_GRACE``, repeated so that importing the API
#: does not import the garbage collector (a test keeps the two equal).
DEFAULT_GC_GRACE = timedelta(hours=24)

_OPTIONS = (
    "root",
    "database",
    "entity",
    "project",
    "cache_dir",
    "download_dir",
    "storage_options",
    "ui_url",
)


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
        unknown = set(options) - set(_OPTIONS)
        if unknown:
            raise TypeError(f"Unknown Api options {sorted(unknown)}; use {sorted(_OPTIONS)}.")
        if settings is None:
            settings = Settings.resolve(**options)
        else:
            settings = settings.with_overrides(**options)
        self.settings = settings
        self._store: Store | None = None
        self._light_catalog: Catalog | None = None

    @property
    def store(self) -> Store:
        """The store these settings name, opened on first use (``cache_info`` needs none)."""
        if self._store is None:
            from dagster_artifacts.state import open_store

            self._store = open_store(self.settings)
        return self._store

    @property
    def _catalog(self) -> Catalog:
        """What the listings (projects, types, collections) read: the open store's registry,
        or, before the store is opened, the registry's light reader (no SQLAlchemy, no storage
        backend: ``dagster-artifacts ls`` starts in a fraction of the time), which is the
        store's registry itself whenever the light one cannot read the database."""
        if self._store is not None:
            return self._store.registry
        if self._light_catalog is None:
            self._light_catalog = open_catalog(self.settings.database, lambda: self.store.registry)
        return self._light_catalog

    @property
    def default_entity(self) -> str:
        return self.settings.entity

    @property
    def default_project(self) -> str:
        return self.settings.project

    def _scope(self, project: str | None, entity: str | None) -> tuple[str, str]:
        """``(entity, project)``; ``project`` may also be ``"entity/project"``, as in W&B."""
        if project and "/" in project:
            entity, project = project.split("/", 1)
        return (
            validate_name(entity) if entity else self.settings.entity,
            validate_name(project) if project else self.settings.project,
        )

    def _split_name(self, name: str) -> tuple[str, str, str]:
        """``[[entity/]project/]name`` -> (entity, project, name)."""
        parsed = parse_artifact_path(name if ":" in name else f"{name}:latest")
        entity, project = self._scope(parsed.project, parsed.entity)
        return entity, project, parsed.name

    # -- artifacts --------------------------------------------------------------------------
    def artifact(self, name: str, type: str | None = None) -> Artifact:
        """``Api().artifact("[[entity/]project/]name:alias_or_version")``."""
        parsed = parse_artifact_path(name)
        entity, project = self._scope(parsed.project, parsed.entity)
        record = self.store.registry.resolve(
            entity, project, parsed.name, parsed.alias_or_version, type=type
        )
        return self._make(record)

    def artifact_exists(self, name: str, type: str | None = None) -> bool:
        """Whether ``[[entity/]project/]name:alias_or_version`` names a committed version."""
        try:
            self.artifact(name, type)
        except ArtifactNotFoundError:
            return False
        return True

    def _make(self, record: VersionRecord) -> Artifact:
        return _artifact_class().from_record(self.store, record)

    def _make_all(self, records: list[VersionRecord]) -> list[Artifact]:
        artifact, store = _artifact_class(), self.store
        return [artifact.from_record(store, record) for record in records]

    def artifact_collection(self, type_name: str, name: str) -> ArtifactCollection[Artifact]:
        """The collection ``[[entity/]project/]name`` of type ``type_name``, or
        ``ArtifactNotFoundError``."""
        entity, project, collection = self._split_name(name)
        return find_collection(self.store, entity, project, collection, type_name, self._make)

    def artifact_collection_exists(self, name: str, type: str) -> bool:
        """Whether the collection ``[[entity/]project/]name`` of type ``type`` exists."""
        try:
            self.artifact_collection(type, name)
        except ArtifactNotFoundError:
            return False
        return True

    def artifact_type(self, type_name: str, project: str | None = None) -> ArtifactType[Artifact]:
        """The artifacts of type ``type_name`` in ``[entity/]project`` (default: configured);
        ``ArtifactNotFoundError`` when no collection there has that type."""
        entity, project_name = self._scope(project, None)
        if type_name not in self._catalog.list_types(entity, project_name):
            raise ArtifactNotFoundError(
                f"No artifact of type {type_name!r} in {entity}/{project_name}; "
                "Api().artifact_types() lists the types there."
            )
        return ArtifactType(lambda: self.store, entity, project_name, type_name, self._make)

    def artifact_versions(
        self,
        type_name: str | None = None,
        name: str = "",
        per_page: int = 50,
        *,
        partition_key: str | None = None,
    ) -> list[Artifact]:
        """Every committed version of ``name`` (oldest first); only one partition's if given."""
        entity, project, collection = self._split_name(name)
        records = self.store.registry.list_versions(
            entity, project, collection, type=type_name, partition_key=partition_key
        )
        return self._make_all(records)

    def artifacts(
        self,
        type_name: str | None = None,
        name: str = "",
        order: str | None = None,
        per_page: int = 50,
        tags: list[str] | None = None,
        start: str | None = None,
    ) -> list[Artifact]:
        """The versions of ``[[entity/]project/]name``, oldest first, or in ``order``
        (``versionIndex`` or ``createdAt``, ``-`` for newest first); with ``tags``, only those
        carrying every one of them."""
        no_cursor(start)
        newest_first = _newest_first(order)
        entity, project, collection = self._split_name(name)
        records = self.store.registry.list_versions(
            entity,
            project,
            collection,
            type=type_name,
            tags=validate_tags(tags) if tags is not None else None,
            newest_first=newest_first,
        )
        return self._make_all(records)

    def artifact_types(self, project: str | None = None, start: str | None = None) -> list[str]:
        """The type names used in ``[entity/]project`` (``artifact_type(name)`` gives one as an
        ``ArtifactType``)."""
        no_cursor(start)
        entity, project_name = self._scope(project, None)
        return self._catalog.list_types(entity, project_name)

    def artifact_collections(
        self,
        project_name: str | None = None,
        type_name: str | None = None,
        order: str | None = None,
        per_page: int = 50,
        start: str | None = None,
    ) -> list[ArtifactCollection[Artifact]]:
        """The collections of ``[entity/]project`` (of ``type_name`` when given), by name or in
        ``order`` (``name``, ``createdAt``, ``updatedAt``; ``-`` descending)."""
        no_cursor(start)
        entity, project = self._scope(project_name, None)
        records = self._catalog.list_collections(entity, project, type=type_name)
        return [
            ArtifactCollection(lambda: self.store, record, self._make)
            for record in sort_collections(records, order)
        ]

    def projects(self) -> list[tuple[str, str]]:
        """``(entity, project)`` of every project that holds runs or artifacts."""
        return self._catalog.list_projects()

    def log_artifact(
        self, artifact: Artifact, aliases: list[str] | None = None, *, job_type: str = "api"
    ) -> Run:
        """Log ``artifact`` outside of any run: a run of ``job_type`` records the lineage.

        The name's type is checked before the run is created, so bad input writes nothing.
        Returns the finished run; ``artifact`` is the logged version when this returns.
        """
        from dagster_artifacts.commit import check_type
        from dagster_artifacts.runs import start_run

        settings = self.settings
        check_type(
            self.store, settings.entity, settings.project, artifact.collection_name, artifact.type
        )
        with start_run(settings, job_type=job_type) as run:
            run.log_artifact(artifact, aliases=aliases)
            artifact.wait()
        return run

    # -- life cycle -------------------------------------------------------------------------
    def prune(
        self,
        name: str,
        keep_last: int,
        *,
        keep_aliased: bool = False,
        older_than: timedelta | str | None = None,
        dry_run: bool = False,
        now: datetime | None = None,
    ) -> retention.PruneResult[Artifact]:
        """Delete old versions of ``name``; see :func:`dagster_artifacts.retention.prune`."""
        from dagster_artifacts import retention

        result = retention.prune(
            self.store,
            name,
            keep_last,
            keep_aliased=keep_aliased,
            older_than=older_than,
            dry_run=dry_run,
            now=now,
        )
        return result.map(self._make)

    def gc(
        self,
        *,
        grace: timedelta | str = DEFAULT_GC_GRACE,
        dry_run: bool = False,
        now: datetime | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> garbage.GcResult:
        """Expire TTL'd versions and free what no version references; see
        :func:`dagster_artifacts.garbage.gc`."""
        from dagster_artifacts import garbage

        return garbage.gc(
            self.store, grace=grace, dry_run=dry_run, now=now, on_progress=on_progress
        )

    def cache_info(self) -> CacheInfo:
        """Where this machine's download cache is, how full, its budget and mode."""
        return self._download_cache().info()

    def repack(self, *, dry_run: bool = False) -> garbage.RepackResult:
        """Move loose small blobs into packs (store format v2); see
        :func:`dagster_artifacts.garbage.repack`."""
        from dagster_artifacts import garbage

        return garbage.repack(self.store, dry_run=dry_run)

    def prune_cache(self, max_bytes: int) -> CachePruneResult:
        """Evict least recently used files until the download cache fits ``max_bytes``."""
        return self._download_cache().prune(max_bytes)

    def _download_cache(self) -> DownloadCache:
        from dagster_artifacts.store import open_download_cache

        return open_download_cache(self.settings.machine)

    def lineage(self, name: str, depth: int = 3, breadth: int = DEFAULT_BREADTH) -> dict[str, Any]:
        """The runs and versions upstream and downstream of ``name:alias_or_version``, as data;
        re-runs that were deduplicated fold into one entry (see
        :func:`dagster_artifacts.lineage.lineage_tree`)."""
        parsed = parse_artifact_path(name)
        entity, project = self._scope(parsed.project, parsed.entity)
        record = self.store.registry.resolve(entity, project, parsed.name, parsed.alias_or_version)
        return lineage_tree(self.store, record, depth, breadth)

    # -- runs -------------------------------------------------------------------------------
    def run(self, path: str) -> Run:
        """``Api().run("entity/project/run_id")`` (or ``project/run_id``, or ``run_id``)."""
        parts = path.split("/")
        run_id = parts[-1]
        project = parts[-2] if len(parts) >= 2 else None
        entity = parts[-3] if len(parts) >= 3 else None
        record = self.store.registry.get_run(run_id, entity=entity, project=project)
        from dagster_artifacts.runs import Run

        return Run.from_record(self.store, record)

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
        records = self.store.registry.list_runs(
            entity,
            project,
            job_type=filters.pop("job_type", None),
            group=filters.pop("group", None),
        )
        if filters:
            raise TypeError(f"Unsupported run filters {sorted(filters)}; use job_type or group.")
        from dagster_artifacts.runs import Run

        return [Run.from_record(self.store, record) for record in records]

    def flush(self) -> None:
        """W&B's ``Api`` caches what it read; this one reads the registry on every call, so
        there is nothing to drop."""

    if not TYPE_CHECKING:  # for mypy, a missing attribute stays an error

        def __getattr__(self, name: str) -> Any:
            """A W&B member with no meaning here raises a clear error (see :mod:`.compat`)."""
            compat.refuse("Api", compat.API, name)


@functools.cache
def _artifact_class() -> type[Artifact]:
    """``Artifact``, imported on first need, with :mod:`.runs`: importing runs gives artifacts
    their runs (``logged_by()``, ``used_by()``; it sets ``Artifact.run_factory``, as the artifact
    layer cannot import it). Cached: a listing of 10,000 versions makes as many artifacts."""
    import dagster_artifacts.runs  # noqa: F401
    from dagster_artifacts.artifact import Artifact

    return Artifact


#: ``order=`` fields of ``Api.artifacts`` (W&B's names); both sort by version number here.
VERSION_ORDERS = ("versionIndex", "createdAt")


def _newest_first(order: str | None) -> bool:
    """Whether W&B's ``order`` asks for the newest versions first."""
    if order is None:
        return False
    if order.lstrip("+-") not in VERSION_ORDERS:
        raise InvalidArgumentError(
            f"Unknown order {order!r}; use one of {', '.join(VERSION_ORDERS)}, prefixed by '+' "
            "(oldest first, the default) or '-' (newest first)."
        )
    return order.startswith("-")
