"""``artifact_verified`` asset checks on real runs: they pass on an intact store, name the version,
the entries checked and each problem when a blob is damaged or a reference changed, check an
external artifact's ``latest``, and, blocking, keep downstream assets from materializing."""

from pathlib import Path

import dagster as dg
import pandas as pd

import dagster_artifacts as wandb
from dagster_artifacts import ArtifactsIOManager, ArtifactsResource
from dagster_artifacts.dagster import build_artifact_checks, external_artifact_specs

STORE = ArtifactsResource()
RESOURCES = {"io_manager": ArtifactsIOManager(store=STORE)}


@dg.asset(metadata={"artifact": {"name": "bike-rides"}})
def rides() -> pd.DataFrame:
    return pd.DataFrame({"hour": [7, 8, 9], "count": [120, 340, 210]})


@dg.asset
def total(rides: pd.DataFrame) -> int:
    return int(rides["count"].sum())


def _evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}


def _blobs(store: Path) -> list[Path]:
    return sorted(p for p in (store / "blobs").rglob("*") if p.is_file())


def test_checks_pass_then_name_each_problem(tmp_path: Path, isolated_store: Path) -> None:
    zones = tmp_path / "zones.geojson"
    zones.write_text('{"type": "FeatureCollection"}\n')

    @dg.asset(metadata={"artifact": {"name": "station-map"}})
    def station_map() -> wandb.Artifact:
        artifact = wandb.Artifact("station-map", type="map")
        with artifact.new_file("stations.csv") as handle:
            handle.write("id\n1\n")
        artifact.add_reference(zones.as_uri(), name="zones.geojson")
        return artifact

    checks = build_artifact_checks([rides, station_map], store=STORE)
    assert [c.check_keys for c in checks] == [
        {dg.AssetCheckKey(dg.AssetKey("rides"), "artifact_verified")},
        {dg.AssetCheckKey(dg.AssetKey("station_map"), "artifact_verified")},
    ]
    with dg.instance_for_test() as instance:
        ok = dg.materialize([rides, station_map, *checks], resources=RESOURCES, instance=instance)
        evaluations = _evaluations(ok)
        assert {k: e.passed for k, e in evaluations.items()} == {"rides": True, "station_map": True}
        meta = evaluations["station_map"].metadata
        assert meta["artifact/version"].value == "station-map:v0"
        assert meta["artifact/checked_entries"].value == 2
        assert meta["artifact/problems"].value == []

        zones.write_text('{"type": "FeatureCollection", "features": [1]}\n')  # the ref changed
        for blob in _blobs(isolated_store):  # and every stored blob is damaged
            blob.chmod(0o644)
            blob.write_bytes(b"bit rot")
        verify_only = dg.define_asset_job("verify", selection=dg.AssetSelection.all_asset_checks())
        defs = dg.Definitions(assets=[rides, station_map], asset_checks=checks, jobs=[verify_only])
        bad = defs.resolve_job_def("verify").execute_in_process(
            instance=instance, raise_on_error=False
        )
        evaluations = _evaluations(bad)
        assert {k: e.passed for k, e in evaluations.items()} == {
            "rides": False,
            "station_map": False,
        }
        problems = evaluations["station_map"].metadata["artifact/problems"].value
        assert len(problems) == 2
        assert any(p.startswith("station-map:v0 stations.csv:") for p in problems)
        assert any(p.startswith("station-map:v0 zones.geojson:") for p in problems)
        rides_meta = evaluations["rides"].metadata
        assert rides_meta["artifact/version"].value == "bike-rides:v0"
        assert "data.parquet" in rides_meta["artifact/problems"].value[0]


def test_external_artifact_check_verifies_latest() -> None:
    with wandb.init(job_type="script") as run:
        artifact = wandb.Artifact("notebook-output", type="dataset")
        with artifact.new_file("out.txt") as handle:
            handle.write("from a notebook")
        run.log_artifact(artifact).wait()
    specs = external_artifact_specs(STORE)
    checks = build_artifact_checks(specs, store=STORE)
    defs = dg.Definitions(
        assets=specs,
        asset_checks=checks,
        jobs=[dg.define_asset_job("verify", selection=dg.AssetSelection.all_asset_checks())],
    )
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("verify").execute_in_process(instance=instance)
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed
    assert evaluation.metadata["artifact/version"].value == "notebook-output:v0"  # latest, resolved
    assert evaluation.metadata["artifact/checked_entries"].value == 1


def test_blocking_check_keeps_downstream_from_materializing(isolated_store: Path) -> None:
    checks = build_artifact_checks([rides], store=STORE, blocking=True)
    with dg.instance_for_test() as instance:
        assert dg.materialize([rides], resources=RESOURCES, instance=instance).success
        for blob in _blobs(isolated_store):  # v0's only blob goes missing
            blob.unlink()
        # Unchanged output deduplicates to v0, whose blob is gone: the check fails and blocks.
        result = dg.materialize(
            [rides, total, *checks], resources=RESOURCES, instance=instance, raise_on_error=False
        )
        (evaluation,) = result.get_asset_check_evaluations()
        assert not evaluation.passed
        assert "missing" in evaluation.metadata["artifact/problems"].value[0]
        assert [m.asset_key for m in result.get_asset_materialization_events()] == [
            dg.AssetKey("rides")
        ]
        assert not result.success
