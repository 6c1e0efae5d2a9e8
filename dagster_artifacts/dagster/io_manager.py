"""``ArtifactsIOManager``: asset outputs become artifact versions; inputs load versions.

Each Dagster step is one artifacts run (id derived from the Dagster run id and step key, so a
step's inputs and outputs share it across processes); the run is finished after each output it
logs and after each input it records, and resumed (``start_run(id=...)``) by the next one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from dagster_artifacts.artifact import Artifact, CommitState
from dagster_artifacts.dagster import metadata as keys
from dagster_artifacts.dagster.config import input_config, output_config
from dagster_artifacts.dagster.handlers import HANDLERS, TypeHandler, handler_for_stored
from dagster_artifacts.dagster.resource import ArtifactsResource
from dagster_artifacts.errors import ArtifactError, ArtifactNotFoundError, ConfigurationError
from dagster_artifacts.names import LATEST, validate_name


def artifact_name_for(asset_key: dg.AssetKey) -> str:
    """``a/b/c`` -> ``a.b.c``: asset key parts never hold ``.``, so distinct keys never collide."""
    return ".".join(asset_key.path)


def _job_type(step_context: Any, configured: str | None) -> str:
    if configured:
        return configured
    assets_def = getattr(step_context, "assets_def", None)
    if assets_def is not None:
        groups = set(assets_def.group_names_by_key.values())
        if len(groups) == 1:
            return str(groups.pop())
    return str(step_context.job_name)


class ArtifactsIOManager(dg.ConfigurableIOManager):
    """Stores every asset output as a version of an artifact (see DESIGN.md section 5)."""

    store: ArtifactsResource = Field(default_factory=ArtifactsResource)
    serializer: str = Field(
        default="pickle", description="pickle, cloudpickle or joblib, for arbitrary objects."
    )

    # -- output --------------------------------------------------------------------------------
    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        asset_key = context.asset_key
        label = asset_key.to_user_string()
        where = f"Asset {label!r}"
        config = output_config((context.definition_metadata or {}).get("artifact"), where)
        name = validate_name(config.name or artifact_name_for(asset_key))
        partitions: list[str | None] = (
            list(context.asset_partition_keys) if context.has_asset_partitions else [None]
        )
        values = self._values_by_partition(obj, partitions, label, name)
        # Build every draft before anything is written: a bad value fails the step cleanly.
        drafts: list[tuple[str | None, Artifact, dict[str, Any]]] = []
        for partition, value in values:
            artifact, extra = self._draft(value, name, config, label)
            drafts.append((partition, artifact, extra))

        step_context = context.step_context
        run = self.store.step_run(
            step_context.run_id, step_context.step.key, _job_type(step_context, config.job_type)
        )
        logged: list[tuple[str | None, Artifact, dict[str, Any]]] = []
        try:
            for partition, artifact, extra in drafts:
                run.log_artifact(artifact, aliases=list(config.aliases), partition_key=partition)
                artifact.wait()
                logged.append((partition, artifact, extra))
        finally:
            run.finish()

        entries = [self._metadata(a, extra) for _, a, extra in logged]
        if len(entries) == 1:
            context.add_output_metadata(entries[0])
            digest = logged[0][1].digest
        else:
            merged: dict[str, dg.MetadataValue] = {
                k: dg.MetadataValue.json(
                    {str(p): _plain(e[k]) for (p, _, _), e in zip(logged, entries, strict=True)}
                )
                for k in (keys.VERSION, keys.DIGEST, keys.DEDUPLICATED)
            }
            merged[keys.NAME] = dg.MetadataValue.text(name)
            context.add_output_metadata(merged)
            digest = hashlib.md5(
                "".join(f"{p}={a.digest};" for p, a, _ in logged).encode()
            ).hexdigest()
        # The data version is the artifact digest: Dagster reads the step's cached data version
        # when it builds the materialization event, after handle_output returns.
        step_context.set_data_version(asset_key, dg.DataVersion(digest))

    def _values_by_partition(
        self, obj: Any, partitions: list[str | None], label: str, name: str
    ) -> list[tuple[str | None, Any]]:
        if len(partitions) == 1:
            return [(partitions[0], obj)]
        if not isinstance(obj, dict) or set(obj) != set(partitions):
            raise ConfigurationError(
                f"Asset {label!r} materialized {len(partitions)} partitions at once, so artifact "
                f"{name!r} needs one value per partition: return a dict keyed by partition key "
                f"({sorted(p for p in partitions if p)[:3]}...)."
            )
        return [(partition, obj[partition]) for partition in partitions]

    def _draft(
        self, value: Any, name: str, config: Any, label: str
    ) -> tuple[Artifact, dict[str, Any]]:
        if value is None:
            raise ConfigurationError(
                f"Asset {label!r} returned None, so artifact {name!r} would get an empty "
                "version; return the data, or annotate the asset '-> None' (or return "
                "dg.MaterializeResult) when it stores nothing through the IO manager."
            )
        if isinstance(value, Artifact):
            if value.commit_state is not CommitState.DRAFT:
                raise ConfigurationError(
                    f"Asset {label!r} returned artifact {value.name!r} that is already logged; "
                    "return a new Artifact (or the data) instead."
                )
            if value.collection_name != name:
                raise ConfigurationError(
                    f"Asset {label!r} returned an Artifact named {value.collection_name!r} but "
                    f"its artifact is {name!r}; name the Artifact {name!r} or set "
                    f"metadata={{'artifact': {{'name': {value.collection_name!r}}}}}."
                )
            if config.description:
                value.description = config.description
            return value, {}
        artifact: Artifact | None = None
        errors: list[str] = []
        for handler in HANDLERS:
            if not handler.accepts(value):
                continue
            artifact = Artifact(
                name, type=config.type or handler.artifact_type, description=config.description
            )
            artifact.metadata = {keys.HANDLER: handler.kind}
            try:
                extra = handler.store(artifact, value, config.serializer or self.serializer)
            except ArtifactError:
                raise
            except Exception as error:  # the serializer could not write it: try the next one
                errors.append(f"{handler.kind}: {type(error).__name__}: {error}")
                continue
            return artifact, extra
        raise ConfigurationError(
            f"Asset {label!r} returned a {type(value).__name__} that no handler of artifact "
            f"{name!r} can store ({'; '.join(errors) or 'no handler accepts it'}); return a "
            "DataFrame, Table, Path, JSON-able value or picklable object, set "
            "metadata={'artifact': {'serializer': 'cloudpickle'}}, or build an Artifact yourself."
        )

    @staticmethod
    def _metadata(artifact: Artifact, extra: dict[str, Any]) -> dict[str, Any]:
        return {
            keys.NAME: dg.MetadataValue.text(artifact.collection_name),
            keys.VERSION: dg.MetadataValue.text(artifact.version),
            keys.VERSION_INDEX: dg.MetadataValue.int(artifact.version_index),
            keys.DIGEST: dg.MetadataValue.text(artifact.digest),
            keys.ALIASES: dg.MetadataValue.json(list(artifact.aliases)),
            keys.SIZE_BYTES: dg.MetadataValue.int(artifact.size),
            keys.FILE_COUNT: dg.MetadataValue.int(artifact.file_count),
            keys.DEDUPLICATED: dg.MetadataValue.bool(bool(artifact.deduplicated)),
            keys.URI: dg.MetadataValue.text(
                f"artifact://{artifact.entity}/{artifact.project}/"
                f"{artifact.collection_name}:{artifact.version}"
            ),
            **extra,
        }

    # -- input ---------------------------------------------------------------------------------
    def load_input(self, context: dg.InputContext) -> Any:
        asset_key = context.asset_key
        label = asset_key.to_user_string()
        upstream = context.upstream_output
        upstream_raw = (upstream.definition_metadata or {}).get("artifact") if upstream else None
        name = (upstream_raw or {}).get("name") if isinstance(upstream_raw, dict) else None
        name = validate_name(name or artifact_name_for(asset_key))
        where = f"Input {label!r}"
        pin = input_config((context.definition_metadata or {}).get("artifact"), where)
        wanted = pin.version or pin.alias or LATEST

        api = self.store.api()
        fix = (
            "pin an existing version or alias (Api().artifact_versions("
            f"{name!r}) lists them), or materialize {label!r} first"
        )
        partitions = list(context.asset_partition_keys) if context.has_asset_partitions else []
        artifacts: dict[str | None, Artifact] = {}
        try:
            if not partitions:
                artifacts[None] = api.artifact(f"{name}:{wanted}")
            for partition in partitions:
                versions = api.artifact_versions(name=name, partition_key=partition)
                if wanted != LATEST:
                    pinned = api.artifact(f"{name}:{wanted}")
                    versions = [v for v in versions if v.id == pinned.id]
                if not versions:
                    raise ArtifactNotFoundError(
                        f"no version {wanted!r} for partition {partition!r}"
                    )
                artifacts[partition] = versions[-1]
        except ArtifactNotFoundError as error:
            raise ArtifactNotFoundError(
                f"{where}: artifact {name!r} has no version {wanted!r} ({error}); {fix}."
            ) from None

        self._record_use(context, artifacts.values())
        annotation = getattr(context.dagster_type, "typing_type", None)
        loaded = {p: self._load(a, annotation) for p, a in artifacts.items()}
        if len(partitions) > 1:
            return loaded
        return next(iter(loaded.values()))

    def _record_use(self, context: dg.InputContext, artifacts: Any) -> None:
        artifacts = list(artifacts)
        used = ", ".join(f"{a.collection_name}:{a.version}" for a in artifacts)
        try:
            step_context = context.step_context
        except Exception:  # load_asset_value: no step, so no run to record lineage in
            return
        run = self.store.step_run(
            step_context.run_id, step_context.step.key, _job_type(step_context, None)
        )
        try:
            for artifact in artifacts:
                run.use_artifact(artifact)
        finally:
            run.finish()
        if len(artifacts) == 1:  # Dagster records input metadata for one upstream partition only
            context.add_input_metadata({keys.USED_VERSION: dg.MetadataValue.text(used)})

    @staticmethod
    def _load(artifact: Artifact, annotation: Any) -> Any:
        if annotation is Artifact:
            return artifact
        handler: TypeHandler = handler_for_stored(artifact)
        if annotation is not None and isinstance(annotation, type) and issubclass(annotation, Path):
            if handler.kind == "path":
                return handler.load(artifact)
            return Path(artifact.download())
        return handler.load(artifact)


def _plain(value: Any) -> Any:
    return getattr(value, "value", value)
