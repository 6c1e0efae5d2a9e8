"""What the retention and garbage-collection tests share: a store, a quick log, ageing files."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import dagster_artifacts as wandb
from dagster_artifacts.settings import Settings
from dagster_artifacts.state import open_store
from dagster_artifacts.store import Store


def store() -> Store:
    return open_store(Settings.resolve())


def log(
    name: str, files: dict[str, str], aliases: list[str] | None = None, ttl: timedelta | None = None
) -> wandb.Artifact:
    with wandb.init(job_type="test") as run:
        artifact = wandb.Artifact(name, type="dataset")
        for path, text in files.items():
            with artifact.new_file(path) as handle:
                handle.write(text)
        if ttl is not None:
            artifact.ttl = ttl
        run.log_artifact(artifact, aliases=aliases)
        artifact.wait()
    return artifact


def blob_count(root: Path) -> int:
    return sum(1 for p in (root / "blobs").rglob("*") if p.is_file())


def age_store(root: Path, seconds: float) -> None:
    """Make every stored blob and manifest look ``seconds`` old."""
    stamp = time.time() - seconds
    for path in root.rglob("*"):
        if path.is_file() and ("blobs" in path.parts or "manifests" in path.parts):
            os.utime(path, (stamp, stamp))
