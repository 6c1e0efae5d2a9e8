"""Partitions whose outputs are byte-identical stay separate versions, each tied to its key.

DESIGN.md section 5: each partition materialization is a version tied to its partition key, and
loading one partition resolves the newest version of that partition. Dedupe applies within a
partition (re-materializing it with unchanged output creates no version), never across them.
"""

import dagster as dg
import pandas as pd

import dagster_artifacts as wandb
from dagster_artifacts import ArtifactsIOManager

RESOURCES = {"io_manager": ArtifactsIOManager()}
REGIONS = dg.StaticPartitionsDefinition(["north", "south"])
SAME = pd.DataFrame({"station": ["s1", "s2"], "bikes": [4, 7]})


@dg.asset(partitions_def=REGIONS)
def stations(context: dg.AssetExecutionContext):  # type: ignore[no-untyped-def]
    keys = context.partition_keys
    return {key: SAME.copy() for key in keys} if len(keys) > 1 else SAME.copy()


@dg.asset(partitions_def=REGIONS)
def station_source(context: dg.AssetExecutionContext, stations: wandb.Artifact) -> dict[str, str]:
    """Which stored version the IO manager resolved for this partition's input."""
    return {"partition": context.partition_key, "version": stations.version}


@dg.asset(partitions_def=REGIONS)
def station_bikes(stations: pd.DataFrame) -> int:
    return int(stations["bikes"].sum())


def _materialize(partition: str, *assets: dg.AssetsDefinition, instance: dg.DagsterInstance):  # type: ignore[no-untyped-def]
    result = dg.materialize(
        list(assets), partition_key=partition, resources=RESOURCES, instance=instance
    )
    assert result.success
    return result


def _data_version(instance: dg.DagsterInstance, partition: str) -> str:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("stations"), asset_partitions=[partition]),
        limit=1,
    ).records
    materialization = records[0].asset_materialization
    assert materialization is not None and materialization.tags is not None
    return materialization.tags["dagster/data_version"]


def test_identical_partitions_are_separate_versions_each_loadable() -> None:
    with dg.instance_for_test() as instance:
        north = _materialize("north", stations, instance=instance)
        south = _materialize("south", stations, instance=instance)
        north_meta = north.asset_materializations_for_node("stations")[0].metadata
        south_meta = south.asset_materializations_for_node("stations")[0].metadata
        assert north_meta["artifact/version"].value == "v0"
        assert south_meta["artifact/version"].value == "v1"
        assert south_meta["artifact/deduplicated"].value is False

        api = wandb.Api()
        versions = api.artifact_versions("dataset", "stations")
        assert [(v.version, v.partition_key) for v in versions] == [
            ("v0", "north"),
            ("v1", "south"),
        ]
        digest = versions[0].digest
        assert versions[1].digest == digest
        assert _data_version(instance, "north") == _data_version(instance, "south") == digest

        # Each partition's input resolves the version of that partition.
        for partition, version in (("north", "v0"), ("south", "v1")):
            result = dg.materialize(
                [stations, station_source, station_bikes],
                selection=[station_source, station_bikes],
                partition_key=partition,
                resources=RESOURCES,
                instance=instance,
            )
            assert result.output_for_node("station_source") == {
                "partition": partition,
                "version": version,
            }
            assert result.output_for_node("station_bikes") == 11
        defs = dg.Definitions(assets=[stations], resources=RESOURCES)
        loaded = defs.load_asset_value("stations", partition_key="south", instance=instance)
        pd.testing.assert_frame_equal(loaded, SAME)

        # Re-materializing one partition with the same output dedupes to its own version.
        again = _materialize("south", stations, instance=instance)
        meta = again.asset_materializations_for_node("stations")[0].metadata
        assert meta["artifact/version"].value == "v1"
        assert meta["artifact/deduplicated"].value is True
        assert len(api.artifact_versions("dataset", "stations")) == 2
        assert _data_version(instance, "south") == digest


def test_backfill_of_identical_partitions_in_one_run() -> None:
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [stations],
            resources=RESOURCES,
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": "north",
                "dagster/asset_partition_range_end": "south",
            },
        )
        assert result.success
        events = {
            m.partition: m.metadata for m in result.asset_materializations_for_node("stations")
        }
        assert {p: m["artifact/deduplicated"].value for p, m in events.items()} == {
            "north": False,
            "south": False,
        }
        versions = wandb.Api().artifact_versions("dataset", "stations")
        # The run logs the partitions in Dagster's order; each event names its own version.
        assert {p: m["artifact/version"].value for p, m in events.items()} == {
            v.partition_key: v.version for v in versions
        }
        # Same bytes in every partition: the shared digest is each partition's data version.
        assert {_data_version(instance, p) for p in ("north", "south")} == {versions[0].digest}
        assert sorted(v.partition_key for v in versions) == ["north", "south"]
        assert len({v.digest for v in versions}) == 1
