"""The IO manager under the multiprocess executor: every step in its own process."""

import dagster as dg
import pandas as pd
import pytest

import dagster_artifacts as wandb
from dagster_artifacts import ArtifactsIOManager


@dg.asset(group_name="prep")
def mp_rides() -> pd.DataFrame:
    return pd.DataFrame({"hour": [0, 1, 2], "count": [3, 5, 8]})


@dg.asset(group_name="train")
def mp_model(mp_rides: pd.DataFrame) -> dict[str, float]:
    return {"mean": float(mp_rides["count"].mean())}


def mp_job() -> dg.JobDefinition:
    defs = dg.Definitions(
        assets=[mp_rides, mp_model],
        resources={"io_manager": ArtifactsIOManager()},
        jobs=[dg.define_asset_job("mp_job")],
        executor=dg.multiprocess_executor,
    )
    return defs.resolve_job_def("mp_job")


@pytest.mark.xdist_group("dagster")
def test_multiprocess_twice_dedupes_and_records_lineage() -> None:
    with dg.instance_for_test() as instance:
        runs = []
        for _ in range(2):
            with dg.execute_job(dg.reconstructable(mp_job), instance=instance) as result:
                assert result.success
                runs.append(result.run_id)
        api = wandb.Api()
        assert [v.version for v in api.artifact_versions(None, "mp_rides")] == ["v0"]
        model = api.artifact("mp_model:latest")
        run = model.logged_by()
        assert run is not None and run.group == runs[0] and run.job_type == "train"
        assert [a.name for a in run.used_artifacts()] == ["mp_rides:v0"]
        assert len(model.used_by()) == 0
        record = instance.get_latest_materialization_event(dg.AssetKey("mp_rides"))
        assert record is not None
        materialization = record.asset_materialization
        assert materialization.tags["dagster/data_version"] == api.artifact("mp_rides:v0").digest
        assert materialization.metadata["artifact/deduplicated"].value is True
