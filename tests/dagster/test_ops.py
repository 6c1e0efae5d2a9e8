"""Op-based jobs through ``ArtifactsIOManager`` (real ``execute_in_process`` runs), and inputs
that load exactly what their upstream step logged in the same run or in the re-executed parent."""

import os
from typing import Any

import dagster as dg
import pandas as pd
import pytest

import dagster_artifacts as wandb
from dagster_artifacts import ArtifactsIOManager

RESOURCES: dict[str, Any] = {"io_manager": ArtifactsIOManager()}


@dg.op
def load_rides() -> pd.DataFrame:
    return pd.DataFrame({"hour": [7, 8, 9], "count": [120, 340, 210]})


@dg.op(
    out={
        "train": dg.Out(metadata={"artifact": {"name": "rides-train", "aliases": ["fresh"]}}),
        "test": dg.Out(),
    }
)
def split(rides: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return rides.iloc[:2], rides.iloc[2:]


@dg.op(code_version="7")
def fit(train: pd.DataFrame, test: pd.DataFrame) -> dict[str, float]:
    return {"mean": float(train["count"].mean()), "test_rows": float(len(test))}


@dg.job(resource_defs=RESOURCES)
def training_job() -> None:
    train, test = split(load_rides())
    fit(train, test)


def test_op_outputs_are_versions_named_after_op_and_output() -> None:
    with dg.instance_for_test() as instance:
        result = training_job.execute_in_process(instance=instance)
        assert result.success
        assert result.output_for_node("fit") == {"mean": 230.0, "test_rows": 1.0}
        again = training_job.execute_in_process(instance=instance)
    api = wandb.Api()
    # <op> for a single ``result`` output, <op>.<output> else, or the configured name.
    assert [v.version for v in api.artifact_versions(None, "load_rides")] == ["v0"]
    assert api.artifact("rides-train:fresh").type == "dataset"
    assert api.artifact("split.test:latest").get("data")["hour"].tolist() == [9]
    model = api.artifact("fit:latest")
    assert model.metadata["dagster/code_version"] == "7"
    producer = model.logged_by()
    assert producer is not None
    assert producer.job_type == "training_job"  # an op has no asset group: the job's name
    assert producer.group == result.run_id
    assert sorted(a.name for a in producer.used_artifacts()) == ["rides-train:v0", "split.test:v0"]
    # The second run deduplicated everything and its step used the same versions.
    handled = [
        e.event_specific_data.metadata  # type: ignore[union-attr]
        for e in again.all_events
        if e.event_type_value == "HANDLED_OUTPUT" and e.step_key == "fit"
    ]
    assert handled[0]["artifact/deduplicated"].value is True
    assert handled[0]["artifact/inputs"].value == ["rides-train:v0", "split.test:v0"]


class RowsConfig(dg.Config):
    rows: int = 3


@dg.op
def make_rows(config: RowsConfig) -> pd.DataFrame:
    return pd.DataFrame({"n": range(config.rows)})


@dg.op(ins={"rows": dg.In(metadata={"artifact": {"version": "v0"}})})
def count_pinned(rows: pd.DataFrame) -> int:
    return len(rows)


@dg.op
def count_exact(rows: pd.DataFrame) -> int:
    return len(rows)


@dg.job(resource_defs=RESOURCES)
def pinned_job() -> None:
    rows = make_rows()
    count_pinned(rows)
    count_exact(rows)


def test_op_input_pin_wins_over_the_same_run_version() -> None:
    first = pinned_job.execute_in_process()
    assert (first.output_for_node("count_pinned"), first.output_for_node("count_exact")) == (3, 3)
    config = {"ops": {"make_rows": {"config": {"rows": 5}}}}
    second = pinned_job.execute_in_process(run_config=config)
    assert wandb.Api().artifact("make_rows:latest").version == "v1"
    assert second.output_for_node("count_pinned") == 3  # In(metadata=...) pinned v0
    assert second.output_for_node("count_exact") == 5  # what make_rows logged in this run
    bad = dg.In(metadata={"artifact": {"versoin": "v0"}})

    @dg.op(ins={"rows": bad})
    def typo(rows: pd.DataFrame) -> int:
        return len(rows)

    @dg.job(resource_defs=RESOURCES)
    def typo_job() -> None:
        typo(make_rows())

    failed = typo_job.execute_in_process(raise_on_error=False)
    assert not failed.success
    message = str(failed.get_step_failure_events()[0].step_failure_data.error)
    assert "versoin" in message and "allowed keys are: version, alias" in message


def test_input_loads_the_version_its_upstream_step_logged_not_latest() -> None:
    """Another writer moves ``latest`` between the upstream step and the downstream one (what a
    second run materializing the same asset at the same time does): the input still gets the
    version its own run's upstream step logged."""

    @dg.asset
    def counts() -> pd.DataFrame:
        return pd.DataFrame({"n": [1, 2, 3]})

    @dg.asset(deps=[counts])
    def meanwhile() -> int:
        with wandb.init(job_type="another-run") as run:
            other = wandb.Artifact("counts", type="dataset")
            other.add(pd.DataFrame({"n": [100]}), "data")
            run.log_artifact(other).wait()
        return 1

    @dg.asset
    def total(counts: pd.DataFrame, meanwhile: int) -> int:
        return int(counts["n"].sum())

    with dg.instance_for_test() as instance:
        result = dg.materialize([counts, meanwhile, total], resources=RESOURCES, instance=instance)
        assert result.output_for_node("total") == 6
        api = wandb.Api()
        assert api.artifact("counts:latest").version == "v1"  # the other writer's
        producer = api.artifact("total:latest").logged_by()
        assert producer is not None
        assert sorted(a.name for a in producer.used_artifacts()) == ["counts:v0", "meanwhile:v0"]
        # Outside the run (counts not selected), the input loads latest.
        alone = dg.materialize(
            [counts, meanwhile, total],
            selection=[total],
            resources=RESOURCES,
            instance=instance,
        )
        assert alone.output_for_node("total") == 100


FAIL_FLAG = "DAGSTER_ARTIFACTS_TEST_FAIL_SCORE"


@dg.op
def reexec_source() -> list[int]:
    return [1, 2, 3]


@dg.op
def reexec_score(numbers: list[int]) -> int:
    if os.environ.get(FAIL_FLAG) == "1":
        raise RuntimeError("failing on purpose")
    return sum(numbers)


@dg.job(resource_defs=RESOURCES, executor_def=dg.in_process_executor)
def reexec_job() -> None:
    reexec_score(reexec_source())


def test_reexecution_loads_what_the_parent_run_logged(monkeypatch: pytest.MonkeyPatch) -> None:
    with dg.instance_for_test() as instance:
        monkeypatch.setenv(FAIL_FLAG, "1")
        with dg.execute_job(
            dg.reconstructable(reexec_job), instance=instance, raise_on_error=False
        ) as failed:
            assert not failed.success
            parent = failed.run_id
        # Meanwhile a newer version of the source's artifact appears.
        with wandb.init(job_type="other") as run:
            newer = wandb.Artifact("reexec_source", type="unspecified")
            with newer.new_file("data.json") as handle:
                handle.write("[100]")
            run.log_artifact(newer).wait()
        monkeypatch.setenv(FAIL_FLAG, "0")
        options = dg.ReexecutionOptions.from_failure(parent, instance)
        with dg.execute_job(
            dg.reconstructable(reexec_job), instance=instance, reexecution_options=options
        ) as retried:
            assert retried.success
            assert retried.output_for_node("reexec_score") == 6  # the parent's v0, not v1
    producer = wandb.Api().artifact("reexec_score:latest").logged_by()
    assert producer is not None
    used = producer.used_artifacts()
    assert [a.name for a in used] == ["reexec_source:v0"]


def test_dynamic_op_outputs_are_one_version_per_mapping_key() -> None:
    @dg.op(out=dg.DynamicOut(dict))
    def regions():  # type: ignore[no-untyped-def]
        for name in ("north", "south"):
            yield dg.DynamicOutput({"region": name}, mapping_key=name)

    @dg.op
    def describe(region: dict) -> str:  # type: ignore[type-arg]
        return region["region"].upper()

    @dg.job(resource_defs=RESOURCES)
    def fan_out_job() -> None:
        regions().map(describe)

    result = fan_out_job.execute_in_process()
    assert result.output_for_node("describe") == {"north": "NORTH", "south": "SOUTH"}
    versions = wandb.Api().artifact_versions(None, "regions")
    assert sorted((v.partition_key, v.get_entry("data.json").size) for v in versions) == [
        ("north", 19),
        ("south", 19),
    ]
