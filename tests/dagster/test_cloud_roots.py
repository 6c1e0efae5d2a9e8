"""The whole example pipeline (``example_repo``) materialized on object-store roots.

The assets are the example's, unchanged; only the resource configuration differs, as a user's
would: an ``s3://`` root on the moto server with the registry in SQLite (credentials through
``dg.EnvVar`` inside ``storage_options``), and a ``gs://`` root on the GCS emulator with the
registry in PostgreSQL. Each test checks what a user would look at afterwards: the versions and
aliases, the bytes downloaded back, the lineage runs, that a second materialization adds nothing,
and that the credentials appear nowhere (registry, bucket, Dagster's own storage, logs).
"""

from __future__ import annotations

import pickle
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from dagster_artifacts import ArtifactsIOManager, ArtifactsResource
from dagster_artifacts.api import Api
from dagster_artifacts.errors import ConfigurationError
from dagster_artifacts.state import reset_stores
from example_repo.definitions import DAYS, bike_rides, pipeline
from example_repo.materialize import materialize_example
from tests.services.gcs import GCSService
from tests.services.s3 import S3Service

pytest.importorskip("s3fs", reason="s3fs is needed for the S3 root")
pytest.importorskip("gcsfs", reason="gcsfs is needed for the GCS root")

PROJECT = "bike-sharing"
NAMES = [
    "bike-rides",
    "bike-features",
    "bike-model",
    "bike_evaluation",
    "daily_summary",
    "station-map",
]


def _resources(store: ArtifactsResource) -> dict[str, Any]:
    """The example's resources, pointed at ``store`` (what a user edits in definitions.py)."""
    assert set(pipeline.resources or {}) == {"io_manager", "artifacts"}
    return {"io_manager": ArtifactsIOManager(store=store), "artifacts": store}


def _materialized(results: list[dg.ExecuteInProcessResult]) -> list[dict[str, Any]]:
    """The artifact metadata of every materialization event, as Dagster recorded it."""
    return [
        {
            key: getattr(value, "value", value)
            for key, value in event.materialization.metadata.items()
        }
        for result in results
        for event in result.get_asset_materialization_events()
    ]


def _deduplicated(metadata: list[dict[str, Any]]) -> list[bool]:
    """``artifact/deduplicated`` of every output (a backfill reports one per partition)."""
    flags: list[bool] = []
    for meta in metadata:
        value = meta["artifact/deduplicated"]
        flags.extend(value.values() if isinstance(value, dict) else [value])
    return flags


def _versions(api: Api) -> dict[str, list[tuple[str, list[str], str | None]]]:
    return {
        name: [
            (version.version, sorted(version.aliases), version.partition_key)
            for version in api.artifact_versions(None, name)
        ]
        for name in NAMES
    }


def _check_example(api: Api, results: list[dg.ExecuteInProcessResult], tmp_path: Path) -> None:
    """Versions, aliases, downloaded bytes and lineage after the first materialization."""
    days = DAYS.get_partition_keys()
    assert _versions(api) == {
        "bike-rides": [("v0", ["latest"], None)],
        "bike-features": [("v0", ["latest"], None)],
        "bike-model": [("v0", ["best-mae", "latest"], None)],
        "bike_evaluation": [("v0", ["latest"], None)],
        "daily_summary": [
            (f"v{index}", ["latest"] if index == len(days) - 1 else [], day)
            for index, day in enumerate(days)
        ],
        "station-map": [("v0", ["latest"], None)],
    }
    metadata = _materialized(results)
    assert {m["artifact/name"] for m in metadata} == set(NAMES)
    assert set(_deduplicated(metadata)) == {False}

    # Downloads give back the bytes: the frame the asset computed, the model that predicts.
    rides = api.artifact("bike-rides:v0")
    pd.testing.assert_frame_equal(
        pd.read_parquet(next(Path(rides.download(tmp_path / "rides")).rglob("*.parquet"))),
        bike_rides(),
    )
    assert rides.verify(tmp_path / "rides").checked == rides.file_count
    model_dir = Path(api.artifact("bike-model:best-mae").download(tmp_path / "model"))
    [model_file] = [path for path in model_dir.rglob("*") if path.is_file()]
    model = pickle.loads(model_file.read_bytes())
    assert model.predict(pd.DataFrame([[8, 20.0, 0, 0]], columns=model.feature_names_in_))[0] > 0
    assert api.artifact("bike-model:best-mae").metadata["test_mae"] > 0
    stations = Path(api.artifact("station-map:latest").download(tmp_path / "stations"))
    assert (stations / "stations" / "station_1.csv").read_text() == "id,lat,lon\n1,52.5,13.1\n"
    assert (stations / "zones.geojson").read_text().startswith('{"type": "FeatureCollection"')
    first_day = api.artifact("daily_summary:v0")
    summary = pd.read_parquet(next(Path(first_day.download(tmp_path / "day")).rglob("*.parquet")))
    frame = bike_rides()
    expected = frame[frame["timestamp"].dt.strftime("%Y-%m-%d") == days[0]]["count"].sum()
    assert int(summary["count"].sum()) == int(expected)

    # Lineage: each step's run used its inputs and logged its output.
    features = api.artifact("bike-features:v0")
    model_artifact = api.artifact("bike-model:v0")
    trainer = model_artifact.logged_by()
    assert trainer is not None and trainer.job_type == "training"
    assert [a.name for a in trainer.used_artifacts()] == ["bike-features:v0"]
    assert [a.name for a in trainer.logged_artifacts()] == ["bike-model:v0"]
    [evaluator] = model_artifact.used_by()
    assert evaluator.job_type == "training" and evaluator.id != trainer.id
    assert sorted(a.name for a in evaluator.used_artifacts()) == [
        "bike-features:v0",
        "bike-model:v0",
    ]
    assert {run.id for run in features.used_by()} == {trainer.id, evaluator.id}
    maker = features.logged_by()
    assert maker is not None and [a.name for a in maker.used_artifacts()] == ["bike-rides:v0"]
    summaries = {run.job_type for run in rides.used_by()}
    assert summaries == {"data", "reports"}  # bike_features and the daily_summary backfill
    assert trainer.group == results[0].run_id


def _check_second_run_dedupes(
    api: Api, resources: dict[str, Any], instance: dg.DagsterInstance, keys: Any
) -> None:
    """Materializing again adds no version and no object: every output is deduplicated."""
    before_versions = _versions(api)
    before_keys = keys()
    again = materialize_example(instance, resources)
    metadata = _materialized(again)
    assert {m["artifact/name"] for m in metadata} == set(NAMES)
    assert set(_deduplicated(metadata)) == {True}
    assert _versions(api) == before_versions
    assert keys() == before_keys


def _registry_text(url: str) -> str:
    """Every row of every registry table as text (SQLite and PostgreSQL alike)."""
    engine = sa.create_engine(url)
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        with engine.connect() as connection:
            return "\n".join(
                repr(row)
                for table in metadata.sorted_tables
                for row in connection.execute(sa.select(table))
            )
    finally:
        engine.dispose()


def _files_text(folder: Path) -> bytes:
    return b"\n".join(path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file())


@pytest.fixture
def dagster_home(tmp_path: Path) -> Iterator[tuple[dg.DagsterInstance, Path]]:
    """A Dagster instance with its storage in a folder the test can scan afterwards."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        yield instance, home


def test_whole_example_on_s3_root_with_sqlite_registry(
    s3: S3Service,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    dagster_home: tuple[dg.DagsterInstance, Path],
) -> None:
    instance, home = dagster_home
    bucket = s3.make_bucket()
    key_id, secret = f"AKIA{uuid.uuid4().hex[:16].upper()}", f"secret-{uuid.uuid4().hex}"
    # Only the resource knows the credentials: nothing for boto's default chain to fall back on.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BIKES_S3_KEY_ID", key_id)
    monkeypatch.setenv("BIKES_S3_SECRET", secret)
    database = tmp_path / "registry.db"
    monkeypatch.setenv("BIKES_REGISTRY", f"sqlite:///{database}")
    store = ArtifactsResource(
        project=PROJECT,
        root=f"s3://{bucket}/artifacts",
        database=dg.EnvVar("BIKES_REGISTRY"),  # also resolved by store.api() outside a run
        storage_options={
            "endpoint_url": s3.endpoint_url,
            "key": dg.EnvVar("BIKES_S3_KEY_ID"),
            "secret": dg.EnvVar("BIKES_S3_SECRET"),
            "s3_additional_kwargs": {"ServerSideEncryption": "AES256"},
        },
    )
    resources = _resources(store)
    results = materialize_example(instance, resources)
    api = store.api()
    _check_example(api, results, tmp_path)

    # The bytes live in the bucket, encrypted as configured; nothing was written locally.
    stored = s3.keys(bucket, "artifacts/")
    assert {key.split("/")[1] for key in stored} == {"blobs", "manifests"}
    head = s3.client.head_object(Bucket=bucket, Key=stored[0])
    assert head["ServerSideEncryption"] == "AES256"
    assert not (tmp_path / "store").exists()

    _check_second_run_dedupes(api, resources, instance, lambda: s3.keys(bucket, "artifacts/"))

    # The credentials appear nowhere: registry, bucket, Dagster's storage, metadata, logs.
    reset_stores()
    everything = [
        database.read_bytes(),
        _registry_text(f"sqlite:///{database}").encode(),
        *(s3.get(bucket, key) for key in s3.keys(bucket, "artifacts/manifests/")),
        _files_text(home),
        repr(_materialized(results)).encode(),
        "".join(capfd.readouterr()).encode(),
    ]
    for blob in everything:
        assert key_id.encode() not in blob and secret.encode() not in blob


def test_whole_example_on_gcs_root_with_postgres_registry(
    gcs: GCSService,
    postgres_url: str,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    dagster_home: tuple[dg.DagsterInstance, Path],
) -> None:
    instance, home = dagster_home
    bucket = gcs.make_bucket()
    store = ArtifactsResource(
        project=PROJECT,
        root=f"gs://{bucket}/artifacts",
        database=postgres_url,
        storage_options=gcs.storage_options,
    )
    resources = _resources(store)
    results = materialize_example(instance, resources)
    api = store.api()
    _check_example(api, results, tmp_path)
    stored = gcs.keys(bucket, "artifacts/")
    assert {key.split("/")[1] for key in stored} == {"blobs", "manifests"}
    assert not (tmp_path / "store").exists()

    _check_second_run_dedupes(api, resources, instance, lambda: gcs.keys(bucket, "artifacts/"))

    # Nothing of the store's connection settings reaches the registry or Dagster's storage.
    reset_stores()
    registry = _registry_text(postgres_url)
    assert "bike-model" in registry  # the dump is real
    for text in (registry, _files_text(home).decode(errors="replace"), capfd.readouterr().err):
        assert gcs.endpoint_url not in text


def test_env_var_credentials_that_are_not_set_fail_before_anything_is_written(
    s3: S3Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3.make_bucket()
    monkeypatch.delenv("BIKES_S3_SECRET", raising=False)
    store = ArtifactsResource(
        root=f"s3://{bucket}/artifacts",
        database=f"sqlite:///{tmp_path / 'registry.db'}",
        storage_options={"endpoint_url": s3.endpoint_url, "secret": dg.EnvVar("BIKES_S3_SECRET")},
    )
    with pytest.raises(ConfigurationError, match="BIKES_S3_SECRET"):
        store.api()
    result = dg.materialize(
        [bike_rides],
        resources={"io_manager": ArtifactsIOManager(store=store)},
        raise_on_error=False,
    )
    assert not result.success
    assert "BIKES_S3_SECRET" in str(result.get_step_failure_events()[0].step_failure_data.error)
    assert s3.keys(bucket) == []
    assert not (tmp_path / "registry.db").exists()
