"""Logged versions per second with 1, 2, 4 and 8 concurrent writer processes, per registry.

    .venv/bin/python benchmarks/concurrency.py            # 40 logs per writer
    .venv/bin/python benchmarks/concurrency.py --quick    # 3 logs per writer, a smoke run
    .venv/bin/python benchmarks/concurrency.py --backends postgresql --writers 8 --logs 100

Every writer is its own process (``spawn``) calling ``dagster_artifacts.init(root=...,
database=...)`` and logging new versions of ONE artifact name (a small file each, so the
registry, not the bytes, is what is measured): they all contend for the same version counter,
which is the worst case for invariant 3. Writers import and connect first, then start together
at a fixed wall-clock moment; the clock runs from that moment until the last commit. Each
configuration gets a fresh store and a fresh database; after it the version numbers are checked
to be exactly 0..N-1.

PostgreSQL runs on a throwaway local cluster started from the machine's binaries (the same
helper as the test suite, ``tests/services/postgres.py``) with ``fsync=off``, so the figures
show lock contention and round trips, not disk flushes. SQLite runs in WAL mode on local disk.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dagster_artifacts as wandb  # noqa: E402
from dagster_artifacts.registry import Registry  # noqa: E402
from dagster_artifacts.state import reset_stores  # noqa: E402

_START: Any = None  # a multiprocessing.Barrier, set in each writer process by the pool


def _join_start(barrier: Any) -> None:
    global _START
    _START = barrier
    # A worker inherits ignored signals from whoever started the run (a job started in the
    # background may ignore SIGTERM); the pool stops its workers with SIGTERM, so restore it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _writer(args: tuple[int, str, str, int]) -> tuple[float, float]:
    """Log ``logs`` new versions; return (first start, last commit) wall-clock times."""
    index, root, database, logs = args
    with wandb.init(root=root, database=database, job_type="bench", name=f"w{index}") as run:
        warm = wandb.Artifact(f"warm-up-{index}", type="bench")  # connect, create the project
        with warm.new_file("x.txt") as handle:
            handle.write(str(index))
        run.log_artifact(warm).wait()
        _START.wait(timeout=300)  # every writer has imported and connected: start together
        started = time.time()
        for log in range(logs):
            artifact = wandb.Artifact("contended", type="bench")
            with artifact.new_file("data.txt") as handle:
                handle.write(f"writer {index} log {log}")
            run.log_artifact(artifact).wait()
        return started, time.time()


def measure(backend: str, database_for: object, writers: int, logs: int) -> dict[str, object]:
    """One configuration on a fresh store and database."""
    work = Path(tempfile.mkdtemp(prefix="dagster-artifacts-bench-"))
    try:
        root = str(work / "store")
        database = database_for(work)  # type: ignore[operator]
        Registry(database).dispose()  # migrate before the clock starts
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(writers)
        # One task per process: a writer waiting at the barrier takes no second task.
        with context.Pool(writers, initializer=_join_start, initargs=(barrier,)) as pool:
            spans = pool.map(_writer, [(i, root, database, logs) for i in range(writers)], 1)
        elapsed = max(end for _s, end in spans) - min(start for start, _e in spans)
        versions = wandb.Api(root=root, database=database).artifact_versions("bench", "contended")
        indices = [v.version_index for v in versions]
        if indices != list(range(writers * logs)):
            raise AssertionError(f"{backend}/{writers}: version numbers are not 0..N-1: {indices}")
        reset_stores()
        return {
            "backend": backend,
            "writers": writers,
            "versions": len(versions),
            "seconds": elapsed,
            "per_second": len(versions) / elapsed,
        }
    finally:
        reset_stores()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 logs per writer: a smoke run")
    parser.add_argument("--logs", type=int, default=None, help="logs per writer (default 40)")
    parser.add_argument("--writers", default="1,2,4,8", help="comma-separated process counts")
    parser.add_argument("--backends", default="sqlite,postgresql", help="sqlite and/or postgresql")
    args = parser.parse_args(argv)
    logs = args.logs or (3 if args.quick else 40)
    counts = [int(n) for n in args.writers.split(",")]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]

    cluster = None
    rows: list[dict[str, object]] = []
    try:
        for backend in backends:
            if backend == "sqlite":
                database_for = lambda work: f"sqlite:///{work / 'store' / 'registry.db'}"  # noqa: E731
            elif backend == "postgresql":
                from tests.services.postgres import PostgresCluster, find_bin_dir

                if find_bin_dir() is None:
                    print("postgresql: skipped, no binaries in /usr/lib/postgresql/*/bin")
                    continue
                cluster = PostgresCluster().start()
                database_for = lambda _work, c=cluster: c.create_database()  # noqa: E731
            else:
                parser.error(f"unknown backend {backend!r}; use sqlite or postgresql")
            for writers in counts:
                row = measure(backend, database_for, writers, logs)
                rows.append(row)
                print(
                    f"  {backend:<10} {writers:>2} writers: {row['versions']:>4} versions in "
                    f"{row['seconds']:.2f}s",
                    file=sys.stderr,
                )
    finally:
        if cluster is not None:
            cluster.destroy()

    print(f"\nLogged versions per second, one artifact name, {logs} logs per writer process\n")
    print(
        f"| {'registry':<10} | {'writers':>7} | {'versions':>8} | {'seconds':>7} | {'versions/s':>10} |"
    )
    print(f"|{'-' * 12}|{'-' * 8}:|{'-' * 9}:|{'-' * 8}:|{'-' * 11}:|")
    for row in rows:
        print(
            f"| {row['backend']:<10} | {row['writers']:>7} | {row['versions']:>8} | "
            f"{row['seconds']:>7.2f} | {row['per_second']:>10.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
