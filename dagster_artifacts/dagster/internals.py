"""The only places the integration reaches past Dagster's public API, each guarded.

Dagster has no public way for an IO manager to (1) set the data version of the materialization
it is storing, (2) attach metadata to one partition's materialization of a range run, or (3) know
which step is loading an input. Each is done here through the step context Dagster hands the IO
manager, checked first: if Dagster changes it, :class:`DagsterInternalsChanged` says what broke
instead of an ``AttributeError`` deep in a step, and ``tests/dagster/test_internals.py`` fails
loudly on the first Dagster upgrade that moves any of them.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import dagster as dg


class DagsterInternalsChanged(RuntimeError):
    """A Dagster internal this integration relies on is gone or changed (a Dagster upgrade)."""


def _step_context(context: dg.OutputContext | dg.InputContext) -> Any:
    try:
        return context.step_context
    except dg.DagsterInvariantViolationError:
        return None  # built outside a step (load_asset_value, build_output_context)


def _require(obj: Any, attribute: str) -> Any:
    value = getattr(obj, attribute, None)
    if value is None or not callable(value):
        raise DagsterInternalsChanged(
            f"dagster {dg.__version__}: the step context has no {attribute}(); dagster-artifacts "
            "needs it to record artifact digests as data versions. Pin the Dagster version the "
            "tests pass on, or update dagster_artifacts/dagster/internals.py."
        )
    return value


def set_data_version(context: dg.OutputContext, asset_key: dg.AssetKey, version: str) -> bool:
    """Make ``version`` the data version of the materialization Dagster builds for this output.

    Dagster reads the step's cached data version after ``handle_output`` returns; there is no
    public setter (``Output(data_version=...)`` belongs to the asset body, not the IO manager).
    Returns False when there is no step (nothing to set).
    """
    step = _step_context(context)
    if step is None:
        return False
    _require(step, "set_data_version")(asset_key, dg.DataVersion(version))
    return True


def add_partition_metadata(
    context: dg.OutputContext,
    asset_key: dg.AssetKey,
    metadata_by_partition: Mapping[str, Mapping[str, Any]],
) -> bool:
    """Metadata for each partition's own materialization event in a range run.

    ``add_output_metadata`` goes to every partition's event alike; Dagster merges partition-scoped
    asset metadata of the step context into each event (what ``context.add_asset_metadata(...,
    partition_key=...)`` does in an asset body).
    """
    step = _step_context(context)
    if step is None:
        return False
    add = _require(step, "add_asset_metadata")
    for partition, metadata in metadata_by_partition.items():
        add(dict(metadata), asset_key=asset_key, partition_key=partition)
    return True


def consuming_step(context: dg.InputContext) -> tuple[str, str] | None:
    """``(run id, step key)`` of the step loading an input, or None outside a step.

    ``InputContext`` has no public ``run_id``/``step_key`` (``OutputContext`` does).
    """
    step = _step_context(context)
    if step is None:
        return None
    run_id = getattr(step, "run_id", None)
    step_def = getattr(step, "step", None)
    key = getattr(step_def, "key", None)
    if not isinstance(run_id, str) or not isinstance(key, str):
        raise DagsterInternalsChanged(
            f"dagster {dg.__version__}: the input's step context has no run_id / step.key; "
            "dagster-artifacts needs them to record which step used an artifact."
        )
    return run_id, key


def step_job_name(context: dg.InputContext) -> str | None:
    """The job of the step loading an input (for the artifacts run's default job type)."""
    step = _step_context(context)
    return None if step is None else str(getattr(step, "job_name", "") or "") or None


def step_assets_def(context: dg.InputContext) -> dg.AssetsDefinition | None:
    """The assets definition of the step loading an input (for its group), if it has one."""
    step = _step_context(context)
    if step is None:
        return None
    try:
        return getattr(step, "assets_def", None)
    except dg.DagsterInvariantViolationError:
        return None


#: Dagster's tags for the data version of an asset event (``dagster._core.definitions.
#: data_version``): ``ObserveResult(data_version=...)`` writes these, and a sensor's
#: ``AssetObservation`` has no ``data_version`` argument, so they are written as Dagster does.
DATA_VERSION_TAG = "dagster/data_version"
DATA_VERSION_IS_USER_PROVIDED_TAG = "dagster/data_version_is_user_provided"


def data_version_tags(version: str) -> dict[str, str]:
    """The tags that make ``version`` an observation's data version."""
    return {DATA_VERSION_TAG: version, DATA_VERSION_IS_USER_PROVIDED_TAG: "true"}


def op_code_version(op_def: dg.OpDefinition) -> str | None:
    """An op's ``code_version``. ``OpDefinition.version`` is its only reader and warns that it
    is deprecated "use code_version", which ``OpDefinition`` does not have (Dagster 1.13)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        version = op_def.version
    return version if isinstance(version, str) else None
