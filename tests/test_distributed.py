"""Parallel artifacts: the seed's example (5 writers, then finish) with processes instead of ray.

Runs on SQLite and PostgreSQL (``registry_url``). Writers are separate processes (spawn), each
calling ``init(group=...)`` and ``upsert_artifact``; the finisher adds a ``PartitionedTable``.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from multiprocessing.pool import Pool
from pathlib import Path

import pandas as pd
import pytest

import dagster_artifacts as wandb
from dagster_artifacts.errors import ArtifactError, ConflictError, InvalidArgumentError
from tests.services.processes import stoppable

ARTIFACT = "parallel-artifact"
PARTS = "parts"


def _writer(args: tuple[int, str, str, str]) -> str:
    """The seed's ``train(i)``: one writer adds one table part to the artifact."""
    i, group, root, database = args
    with wandb.init(group=group, root=root, database=database) as run:
        artifact = wandb.Artifact(name=ARTIFACT, type="dataset")
        table = wandb.Table(columns=["a", "b", "c"], data=[[i, i * 2, 2**i]])
        artifact.add(table, f"{PARTS}/table_{i}")
        run.upsert_artifact(artifact)
        return run.id


def _clashing_writer(args: tuple[int, str, str, str]) -> str:
    """Every writer adds the same path with its own content: all but one must conflict."""
    i, group, root, database = args
    with wandb.init(group=group, root=root, database=database) as run:
        artifact = wandb.Artifact(name=ARTIFACT, type="dataset")
        artifact.add(wandb.Table(columns=["i"], data=[[i]]), "parts/same")
        try:
            run.upsert_artifact(artifact)
        except ConflictError as error:
            return f"conflict: {error}"
        return "ok"


def _finish(group: str, parts_path: str = PARTS) -> wandb.Artifact:
    with wandb.init(group=group) as run:
        artifact = wandb.Artifact(ARTIFACT, type="dataset")
        artifact.add(wandb.data_types.PartitionedTable(parts_path), "distributed_table")
        return run.finish_artifact(artifact)


def _warm(_: int) -> None:
    import dagster_artifacts  # noqa: F401  (import once per worker, before any test needs it)


@pytest.fixture(scope="module")
def writers() -> Iterator[Pool]:
    """Five spawned writer processes, shared by this module's tests (spawning is the slow part).

    Writers get the store and database as arguments, never from the environment, so one pool
    serves tests with different stores and backends.
    """
    with multiprocessing.get_context("spawn").Pool(5, initializer=stoppable) as pool:
        pool.map(_warm, range(5))
        yield pool


def _spawn(pool: Pool, function, args: list[tuple[int, str, str, str]]) -> list[str]:  # type: ignore[no-untyped-def]
    return list(pool.map(function, args, chunksize=1))


def test_seed_parallel_writers_then_finish(
    registry_url: str, isolated_store: Path, writers: Pool
) -> None:
    group = "writer-group-1"
    writer_ids = _spawn(
        writers, _writer, [(i, group, str(isolated_store), registry_url) for i in range(5)]
    )
    api = wandb.Api()
    with pytest.raises(wandb.errors.ArtifactNotFoundError):
        api.artifact(f"{ARTIFACT}:latest")  # nothing is visible before the finish

    finished = _finish(group)
    assert finished.version == "v0" and finished.aliases == ["latest"]
    assert sorted(finished.manifest.entries) == ["distributed_table.partitioned-table.json"] + [
        f"parts/table_{i}.table.json" for i in range(5)
    ]

    logged = api.artifact(f"{ARTIFACT}:latest")
    assert logged.digest == finished.digest and logged.file_count == 6
    table = logged.get("distributed_table")
    assert isinstance(table, wandb.data_types.PartitionedTable)
    parts = list(table)
    assert len(parts) == 5 and all(isinstance(part, wandb.Table) for part in parts)
    frame = table.to_pandas().sort_values("a", ignore_index=True)
    expected = pd.DataFrame({"a": range(5), "b": [2 * i for i in range(5)]})
    expected["c"] = [2**i for i in range(5)]
    pd.testing.assert_frame_equal(frame, expected, check_dtype=False)
    assert logged.verify(logged.download()).checked == 6

    # Lineage: the finisher produced it; every writer logged it too.
    assert logged.logged_by() is not None and logged.logged_by().id not in writer_ids
    for writer_id in writer_ids:
        assert [a.version for a in api.run(writer_id).logged_artifacts()] == ["v0"]

    # An upsert after the finish starts a new version.
    _spawn(writers, _writer, [(i, group, str(isolated_store), registry_url) for i in (7, 8)])
    second = _finish(group)
    assert second.version == "v1"
    assert len(second.get("distributed_table")) == 2
    assert api.artifact(f"{ARTIFACT}:latest").version == "v1"


def test_two_writers_same_path_other_content_conflict(
    registry_url: str, isolated_store: Path, writers: Pool
) -> None:
    outcomes = _spawn(
        writers,
        _clashing_writer,
        [(i, "clash", str(isolated_store), registry_url) for i in range(3)],
    )
    assert outcomes.count("ok") == 1, outcomes
    conflicts = [o for o in outcomes if o.startswith("conflict")]
    assert len(conflicts) == 2 and all("parts/same.table.json" in c for c in conflicts)
    finished = _finish("clash")
    assert len(list(finished.get("distributed_table"))) == 1


def test_conflict_is_refused_before_anything_is_stored(store_snapshot) -> None:  # type: ignore[no-untyped-def]
    with wandb.init(group="g") as run:
        first = wandb.Artifact(ARTIFACT, type="dataset")
        first.add(wandb.Table(columns=["x"], data=[[1]]), "parts/one")
        run.upsert_artifact(first)
    before = store_snapshot()
    with wandb.init(group="g") as run:
        clash = wandb.Artifact(ARTIFACT, type="dataset")
        clash.add(wandb.Table(columns=["x"], data=[[2]]), "parts/one")
        clash.add(wandb.Table(columns=["x"], data=[[3]]), "parts/two")
        with pytest.raises(ConflictError, match="parts/one.table.json"):
            run.upsert_artifact(clash)
    after = store_snapshot()
    assert after["files"] == before["files"]
    assert after["rows"]["pending_entries"] == before["rows"]["pending_entries"]
    assert after["rows"]["versions"] == before["rows"]["versions"]


def test_same_path_same_content_is_not_a_conflict() -> None:
    for _ in range(2):  # a retried writer upserts the same files again
        with wandb.init(group="g") as run:
            artifact = wandb.Artifact(ARTIFACT, type="dataset")
            artifact.add(wandb.Table(columns=["x"], data=[[1]]), "parts/one")
            run.upsert_artifact(artifact)
    assert _finish("g").file_count == 2


def test_finisher_file_clashing_with_a_writer_is_a_conflict(store_snapshot) -> None:  # type: ignore[no-untyped-def]
    with wandb.init(group="g") as run:
        artifact = wandb.Artifact(ARTIFACT, type="dataset")
        artifact.add(wandb.Table(columns=["x"], data=[[1]]), "summary")
        run.upsert_artifact(artifact)
    with wandb.init(group="g") as run:
        before = store_snapshot()
        final = wandb.Artifact(ARTIFACT, type="dataset")
        final.add(wandb.Table(columns=["x"], data=[[2]]), "summary")
        final.add(wandb.Table(columns=["x"], data=[[3]]), "other")
        with pytest.raises(ConflictError, match="summary.table.json"):
            run.finish_artifact(final)
        after = store_snapshot()
    assert after["files"] == before["files"]  # the refused finish uploaded nothing
    assert after["rows"]["versions"] == before["rows"]["versions"]
    with pytest.raises(wandb.errors.ArtifactNotFoundError):
        wandb.Api().artifact(f"{ARTIFACT}:latest")


def test_no_distributed_id_and_no_group_is_an_error(store_snapshot) -> None:  # type: ignore[no-untyped-def]
    with wandb.init() as run:
        before = store_snapshot()
        artifact = wandb.Artifact(ARTIFACT, type="dataset")
        artifact.add(wandb.Table(columns=["x"], data=[[1]]), "parts/one")
        with pytest.raises(InvalidArgumentError, match="distributed_id.*group"):
            run.upsert_artifact(artifact)
        with pytest.raises(InvalidArgumentError, match="distributed_id.*group"):
            run.finish_artifact(artifact)
        after = store_snapshot()
    assert after["files"] == before["files"]
    assert after["rows"]["versions"] == before["rows"]["versions"] == []


def test_explicit_distributed_id_without_group_and_aliases() -> None:
    for i in range(2):
        with wandb.init() as run:
            artifact = wandb.Artifact(ARTIFACT, type="dataset")
            artifact.add(wandb.Table(columns=["x"], data=[[i]]), f"parts/{i}")
            run.upsert_artifact(artifact, distributed_id="batch-7", aliases=["from-writer"])
    with wandb.init() as run:
        final = wandb.Artifact(ARTIFACT, type="dataset", metadata={"rows": 2})
        final.add(wandb.data_types.PartitionedTable("parts"), "table")
        run.finish_artifact(final, distributed_id="batch-7", aliases=["best"])
    logged = wandb.Api().artifact(f"{ARTIFACT}:best")
    assert sorted(logged.aliases) == ["best", "from-writer", "latest"]
    assert logged.metadata == {"rows": 2}
    assert logged.get("table").to_pandas()["x"].tolist() == [0, 1]


def test_finishing_known_content_deduplicates() -> None:
    for _ in range(2):
        with wandb.init(group="g") as run:
            part = wandb.Artifact(ARTIFACT, type="dataset")
            part.add(wandb.Table(columns=["x"], data=[[1]]), "parts/one")
            run.upsert_artifact(part)
            writer = run.id
        finished = _finish("g")
    assert finished.version == "v0" and finished.deduplicated
    # The second batch's writer is in the lineage of the version it deduplicated to.
    assert [a.version for a in wandb.Api().run(writer).logged_artifacts()] == ["v0"]


def test_an_upserted_artifact_cannot_be_reused() -> None:
    with wandb.init(group="g") as run:
        artifact = wandb.Artifact(ARTIFACT, type="dataset")
        artifact.add(wandb.Table(columns=["x"], data=[[1]]), "parts/one")
        run.upsert_artifact(artifact)
        with pytest.raises(ArtifactError, match="already"):
            run.upsert_artifact(artifact)
        with pytest.raises(ArtifactError, match="immutable"):
            artifact.add(wandb.Table(columns=["x"], data=[[2]]), "parts/two")


def test_finish_without_any_upsert_warns_and_commits_its_own_files() -> None:
    """Usually a group mismatch between writers and finisher: say so, but still commit."""
    with wandb.init(group="writers-used-another-group") as run:
        final = wandb.Artifact(ARTIFACT, type="dataset")
        final.add(wandb.data_types.PartitionedTable("parts"), "distributed_table")
        with pytest.warns(UserWarning, match="no upserted files"):
            run.finish_artifact(final)
    assert final.version == "v0" and final.file_count == 1
    assert len(final.get("distributed_table")) == 0
