"""A plain training script, outside Dagster: it reads the ``bike-features`` artifact that the
Dagster pipeline produced, trains a challenger model and logs it as ``bike-model-tuned``, then
promotes the best ``bike-model`` version to the ``production`` alias.

    .venv/bin/python example_repo/train_outside_dagster.py

Nothing here imports Dagster. Yet after it ran, the Dagster code location shows
``bike-model-tuned`` as an asset downstream of ``bike_features`` (``external_artifact_specs``
reads the lineage this run recorded), its ``artifact_verified`` check can run, and the
``deploy_on_production_alias`` sensor starts the ``deploy_model`` job because ``production``
moved.
"""

from __future__ import annotations

import pickle
import sys
import tempfile
from pathlib import Path

import pandas as pd
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.metrics import mean_absolute_error

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dagster_artifacts as wandb  # noqa: E402

PROJECT = "bike-sharing"
FEATURES = ["hour", "temperature", "is_weekend", "rain"]


def train(project: str = PROJECT) -> wandb.Artifact:
    """Train on the pipeline's latest features; log ``bike-model-tuned``; return it."""
    with wandb.init(project=project, job_type="notebook-training") as run:
        features = run.use_artifact("bike-features:latest")
        frame = pd.read_parquet(Path(features.download()) / "data.parquet")
        train_rows = frame[frame["split"] == "train"]
        test_rows = frame[frame["split"] == "test"]
        model = GradientBoostingRegressor(n_estimators=60, max_depth=3, random_state=0)
        model.fit(train_rows[FEATURES], train_rows["count"])
        mae = float(mean_absolute_error(test_rows["count"], model.predict(test_rows[FEATURES])))

        tuned = wandb.Artifact(
            "bike-model-tuned",
            type="model",
            description="Gradient boosting trained outside Dagster on the pipeline's features",
            metadata={"test_mae": round(mae, 3)},
        )
        # add_file copies the file into the draft, so the temporary folder can go right away.
        with tempfile.TemporaryDirectory(prefix="bike-tuned-") as tmp:
            path = Path(tmp) / "model.pkl"
            path.write_bytes(pickle.dumps(model))
            tuned.add_file(path)
        run.log_artifact(tuned, aliases=["candidate"])
    tuned.wait()
    return tuned


def promote(version: str = "best-mae", project: str = PROJECT) -> wandb.Artifact:
    """Point ``bike-model:production`` at ``bike-model:<version>`` (what a reviewer does)."""
    model = wandb.Api(project=project).artifact(f"bike-model:{version}")
    if "production" not in model.aliases:
        model.aliases = [*model.aliases, "production"]
        model.save()
    return model


def main() -> None:
    tuned = train()
    print(f"logged {tuned.name} (test_mae={tuned.metadata['test_mae']}) from outside Dagster")
    promoted = promote()
    print(f"bike-model:production -> {promoted.version}")


if __name__ == "__main__":
    main()
