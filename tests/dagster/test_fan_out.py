"""A Dagster dynamic fan-out whose steps each upsert into one artifact, finished downstream.

The job runs under the multiprocess executor (every step in its own process), through
``execute_job(reconstructable(...))``, on SQLite and on PostgreSQL. Each step is one artifacts
run with ``group`` = the Dagster run id, so the writers and the finisher share a distributed id
without passing it around.
"""

import os
from pathlib import Path

import dagster as dg
import pytest

import dagster_artifacts as wandb

ARTIFACT = "dagster-parallel"
PARTS = 3
#: Writers run at the same time; forkserver with dagster and pandas preloaded keeps the
#: per-step process start cheap.
EXECUTION = {
    "max_concurrent": PARTS,
    "start_method": {"forkserver": {"preload_modules": ["dagster", "dagster_artifacts"]}},
}


class Store(dg.ConfigurableResource):
    """Where the artifacts go, given to every step explicitly.

    Not through the environment: forkserver children inherit the environment of the moment
    the (process-wide) forkserver started, which may belong to an earlier job.
    """

    root: str
    database: str

    def init(self, run_id: str, job_type: str) -> wandb.Run:
        return wandb.init(group=run_id, job_type=job_type, root=self.root, database=self.database)


@dg.op(out=dg.DynamicOut(int))
def fan_out():  # type: ignore[no-untyped-def]
    for i in range(PARTS):
        yield dg.DynamicOutput(i, mapping_key=f"part_{i}")


@dg.op
def write_part(context: dg.OpExecutionContext, store: Store, part: int) -> dict[str, object]:
    """One writer: its own process, its own artifacts run, one table part upserted."""
    with store.init(context.run_id, "write-part") as run:
        artifact = wandb.Artifact(ARTIFACT, type="dataset")
        table = wandb.Table(columns=["part", "square"], data=[[part, part * part]])
        artifact.add(table, f"parts/part_{part}")
        run.upsert_artifact(artifact)
        return {"run_id": run.id, "pid": os.getpid()}


@dg.op
def finish_parts(
    context: dg.OpExecutionContext, store: Store, writers: list[dict[str, object]]
) -> str:
    with store.init(context.run_id, "finish") as run:
        artifact = wandb.Artifact(ARTIFACT, type="dataset", metadata={"writers": len(writers)})
        artifact.add(wandb.data_types.PartitionedTable("parts"), "distributed_table")
        run.finish_artifact(artifact)
        context.log.info(f"finished {artifact.name} from {len(writers)} writers")
        return artifact.name


@dg.job(executor_def=dg.multiprocess_executor, resource_defs={"store": Store.configure_at_launch()})
def parallel_parts_job() -> None:
    finish_parts(fan_out().map(write_part).collect())


@pytest.mark.timeout(300)
def test_dynamic_fan_out_upserts_then_finishes_under_multiprocess(
    registry_url: str, isolated_store: Path
) -> None:
    store = {"config": {"root": str(isolated_store), "database": registry_url}}
    with (
        dg.instance_for_test() as instance,
        dg.execute_job(
            dg.reconstructable(parallel_parts_job),
            instance=instance,
            run_config={"execution": {"config": EXECUTION}, "resources": {"store": store}},
        ) as result,
    ):
        assert result.success
        run_id = result.run_id
        writers = result.output_for_node("finish_parts")
        outputs = result.output_for_node("write_part")
        pids = {outputs[f"part_{i}"]["pid"] for i in range(PARTS)}
    assert writers == f"{ARTIFACT}:v0"
    assert os.getpid() not in pids and len(pids) == PARTS  # a process per step

    api = wandb.Api()
    logged = api.artifact(f"{ARTIFACT}:latest")
    assert logged.version == "v0" and logged.metadata == {"writers": PARTS}
    table = logged.get("distributed_table")
    frame = table.to_pandas().sort_values("part", ignore_index=True)
    assert frame["part"].tolist() == list(range(PARTS))
    assert frame["square"].tolist() == [i * i for i in range(PARTS)]
    group_runs = api.runs(filters={"group": run_id})
    assert sorted(r.job_type for r in group_runs) == ["finish"] + ["write-part"] * PARTS
    for run in group_runs:
        assert [a.version for a in run.logged_artifacts()] == ["v0"]
