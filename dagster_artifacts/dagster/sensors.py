"""``build_artifact_sensor``: W&B's "automations" (a new version, an alias moved -> run
something), self-hosted as a Dagster sensor over the registry.

The sensor's cursor holds what it last saw (the version an alias points at, or the newest version
number), so it survives restarts of the daemon; the first tick records the current state and
requests nothing, every change after it requests one run (its run key names the artifact, the
version and the alias, so Dagster never launches the same change twice).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Union

import dagster as dg

from dagster_artifacts.artifact import Artifact
from dagster_artifacts.dagster import internals
from dagster_artifacts.dagster import metadata as keys
from dagster_artifacts.dagster.resource import ArtifactsResource
from dagster_artifacts.errors import ArtifactNotFoundError, ConfigurationError
from dagster_artifacts.names import validate_alias

if TYPE_CHECKING:  # what dg.define_asset_job returns; not exported by name
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

RunConfigFn = Callable[[Artifact], Any]
#: A job, an asset job, or a job's name (resolved by Dagster when the sensor is loaded).
JobTarget = Union[dg.JobDefinition, "UnresolvedAssetJobDefinition", str]


def _sensor_name(artifact: str, alias: str | None) -> str:
    base = re.sub(r"[^A-Za-z0-9_]", "_", artifact.rsplit("/", 1)[-1])
    return f"{base}_{re.sub(r'[^A-Za-z0-9_]', '_', alias) if alias else 'new_version'}_sensor"


def _check_artifact(artifact: str) -> str:
    if not isinstance(artifact, str) or not artifact or ":" in artifact:
        raise ConfigurationError(
            f"build_artifact_sensor: artifact must be a name like 'bike-model' (or "
            f"'project/bike-model'), without ':alias'; got {artifact!r}. Give the alias as "
            "alias='production', or none to fire on every new version."
        )
    return artifact


def observation(asset_key: dg.AssetKey, artifact: Artifact) -> dg.AssetObservation:
    """An observation of ``asset_key`` whose data version is the version's digest, so staleness
    and declarative automation react to versions logged outside Dagster."""
    return dg.AssetObservation(
        asset_key=asset_key,
        metadata={
            keys.NAME: dg.MetadataValue.text(artifact.collection_name),
            keys.VERSION: dg.MetadataValue.text(artifact.version),
            keys.DIGEST: dg.MetadataValue.text(artifact.digest),
            keys.ALIASES: dg.MetadataValue.json(sorted(artifact.aliases)),
        },
        tags=internals.data_version_tags(artifact.digest),
    )


def build_artifact_sensor(
    artifact: str,
    *,
    store: ArtifactsResource,
    alias: str | None = None,
    job: JobTarget | None = None,
    asset_key: dg.AssetKey | str | Sequence[str] | None = None,
    run_config_fn: RunConfigFn | None = None,
    minimum_interval_seconds: int = 30,
    name: str | None = None,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
) -> dg.SensorDefinition:
    """A sensor watching one artifact: with ``alias``, fires when the alias moves to another
    version; without, for every new version.

    ``job``: one ``RunRequest`` per change, tagged ``artifact/name``, ``artifact/version``,
    ``artifact/digest`` (and ``artifact/alias``), with run config ``run_config_fn(version)``.
    ``asset_key``: an ``AssetObservation`` of that asset with ``data_version`` = the digest and
    the version's aliases (the first tick observes the current state too). Give either or both.
    """
    artifact = _check_artifact(artifact)
    if alias is not None:
        validate_alias(alias)
    if job is None and asset_key is None:
        raise ConfigurationError(
            f"build_artifact_sensor({artifact!r}): give job= (a run per change), asset_key= "
            "(an observation per change), or both."
        )
    if run_config_fn is not None and job is None:
        raise ConfigurationError(
            f"build_artifact_sensor({artifact!r}): run_config_fn needs job= to configure."
        )
    key = _asset_key(asset_key) if asset_key is not None else None
    sensor_name = name or _sensor_name(artifact, alias)
    watching = f"{artifact}:{alias}" if alias else f"new versions of {artifact}"

    def evaluate(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        api = store.api()
        cursor = json.loads(context.cursor) if context.cursor else None
        if alias is not None:
            current = _alias_target(api, artifact, alias)
            state: dict[str, Any] = {"version": current.version if current else None}
            changed = (
                [current]
                if cursor is not None and current and cursor.get("version") != current.version
                else []
            )
            latest = current
        else:
            versions = _versions(api, artifact)
            newest = max((v.version_index for v in versions), default=-1)
            state = {"index": newest}
            seen = cursor.get("index", -1) if cursor is not None else newest
            changed = [v for v in versions if v.version_index > seen]
            latest = versions[-1] if versions else None
        requests = [_run_request(artifact, alias, v, run_config_fn) for v in changed] if job else []
        events: list[dg.AssetObservation] = []
        if key is not None and latest is not None and (cursor is None or changed):
            events.append(observation(key, latest))
        new_cursor = json.dumps(state, sort_keys=True)
        if not requests and not events:
            context.update_cursor(new_cursor)
            first = "first tick: recorded" if cursor is None else "no change in"
            return dg.SkipReason(f"{first} {watching} ({_describe(state)})")
        return dg.SensorResult(run_requests=requests, asset_events=events, cursor=new_cursor)

    kwargs: dict[str, Any] = {}
    if isinstance(job, str):
        kwargs["job_name"] = job
    elif job is not None:
        kwargs["job"] = job
    return dg.SensorDefinition(
        name=sensor_name,
        evaluation_fn=evaluate,
        minimum_interval_seconds=minimum_interval_seconds,
        description=f"Watches {watching} in the artifact registry (dagster-artifacts).",
        default_status=default_status,
        **kwargs,
    )


def _describe(state: dict[str, Any]) -> str:
    if "version" in state:
        return f"at {state['version']}" if state["version"] else "not set yet"
    return f"newest v{state['index']}" if state["index"] >= 0 else "no version yet"


def _alias_target(api: Any, artifact: str, alias: str) -> Artifact | None:
    try:
        found: Artifact = api.artifact(f"{artifact}:{alias}")
    except ArtifactNotFoundError:
        return None
    return found


def _versions(api: Any, artifact: str) -> list[Artifact]:
    try:
        versions: list[Artifact] = api.artifact_versions(None, artifact)
    except ArtifactNotFoundError:
        return []
    return sorted(versions, key=lambda v: v.version_index)


def _run_request(
    artifact: str, alias: str | None, version: Artifact, run_config_fn: RunConfigFn | None
) -> dg.RunRequest:
    tags = {
        keys.TAG_NAME: version.collection_name,
        keys.TAG_VERSION: version.version,
        keys.TAG_DIGEST: version.digest,
    }
    if alias is not None:
        tags[keys.TAG_ALIAS] = alias
    return dg.RunRequest(
        run_key=f"{artifact}:{version.version}@{alias or 'new-version'}",
        run_config=run_config_fn(version) if run_config_fn else {},
        tags=tags,
    )


def _asset_key(value: dg.AssetKey | str | Sequence[str]) -> dg.AssetKey:
    if isinstance(value, str):
        return dg.AssetKey.from_user_string(value)
    return dg.AssetKey.from_coercible(value)
