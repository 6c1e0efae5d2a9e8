"""The ``Run`` side of W&B's registry promotion: ``run.link_artifact`` (targets default to the
run's entity and project) and the model-registry helpers ``log_model``, ``use_model`` and
``link_model``."""

from __future__ import annotations

from pathlib import Path

import pytest

import dagster_artifacts as wandb
from dagster_artifacts import errors


def test_link_model_and_use_model() -> None:
    """W&B's model-registry helpers on top of linking."""
    weights = Path("weights.pt")
    weights.write_bytes(b"\x00\x01")
    with wandb.init(job_type="train") as run:
        link = run.link_model(weights, "bike-classifier", aliases=["production"])
    assert link.qualified_name == "default/model-registry/bike-classifier:v0"
    assert link.source_name == "weights.pt:v0" and link.type == "model"
    with wandb.init(job_type="serve") as run:
        path = run.use_model("model-registry/bike-classifier:production")
    assert Path(path).read_bytes() == b"\x00\x01"
    with wandb.init(job_type="serve") as run, pytest.raises(errors.InvalidArgumentError):
        run.link_model(weights, "model-registry/bike-classifier")


def test_run_link_artifact_defaults_to_the_runs_entity_and_project() -> None:
    with wandb.init(job_type="train", project="bikes", entity="team") as run:
        model = wandb.Artifact("m", type="model")
        with model.new_file("w") as handle:
            handle.write("w")
        link = run.link_artifact(model, "production-models")
    assert link.qualified_name == "team/bikes/production-models:v0"


def test_log_model_logs_a_model_artifact() -> None:
    Path("weights").mkdir()
    Path("weights", "a.bin").write_bytes(b"a")
    Path("weights", "b.bin").write_bytes(b"b")
    with wandb.init(job_type="train") as run:
        run.log_model("weights", name="bike-net", aliases=["best"])
    model = wandb.Api().artifact("bike-net:best")
    assert model.type == "model" and sorted(model.manifest.entries) == ["a.bin", "b.bin"]
    with wandb.init(job_type="serve") as run:
        folder = run.use_model("bike-net:best")  # several files: the folder
    assert sorted(p.name for p in Path(folder).iterdir()) == ["a.bin", "b.bin"]


def test_use_model_refuses_an_artifact_that_is_not_a_model() -> None:
    with wandb.init(job_type="t") as run:
        data = wandb.Artifact("table", type="dataset")
        with data.new_file("t.csv") as handle:
            handle.write("x")
        run.log_artifact(data).wait()
    with (
        wandb.init(job_type="serve") as run,
        pytest.raises(errors.InvalidArgumentError, match="type contains 'model'"),
    ):
        run.use_model("table:latest")
