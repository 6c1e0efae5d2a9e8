"""``Run`` and ``init``: a step of a pipeline that uses and logs artifacts.

``log_artifact`` is asynchronous, as in W&B, but each run commits its logs on one worker thread,
so versions of one artifact logged by one run are numbered in call order (W&B does not promise
that). ``finish()`` (or leaving the ``with`` block) waits for every pending log and re-raises
the first failure.
"""

from __future__ import annotations

import secrets
import string
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from types import TracebackType
from typing import Any

from dagster_artifacts.artifact import Artifact
from dagster_artifacts.engine import Engine, get_engine
from dagster_artifacts.errors import ArtifactError
from dagster_artifacts.names import LATEST, parse_artifact_path, validate_aliases, validate_name
from dagster_artifacts.registry import CommitRequest, RunRecordView
from dagster_artifacts.registry.models import LOGGED, USED
from dagster_artifacts.settings import Settings

_RUN_ID_ALPHABET = string.ascii_lowercase + string.digits
_current: Run | None = None
_current_lock = threading.Lock()


def generate_run_id() -> str:
    return "".join(secrets.choice(_RUN_ID_ALPHABET) for _ in range(8))


class Run:
    """A run: created by :func:`init`, or read back through ``Api().run()`` and lineage."""

    def __init__(self, engine: Engine, record: RunRecordView, live: bool) -> None:
        self._engine = engine
        self._record = record
        self._live = live
        self._executor: ThreadPoolExecutor | None = None
        self._pending: list[Future[None]] = []
        self._lock = threading.Lock()

    @classmethod
    def _from_record(cls, engine: Engine, record: RunRecordView) -> Run:
        return cls(engine, record, live=False)

    # -- identity ----------------------------------------------------------------------------------
    id = property(lambda self: self._record.id)
    name = property(lambda self: self._record.name)
    job_type = property(lambda self: self._record.job_type)
    group = property(lambda self: self._record.group)
    project = property(lambda self: self._record.project)
    entity = property(lambda self: self._record.entity)
    config = property(lambda self: self._record.config)

    @property
    def state(self) -> str:
        return self._record.state

    @property
    def path(self) -> str:
        return f"{self.entity}/{self.project}/{self.id}"

    @property
    def created_at(self) -> datetime | None:
        return self._record.created_at

    @property
    def settings(self) -> Settings:
        return self._engine.settings

    # -- logging -----------------------------------------------------------------------------------
    def log_artifact(
        self,
        artifact_or_path: Artifact | str,
        name: str | None = None,
        type: str | None = None,
        aliases: list[str] | None = None,
        partition_key: str | None = None,
    ) -> Artifact:
        """Commit ``artifact`` as a new version (or find its twin) in the background."""
        artifact = self._as_artifact(artifact_or_path, name, type)
        alias_list = validate_aliases(aliases)
        if LATEST not in alias_list:
            alias_list.append(LATEST)
        if artifact._record is not None or artifact._future is not None:
            raise ArtifactError(
                f"Artifact {artifact.collection_name!r} was already logged; build a new "
                "Artifact to log another version."
            )
        self._engine.check_type(self.entity, self.project, artifact.collection_name, artifact.type)
        if partition_key is not None:
            artifact.partition_key = partition_key
        artifact._finalized = True
        artifact._engine = self._engine
        future = self._submit(lambda: self._commit(artifact, alias_list, run_id=self.id))
        artifact._future = future
        return artifact

    def _as_artifact(self, value: Artifact | str, name: str | None, type: str | None) -> Artifact:
        if isinstance(value, Artifact):
            return value
        import os

        path = str(value)
        artifact = Artifact(name or _default_name(path), type=type or "unspecified")
        if os.path.isdir(path):
            artifact.add_dir(path)
        else:
            artifact.add_file(path)
        return artifact

    def _submit(self, work: Any) -> Future[None]:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix=f"dagster-artifacts-run-{self.id}"
                )
            future = self._executor.submit(work)
            self._pending.append(future)
            return future

    def _commit(self, artifact: Artifact, aliases: list[str], run_id: str | None) -> None:
        manifest = artifact._manifest
        request = CommitRequest(
            entity=self.entity,
            project=self.project,
            name=artifact.collection_name,
            type=artifact.type,
            digest=manifest.digest(),
            manifest_key="",
            size=manifest.size,
            file_count=len(manifest.entries),
            description=artifact.description,
            metadata=dict(artifact.metadata),
            aliases=tuple(aliases + [a for a in artifact._aliases if a not in aliases]),
            run_id=run_id,
            partition_key=artifact.partition_key,
            ttl_seconds=int(artifact.ttl.total_seconds()) if artifact.ttl else None,
        )
        record, created = self._engine.commit(request, manifest)
        artifact._deduplicated = not created
        artifact._apply_record(record)
        artifact._cleanup_staging()

    def upsert_artifact(
        self,
        artifact: Artifact,
        distributed_id: str | None = None,
        aliases: list[str] | None = None,
    ) -> Artifact:
        """Add this writer's files to the shared pending version (parallel writers)."""
        from dagster_artifacts.parallel import upsert

        return upsert(self, artifact, distributed_id, aliases)

    def finish_artifact(
        self,
        artifact: Artifact,
        distributed_id: str | None = None,
        aliases: list[str] | None = None,
    ) -> Artifact:
        """Seal the pending version with every writer's files and commit it."""
        from dagster_artifacts.parallel import finish

        return finish(self, artifact, distributed_id, aliases)

    # -- using -------------------------------------------------------------------------------------
    def use_artifact(
        self,
        artifact_or_name: Artifact | str,
        type: str | None = None,
        aliases: list[str] | None = None,
        use_as: str | None = None,
    ) -> Artifact:
        """Mark a version as input of this run and return it (creating it if given a draft)."""
        if isinstance(artifact_or_name, Artifact):
            artifact = artifact_or_name
            if artifact._record is None and artifact._future is None:
                alias_list = validate_aliases(aliases)
                if LATEST not in alias_list:
                    alias_list.append(LATEST)
                self._engine.check_type(
                    self.entity, self.project, artifact.collection_name, artifact.type
                )
                artifact._finalized = True
                artifact._engine = self._engine
                self._commit(artifact, alias_list, run_id=None)
            artifact.wait()
        else:
            artifact = self._resolve(artifact_or_name, type)
        assert artifact._record is not None
        self._engine.registry.add_lineage(self.id, artifact._record.id, USED)
        return artifact

    def _resolve(self, path: str, type: str | None) -> Artifact:
        parsed = parse_artifact_path(path)
        record = self._engine.registry.resolve(
            parsed.entity or self.entity,
            parsed.project or self.project,
            parsed.name,
            parsed.alias_or_version,
            type=type,
        )
        return Artifact._from_record(self._engine, record)

    # -- lineage -----------------------------------------------------------------------------------
    def logged_artifacts(self) -> list[Artifact]:
        self.wait()
        records = self._engine.registry.run_versions(self.id, LOGGED)
        return [Artifact._from_record(self._engine, record) for record in records]

    def used_artifacts(self) -> list[Artifact]:
        records = self._engine.registry.run_versions(self.id, USED)
        return [Artifact._from_record(self._engine, record) for record in records]

    # -- life cycle --------------------------------------------------------------------------------
    def wait(self) -> None:
        """Wait for every pending ``log_artifact``; re-raise the first failure."""
        with self._lock:
            pending, self._pending = self._pending, []
        errors = [f.exception() for f in pending]
        first = next((error for error in errors if error is not None), None)
        if first is not None:
            raise first

    def finish(self, exit_code: int | None = None) -> None:
        try:
            self.wait()
        except BaseException:
            self._close("failed")
            raise
        self._close("failed" if exit_code else "finished")

    def _close(self, state: str) -> None:
        global _current
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if self._live:
            self._engine.registry.finish_run(self.id, state)
            self._live = False
        with _current_lock:
            if _current is self:
                _current = None

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.finish()
        else:
            try:
                self.wait()
            finally:
                self._close("failed")

    def __repr__(self) -> str:
        return f"<Run {self.path} ({self.job_type or 'no job type'}, {self.state})>"


def _default_name(path: str) -> str:
    import os
    import re

    base = os.path.basename(os.path.normpath(path)) or "artifact"
    return re.sub(r"[^A-Za-z0-9_.\-]", "-", base)[:128]


def start_run(
    settings: Settings,
    job_type: str | None = None,
    name: str | None = None,
    group: str | None = None,
    config: dict[str, Any] | None = None,
    id: str | None = None,
) -> Run:
    """Create (or resume, given an existing ``id``) a run without making it the current run.

    Integrations that run many steps in one process (Dagster) use this; :func:`init` wraps it.
    """
    engine = get_engine(settings)
    run_id = id or generate_run_id()
    record = engine.registry.create_run(
        settings.entity,
        settings.project,
        run_id,
        name or f"{job_type or 'run'}-{run_id}",
        job_type,
        group,
        dict(config or {}),
    )
    return Run(engine, record, live=True)


def init(
    job_type: str | None = None,
    project: str | None = None,
    entity: str | None = None,
    name: str | None = None,
    group: str | None = None,
    config: dict[str, Any] | None = None,
    id: str | None = None,
    *,
    root: str | None = None,
    database: str | None = None,
    settings: Settings | None = None,
) -> Run:
    """Start a run and make it ``dagster_artifacts.run``.

    ``root``/``database`` override the configured store for this run only.
    """
    global _current
    if settings is None:
        resolved = Settings.resolve(root=root, database=database, entity=entity, project=project)
    else:
        resolved = settings.with_overrides(
            entity=entity and validate_name(entity), project=project and validate_name(project)
        )
    run = start_run(resolved, job_type=job_type, name=name, group=group, config=config, id=id)
    with _current_lock:
        _current = run
    return run


def current_run() -> Run | None:
    return _current
