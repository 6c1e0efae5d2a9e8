"""Invariants 3 to 5 under real concurrency: 8 processes x 50 logs of one artifact name.

Each process logs a mix of content shared with every other process (deduplicated to one version
each) and content of its own. Its last log is always new content, so the globally last commit
is a new version and ``latest`` must end on the newest one.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from multiprocessing.pool import Pool
from pathlib import Path

import pytest

import dagster_artifacts as wandb
from tests.services.processes import stoppable

PROCESSES = 8
LOGS = 50
SHARED = 8


def _content(process: int, log: int) -> str:
    if log % 2 == 0 and log != LOGS - 1:
        return f"shared-{(log // 2) % SHARED}"
    return f"own-{process}-{log}"


def _writer(args: tuple[int, str, str, float]) -> tuple[str, dict[str, str]]:
    """One writer process: returns its run id and content -> version name it got."""
    process, root, database, start_at = args
    time.sleep(max(0.0, start_at - time.time()))  # start all writers together
    got: dict[str, str] = {}
    with wandb.init(root=root, database=database, job_type="stress", name=f"w{process}") as run:
        for log in range(LOGS):
            content = _content(process, log)
            artifact = wandb.Artifact("stress", type="dataset")
            with artifact.new_file("data.txt") as handle:
                handle.write(content)
            run.log_artifact(artifact)
            artifact.wait()
            got[content] = artifact.version
    return run.id, got


def _warm(_: int) -> None:
    import dagster_artifacts  # noqa: F401


@pytest.fixture(scope="module")
def pool() -> Iterator[Pool]:
    """Eight spawned processes, imported once and shared by both backends' runs."""
    with multiprocessing.get_context("spawn").Pool(PROCESSES, initializer=stoppable) as workers:
        workers.map(_warm, range(PROCESSES), chunksize=1)
        yield workers


def test_eight_writers_fifty_logs_each(registry_url: str, isolated_store: Path, pool: Pool) -> None:
    started = time.monotonic()
    start_at = time.time() + 1.0
    results = pool.map(
        _writer,
        [(p, str(isolated_store), registry_url, start_at) for p in range(PROCESSES)],
        chunksize=1,
    )
    elapsed = time.monotonic() - started

    api = wandb.Api(root=str(isolated_store), database=registry_url)
    versions = api.artifact_versions("dataset", "stress")
    contents = {_content(p, log) for p in range(PROCESSES) for log in range(LOGS)}
    # 0..N-1, no gaps, no duplicates, one version per distinct content.
    assert [v.version_index for v in versions] == list(range(len(contents)))
    assert len({v.digest for v in versions}) == len(contents)
    by_name = {v.version: v for v in versions}
    for _run_id, got in results:
        for content, version in got.items():
            data = Path(by_name[version].download()) / "data.txt"
            assert data.read_text() == content
    # Every process that logged shared content got the very same version for it.
    for shared in (c for c in contents if c.startswith("shared-")):
        assert len({got[shared] for _run, got in results}) == 1
    assert api.artifact("stress:latest").version_index == len(contents) - 1
    # Every run's lineage: exactly the versions it logged, deduplicated ones included.
    for run_id, got in results:
        run = api.run(run_id)
        assert {a.version for a in run.logged_artifacts()} == set(got.values())
    print(f"{PROCESSES}x{LOGS} logs -> {len(versions)} versions in {elapsed:.1f}s")


#: Rounds of eight processes opening one new registry file together; before the WAL switch
#: waited out the race, about one round in fifteen failed with "database is locked".
FRESH_OPEN_ROUNDS = 20


def _open_registry(args: tuple[str, float]) -> str:
    """Open (create, migrate) the SQLite registry at ``url`` at ``start_at``; "" or the error."""
    url, start_at = args
    from dagster_artifacts.registry.connection import open_engine

    time.sleep(max(0.0, start_at - time.time()))
    try:
        open_engine(url).dispose()
    except Exception as error:  # the test reports every process's failure
        return f"{type(error).__name__}: {error}"
    return ""


def test_eight_processes_create_one_sqlite_registry_together(tmp_path: Path, pool: Pool) -> None:
    """A fresh store opened by a multiprocess run's workers at once: none of them fails."""
    for round_number in range(FRESH_OPEN_ROUNDS):
        url = f"sqlite:///{tmp_path / f'round{round_number}' / 'registry.db'}"
        start_at = time.time() + 0.2
        errors = pool.map(_open_registry, [(url, start_at)] * PROCESSES, chunksize=1)
        assert [error for error in errors if error] == [], f"round {round_number}"
        api = wandb.Api(root=str(tmp_path / f"round{round_number}"), database=url)
        assert api.artifact_collections(project_name="uncategorized") == []
