"""``Run`` and ``init``: a step of a pipeline that uses and logs artifacts.

``log_artifact`` is asynchronous, as in W&B, but each run commits its logs on one worker thread,
so versions of one artifact logged by one run are numbered in call order (W&B does not promise
that). ``finish()`` (or leaving the ``with`` block) waits for every pending log and re-raises
the first failure. The work itself is :mod:`.commit`'s and :mod:`.distributed`'s; a run only
says who logs (entity, project, its id) and keeps the background thread.
"""

from __future__ import annotations

import os
import secrets
import string
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

from dagster_artifacts import compat, distributed, state
from dagster_artifacts.artifact import Artifact, CommitState
from dagster_artifacts.commit import check_type, commit_version, merge_aliases
from dagster_artifacts.errors import InvalidArgumentError
from dagster_artifacts.incremental import commit_incremental, commit_new_draft
from dagster_artifacts.manifest import Manifest
from dagster_artifacts.names import (
    parse_artifact_path,
    validate_description,
    validate_metadata,
    validate_name,
    validate_tags,
)
from dagster_artifacts.promotion import PromotionMembers, default_name
from dagster_artifacts.registry import LOGGED, USED, CommitRequest, RunRecord
from dagster_artifacts.settings import Settings
from dagster_artifacts.store import Store

_RUN_ID_ALPHABET = string.ascii_lowercase + string.digits


def generate_run_id() -> str:
    return "".join(secrets.choice(_RUN_ID_ALPHABET) for _ in range(8))


class Run(PromotionMembers):
    """A run: created by :func:`init`, or read back through ``Api().run()`` and lineage."""

    def __init__(self, store: Store, record: RunRecord, live: bool) -> None:
        self.store = store
        self._record = record
        self._live = live
        self._executor: ThreadPoolExecutor | None = None
        self._pending: list[Future[None]] = []
        self._lock = threading.Lock()

    @classmethod
    def from_record(cls, store: Store, record: RunRecord) -> Run:
        """A run read back from the registry (it logs nothing more)."""
        return cls(store, record, live=False)

    # -- identity ---------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self._record.id

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def job_type(self) -> str | None:
        return self._record.job_type

    @property
    def group(self) -> str | None:
        return self._record.group

    @property
    def project(self) -> str:
        return self._record.project

    @property
    def entity(self) -> str:
        return self._record.entity

    @property
    def config(self) -> dict[str, Any]:
        return self._record.config

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
        return self.store.settings

    # -- logging ----------------------------------------------------------------------------
    def log_artifact(
        self,
        artifact_or_path: Artifact | str,
        name: str | None = None,
        type: str | None = None,
        aliases: list[str] | None = None,
        tags: list[str] | None = None,
        partition_key: str | None = None,
    ) -> Artifact:
        """Commit ``artifact`` as a new version (or find its twin) in the background, with
        ``aliases`` (plus ``latest``) and ``tags`` (added to the twin's, if found)."""
        artifact = self._as_artifact(artifact_or_path, name, type)
        request, manifest = self._begin_log(artifact, aliases, self.id, partition_key, tags)
        artifact.track_commit(
            self._submit(lambda: _commit(self.store, artifact, request, manifest))
        )
        return artifact

    def _prologue(
        self,
        artifact: Artifact,
        aliases: list[str] | None,
        run_id: str | None,
        action: str,
        partition_key: str | None = None,
        tags: list[str] | None = None,
    ) -> CommitRequest:
        """The checks every log runs before anything is written: aliases (plus ``latest`` and
        the draft's own) and tags, still a draft, the name not logged under another type, a
        derived draft logged where its base is."""
        merged = merge_aliases(
            aliases, artifact.requested_aliases(), latest=action != "upsert_artifact"
        )
        checked_tags = validate_tags(tags)
        artifact.ensure_draft(action)
        base = artifact.draft_base()
        if (base is not None or artifact.incremental) and action != "log_artifact":
            raise InvalidArgumentError(
                f"{action} takes the files of parallel writers; a new_draft() or incremental "
                "artifact is logged with log_artifact()."
            )
        if base is not None:
            base.check_target(self.store.settings, self.entity, self.project)
        # Metadata may have changed in place since it was set (a["k"] = {1, 2}): check it now,
        # before a byte is stored, the same way on every registry.
        validate_metadata(artifact.metadata)
        validate_description(artifact.description)
        check_type(self.store, self.entity, self.project, artifact.collection_name, artifact.type)
        if partition_key is not None:
            artifact.partition_key = partition_key
        request = _commit_request(artifact, self.entity, self.project, run_id, merged)
        return replace(request, tags=tuple(checked_tags))

    def _begin_log(
        self,
        artifact: Artifact,
        aliases: list[str] | None,
        run_id: str | None,
        partition_key: str | None = None,
        tags: list[str] | None = None,
    ) -> tuple[CommitRequest, Manifest]:
        """The prologue, then the draft is frozen: what remains is :func:`_commit`."""
        request = self._prologue(artifact, aliases, run_id, "log_artifact", partition_key, tags)
        return request, artifact.begin_commit(self.store)

    def _as_artifact(self, value: Artifact | str, name: str | None, type: str | None) -> Artifact:
        if isinstance(value, Artifact):
            return value
        path = str(value)
        artifact = Artifact(name or default_name(path), type=type or "unspecified")
        if os.path.isdir(path):
            artifact.add_dir(path)
        else:
            artifact.add_file(path)
        return artifact

    def _submit(self, work: Callable[[], object]) -> Future[None]:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix=f"dagster-artifacts-run-{self.id}"
                )
            future: Future[None] = self._executor.submit(work)  # type: ignore[arg-type]
            self._pending.append(future)
            return future

    def upsert_artifact(
        self,
        artifact: Artifact,
        distributed_id: str | None = None,
        aliases: list[str] | None = None,
    ) -> Artifact:
        """Add this writer's files to the shared pending version (parallel writers)."""
        did = distributed.resolve_distributed_id(self.group, distributed_id, "upsert_artifact")
        request = self._prologue(artifact, aliases, self.id, "upsert_artifact")
        distributed.upsert(self.store, request, artifact.manifest, did)
        artifact.finish_upsert(self.store)
        return artifact

    def finish_artifact(
        self,
        artifact: Artifact,
        distributed_id: str | None = None,
        aliases: list[str] | None = None,
    ) -> Artifact:
        """Seal the pending version with every writer's files and commit it."""
        did = distributed.resolve_distributed_id(self.group, distributed_id, "finish_artifact")
        request = self._prologue(artifact, aliases, self.id, "finish_artifact")
        record, created, merged = distributed.finish(self.store, request, artifact.manifest, did)
        artifact.begin_commit(self.store)
        artifact.finish_commit(record, deduplicated=not created, manifest=merged)
        return artifact

    # -- using ------------------------------------------------------------------------------
    def use_artifact(
        self,
        artifact_or_name: Artifact | str,
        type: str | None = None,
        aliases: list[str] | None = None,
        use_as: str | None = None,
    ) -> Artifact:
        """Mark a version as input of this run and return it (creating it if given a draft).

        A link (``registry/collection:production``) records the use on its source version, as
        W&B does, so ``used_by()`` of either shows this run."""
        if use_as is not None:
            warnings.warn(
                "`use_as` argument is deprecated and does not affect the behaviour of "
                "`run.use_artifact`",
                DeprecationWarning,
                stacklevel=2,
            )
        if isinstance(artifact_or_name, Artifact):
            artifact = artifact_or_name
            if artifact.commit_state is CommitState.DRAFT:
                # Logged without a producing run: the draft becomes a version this run used.
                request, manifest = self._begin_log(artifact, aliases, None)
                _commit(self.store, artifact, request, manifest)
            artifact.wait()
        else:
            artifact = self._resolve(artifact_or_name, type)
        self.store.registry.add_lineage(self.id, artifact.id, USED)
        return artifact

    def _resolve(self, path: str, type: str | None) -> Artifact:
        parsed = parse_artifact_path(path)
        record = self.store.registry.resolve(
            parsed.entity or self.entity,
            parsed.project or self.project,
            parsed.name,
            parsed.alias_or_version,
            type=type,
        )
        return Artifact.from_record(self.store, record)

    # -- lineage ----------------------------------------------------------------------------
    def logged_artifacts(self) -> list[Artifact]:
        self.wait()
        records = self.store.registry.run_versions(self.id, LOGGED)
        return [Artifact.from_record(self.store, record) for record in records]

    def used_artifacts(self) -> list[Artifact]:
        records = self.store.registry.run_versions(self.id, USED)
        return [Artifact.from_record(self.store, record) for record in records]

    # -- life cycle -------------------------------------------------------------------------
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

    def _close(self, outcome: str) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if self._live:
            self.store.registry.finish_run(self.id, outcome)
            self._live = False
        state.clear_current_run(self)

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

    if not TYPE_CHECKING:  # for mypy, a missing attribute stays an error

        def __getattr__(self, name: str) -> Any:
            """A W&B member with no meaning here raises a clear error (see :mod:`.compat`)."""
            compat.refuse("Run", compat.RUN, name)


Artifact.run_factory = Run.from_record


def _log_draft(artifact: Artifact, project: str | None, settings: Settings | None) -> None:
    """``save()`` / ``link()`` of a draft, as in W&B: the current run logs it, else a run of
    job type ``auto`` (in the base's store and project, for a ``new_draft()``)."""
    run = current_run()
    if run is not None:
        run.log_artifact(artifact)
        return
    base = artifact.draft_base()
    if base is not None:
        resolved = (settings or base.settings).with_overrides(
            entity=base.record.entity, project=project or base.record.project
        )
    elif settings is not None:
        resolved = settings.with_overrides(project=project and validate_name(project))
    else:
        resolved = Settings.resolve(project=project)
    with start_run(resolved, job_type="auto") as auto:
        auto.log_artifact(artifact)
        artifact.wait()


Artifact.draft_logger = _log_draft


def _commit_request(
    artifact: Artifact, entity: str, project: str, run_id: str | None, aliases: list[str]
) -> CommitRequest:
    """What the registry needs to commit ``artifact``'s draft manifest for ``run_id``."""
    manifest = artifact.manifest
    return CommitRequest(
        entity=entity,
        project=project,
        name=artifact.collection_name,
        type=artifact.type,
        digest=manifest.digest(),
        manifest_key="",
        size=manifest.size,
        file_count=len(manifest.entries),
        description=artifact.description,
        metadata=dict(artifact.metadata),
        aliases=tuple(aliases),
        run_id=run_id,
        partition_key=artifact.partition_key,
        ttl_seconds=int(artifact.ttl.total_seconds()) if artifact.ttl else None,
    )


def _commit(store: Store, artifact: Artifact, request: CommitRequest, manifest: Manifest) -> None:
    """Store and commit a frozen draft; it becomes the logged (or deduplicated-to) version.

    A derived draft stores only what it did not carry over (see :mod:`.incremental`); an
    incremental one is merged over the newest version first. Like building the draft, storing
    it allocates an object or more per entry: existing objects are spared from the collector
    meanwhile (``state.gc_frozen``; a full collection under 10,000 entries costs 40 ms)."""
    with state.gc_frozen():
        _commit_frozen(store, artifact, request, manifest)


def _commit_frozen(
    store: Store, artifact: Artifact, request: CommitRequest, manifest: Manifest
) -> None:
    base = artifact.draft_base()
    if artifact.incremental:
        record, created, merged = commit_incremental(store, request, manifest)
        artifact.finish_commit(record, deduplicated=not created, manifest=merged)
        return
    if base is not None:
        record, created = commit_new_draft(store, request, manifest, base)
    else:
        record, created = commit_version(store, request, manifest)
    artifact.finish_commit(record, deduplicated=not created)


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
    store = state.open_store(settings)
    run_id = id or generate_run_id()
    record = store.registry.create_run(
        settings.entity,
        settings.project,
        run_id,
        name or f"{job_type or 'run'}-{run_id}",
        job_type,
        group,
        dict(config or {}),
    )
    return Run(store, record, live=True)


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
    if settings is None:
        resolved = Settings.resolve(root=root, database=database, entity=entity, project=project)
    else:
        resolved = settings.with_overrides(
            entity=entity and validate_name(entity), project=project and validate_name(project)
        )
    run = start_run(resolved, job_type=job_type, name=name, group=group, config=config, id=id)
    state.set_current_run(run)
    return run


def current_run() -> Run | None:
    """The run :func:`init` started and nobody finished yet (``dagster_artifacts.run``)."""
    run = state.current_run()
    return run if isinstance(run, Run) else None
