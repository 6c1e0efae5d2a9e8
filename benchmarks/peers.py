"""Peer measurements, run by the peers' own interpreter (``benchmarks/.venv-peers``).

Only the standard library, ``wandb`` and ``dvc`` are imported here: this file never imports
``dagster_artifacts``. Each call times one operation inside this process (imports and setup are
not timed) and prints one JSON line: ``{"seconds": [...], "maxrss_kib": N}``.

    python benchmarks/peers.py wandb-add-dir DATA WORKDIR
    python benchmarks/peers.py dvc-add DATA WORKDIR copy|hardlink REPEATS
    python benchmarks/peers.py dvc-push DATA WORKDIR ENDPOINT BUCKET
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import time


def wandb_add_dir(data: str, workdir: str) -> list[float]:
    """W&B 0.31 ``Artifact.add_dir`` with its default policy (hash and copy to staging), offline."""
    os.makedirs(workdir, exist_ok=True)
    for key, sub in (
        ("WANDB_DIR", "dir"),
        ("WANDB_CACHE_DIR", "cache"),
        ("WANDB_DATA_DIR", "data"),
        ("WANDB_CONFIG_DIR", "config"),
        ("WANDB_ARTIFACT_DIR", "artifacts"),
    ):
        os.environ[key] = os.path.join(workdir, sub)
        os.makedirs(os.environ[key], exist_ok=True)
    os.environ["WANDB_MODE"] = "offline"
    os.environ["WANDB_SILENT"] = "true"
    import wandb

    artifact = wandb.Artifact("bench", type="dataset")
    started = time.perf_counter()
    artifact.add_dir(data)
    return [time.perf_counter() - started]


def dvc_add(data: str, workdir: str, link: str, repeats: int) -> list[float]:
    """``dvc add`` of a copy of ``data`` in a fresh ``dvc init --no-scm`` repo.

    The first time is a cold add; each of the ``repeats - 1`` next ones is an add of unchanged
    data (DVC's own state database answers it).
    """
    from dvc.repo import Repo

    repo_dir = os.path.join(workdir, "repo")
    os.makedirs(repo_dir)
    shutil.copytree(data, os.path.join(repo_dir, "data"))
    repo = Repo.init(repo_dir, no_scm=True)
    with repo.config.edit() as config:
        config["cache"]["type"] = link
        config["core"]["analytics"] = False
        config["core"]["autostage"] = False
    repo = Repo(repo_dir)
    os.chdir(repo_dir)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        repo.add("data")
        times.append(time.perf_counter() - started)
    return times


def dvc_push(data: str, workdir: str, endpoint: str, bucket: str) -> list[float]:
    """``dvc push`` of a folder (added first, not timed) to an S3 remote on ``endpoint``: DVC's
    S3 remote (dvc-s3), one object per file, as our loose layout."""
    from dvc.repo import Repo

    for key, value in (
        ("AWS_ACCESS_KEY_ID", "benchmark"),
        ("AWS_SECRET_ACCESS_KEY", "benchmark"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        os.environ.setdefault(key, value)
    repo_dir = os.path.join(workdir, "repo")
    os.makedirs(repo_dir)
    shutil.copytree(data, os.path.join(repo_dir, "data"))
    repo = Repo.init(repo_dir, no_scm=True)
    with repo.config.edit() as config:
        config["core"]["analytics"] = False
        config["core"]["autostage"] = False
        config["core"]["remote"] = "bench"
        config["remote"]["bench"] = {"url": f"s3://{bucket}/dvc", "endpointurl": endpoint}
    repo = Repo(repo_dir)
    os.chdir(repo_dir)
    repo.add("data")
    started = time.perf_counter()
    repo.push()
    return [time.perf_counter() - started]


def main(argv: list[str]) -> None:
    command, *args = argv
    if command == "wandb-add-dir":
        seconds = wandb_add_dir(args[0], args[1])
    elif command == "dvc-add":
        seconds = dvc_add(args[0], args[1], args[2], int(args[3]))
    elif command == "dvc-push":
        seconds = dvc_push(args[0], args[1], args[2], args[3])
    else:
        raise SystemExit(f"unknown command {command!r}")
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "maxrss_kib": maxrss}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
