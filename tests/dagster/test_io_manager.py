"""ArtifactsIOManager through real Dagster runs on the test's local store."""

from typing import Any

import dagster as dg
import pandas as pd
import pytest

import dagster_artifacts as wandb
from dagster_artifacts import ArtifactsIOManager

RESOURCES = {"io_manager": ArtifactsIOManager()}


@dg.asset(group_name="prep", metadata={"artifact": {"aliases": ["candidate"]}})
def rides() -> pd.DataFrame:
    return pd.DataFrame({"hour": [0, 1, 2], "count": [3, 5, 8]})


@dg.asset(group_name="train")
def model(rides: pd.DataFrame) -> dict[str, float]:
    return {"mean": float(rides["count"].mean())}


def _materialize(*assets: dg.AssetsDefinition, **kwargs: object) -> dg.ExecuteInProcessResult:
    return dg.materialize(list(assets), resources=RESOURCES, **kwargs)  # type: ignore[arg-type]


def test_versions_dedupe_data_version_metadata_and_lineage() -> None:
    with dg.instance_for_test() as instance:
        first = _materialize(rides, model, instance=instance)
        second = _materialize(rides, model, instance=instance)
        assert first.success and second.success
        meta = second.asset_materializations_for_node("rides")[0].metadata
        assert meta["artifact/version"].value == "v0"
        assert meta["artifact/deduplicated"].value is True
        assert meta["dagster/row_count"].value == 3
        assert [c.name for c in meta["dagster/column_schema"].value.columns] == ["hour", "count"]
        assert meta["artifact/inputs"].value == []
        consumer = second.asset_materializations_for_node("model")[0].metadata
        assert consumer["artifact/inputs"].value == ["rides:v0"]  # the versions the step used
        api = wandb.Api()
        dataset = api.artifact("rides:latest")
        assert dataset.type == "dataset"
        assert "candidate" in dataset.aliases
        record = instance.get_latest_data_version_record(dg.AssetKey("rides"))
        assert record is not None
        tags = instance.get_latest_materialization_event(
            dg.AssetKey("rides")
        ).asset_materialization.tags
        assert tags["dagster/data_version"] == dataset.digest
        trained = api.artifact("model:latest")
        run = trained.logged_by()
        assert run is not None and run.job_type == "train"
        assert run.group == first.run_id  # unchanged in the second run: deduplicated
        assert [a.version for a in run.used_artifacts()] == ["v0"]
        assert _materialize(model, rides, instance=instance).success


def test_pinned_input_and_load_asset_value() -> None:
    with dg.instance_for_test() as instance:
        _materialize(rides, instance=instance)

        @dg.asset(name="rides", metadata={"artifact": {}})
        def rides_v1() -> pd.DataFrame:
            return pd.DataFrame({"hour": [0], "count": [100]})

        _materialize(rides_v1, instance=instance)

        @dg.asset(ins={"rides": dg.AssetIn(metadata={"artifact": {"version": "v0"}})})
        def pinned(rides: pd.DataFrame) -> int:
            return len(rides)

        result = dg.materialize(
            [pinned, rides_v1], selection=[pinned], resources=RESOURCES, instance=instance
        )
        assert result.output_for_node("pinned") == 3
        defs = dg.Definitions(assets=[rides_v1], resources=RESOURCES)
        assert len(defs.load_asset_value("rides")) == 1
        with defs.get_asset_value_loader(instance=instance) as loader:
            frame = loader.load_asset_value(
                "rides", input_definition_metadata={"artifact": {"version": "v0"}}
            )
        assert len(frame) == 3


DAYS = dg.DailyPartitionsDefinition(start_date="2026-11-01", end_date="2026-11-04")


@dg.asset(partitions_def=DAYS)
def daily_rides(context: dg.AssetExecutionContext):  # type: ignore[no-untyped-def]
    keys = context.partition_keys
    frames = {k: pd.DataFrame({"day": [k], "count": [int(k[-2:])]}) for k in keys}
    return frames if len(keys) > 1 else frames[keys[0]]


@dg.asset(partitions_def=DAYS)
def daily_total(daily_rides: pd.DataFrame) -> int:
    return int(daily_rides["count"].sum())


def test_partitions_single_and_backfill() -> None:
    with dg.instance_for_test() as instance:
        assert _materialize(
            daily_rides, daily_total, partition_key="2026-11-02", instance=instance
        ).success
        backfill = dg.materialize(
            [daily_rides],
            resources=RESOURCES,
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": "2026-11-01",
                "dagster/asset_partition_range_end": "2026-11-03",
            },
        )
        assert backfill.success
        api = wandb.Api()
        versions = api.artifact_versions("dataset", "daily_rides")
        assert sorted(v.partition_key for v in versions) == [
            "2026-11-01",
            "2026-11-02",
            "2026-11-03",
        ]
        # Each partition's own materialization names its own version (Dagster's event per key).
        events = {
            m.partition: m.metadata for m in backfill.asset_materializations_for_node("daily_rides")
        }
        assert sorted(events) == ["2026-11-01", "2026-11-02", "2026-11-03"]
        assert events["2026-11-02"]["artifact/deduplicated"].value is True
        assert events["2026-11-01"]["artifact/deduplicated"].value is False
        for partition, meta in events.items():
            version = wandb.Api().artifact(f"daily_rides:{meta['artifact/version'].value}")
            assert version.partition_key == partition
            assert meta["artifact/digest"].value == version.digest
        total = _materialize(
            daily_rides, daily_total, partition_key="2026-11-03", instance=instance
        )
        assert total.output_for_node("daily_total") == 3

        @dg.asset(
            partitions_def=DAYS,
            ins={"daily_rides": dg.AssetIn(partition_mapping=dg.AllPartitionMapping())},
        )
        def all_days(daily_rides: dict[str, pd.DataFrame]) -> int:
            return sum(int(frame["count"].sum()) for frame in daily_rides.values())

        result = dg.materialize(
            [daily_rides, all_days],
            selection=[all_days],
            partition_key="2026-11-01",
            resources=RESOURCES,
            instance=instance,
        )
        assert result.output_for_node("all_days") == 6


@pytest.mark.parametrize(
    ("asset_def", "needle"),
    [
        (
            dg.asset(name="bad_key", metadata={"artifact": {"nmae": "x"}})(lambda: 1),
            "allowed keys are",
        ),
        (dg.asset(name="returns_none")(lambda: None), "returned None"),
    ],
)
def test_bad_output_fails_and_writes_nothing(
    asset_def: dg.AssetsDefinition, needle: str, store_snapshot: Any
) -> None:
    _materialize(rides)  # the store exists and holds something
    before = store_snapshot()
    result = _materialize(asset_def, raise_on_error=False)
    assert not result.success
    message = str(result.get_step_failure_events()[0].step_failure_data.error)
    assert needle in message and asset_def.key.to_user_string() in message
    assert not wandb.Api().artifact_exists(asset_def.key.to_user_string() + ":latest")
    assert store_snapshot() == before


def test_unpicklable_output_and_missing_pin_fail() -> None:
    import threading

    @dg.asset
    def lock() -> object:
        return threading.Lock()

    result = _materialize(lock, raise_on_error=False)
    assert not result.success
    message = str(result.get_step_failure_events()[0].step_failure_data.error)
    assert "no handler" in message and "'lock'" in message and "cloudpickle" in message
    assert not wandb.Api().artifact_exists("lock:latest")

    _materialize(rides)

    @dg.asset(ins={"rides": dg.AssetIn(metadata={"artifact": {"version": "v7"}})})
    def wants_v7(rides: pd.DataFrame) -> int:
        return len(rides)

    result = dg.materialize(
        [wants_v7, rides], selection=[wants_v7], resources=RESOURCES, raise_on_error=False
    )
    assert not result.success
    message = str(result.get_step_failure_events()[0].step_failure_data.error)
    assert "'v7'" in message and "rides" in message and "artifact_versions" in message
    assert not wandb.Api().artifact_exists("wants_v7:latest")


def test_an_already_logged_artifact_is_refused_before_anything_is_written(
    store_snapshot: Any,
) -> None:
    """An asset returning an Artifact it logged itself is refused by the IO manager with a message
    that says what to return instead, before a run or a version is written."""
    with wandb.init(job_type="prep") as run:
        logged = wandb.Artifact("hand-made", type="dataset")
        with logged.new_file("a.txt") as handle:
            handle.write("logged already")
        run.log_artifact(logged).wait()
    before = store_snapshot()

    @dg.asset(metadata={"artifact": {"name": "hand-made"}})
    def hand_made() -> wandb.Artifact:
        return logged

    with dg.instance_for_test() as instance:
        result = _materialize(hand_made, instance=instance, raise_on_error=False)
        assert not result.success
        failure = result.get_step_failure_events()[0]
        message = failure.step_failure_data.error.cause.message  # type: ignore[union-attr]
    assert "is already logged; return a new Artifact" in message
    assert store_snapshot() == before
