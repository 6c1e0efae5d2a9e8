"""``build_artifact_sensor`` evaluated tick by tick (``dg.build_sensor_context``) against a real
Dagster instance, its run requests launched as real runs of the "deploy" job."""

from typing import Any

import dagster as dg
import pytest

import dagster_artifacts as wandb
from dagster_artifacts import ArtifactsResource
from dagster_artifacts.dagster import build_artifact_sensor
from dagster_artifacts.errors import ConfigurationError

STORE = ArtifactsResource()


class DeployConfig(dg.Config):
    version: str


@dg.op
def deploy(context: dg.OpExecutionContext, config: DeployConfig) -> str:
    tags = context.run.tags
    assert tags["artifact/version"] == config.version
    return f"{tags['artifact/name']}:{config.version} ({tags['artifact/digest'][:8]})"


@dg.job
def deploy_job() -> None:
    deploy()


def log_model(content: str, aliases: list[str] | None = None) -> wandb.Artifact:
    with wandb.init(job_type="train") as run:
        model = wandb.Artifact("bike-model", type="model")
        with model.new_file("weights.txt") as handle:
            handle.write(content)
        run.log_artifact(model, aliases=aliases).wait()
    return model


def move_alias(alias: str, version: str) -> None:
    target = wandb.Api().artifact(f"bike-model:{version}")
    target.aliases = [*target.aliases, alias]
    target.save()


def tick(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, cursor: str | None) -> Any:
    """One evaluation, as the daemon runs it; a fresh context each time (a restart)."""
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    return sensor.evaluate_tick(context)


def test_alias_sensor_requests_one_deploy_run_per_move_and_observes_the_asset() -> None:
    sensor = build_artifact_sensor(
        "bike-model",
        store=STORE,
        alias="production",
        job=deploy_job,
        asset_key="bike-model",
        run_config_fn=lambda a: {"ops": {"deploy": {"config": {"version": a.version}}}},
    )
    assert sensor.name == "bike_model_production_sensor"
    assert sensor.minimum_interval_seconds == 30
    with dg.instance_for_test() as instance:
        log_model("v0 weights")
        first = tick(sensor, instance, None)  # alias not set yet: observe, request nothing
        assert first.run_requests == [] and first.asset_events == []
        assert "first tick" in (first.skip_message or "")

        move_alias("production", "v0")
        v0 = wandb.Api().artifact("bike-model:v0")
        second = tick(sensor, instance, first.cursor)
        (request,) = second.run_requests
        assert request.run_key == "bike-model:v0@production"
        assert request.tags == {
            "dagster/sensor_name": "bike_model_production_sensor",
            "artifact/name": "bike-model",
            "artifact/version": "v0",
            "artifact/digest": v0.digest,
            "artifact/alias": "production",
        }
        (seen,) = second.asset_events
        assert seen.asset_key == dg.AssetKey("bike-model")
        assert seen.data_version == v0.digest
        assert seen.metadata["artifact/aliases"].value == ["latest", "production"]

        run = deploy_job.execute_in_process(
            run_config=request.run_config, tags=request.tags, instance=instance
        )
        assert run.output_for_node("deploy") == f"bike-model:v0 ({v0.digest[:8]})"

        assert tick(sensor, instance, second.cursor).run_requests == []  # nothing moved
        log_model("v1 weights")  # a new version alone does not move production
        third = tick(sensor, instance, second.cursor)
        assert third.run_requests == []
        move_alias("production", "v1")
        fourth = tick(sensor, instance, third.cursor)
        assert [r.run_key for r in fourth.run_requests] == ["bike-model:v1@production"]
        assert fourth.run_requests[0].run_config == {
            "ops": {"deploy": {"config": {"version": "v1"}}}
        }


def test_new_version_sensor_fires_for_every_version_after_the_first_tick() -> None:
    sensor = build_artifact_sensor("bike-model", store=STORE, job=deploy_job, name="retrain")
    with dg.instance_for_test() as instance:
        empty = tick(sensor, instance, None)  # nothing logged yet
        assert empty.run_requests == []
        log_model("a")
        log_model("b")
        both = tick(sensor, instance, empty.cursor)
        assert [r.run_key for r in both.run_requests] == [
            "bike-model:v0@new-version",
            "bike-model:v1@new-version",
        ]
        assert tick(sensor, instance, both.cursor).run_requests == []
        # A first tick on an existing artifact records it and requests no run.
        assert tick(sensor, instance, None).run_requests == []


def test_observation_only_sensor_and_bad_arguments() -> None:
    sensor = build_artifact_sensor("bike-model", store=STORE, asset_key=["ml", "bike-model"])
    with dg.instance_for_test() as instance:
        log_model("a")
        first = tick(sensor, instance, None)
        assert first.run_requests == []
        assert [e.asset_key for e in first.asset_events] == [dg.AssetKey(["ml", "bike-model"])]
    with pytest.raises(ConfigurationError, match="give job="):
        build_artifact_sensor("bike-model", store=STORE)
    with pytest.raises(ConfigurationError, match="without ':alias'"):
        build_artifact_sensor("bike-model:production", store=STORE, job=deploy_job)
    with pytest.raises(ConfigurationError, match="run_config_fn needs job="):
        build_artifact_sensor("bike-model", store=STORE, asset_key="m", run_config_fn=lambda a: {})
