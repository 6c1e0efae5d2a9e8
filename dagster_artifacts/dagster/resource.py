"""``ArtifactsResource``: the store, and the artifacts run of the current Dagster step."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import dagster as dg
from pydantic import Field

from dagster_artifacts.api import Api
from dagster_artifacts.artifact import Artifact
from dagster_artifacts.errors import ConfigurationError
from dagster_artifacts.runs import Run, start_run
from dagster_artifacts.settings import Settings


def step_run_id(dagster_run_id: str, step_key: str) -> str:
    """A stable artifacts run id per Dagster step, so inputs and outputs of a step share it
    (even across processes under the multiprocess executor)."""
    digest = hashlib.sha1(f"{dagster_run_id}/{step_key}".encode()).hexdigest()[:12]
    return f"dg-{dagster_run_id[:8]}-{digest}"


class ArtifactsResource(dg.ConfigurableResource):
    """Where artifacts live. Empty fields fall back to ``DAGSTER_ARTIFACTS_*`` env and defaults.

    ``storage_options`` may hold credentials: pass them with ``dg.EnvVar`` (at any depth, e.g.
    ``{"key": dg.EnvVar("S3_KEY_ID"), "secret": dg.EnvVar("S3_SECRET")}``); they are resolved
    when the store is opened, given to fsspec only, never stored in the registry or shown in
    metadata.
    """

    root: str | None = Field(default=None, description="Store root (fsspec URL or local path).")
    database: str | None = Field(default=None, description="Registry SQLAlchemy URL.")
    entity: str | None = None
    project: str | None = None
    storage_options: dict[str, Any] = Field(default_factory=dict)
    cache_dir: str | None = None
    ui_url: str | None = Field(
        default=None,
        description=(
            "The artifact browser's base URL (else DAGSTER_ARTIFACTS_UI_URL): materializations "
            "then link to their version's page (artifact/link)."
        ),
    )

    def settings(self) -> Settings:
        # Outside a Dagster run (a script calling ``.api()``), ``dg.EnvVar`` fields are still
        # unresolved: resolve them here as Dagster would.
        return Settings.resolve(
            root=resolve_env_vars(self.root, "root") or None,
            database=resolve_env_vars(self.database, "database") or None,
            entity=resolve_env_vars(self.entity, "entity") or None,
            project=resolve_env_vars(self.project, "project") or None,
            cache_dir=resolve_env_vars(self.cache_dir, "cache_dir") or None,
            storage_options=resolve_env_vars(dict(self.storage_options or {})),
            ui_url=resolve_env_vars(self.ui_url, "ui_url") or None,
        )

    def browser_url(self) -> str | None:
        """The artifact browser's base URL (``ui_url``, else ``DAGSTER_ARTIFACTS_UI_URL``), or
        None; a malformed one is a ``ConfigurationError``."""
        return self.settings().ui_url

    def version_url(self, artifact: Artifact) -> str | None:
        """The page of one logged version in the artifact browser, when its URL is configured."""
        return artifact.url or None

    def api(self) -> Api:
        """The public API (``artifact()``, ``artifact_versions()``, ``run()``...) on this store."""
        return Api(settings=self.settings())

    def step_run(
        self, dagster_run_id: str, step_key: str, job_type: str | None, name: str | None = None
    ) -> Run:
        """Start or resume the artifacts run of one Dagster step (group = Dagster run id)."""
        return start_run(
            self.settings(),
            job_type=job_type,
            name=name or step_key,
            group=dagster_run_id,
            id=step_run_id(dagster_run_id, step_key),
        )

    def run(self, context: dg.AssetExecutionContext | dg.OpExecutionContext) -> Run:
        """The artifacts run of the current step: ``use_artifact`` / ``log_artifact`` in it.

        Call ``run.finish()`` (or use it as a context manager) when done; the IO manager may
        resume the same run afterwards for the step's outputs.
        """
        op = context.op_execution_context if hasattr(context, "op_execution_context") else context
        job_type = _group_of(op) or op.job_name
        return self.step_run(op.run_id, op.get_step_execution_context().step.key, job_type)


def resolve_env_vars(value: Any, where: str = "storage_options") -> Any:
    """Replace every ``dg.EnvVar`` inside ``value`` by the variable's value.

    Dagster resolves ``EnvVar`` only in typed config fields: inside a free-form dict such as
    ``storage_options`` it arrives as ``{"env": NAME}`` (or, when the resource is used outside a
    run, as the ``EnvVar`` itself, a ``str`` holding the *name*). Handing either to fsspec would
    send the variable's name as the credential, so both are resolved here, at open time.
    """
    if isinstance(value, dg.EnvVar):
        return _env_value(value.env_var_name, where)
    if isinstance(value, dict):
        if set(value) == {"env"} and isinstance(value["env"], str):
            return _env_value(value["env"], where)
        return {key: resolve_env_vars(item, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(resolve_env_vars(item, f"{where}[{i}]") for i, item in enumerate(value))
    return value


def _env_value(name: str, where: str) -> str:
    value = os.environ.get(name)
    if value is None:
        raise ConfigurationError(
            f"ArtifactsResource {where} reads the environment variable {name}, which is not set; "
            "set it in the environment of the Dagster code location or give the value directly."
        )
    return value


def _group_of(op: Any) -> str | None:
    try:
        assets_def = op.assets_def
    except Exception:
        return None
    groups = set(assets_def.group_names_by_key.values())
    return groups.pop() if len(groups) == 1 else None
