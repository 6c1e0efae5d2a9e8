"""Artifacts logged by a plain script (outside Dagster) in the asset graph, with lineage across
the boundary, loaded downstream through the IO manager (``external_artifact_specs``)."""

import dagster as dg
import pandas as pd
import pytest

import dagster_artifacts as wandb
from dagster_artifacts import ArtifactsIOManager, ArtifactsResource
from dagster_artifacts.dagster import external_artifact_specs
from dagster_artifacts.errors import ArtifactNotFoundError, ConfigurationError

STORE = ArtifactsResource()
RESOURCES = {"io_manager": ArtifactsIOManager(store=STORE)}


@dg.asset(metadata={"artifact": {"name": "bike-features"}})
def features() -> pd.DataFrame:
    return pd.DataFrame({"hour": [7, 8, 9], "count": [120, 340, 210]})


def train_outside_dagster() -> None:
    """What a training script does: read the features Dagster made, log a model."""
    with wandb.init(job_type="train") as run:
        frame = run.use_artifact("bike-features:latest").get("data")
        model = wandb.Artifact("bike-model", type="model", description="ridge, by train.py")
        with model.new_file("data.json") as handle:
            handle.write(f'{{"mean": {float(frame["count"].mean())}}}')
        run.log_artifact(model).wait()
        notes = wandb.Artifact("analyst.notes", type="notes")
        with notes.new_file("notes.txt") as handle:
            handle.write("hand-written")
        run.log_artifact(notes).wait()
    with wandb.init(job_type="evaluate") as run:  # external -> external lineage
        run.use_artifact("bike-model:latest")
        report = wandb.Artifact("model-report", type="report")
        with report.new_file("report.txt") as handle:
            handle.write("ok")
        run.log_artifact(report).wait()


def test_external_artifacts_become_specs_with_lineage_and_load_downstream() -> None:
    with dg.instance_for_test() as instance:
        assert dg.materialize([features], resources=RESOURCES, instance=instance).success
        train_outside_dagster()

        specs = {spec.key: spec for spec in external_artifact_specs(STORE)}
        # Only what Dagster did not write; "analyst.notes" -> analyst/notes, as a/b -> a.b.
        assert set(specs) == {
            dg.AssetKey(["bike-model"]),
            dg.AssetKey(["analyst", "notes"]),
            dg.AssetKey(["model-report"]),
        }
        model = specs[dg.AssetKey("bike-model")]
        assert model.kinds == {"artifacts"}
        assert model.description == "ridge, by train.py"
        # The script read bike-features, which the Dagster asset `features` produced.
        assert [dep.asset_key for dep in model.deps] == [dg.AssetKey("features")]
        assert [d.asset_key for d in specs[dg.AssetKey("model-report")].deps] == [
            dg.AssetKey("bike-model")
        ]

        @dg.asset(ins={"model": dg.AssetIn(key="bike-model")})
        def serving_mean(model: dict[str, float]) -> float:
            return model["mean"]

        defs = dg.Definitions(assets=[features, *specs.values(), serving_mean], resources=RESOURCES)
        graph = defs.resolve_asset_graph()
        assert graph.get(dg.AssetKey("serving_mean")).parent_keys == {dg.AssetKey("bike-model")}
        assert graph.get(dg.AssetKey("bike-model")).parent_keys == {dg.AssetKey("features")}
        result = dg.materialize(
            [features, *specs.values(), serving_mean],
            selection=[serving_mean],
            resources=RESOURCES,
            instance=instance,
        )
        assert result.output_for_node("serving_mean") == pytest.approx(670 / 3)
        producer = wandb.Api().artifact("serving_mean:latest").logged_by()
        assert producer is not None
        assert [a.name for a in producer.used_artifacts()] == ["bike-model:v0"]

        prefixed = external_artifact_specs(
            STORE, ["bike-model"], key_prefix=["ml"], group_name="external"
        )
        assert [(s.key, s.group_name) for s in prefixed] == [
            (dg.AssetKey(["ml", "bike-model"]), "external")
        ]
        assert [d.asset_key for d in prefixed[0].deps] == [dg.AssetKey("features")]


def test_an_artifact_a_dagster_asset_makes_stays_that_asset_after_a_script_logs_to_it() -> None:
    """A hand-made data fix logged by a script is a new version of the Dagster asset's artifact,
    not a second asset: an external spec for it would clash with the asset (and its checks)."""
    with dg.instance_for_test() as instance:
        assert dg.materialize([features], resources=RESOURCES, instance=instance).success
        with wandb.init(job_type="data-fix") as run:
            fixed = wandb.Artifact("bike-features", type="dataset")
            with fixed.new_file("data.csv") as handle:
                handle.write("hour,count\n7,121\n")
            run.log_artifact(fixed).wait()
        assert wandb.Api().artifact("bike-features:latest").version == "v1"

        assert external_artifact_specs(STORE) == []
        # Asked for by name, it is still given: the caller chose it.
        assert [s.key for s in external_artifact_specs(STORE, ["bike-features"])] == [
            dg.AssetKey("bike-features")
        ]


def test_bad_names_are_typed_errors() -> None:
    train_outside_dagster_needs = pd.DataFrame({"hour": [1], "count": [1]})
    with wandb.init(job_type="prep") as run:
        artifact = wandb.Artifact("bike-features", type="dataset")
        artifact.add(train_outside_dagster_needs, "data")
        run.log_artifact(artifact).wait()
    with pytest.raises(ArtifactNotFoundError, match="'nope' has no version yet"):
        external_artifact_specs(STORE, ["nope"])
    with pytest.raises(ConfigurationError, match=r"names=\['bike-features'\]"):
        external_artifact_specs(STORE, "bike-features")  # type: ignore[arg-type]
    # Named explicitly, a version written by anyone is a spec (here: no Dagster involved).
    assert [s.key for s in external_artifact_specs(STORE, ["bike-features"])] == [
        dg.AssetKey("bike-features")
    ]
