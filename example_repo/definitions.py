"""Bike-sharing demand: generated rides -> features -> model -> evaluation, plus a partitioned
daily summary, a hand-built ``Artifact`` with ``add_dir`` and ``add_reference``, an op-based
"deploy" job, and an ``artifact_verified`` check on every asset.

Every output goes through ``ArtifactsIOManager`` on the default local store (or
``DAGSTER_ARTIFACTS_ROOT``), so each materialization is an artifact version with lineage.
``defs`` adds what ``defs/artifacts/defs.yaml`` declares (``ArtifactsComponent``): the artifacts
that ``train_outside_dagster.py`` logs as assets with their lineage, a sensor that runs
``deploy_model`` when ``bike-model``'s ``production`` alias moves, and checks on those artifacts.
"""

import tempfile
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error

import dagster_artifacts as wandb
from dagster_artifacts import ArtifactsIOManager, ArtifactsResource
from dagster_artifacts.dagster import build_artifact_checks

STORE = ArtifactsResource(project="bike-sharing")

DAYS = dg.DailyPartitionsDefinition(start_date="2026-05-01", end_date="2026-05-04")
FEATURES = ["hour", "temperature", "is_weekend", "rain"]


@dg.asset(group_name="data", metadata={"artifact": {"name": "bike-rides", "type": "dataset"}})
def bike_rides() -> pd.DataFrame:
    """Hourly rentals for 60 days, generated with a fixed seed (no download)."""
    rng = np.random.default_rng(7)
    hours = pd.date_range("2026-04-01", periods=60 * 24, freq="h")
    temperature = 15 + 8 * np.sin(np.arange(len(hours)) / 24 / 9) + rng.normal(0, 2, len(hours))
    rain = rng.random(len(hours)) < 0.12
    peak = np.exp(-((hours.hour - 8) ** 2) / 6) + np.exp(-((hours.hour - 18) ** 2) / 6)
    count = 40 + 220 * peak + 6 * temperature - 60 * rain + rng.normal(0, 15, len(hours))
    return pd.DataFrame(
        {
            "timestamp": hours,
            "hour": hours.hour,
            "temperature": temperature.round(1),
            "is_weekend": (hours.day_of_week >= 5).astype(int),
            "rain": rain.astype(int),
            "count": np.clip(count, 0, None).round().astype(int),
        }
    )


@dg.asset(group_name="data", metadata={"artifact": {"name": "bike-features", "type": "dataset"}})
def bike_features(bike_rides: pd.DataFrame) -> pd.DataFrame:
    """Model features and a time-based train/test split."""
    frame = bike_rides[[*FEATURES, "count"]].copy()
    frame["split"] = np.where(bike_rides["timestamp"] < "2026-05-20", "train", "test")
    return frame


@dg.asset(group_name="training", metadata={"artifact": {"name": "bike-model", "type": "model"}})
def bike_model(bike_features: pd.DataFrame) -> Ridge:
    """A small ridge regression (pickled by the IO manager)."""
    train = bike_features[bike_features["split"] == "train"]
    return Ridge(alpha=1.0).fit(train[FEATURES], train["count"])


@dg.asset(group_name="training")
def bike_evaluation(
    bike_features: pd.DataFrame, bike_model: Ridge, artifacts: ArtifactsResource
) -> dict[str, float]:
    """Test MAE; the model version with the best MAE so far gets the ``best-mae`` alias."""
    test = bike_features[bike_features["split"] == "test"]
    mae = float(mean_absolute_error(test["count"], bike_model.predict(test[FEATURES])))
    api = artifacts.api()
    model = api.artifact("bike-model:latest")
    try:
        best = float(api.artifact("bike-model:best-mae").metadata.get("test_mae", float("inf")))
    except wandb.errors.ArtifactNotFoundError:
        best = float("inf")
    if mae <= best:
        model.metadata = {**model.metadata, "test_mae": mae}
        model.aliases = [*model.aliases, "best-mae"]
        model.save()
    return {"test_mae": round(mae, 3), "best_mae": round(min(mae, best), 3)}


@dg.asset(group_name="reports", partitions_def=DAYS)
def daily_summary(context: dg.AssetExecutionContext, bike_rides: pd.DataFrame):  # type: ignore[no-untyped-def]
    """Rides per hour for each day: one artifact version per partition (backfills included)."""

    def summary(day: str) -> pd.DataFrame:
        rows = bike_rides[bike_rides["timestamp"].dt.strftime("%Y-%m-%d") == day]
        return rows.groupby("hour", as_index=False)["count"].sum()

    keys = context.partition_keys
    return {k: summary(k) for k in keys} if len(keys) > 1 else summary(keys[0])


@dg.asset(group_name="reports", metadata={"artifact": {"name": "station-map"}})
def station_map() -> wandb.Artifact:
    """An artifact built by hand: a folder of station files plus a tracked ``file://`` reference."""
    external = Path(tempfile.gettempdir()) / "bike-sharing-city-zones.geojson"
    external.write_text('{"type": "FeatureCollection", "features": []}\n')
    artifact = wandb.Artifact("station-map", type="map", description="stations and city zones")
    # add_dir copies the files into the draft (policy "mutable"), so the folder can go at once.
    with tempfile.TemporaryDirectory(prefix="bike-stations-") as tmp:
        folder = Path(tmp)
        for station in range(3):
            (folder / f"station_{station}.csv").write_text(
                f"id,lat,lon\n{station},52.5,13.{station}\n"
            )
        artifact.add_dir(folder, name="stations")
    artifact.add_reference(external.as_uri(), name="zones.geojson")
    return artifact


# -- an op-based job: deploy the model version the ``production`` alias points at --------------
class DeployConfig(dg.Config):
    """Which version to deploy; the artifact sensor fills it in from the alias move."""

    version: str = "production"


@dg.op(out=dg.Out(metadata={"artifact": {"name": "bike-model-release", "type": "release"}}))
def release_model(
    context: dg.OpExecutionContext, config: DeployConfig, artifacts: ArtifactsResource
) -> dict[str, str]:
    """Resolve the version to deploy and record it: the op output is an artifact version."""
    with artifacts.run(context) as run:
        model = run.use_artifact(f"bike-model:{config.version}")
    return {"model": model.name, "version": model.version, "digest": model.digest}


@dg.op
def deploy_manifest(release: dict[str, str]) -> dict[str, str]:
    """What a serving system would read (stored as JSON, the artifact ``deploy_manifest``)."""
    return {"model": release["model"], "digest": release["digest"], "serving": "bike-api"}


@dg.job(description="Deploy the bike model the production alias points at (op-based).")
def deploy_model() -> None:
    deploy_manifest(release_model())


PIPELINE_ASSETS = [
    bike_rides,
    bike_features,
    bike_model,
    bike_evaluation,
    daily_summary,
    station_map,
]

#: The pipeline on its own (what ``materialize.py`` runs and the tests point at other stores).
pipeline = dg.Definitions(
    assets=PIPELINE_ASSETS,
    asset_checks=build_artifact_checks(PIPELINE_ASSETS, store=STORE),
    resources={
        "io_manager": ArtifactsIOManager(store=ArtifactsResource(project="bike-sharing")),
        "artifacts": STORE,
    },
    jobs=[
        dg.define_asset_job(
            "bike_pipeline",
            selection=dg.AssetSelection.assets(*PIPELINE_ASSETS)
            - dg.AssetSelection.assets(daily_summary),
        ),
        deploy_model,
    ],
)


@dg.definitions
def defs() -> dg.Definitions:
    """The pipeline plus the component in ``defs/`` (loaded when the code location loads, so
    artifacts logged outside Dagster since the last reload appear)."""
    return dg.Definitions.merge(
        pipeline, dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    )
