"""The README's Dagster blocks past plain assets, run as written (``tests/test_readme.py`` finds
them by marker): ops, type handlers, artifacts from outside Dagster with a sensor and verify
checks, the ``artifact/link``, and the ``ArtifactsComponent`` YAML in a real defs folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pytest

import dagster_artifacts as wandb
from tests.test_readme import output_after, readme_blocks, run_block, same_lines

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dagster")]


def _tick(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, cursor: str | None) -> Any:
    return sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor))


def test_ops_block(isolated_store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_block("dagster-ops")
    assert same_lines(capsys.readouterr().out) == same_lines(output_after("dagster-ops"))
    stats = wandb.Api().artifact("ride-stats:v0")
    assert stats.type == "stats" and stats.get_entry("data.json") is not None
    assert wandb.Api().artifact("summary:v0").metadata["dagster/op_output"] == "summary.result"


def test_type_handlers_block(isolated_store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_block("dagster-types")
    assert same_lines(capsys.readouterr().out) == same_lines(output_after("dagster-types"))
    assert sorted(wandb.Api().artifact("trips:v0").manifest.entries) == ["data.parquet"]
    assert sorted(wandb.Api().artifact("weights:v0").manifest.entries) == ["data.npy"]


def test_outside_dagster_sensor_checks_and_link_blocks(isolated_store: Path) -> None:
    namespace = run_block("dagster-outside")
    run_block("dagster-sensor", namespace=namespace)
    run_block("dagster-checks", namespace=namespace)
    defs: dg.Definitions = namespace["defs"]

    (spec,) = namespace["notebook_assets"]
    assert spec.key == dg.AssetKey("churn_model") and spec.group_name == "notebooks"
    assert spec.description == "trained in a notebook"
    with dg.instance_for_test() as instance:
        everything = [spec, namespace["churn_report"], *(defs.asset_checks or [])]
        resources = dict(defs.resources or {})
        result = dg.materialize(everything, resources=resources, instance=instance)
        assert result.success
        assert result.output_for_node("churn_report") == {"model": "churn_model:v0", "files": 1}
        (event,) = result.asset_materializations_for_node("churn_report")
        link = event.metadata["artifact/link"]
        assert isinstance(link, dg.UrlMetadataValue)
        assert link.value.startswith("http://127.0.0.1:8765/")
        assert (
            link.value
            == "http://127.0.0.1:8765/default/bikes/artifacts/unspecified/churn_report/v0"
        )
        checks = dg.materialize(
            everything,
            selection=dg.AssetSelection.all_asset_checks(),
            resources=resources,
            instance=instance,
        )
        verdicts = {
            e.asset_key.to_user_string(): e.passed for e in checks.get_asset_check_evaluations()
        }
        assert verdicts == {"churn_model": True, "churn_report": True}

        sensor = defs.resolve_sensor_def(namespace["on_production"].name)
        first = _tick(sensor, instance, None)
        assert first.run_requests == []  # the first tick only records
        model = wandb.Api(project="bikes").artifact("churn_model:v0")
        model.aliases = [*model.aliases, "production"]
        model.save()
        (request,) = _tick(sensor, instance, first.cursor).run_requests
        deployed = defs.resolve_job_def("deploy_job").execute_in_process(
            instance=instance, run_config=request.run_config, tags=request.tags
        )
        assert deployed.output_for_node("deploy") == (
            f"deploying churn_model:v0 ({model.digest[:8]})"
        )


def test_component_yaml_block(
    isolated_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    namespace = run_block("dagster-outside")  # the notebook's churn_model, in project "bikes"
    (yaml,) = [b.code for b in readme_blocks() if b.language == "yaml" and "Component" in b.code]
    project = tmp_path / "project"
    folder = project / "my_project" / "defs" / "artifacts"
    folder.mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        '[tool.dg]\ndirectory_type = "project"\n[tool.dg.project]\nroot_module = "my_project"\n'
    )
    for package in (project / "my_project", project / "my_project" / "defs"):
        (package / "__init__.py").write_text("")
    (folder / "defs.yaml").write_text(yaml)
    # The churn_report asset and the deploy job the YAML names live next to the component.
    (project / "my_project" / "defs" / "report.py").write_text(
        "import dagster as dg\n"
        "import dagster_artifacts as wandb\n\n"
        "@dg.asset\n"
        "def churn_report(churn_model: wandb.Artifact) -> dict:\n"
        "    return {'files': churn_model.file_count}\n\n"
        "@dg.op\n"
        "def deploy() -> None: ...\n\n"
        "@dg.job\n"
        "def deploy_job():\n"
        "    deploy()\n"
    )
    monkeypatch.syspath_prepend(str(project))

    defs = dg.load_from_defs_folder(path_within_project=project)

    specs = [a for a in defs.assets or [] if isinstance(a, dg.AssetSpec)]
    assert [s.key for s in specs] == [dg.AssetKey("churn_model")]
    assert [s.name for s in defs.sensors or []] == ["churn_model_production_sensor"]
    checked = {k.asset_key.to_user_string() for c in defs.asset_checks or [] for k in c.check_keys}
    assert checked == {"churn_model", "churn_report"}
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [*specs, *(a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition))],
            resources=dict(defs.resources or {}),
            instance=instance,
        )
        assert result.output_for_node("churn_report") == {"files": 1}
    assert namespace["store"].project == "bikes"
