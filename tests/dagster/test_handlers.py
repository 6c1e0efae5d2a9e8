"""Each type handler through a real Dagster run: what an asset returns comes back to the next
asset as the annotated type, and the stored artifact holds what a user would expect."""

from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pytest

import dagster_artifacts as wandb
from dagster_artifacts import ArtifactsIOManager, ArtifactsResource

STORE = ArtifactsResource()
RESOURCES: dict[str, Any] = {"io_manager": ArtifactsIOManager(store=STORE), "artifacts": STORE}


def _run(*assets: Any, **kwargs: Any) -> dg.ExecuteInProcessResult:
    result = dg.materialize(list(assets), resources=RESOURCES, **kwargs)
    assert result.success
    return result


def test_path_file_and_folder_round_trip(tmp_path: Path) -> None:
    source = tmp_path / "out"

    @dg.asset
    def report() -> Path:
        source.mkdir(exist_ok=True)
        target = source / "report.txt"
        target.write_text("rides: 42\n")
        return target

    @dg.asset
    def images() -> Path:
        folder = tmp_path / "images"
        (folder / "cats").mkdir(parents=True, exist_ok=True)
        (folder / "cats" / "a.png").write_bytes(b"\x89PNG a")
        (folder / "b.png").write_bytes(b"\x89PNG b")
        return folder

    seen: dict[str, Any] = {}

    @dg.asset
    def summary(report: Path, images: Path) -> dict[str, Any]:
        seen["report"] = report.read_text()
        seen["images"] = sorted(
            p.relative_to(images).as_posix() for p in images.rglob("*") if p.is_file()
        )
        return {"ok": True}

    _run(report, images, summary)
    assert seen == {"report": "rides: 42\n", "images": ["b.png", "cats/a.png"]}
    stored = wandb.Api().artifact("images:latest")
    assert sorted(stored.manifest.entries) == ["b.png", "cats/a.png"]
    assert list(wandb.Api().artifact("report:latest").manifest.entries) == ["report.txt"]


def test_table_output_loads_as_table() -> None:
    @dg.asset
    def scores() -> wandb.Table:
        return wandb.Table(columns=["station", "score"], data=[["a", 0.5], ["b", 0.75]])

    seen: dict[str, Any] = {}

    @dg.asset
    def best(scores: wandb.Table) -> str:
        seen["type"] = type(scores).__name__
        frame = scores.get_dataframe()
        seen["best"] = str(frame.loc[frame["score"].idxmax(), "station"])
        return seen["best"]

    _run(scores, best)
    assert seen == {"type": "Table", "best": "b"}
    artifact = wandb.Api().artifact("scores:latest")
    assert artifact.type == "dataset"
    assert list(artifact.manifest.entries) == ["data.table.json"]


def _square(x: int) -> int:
    return x * x


@pytest.mark.parametrize("serializer", ["pickle", "cloudpickle", "joblib"])
def test_serializers_round_trip(serializer: str) -> None:
    @dg.asset(metadata={"artifact": {"serializer": serializer}})
    def weights() -> dict[str, Any]:
        # An ndarray makes the value not JSON-able, so the serializer handler takes it.
        return {"w": np.arange(6, dtype=np.float64).reshape(2, 3), "f": _square}

    seen: dict[str, Any] = {}

    @dg.asset
    def use_weights(weights: dict[str, Any]) -> int:
        seen["sum"] = float(weights["w"].sum())
        seen["f"] = weights["f"](3)
        return 1

    _run(weights, use_weights)
    assert seen == {"sum": 15.0, "f": 9}
    stored = wandb.Api().artifact("weights:latest")
    assert stored.type == "model"
    assert stored.metadata["dagster/serializer"] == serializer
    assert list(stored.manifest.entries) == ["data.pkl"]


def test_cloudpickle_stores_what_pickle_refuses() -> None:
    @dg.asset(metadata={"artifact": {"serializer": "cloudpickle"}})
    def scaler() -> Any:
        offset = 10
        return lambda x: x + offset  # a closure: plain pickle cannot store it

    seen: dict[str, Any] = {}

    @dg.asset
    def scaled(scaler: Any) -> int:
        seen["value"] = scaler(5)
        return int(seen["value"])

    _run(scaler, scaled)
    assert seen == {"value": 15}


def test_artifact_annotation_gives_the_version_without_download(tmp_path: Path) -> None:
    @dg.asset
    def rides() -> pd.DataFrame:
        return pd.DataFrame({"hour": [1, 2], "count": [3, 4]})

    seen: dict[str, Any] = {}

    @dg.asset
    def inspect(rides: wandb.Artifact) -> int:
        seen["name"] = rides.name
        seen["entries"] = list(rides.manifest.entries)
        return 1

    @dg.asset
    def as_path(rides: Path) -> int:
        seen["path"] = rides
        return 1

    def downloaded() -> list[str]:  # the test's download dir (DAGSTER_ARTIFACTS_DIR)
        return sorted(p.name for p in (tmp_path / "artifacts").rglob("*.parquet"))

    _run(rides, inspect)
    assert seen == {"name": "rides:v0", "entries": ["data.parquet"]}
    assert downloaded() == []
    assert dg.materialize([rides, as_path], resources=RESOURCES, selection=[as_path]).success
    assert downloaded() == ["data.parquet"]  # a Path input does download: the check can fail
    assert Path(seen["path"], "data.parquet").is_file()


def test_artifacts_run_in_asset_body_records_lineage(tmp_path: Path) -> None:
    """``artifacts.run(context)`` is the step's run: what it uses and logs is its lineage."""
    (tmp_path / "raw.csv").write_text("hour,count\n1,3\n")
    with wandb.init(job_type="upload") as run:
        raw = wandb.Artifact("raw-rides", type="dataset")
        raw.add_file(str(tmp_path / "raw.csv"))
        run.log_artifact(raw).wait()

    @dg.asset(group_name="cleaning")
    def cleaned(context: dg.AssetExecutionContext, artifacts: ArtifactsResource) -> None:
        with artifacts.run(context) as step:
            source = step.use_artifact("raw-rides:latest")
            folder = Path(source.download(str(tmp_path / "in")))
            out = wandb.Artifact("clean-rides", type="dataset")
            with out.new_file("clean.csv") as handle:
                handle.write(folder.joinpath("raw.csv").read_text().upper())
            step.log_artifact(out, aliases=["fresh"]).wait()

    result = dg.materialize([cleaned], resources={"artifacts": STORE})
    assert result.success
    api = STORE.api()
    clean = api.artifact("clean-rides:fresh")
    producer = clean.logged_by()
    assert producer is not None
    assert producer.job_type == "cleaning" and producer.group == result.run_id
    assert [a.name for a in producer.used_artifacts()] == ["raw-rides:v0"]
    assert [r.id for r in api.artifact("raw-rides:v0").used_by()] == [producer.id]
    with open(clean.get_entry("clean.csv").download(), encoding="utf-8") as handle:
        assert handle.read() == "HOUR,COUNT\n1,3\n"
