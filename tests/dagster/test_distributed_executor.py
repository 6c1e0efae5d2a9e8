"""The example pipeline on ``dagster-dask``'s executor: every step in a worker process of a local
Dask cluster (the README's block, run as written), the store on the S3 protocol server (moto)
and the registry on PostgreSQL. What a
user compares with the in-process run: the same artifact versions and digests, the same lineage
(each step one artifacts run that used its inputs and logged its output) and the same Dagster
data versions."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from dagster_artifacts.api import Api
from dagster_artifacts.state import reset_stores
from example_repo.definitions import PIPELINE_ASSETS, daily_summary, pipeline
from tests.services.postgres import PostgresCluster
from tests.services.s3 import S3Service
from tests.test_readme import run_block

pytest.importorskip("dagster_dask", reason="the dask extra is needed for the Dask executor")
pytest.importorskip("s3fs", reason="s3fs is needed for the S3 root")

NAMES = ["bike-rides", "bike-features", "bike-model", "bike_evaluation", "station-map"]
KEYS = [k for a in PIPELINE_ASSETS if a is not daily_summary for k in a.keys]


def _home(path: Path) -> str:
    path.mkdir()
    return str(path)


def _outcome(instance: dg.DagsterInstance) -> dict[str, Any]:
    """What a user compares: versions, digests, aliases, lineage and Dagster data versions."""
    api = Api(project="bike-sharing")
    versions = {
        name: [(v.version, v.digest, sorted(v.aliases)) for v in api.artifact_versions(None, name)]
        for name in NAMES
    }
    lineage = {}
    for name in NAMES:
        producer = api.artifact(f"{name}:latest").logged_by()
        assert producer is not None
        lineage[name] = (
            producer.job_type,
            producer.name,  # the step key
            sorted(a.name for a in producer.used_artifacts()),
            sorted(a.name for a in producer.logged_artifacts()),
        )
    data_versions = {}
    for key in KEYS:
        event = instance.get_latest_materialization_event(key)
        assert event is not None and event.asset_materialization is not None
        data_versions[key.to_user_string()] = event.asset_materialization.tags[
            "dagster/data_version"
        ]
    return {"versions": versions, "lineage": lineage, "data_versions": data_versions}


@pytest.mark.slow
@pytest.mark.xdist_group("dagster")
def test_example_on_dask_workers_with_s3_store_and_postgres_registry(
    s3: S3Service,
    postgres_cluster: PostgresCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The reference: in-process, on the test's local store.
    with dg.instance_for_test(temp_dir=_home(tmp_path / "home-in-process")) as instance:
        local = pipeline.resolve_job_def("bike_pipeline").execute_in_process(instance=instance)
        assert local.success
        expected = _outcome(instance)

    # Past one machine: the workers inherit this environment (object store, shared registry).
    bucket = s3.make_bucket()
    monkeypatch.setenv("DAGSTER_ARTIFACTS_ROOT", f"s3://{bucket}/artifacts")
    monkeypatch.setenv("DAGSTER_ARTIFACTS_DATABASE", postgres_cluster.create_database())
    monkeypatch.setenv("DAGSTER_ARTIFACTS_CACHE_DIR", str(tmp_path / "cache-distributed"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint_url)
    reset_stores()
    home = Path(_home(tmp_path / "home-dask"))
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    namespace = run_block("dagster-dask")  # the README's block, as written
    assert namespace["result"].success
    with dg.DagsterInstance.get() as instance:
        step_pids = {
            entry.dagster_event.pid
            for entry in instance.all_logs(namespace["result"].run_id)
            if entry.dagster_event is not None
            and entry.dagster_event.event_type_value == "STEP_SUCCESS"
        }
        distributed = _outcome(instance)

    assert os.getpid() not in step_pids  # every step ran in a Dask worker process
    assert len(step_pids) >= 1
    assert distributed["versions"] == expected["versions"]
    assert distributed["lineage"] == expected["lineage"]
    assert distributed["data_versions"] == expected["data_versions"]
    assert distributed["data_versions"]["bike_model"] == expected["versions"]["bike-model"][0][1]
    # The bytes are in the bucket, the rows in PostgreSQL (not the local defaults).
    assert s3.keys(bucket, "artifacts/")
    assert Api(project="bike-sharing").artifact("bike-model:best-mae").version == "v0"
