"""Our side of each benchmark case, one operation per process.

``benchmarks/run.py`` starts ``python -m benchmarks.ours OP '{json args}'`` for every measurement,
so each one gets a fresh interpreter (no warm store, no warm stat cache in memory) and its own
peak RSS. Imports and setup are not timed; the JSON line printed at the end holds the timed
``seconds`` (a list: some operations are repeated inside one process) and ``maxrss_kib``.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any


def _configure(store: str, cache: str, download_cache: bool = False) -> None:
    os.environ["DAGSTER_ARTIFACTS_ROOT"] = store
    os.environ["DAGSTER_ARTIFACTS_CACHE_DIR"] = cache
    os.environ["DAGSTER_ARTIFACTS_CACHE"] = "1" if download_cache else "0"
    os.environ.pop("DAGSTER_ARTIFACTS_DATABASE", None)


def _log(path: str, name: str, algorithm: str = "md5", is_dir: bool = True) -> float:
    """Seconds to add ``path`` to a new draft and log it (hash, store, commit)."""
    import dagster_artifacts as da

    with da.init(job_type="bench") as run:
        started = time.perf_counter()
        artifact = da.Artifact(name, type="dataset", digest_algorithm=algorithm)
        if is_dir:
            artifact.add_dir(path)
        else:
            artifact.add_file(path)
        run.log_artifact(artifact).wait()
        return time.perf_counter() - started


def log_dir(args: dict[str, Any]) -> list[float]:
    _configure(args["store"], args["cache"])
    if not args.get("packs", True):
        os.environ["DAGSTER_ARTIFACTS_PACK_THRESHOLD"] = "0"
    return [_log(args["data"], args.get("name", "bench-dir"), args.get("algorithm", "md5"))]


def relog_dir(args: dict[str, Any]) -> list[float]:
    """Log once (not timed), then log the unchanged folder again ``repeats`` times."""
    _configure(args["store"], args["cache"])
    _log(args["data"], "bench-relog")
    return [_log(args["data"], "bench-relog") for _ in range(args["repeats"])]


def log_file(args: dict[str, Any]) -> list[float]:
    _configure(args["store"], args["cache"])
    return [_log(args["data"], "bench-file", args.get("algorithm", "md5"), is_dir=False)]


def download(args: dict[str, Any]) -> list[float]:
    """``download()`` into a fresh folder; with ``warm``, the cache is filled by one before."""
    _configure(args["store"], args["cache"], download_cache=args.get("warm", False))
    import dagster_artifacts as da

    artifact = da.Api().artifact(args["name"])
    if args.get("warm"):
        # The warm-up copy stays until the run's scratch folder is removed: on ext4, creating
        # files right after deleting many costs several times more (the inode allocator skips
        # recently freed inodes), which would tax whichever measurement comes next.
        artifact.download(root=tempfile.mkdtemp(dir=os.path.dirname(args["dest"])))
    _sync()
    started = time.perf_counter()
    artifact.download(root=args["dest"])
    return [time.perf_counter() - started]


def floor(args: dict[str, Any]) -> list[float]:
    """The floor: a bare Python loop that hashes each file and copies it to a content address."""
    data, dest = args["data"], args["dest"]
    names = sorted(os.listdir(data))
    started = time.perf_counter()
    for name in names:
        with open(os.path.join(data, name), "rb") as source:
            content = source.read()
        digest = hashlib.md5(content, usedforsecurity=False).hexdigest()
        folder = os.path.join(dest, digest[:2])
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, digest[2:]), "wb") as out:
            out.write(content)
    return [time.perf_counter() - started]


def write_floor(args: dict[str, Any]) -> list[float]:
    """The floor of a download of many small files: bare loops creating each file of ``data``
    under ``dest`` from bytes already in memory (no read, no hash, no cache, no index), on as
    many threads as the download copies on (two halves of the files, as it splits them)."""
    from dagster_artifacts.storage.localcopy import COPY_WORKERS

    data, dest = args["data"], args["dest"]
    names = sorted(os.listdir(data))
    contents = []
    for name in names:
        with open(os.path.join(data, name), "rb") as source:
            contents.append(source.read())
    os.makedirs(dest)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)

    def create(indices: range) -> None:
        for index in indices:
            fd = os.open(os.path.join(dest, names[index]), flags, 0o644)
            try:
                os.write(fd, contents[index])
            finally:
                os.close(fd)

    step = -(-len(names) // COPY_WORKERS)
    threads = [
        threading.Thread(target=create, args=(range(start, min(start + step, len(names))),))
        for start in range(0, len(names), step)
    ]
    _sync()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [time.perf_counter() - started]


def registry(args: dict[str, Any]) -> dict[str, Any]:
    """Fill a registry with ``versions`` versions of one artifact, then time lookups and a list."""
    _configure(args["store"], args["cache"])
    import dagster_artifacts as da
    from dagster_artifacts.registry import CommitRequest
    from dagster_artifacts.settings import Settings
    from dagster_artifacts.state import open_store

    store = open_store(Settings.resolve())
    versions = args["versions"]
    middle = versions // 2
    filled = time.perf_counter()
    for index in range(versions):
        store.registry.commit_version(
            CommitRequest(
                entity=store.settings.entity,
                project=store.settings.project,
                name="bench-registry",
                type="dataset",
                digest=hashlib.md5(str(index).encode()).hexdigest(),
                manifest_key=f"manifests/{index}.json",
                size=0,
                file_count=0,
                aliases=("latest", "best") if index == middle else ("latest",),
            )
        )
    filled = time.perf_counter() - filled
    api = da.Api()

    def median_of(call: Callable[[], object], times: int) -> float:
        samples = []
        for _ in range(times):
            started = time.perf_counter()
            call()
            samples.append(time.perf_counter() - started)
        return statistics.median(samples)

    lookups = args["lookups"]
    alias = median_of(lambda: api.artifact("bench-registry:best"), lookups)
    latest = median_of(lambda: api.artifact("bench-registry:latest"), lookups)
    by_index = median_of(lambda: api.artifact(f"bench-registry:v{middle}"), lookups)
    listed = median_of(lambda: list(api.artifact_versions("dataset", "bench-registry")), 3)
    assert api.artifact("bench-registry:best").version == f"v{middle}"
    return {
        "seconds": [alias],
        "alias": alias,
        "latest": latest,
        "index": by_index,
        "list": listed,
        "fill": filled,
    }


def dagster_materialize(args: dict[str, Any]) -> list[float]:
    """Materialize a rows x 10 frame through an IO manager: ours, or a minimal Parquet one."""
    _configure(args["store"], args["cache"])
    os.environ["DAGSTER_HOME"] = args["dagster_home"]
    os.makedirs(args["dagster_home"], exist_ok=True)
    import dagster as dg
    import numpy as np
    import pandas as pd

    rows = args["rows"]
    frame = pd.DataFrame(
        np.random.default_rng(0).standard_normal((rows, 10)), columns=[f"c{i}" for i in range(10)]
    )
    parquet_dir = args["parquet_dir"]

    class ParquetIOManager(dg.ConfigurableIOManager):
        """The baseline: what a user writes by hand to keep frames as Parquet files."""

        def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
            os.makedirs(parquet_dir, exist_ok=True)
            obj.to_parquet(os.path.join(parquet_dir, f"{context.asset_key.path[-1]}.parquet"))

        def load_input(self, context: dg.InputContext) -> pd.DataFrame:
            return pd.read_parquet(
                os.path.join(parquet_dir, f"{context.asset_key.path[-1]}.parquet")
            )

    @dg.asset(metadata={"artifact": {"name": "bench-frame", "type": "dataset"}})
    def bench_frame():  # type: ignore[no-untyped-def]  # dagster resolves annotations
        return frame

    if args["mode"] == "parquet":
        io_manager: Any = ParquetIOManager()
    else:
        io_manager = _artifacts_io_manager()
    instance = dg.DagsterInstance.ephemeral()
    # One untimed run first: Dagster's own first-run costs are not the cost of versioning.
    dg.materialize([bench_frame], resources={"io_manager": io_manager}, instance=instance)
    samples = []
    for _ in range(args["repeats"]):
        frame.iloc[0, 0] = float(time.perf_counter())  # new content: a new version each time
        started = time.perf_counter()
        result = dg.materialize(
            [bench_frame], resources={"io_manager": io_manager}, instance=instance
        )
        samples.append(time.perf_counter() - started)
        assert result.success
    return samples


def _artifacts_io_manager() -> Any:
    """The real ``ArtifactsIOManager`` (handlers, run per step, metadata, data version)."""
    from dagster_artifacts import ArtifactsIOManager, ArtifactsResource

    return ArtifactsIOManager(store=ArtifactsResource())


def io_manager_kind() -> str:
    return "ArtifactsIOManager"


def hash_file(args: dict[str, Any]) -> list[float]:
    """The floor of case 3: one streamed pass of the digest over the file, nothing written."""
    from dagster_artifacts.digests import digest_file

    started = time.perf_counter()
    digest_file(args["data"], args.get("algorithm", "md5"))
    return [time.perf_counter() - started]


def _sync() -> None:
    from benchmarks.prefault import settle

    settle()


def idle(args: dict[str, Any]) -> list[float]:
    """Only import the package and open a store: the floor under every peak RSS figure."""
    _configure(args["store"], args["cache"])
    import dagster_artifacts as da

    with da.init(job_type="bench"):
        pass
    return [0.0]


def _configure_s3(args: dict[str, Any]) -> Any:
    """Settings for a bucket on the benchmark's moto server; ``packs`` False is the layout
    before store format v2 (one object per blob)."""
    for key, value in (
        ("AWS_ACCESS_KEY_ID", "benchmark"),
        ("AWS_SECRET_ACCESS_KEY", "benchmark"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ):
        os.environ.setdefault(key, value)
    if not args.get("packs", True):
        os.environ["DAGSTER_ARTIFACTS_PACK_THRESHOLD"] = "0"
    os.environ["DAGSTER_ARTIFACTS_CACHE"] = "1" if args.get("download_cache") else "0"
    from dagster_artifacts.settings import Settings

    return Settings.resolve(
        root=f"s3://{args['bucket']}/artifacts",
        database=f"sqlite:///{args['db']}",
        storage_options={"endpoint_url": args["endpoint"]},
        cache_dir=args["cache"],
    )


def s3_log(args: dict[str, Any]) -> list[float]:
    """Log a folder to a bucket (packs or not), timed from ``add_dir`` to the commit."""
    settings = _configure_s3(args)
    import dagster_artifacts as da

    with da.init(settings=settings, job_type="bench") as run:
        started = time.perf_counter()
        artifact = da.Artifact(args.get("name", "bench-s3"), type="dataset")
        artifact.add_dir(args["data"])
        run.log_artifact(artifact).wait()
        return [time.perf_counter() - started]


def s3_download(args: dict[str, Any]) -> list[float]:
    settings = _configure_s3(args)
    import dagster_artifacts as da

    artifact = da.Api(settings=settings).artifact(args.get("name", "bench-s3") + ":latest")
    started = time.perf_counter()
    artifact.download(root=args["dest"])
    return [time.perf_counter() - started]


def log_many(args: dict[str, Any]) -> list[float]:
    """The 1,000,000-file case, one operation per process (each with its own peak RSS): log
    the folder (``packs`` False for the loose layout)."""
    _configure(args["store"], args["cache"])
    if not args.get("packs", True):
        os.environ["DAGSTER_ARTIFACTS_PACK_THRESHOLD"] = "0"
    return [_log(args["data"], "bench-many")]


def download_many(args: dict[str, Any]) -> list[float]:
    """The 1,000,000-file case: download the logged version into a new folder."""
    _configure(args["store"], args["cache"])
    import dagster_artifacts as da

    started = time.perf_counter()
    da.Api().artifact("bench-many:latest").download(root=args["dest"])
    return [time.perf_counter() - started]


def incremental(args: dict[str, Any]) -> dict[str, Any]:
    """A version of ``data`` (N files), then three ways to the next one with the files of
    ``extra`` (10) added: ``new_draft()``, ``incremental=True``, and a full log of the N + 10
    files (stat cache warm from the first log). Seconds: [first log, new_draft, incremental,
    full log again]; each timed from the user's first call to the committed version."""
    _configure(args["store"], args["cache"])
    import dagster_artifacts as da

    extra = sorted(os.listdir(args["extra"]))
    name = "bench-incremental"

    def add_extra(artifact: Any, folder: str) -> None:
        for file_name in extra:
            artifact.add_file(os.path.join(args["extra"], file_name), name=f"{folder}/{file_name}")

    seconds: list[float] = []
    with da.init(job_type="bench") as run:
        started = time.perf_counter()
        first = da.Artifact(name, type="dataset")
        first.add_dir(args["data"])
        run.log_artifact(first).wait()
        seconds.append(time.perf_counter() - started)

        started = time.perf_counter()
        draft = da.Api().artifact(f"{name}:latest").new_draft()
        add_extra(draft, "new-draft")
        run.log_artifact(draft).wait()
        seconds.append(time.perf_counter() - started)

        started = time.perf_counter()
        patch = da.Artifact(name, type="dataset", incremental=True)
        add_extra(patch, "incremental")
        run.log_artifact(patch).wait()
        seconds.append(time.perf_counter() - started)

        started = time.perf_counter()
        again = da.Artifact(name, type="dataset")
        again.add_dir(args["data"])
        add_extra(again, "full")
        run.log_artifact(again).wait()
        seconds.append(time.perf_counter() - started)
    assert patch.file_count == first.file_count + 2 * len(extra)
    return {"seconds": seconds}


OPS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "s3-log": s3_log,
    "s3-download": s3_download,
    "log-many": log_many,
    "download-many": download_many,
    "idle": idle,
    "log-dir": log_dir,
    "relog-dir": relog_dir,
    "log-file": log_file,
    "download": download,
    "floor": floor,
    "write-floor": write_floor,
    "hash-file": hash_file,
    "registry": registry,
    "dagster": dagster_materialize,
    "incremental": incremental,
}


def main(argv: list[str]) -> None:
    op, raw = argv
    outcome = OPS[op](json.loads(raw))
    result = outcome if isinstance(outcome, dict) else {"seconds": outcome}
    result["maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
