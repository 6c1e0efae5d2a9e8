"""``ArtifactsIOManager``: asset and op outputs become artifact versions; inputs load versions.

Each Dagster step is one artifacts run (id derived from the Dagster run id and step key, so a
step's inputs and outputs share it across processes, and a later step can find exactly what an
upstream step logged); the run is finished after each output it logs and after each input it
records, and resumed (``start_run(id=...)``) by the next one.
"""

from __future__ import annotations

import hashlib
import types
import typing
from collections.abc import Iterable
from typing import Any

import dagster as dg
from pydantic import Field, field_validator

from dagster_artifacts.artifact import Artifact, CommitState
from dagster_artifacts.dagster import internals
from dagster_artifacts.dagster import metadata as keys
from dagster_artifacts.dagster.config import OutputConfig, input_config, output_config
from dagster_artifacts.dagster.handlers import (
    BUILT_IN,
    PathHandler,
    TypeHandler,
    handler_path,
    load_handler,
    stored_kind_handler,
)
from dagster_artifacts.dagster.resource import ArtifactsResource, step_run_id
from dagster_artifacts.errors import (
    ArtifactError,
    ArtifactNotFoundError,
    ConfigurationError,
    RunNotFoundError,
)
from dagster_artifacts.names import LATEST, validate_name
from dagster_artifacts.runs import Run


def artifact_name_for(asset_key: dg.AssetKey) -> str:
    """``a/b/c`` -> ``a.b.c``: asset key parts never hold ``.``, so distinct keys never collide."""
    return ".".join(asset_key.path)


def op_artifact_name(op_name: str, output_name: str) -> str:
    """``<op>`` for an op's single ``result`` output, else ``<op>.<output>``."""
    return op_name if output_name == "result" else f"{op_name}.{output_name}"


def _group_job_type(assets_def: dg.AssetsDefinition | None) -> str | None:
    if assets_def is None:
        return None
    groups = set(assets_def.group_names_by_key.values())
    return str(groups.pop()) if len(groups) == 1 else None


def _unwrap(annotation: Any) -> tuple[Any, bool, bool]:
    """``(inner type, optional, wants a dict)`` of an input annotation.

    ``Optional[T]`` -> ``(T, True, False)``; ``dict[str, T]`` -> ``(T, False, True)``.
    """
    optional = False
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        optional = True
        rest = [a for a in args if a is not type(None)]
        annotation = rest[0] if len(rest) == 1 else Any
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is dict and len(args) == 2 and args[0] is str:
        return args[1], optional, True
    return annotation, optional, False


class ArtifactsIOManager(dg.ConfigurableIOManager):
    """Stores every asset or op output as a version of an artifact (DESIGN.md section 5).

    ``type_handlers`` are tried before the built-in ones (pandas, polars, pyarrow, numpy,
    ``Table``, ``Path``, JSON-able values, then the pickle-family fallback); a subclass can
    instead override :meth:`default_type_handlers`.
    """

    store: ArtifactsResource = Field(default_factory=ArtifactsResource)
    serializer: str = Field(
        default="pickle", description="pickle, cloudpickle or joblib, for arbitrary objects."
    )
    type_handlers: list[str] = Field(
        default_factory=list,
        description="TypeHandler classes ('module:Class'), tried before the built-in handlers.",
    )

    @field_validator("type_handlers", mode="before")
    @classmethod
    def _handler_paths(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [handler_path(handler) for handler in value]
        return value

    @field_validator("serializer")
    @classmethod
    def _known_serializer(cls, value: str) -> str:
        allowed = ("pickle", "cloudpickle", "joblib")
        if value not in allowed:
            raise ConfigurationError(
                f"ArtifactsIOManager serializer {value!r} is unknown; use one of {allowed}."
            )
        return value

    @classmethod
    def default_type_handlers(cls) -> list[TypeHandler]:
        """The built-in handlers, in order; override in a subclass to change them."""
        return [handler() for handler in BUILT_IN]

    def handlers(self) -> list[TypeHandler]:
        """The configured handlers first, then :meth:`default_type_handlers`."""
        return [load_handler(path) for path in self.type_handlers] + self.default_type_handlers()

    # -- output --------------------------------------------------------------------------------
    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        asset_key = context.asset_key if context.has_asset_key else None
        if asset_key is not None:
            label = asset_key.to_user_string()
            where = f"Asset {label!r}"
        else:
            label = f"{context.op_def.name}.{context.name}"
            where = f"Op output {label!r}"
        config = output_config((context.definition_metadata or {}).get("artifact"), where)
        self.store.browser_url()  # a malformed ui_url fails here, before anything is logged
        if asset_key is not None:
            name = validate_name(config.name or artifact_name_for(asset_key))
        else:
            name = validate_name(config.name or op_artifact_name(context.op_def.name, context.name))
        partitions = self._output_partitions(context)
        values = self._values_by_partition(obj, partitions, where, name)
        code_version = self._code_version(context)
        # Build every draft before anything is written: a bad value fails the step cleanly.
        drafts: list[tuple[str | None, Artifact, dict[str, Any]]] = []
        for partition, value in values:
            artifact, extra = self._draft(value, name, config, where)
            origin: dict[str, Any] = {}
            if asset_key is not None:
                origin[keys.ASSET_KEY] = list(asset_key.path)
            else:
                origin[keys.OP_OUTPUT] = label
            if code_version:
                origin[keys.CODE_VERSION] = code_version
            artifact.metadata = {**artifact.metadata, **origin}
            drafts.append((partition, artifact, extra))

        run = self.store.step_run(
            context.run_id, context.step_key, self._output_job_type(context, config)
        )
        logged: list[tuple[str | None, Artifact, dict[str, Any]]] = []
        try:
            for partition, artifact, extra in drafts:
                run.log_artifact(artifact, aliases=list(config.aliases), partition_key=partition)
                artifact.wait()
                logged.append((partition, artifact, extra))
            inputs = sorted(f"{a.collection_name}:{a.version}" for a in run.used_artifacts())
        finally:
            run.finish()
        self._report(context, asset_key, name, logged, inputs)

    def _report(
        self,
        context: dg.OutputContext,
        asset_key: dg.AssetKey | None,
        name: str,
        logged: list[tuple[str | None, Artifact, dict[str, Any]]],
        inputs: list[str],
    ) -> None:
        used = {keys.INPUTS: dg.MetadataValue.json(inputs)}
        entries = [self._metadata(a, extra, self.store.version_url(a)) for _, a, extra in logged]
        if len(entries) == 1:
            context.add_output_metadata({**entries[0], **used})
            digest = logged[0][1].digest
        else:
            merged: dict[str, Any] = {
                k: dg.MetadataValue.json(
                    {str(p): _plain(e[k]) for (p, _, _), e in zip(logged, entries, strict=True)}
                )
                for k in (keys.VERSION, keys.DIGEST, keys.DEDUPLICATED)
            }
            merged[keys.NAME] = dg.MetadataValue.text(name)
            context.add_output_metadata({**merged, **used})
            digests = {a.digest for _, a, _ in logged}
            # Dagster tags every partition of one output with one data version: the shared
            # digest when the partitions hold the same bytes, else a digest of all of them.
            digest = (
                digests.pop()
                if len(digests) == 1
                else hashlib.md5(
                    "".join(f"{p}={a.digest};" for p, a, _ in logged).encode()
                ).hexdigest()
            )
            if asset_key is not None:  # each partition's event names its own version
                internals.add_partition_metadata(
                    context,
                    asset_key,
                    {str(p): entry for (p, _, _), entry in zip(logged, entries, strict=True)},
                )
        if asset_key is not None:
            # The data version is the artifact digest: Dagster reads the step's cached data
            # version when it builds the materialization event, after handle_output returns.
            internals.set_data_version(context, asset_key, digest)

    @staticmethod
    def _output_partitions(context: dg.OutputContext) -> list[str | None]:
        if context.has_asset_key:
            return list(context.asset_partition_keys) if context.has_asset_partitions else [None]
        if context.mapping_key is not None:  # a dynamic op output: one version per mapping key
            return [context.mapping_key]
        return [context.partition_key] if context.has_partition_key else [None]

    @staticmethod
    def _code_version(context: dg.OutputContext) -> str | None:
        if context.has_asset_key:
            return context.asset_spec.code_version
        return internals.op_code_version(context.op_def)

    @staticmethod
    def _output_job_type(context: dg.OutputContext, config: OutputConfig) -> str:
        if config.job_type:
            return config.job_type
        if context.has_asset_key and context.asset_spec.group_name:
            return context.asset_spec.group_name
        return str(context.job_name)

    def _values_by_partition(
        self, obj: Any, partitions: list[str | None], where: str, name: str
    ) -> list[tuple[str | None, Any]]:
        if len(partitions) == 1:
            return [(partitions[0], obj)]
        if not isinstance(obj, dict) or set(obj) != set(partitions):
            raise ConfigurationError(
                f"{where} materialized {len(partitions)} partitions at once, so artifact "
                f"{name!r} needs one value per partition: return a dict keyed by partition key "
                f"({sorted(p for p in partitions if p)[:3]}...)."
            )
        return [(partition, obj[partition]) for partition in partitions]

    def _draft(
        self, value: Any, name: str, config: OutputConfig, where: str
    ) -> tuple[Artifact, dict[str, Any]]:
        if value is None:
            raise ConfigurationError(
                f"{where} returned None, so artifact {name!r} would get an empty "
                "version; return the data, or annotate it '-> None' (or return "
                "dg.MaterializeResult) when it stores nothing through the IO manager."
            )
        if isinstance(value, Artifact):
            if value.commit_state is not CommitState.DRAFT:
                raise ConfigurationError(
                    f"{where} returned artifact {value.name!r} that is already logged; "
                    "return a new Artifact (or the data) instead."
                )
            if value.collection_name != name:
                raise ConfigurationError(
                    f"{where} returned an Artifact named {value.collection_name!r} but "
                    f"its artifact is {name!r}; name the Artifact {name!r} or set "
                    f"metadata={{'artifact': {{'name': {value.collection_name!r}}}}}."
                )
            if config.description:
                value.description = config.description
            return value, {}
        errors: list[str] = []
        for handler in self.handlers():
            if not handler.handles(value):
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
            f"{where} returned a {type(value).__name__} that no handler of artifact "
            f"{name!r} can store ({'; '.join(errors) or 'no handler accepts it'}); return a "
            "DataFrame, Table, Path, JSON-able value or picklable object, set "
            "metadata={'artifact': {'serializer': 'cloudpickle'}}, add a TypeHandler, or build "
            "an Artifact yourself."
        )

    @staticmethod
    def _metadata(artifact: Artifact, extra: dict[str, Any], link: str | None) -> dict[str, Any]:
        linked = {keys.LINK: dg.MetadataValue.url(link)} if link else {}
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
            **linked,
            **extra,
        }

    # -- input ---------------------------------------------------------------------------------
    def load_input(self, context: dg.InputContext) -> Any:
        name, label = self._input_target(context)
        where = f"Input {label!r}"
        pin = input_config((context.definition_metadata or {}).get("artifact"), where)
        wanted = pin.version or pin.alias
        annotation, optional, wants_dict = _unwrap(
            getattr(context.dagster_type, "typing_type", None)
        )
        api = self.store.api()
        partitioned = context.has_asset_key and context.has_asset_partitions
        partitions: list[str | None] = list(context.asset_partition_keys) if partitioned else [None]
        exact = {} if wanted else self._exact_versions(context, api, name)
        if not partitioned and context.upstream_output is not None:
            mapping_key = _safe(lambda: context.upstream_output.mapping_key)
            if mapping_key is not None:
                partitions = [mapping_key]
        artifacts: dict[str | None, Artifact] = {}
        for partition in partitions:
            if partition in exact:
                artifacts[partition] = exact[partition]
                continue
            try:
                artifacts[partition] = self._resolve(api, name, wanted or LATEST, partition)
            except ArtifactNotFoundError as error:
                if optional and not wanted:
                    continue  # Optional[T]: nothing was materialized -> None / left out
                raise ArtifactNotFoundError(
                    f"{where}: artifact {name!r} has no version {wanted or LATEST!r} "
                    f"({error}); pin an existing version or alias (Api().artifact_versions("
                    f"{name!r}) lists them), or materialize {label!r} first."
                ) from None
        if not artifacts:
            return {} if wants_dict and partitioned else None
        self._record_use(context, list(artifacts.values()))
        handlers = self.handlers()
        loaded = {p: self._load(a, annotation, handlers) for p, a in artifacts.items()}
        if partitioned and (wants_dict or len(partitions) > 1):
            return loaded
        return next(iter(loaded.values()))

    def _input_target(self, context: dg.InputContext) -> tuple[str, str]:
        """The artifact name an input reads, and how to name the input in errors."""
        upstream = context.upstream_output
        raw = (upstream.definition_metadata or {}).get("artifact") if upstream else None
        configured = raw.get("name") if isinstance(raw, dict) else None
        if context.has_asset_key:
            key = context.asset_key
            return validate_name(configured or artifact_name_for(key)), key.to_user_string()
        if upstream is None:
            raise ConfigurationError(
                f"Op input {context.name!r} has no upstream output to load; give it a value "
                "from another op, or load an artifact in the op with ArtifactsResource."
            )
        op_name, output = upstream.op_def.name, upstream.name
        name = configured or op_artifact_name(op_name, output)
        return validate_name(name), f"{op_name}.{output}"

    @staticmethod
    def _resolve(api: Any, name: str, wanted: str, partition: str | None) -> Artifact:
        if partition is None:
            artifact: Artifact = api.artifact(f"{name}:{wanted}")
            return artifact
        versions = api.artifact_versions(name=name, partition_key=partition)
        if wanted != LATEST:
            pinned = api.artifact(f"{name}:{wanted}")
            versions = [v for v in versions if v.id == pinned.id]
        if not versions:
            raise ArtifactNotFoundError(f"no version {wanted!r} for partition {partition!r}")
        newest: Artifact = versions[-1]
        return newest

    @staticmethod
    def _exact_versions(context: dg.InputContext, api: Any, name: str) -> dict[str | None, Any]:
        """What the upstream step logged, when it ran in this run (or the re-executed parent).

        Dagster hands the input the upstream's output context with the run that produced it;
        an asset outside this run's plan gets a stand-in without a step (``step_key`` "none").
        """
        upstream = context.upstream_output
        if upstream is None:
            return {}
        step_key = _safe(lambda: upstream.step_key)
        run_id = _safe(lambda: upstream.run_id)
        if not step_key or step_key == "none" or not run_id:
            return {}
        try:
            run = api.run(step_run_id(run_id, step_key))
        except RunNotFoundError:
            return {}  # the upstream output went through another IO manager
        logged: dict[str | None, Any] = {}
        for artifact in run.logged_artifacts():
            if artifact.collection_name == name:
                logged[artifact.partition_key] = artifact
        return logged

    def _record_use(self, context: dg.InputContext, artifacts: list[Artifact]) -> None:
        step = internals.consuming_step(context)
        if step is None:  # load_asset_value: no step, so no run to record lineage in
            return
        upstream = context.upstream_output
        if upstream is not None and _safe(lambda: upstream.step_key) == step[1]:
            return  # a result read back after the run (output_for_node), not a step's input
        job_type = _group_job_type(internals.step_assets_def(context)) or internals.step_job_name(
            context
        )
        run: Run = self.store.step_run(step[0], step[1], job_type)
        try:
            for artifact in artifacts:
                run.use_artifact(artifact)
        finally:
            run.finish()
        if len(artifacts) == 1 and context.has_asset_key:
            # Dagster records input metadata for one upstream partition only.
            used = f"{artifacts[0].collection_name}:{artifacts[0].version}"
            context.add_input_metadata({keys.USED_VERSION: dg.MetadataValue.text(used)})

    @staticmethod
    def _load(artifact: Artifact, annotation: Any, handlers: Iterable[TypeHandler]) -> Any:
        if annotation is Artifact:
            return artifact
        handlers = list(handlers)
        if annotation is not None and annotation is not Any:
            for handler in handlers:
                if handler.loads_as(annotation) and handler.can_load(artifact):
                    return handler.load(artifact, annotation)
        stored = stored_kind_handler(artifact, handlers)
        return (stored or PathHandler()).load(artifact, annotation)


def _safe(read: Any) -> Any:
    """A context property that Dagster may not have (it raises instead of returning None)."""
    try:
        return read()
    except (dg.DagsterInvariantViolationError, AttributeError):
        return None


def _plain(value: Any) -> Any:
    return getattr(value, "value", value)
