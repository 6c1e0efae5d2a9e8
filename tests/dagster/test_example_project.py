"""The example project as a Dagster user meets it: the pipeline, a training script outside
Dagster whose artifact joins the asset graph with its lineage, the sensor that runs the op-based
"deploy" job when ``bike-model:production`` moves, verify checks on every asset, and the
``ArtifactsComponent`` in ``example_repo/defs/`` loaded by ``load_from_defs_folder`` and ``dg``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import pydantic
import pytest

import dagster_artifacts as wandb
from dagster_artifacts import ArtifactsIOManager, ArtifactsResource
from dagster_artifacts.dagster import ArtifactsComponent
from dagster_artifacts.errors import ConfigurationError
from example_repo.definitions import defs, pipeline
from example_repo.materialize import materialize_example
from example_repo.train_outside_dagster import promote, train

REPO = Path(__file__).resolve().parents[2]
DG = Path(sys.executable).with_name("dg")


def _tick(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, cursor: str | None) -> Any:
    return sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor))


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}


@pytest.mark.slow
@pytest.mark.xdist_group("dagster")
def test_example_script_sensor_deploy_job_and_checks(isolated_store: Path) -> None:
    with dg.instance_for_test() as instance:
        materialize_example(instance)
        loaded = defs()  # as a code location (re)load does
        sensor = loaded.resolve_sensor_def("deploy_on_production_alias")
        first = _tick(sensor, instance, None)  # production not set yet: nothing to deploy
        assert first.run_requests == []

        # A plain script, no Dagster: uses bike-features, logs bike-model-tuned, promotes.
        tuned = train()
        promoted = promote()
        assert promoted.version == "v0"

        loaded = defs()
        spec = next(s for s in loaded.assets or [] if isinstance(s, dg.AssetSpec))
        assert spec.key == dg.AssetKey("bike-model-tuned")
        assert [d.asset_key for d in spec.deps] == [dg.AssetKey("bike_features")]
        assert spec.group_name == "outside_dagster" and spec.kinds == {"artifacts"}

        # The alias moved: one run of the op-based deploy job, tagged with the version.
        second = _tick(
            loaded.resolve_sensor_def("deploy_on_production_alias"), instance, first.cursor
        )
        (request,) = second.run_requests
        assert request.tags["artifact/version"] == "v0"
        assert request.tags["artifact/digest"] == promoted.digest
        deploy = loaded.resolve_job_def("deploy_model").execute_in_process(
            instance=instance, tags=request.tags, run_config=request.run_config
        )
        assert deploy.success
        manifest = deploy.output_for_node("deploy_manifest")
        assert manifest["digest"] == promoted.digest
        release = wandb.Api(project="bike-sharing").artifact("bike-model-release:latest")
        producer = release.logged_by()
        assert producer is not None and producer.group == deploy.run_id
        assert [f"{a.name}" for a in producer.used_artifacts()] == ["bike-model:v0"]
        assert "deploy_manifest" in {
            c.name for c in wandb.Api(project="bike-sharing").artifact_collections()
        }

        # An artifact_verified check on every asset, the script's included: all pass.
        checks = list(loaded.asset_checks or [])
        checked = {key.asset_key.to_user_string() for c in checks for key in c.check_keys}
        assert checked == {
            *(k.to_user_string() for a in pipeline.assets or [] for k in a.keys),  # type: ignore[union-attr]
            "bike-model-tuned",
        }
        verified = dg.materialize(
            [*(pipeline.assets or []), spec, *checks],  # type: ignore[list-item]
            selection=dg.AssetSelection.all_asset_checks(),
            resources=dict(pipeline.resources or {}),
            instance=instance,
        )
        evaluations = _checks(verified)
        assert set(evaluations) == checked
        assert all(e.passed for e in evaluations.values()), evaluations
        assert evaluations["bike-model-tuned"].metadata["artifact/version"].value == (
            f"bike-model-tuned:{tuned.version}"
        )


def test_component_from_a_defs_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user's own project: ``defs.yaml`` declares store, external artifacts, sensor, checks."""
    store = tmp_path / "shared-store"
    with wandb.init(project="ml", job_type="train", root=str(store)) as run:
        model = wandb.Artifact("churn-model", type="model", description="from a notebook")
        with model.new_file("weights.txt") as handle:
            handle.write("0.1 0.2\n")
        run.log_artifact(model).wait()
    project = tmp_path / "project"
    (project / "proj" / "defs" / "ml").mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        '[tool.dg]\ndirectory_type = "project"\n[tool.dg.project]\nroot_module = "proj"\n'
    )
    (project / "proj" / "__init__.py").write_text("")
    (project / "proj" / "defs" / "__init__.py").write_text("")
    (project / "proj" / "defs" / "ml" / "defs.yaml").write_text(
        "type: dagster_artifacts.dagster.ArtifactsComponent\n"
        "attributes:\n"
        "  store:\n"
        '    root: "{{ env.ML_STORE }}"\n'
        "    project: ml\n"
        "  external:\n"
        "    key_prefix: [ml]\n"
        "  sensors:\n"
        "    - artifact: churn-model\n"
        "      asset_key: ml/churn-model\n"
        "  checks:\n"
        "    external: true\n"
    )
    monkeypatch.setenv("ML_STORE", str(store))
    monkeypatch.syspath_prepend(str(project))

    loaded = dg.load_from_defs_folder(path_within_project=project)

    (spec,) = loaded.assets or []
    assert isinstance(spec, dg.AssetSpec)
    assert spec.key == dg.AssetKey(["ml", "churn-model"])
    assert spec.description == "from a notebook"
    (sensor,) = loaded.sensors or []
    assert sensor.name == "churn_model_new_version_sensor"
    (check,) = loaded.asset_checks or []
    assert check.check_keys == {dg.AssetCheckKey(spec.key, "artifact_verified")}
    resources = loaded.resources or {}
    assert isinstance(resources["io_manager"], ArtifactsIOManager)
    assert isinstance(resources["artifacts"], ArtifactsResource)
    assert resources["artifacts"].root == str(store)
    with dg.instance_for_test() as instance:
        first = _tick(sensor, instance, None)
        (seen,) = first.asset_events
        assert seen.data_version == model.digest
        result = dg.materialize(
            [spec, check],
            selection=dg.AssetSelection.all_asset_checks(),
            resources=dict(resources),
            instance=instance,
        )
        assert [e.passed for e in result.get_asset_check_evaluations()] == [True]


def test_component_rejects_unknown_attributes_and_bad_sensors() -> None:
    with pytest.raises(
        pydantic.ValidationError, match=r"sensor at .*\n.*Extra inputs are not permitted"
    ):
        ArtifactsComponent.resolve_from_dict({"sensor": [{"artifact": "x"}]})  # typo: sensors
    component = ArtifactsComponent.resolve_from_dict({"sensors": [{"artifact": "bike-model"}]})
    with pytest.raises(ConfigurationError, match="give job="):  # neither job nor asset_key
        component.build_defs(None)  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.xdist_group("dagster")
def test_dg_lists_and_checks_the_example(tmp_path: Path, isolated_store: Path) -> None:
    with dg.instance_for_test() as instance:
        materialize_example(instance)
    train()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}

    def dg_cli(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(DG), *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
        return done

    listed = json.loads(dg_cli("list", "defs", "--json").stdout)
    assets = {a["asset_key"]: a for a in listed["assets"]}
    assert assets["bike-model-tuned"]["dependency_keys"] == ["bike_features"]
    assert assets["bike-model-tuned"]["kinds"] == ["artifacts"]
    assert "example_repo/defs/artifacts/defs.yaml" in assets["bike-model-tuned"]["source"]
    assert {"bike_rides", "bike_model", "daily_summary", "station_map"} <= set(assets)
    assert [s["name"] for s in listed["sensors"]] == ["deploy_on_production_alias"]
    assert {j["name"] for j in listed["jobs"]} >= {"bike_pipeline", "deploy_model"}
    checks = {c["key"] for c in listed["asset_checks"]}
    assert "bike-model-tuned:artifact_verified" in checks
    assert len(checks) == len(assets)

    checked = dg_cli("check", "defs")
    assert "All definitions loaded successfully" in checked.stdout + checked.stderr
