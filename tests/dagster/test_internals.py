"""The Dagster internals the integration relies on (``dagster_artifacts/dagster/internals.py``)
still exist and still do what it needs. If a Dagster upgrade moves one, THIS test fails first,
naming it, rather than every materialization losing its data version silently."""

import inspect

import dagster as dg
import pandas as pd
from dagster._core.execution.context.system import StepExecutionContext

import dagster_artifacts as wandb
from dagster_artifacts import ArtifactsIOManager

RESOURCES = {"io_manager": ArtifactsIOManager()}


def test_the_step_context_still_has_what_the_io_manager_uses() -> None:
    for name, params in [
        ("set_data_version", ["asset_key", "data_version"]),
        ("add_asset_metadata", ["metadata", "asset_key", "partition_key"]),
    ]:
        method = getattr(StepExecutionContext, name, None)
        assert callable(method), f"dagster {dg.__version__}: StepExecutionContext.{name} is gone"
        signature = list(inspect.signature(method).parameters)
        assert all(p in signature for p in params), (name, signature)
    for name in ("run_id", "step", "job_name", "assets_def"):
        assert hasattr(StepExecutionContext, name), f"StepExecutionContext.{name} is gone"
    # The public properties used instead of the step context.
    for name in ("run_id", "step_key", "asset_spec", "mapping_key"):
        assert hasattr(dg.OutputContext, name), f"OutputContext.{name} is gone"


REGIONS = dg.StaticPartitionsDefinition(["east", "west"])


@dg.asset(partitions_def=REGIONS, code_version="3")
def region_rows(context: dg.AssetExecutionContext) -> dict[str, pd.DataFrame]:
    return {k: pd.DataFrame({"region": [k] * len(k)}) for k in context.partition_keys}


def test_data_version_and_partition_metadata_reach_dagster_events() -> None:
    """What the internals are for, seen where a user sees it: the data version tag and each
    partition's own metadata on the materialization events of a range run."""
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [region_rows],
            resources=RESOURCES,
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": "east",
                "dagster/asset_partition_range_end": "west",
            },
        )
        assert result.success
        api = wandb.Api()
        by_partition = {v.partition_key: v for v in api.artifact_versions(None, "region_rows")}
        events = result.asset_materializations_for_node("region_rows")
        assert {e.partition: e.metadata["artifact/digest"].value for e in events} == {
            p: v.digest for p, v in by_partition.items()
        }
        assert {v.metadata["dagster/code_version"] for v in by_partition.values()} == {"3"}
        record = instance.get_latest_materialization_event(dg.AssetKey("region_rows"))
        assert record is not None and record.asset_materialization is not None
        tags = record.asset_materialization.tags or {}
        # Two different digests in one output: Dagster takes one data version for all of them.
        assert tags["dagster/data_version"] not in {v.digest for v in by_partition.values()}
        assert len(tags["dagster/data_version"]) == 32
