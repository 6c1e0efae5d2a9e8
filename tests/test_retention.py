"""Retention: prune and TTL expiry through the Python API."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import dagster_artifacts as wandb
from dagster_artifacts.errors import ArtifactNotFoundError, InvalidArgumentError
from dagster_artifacts.garbage import gc
from tests.lifecycle_helpers import log, store


def test_prune_rejects_keep_last_zero_before_anything_changes(store_snapshot: Any) -> None:
    log("bikes", {"a": "1"})
    before = store_snapshot()
    for bad in (0, -1, True, 1.5):
        with pytest.raises(InvalidArgumentError, match="keep_last must be 1 or more"):
            wandb.Api().prune("bikes", bad)  # type: ignore[arg-type]
    with pytest.raises(ArtifactNotFoundError, match="No artifact"):
        wandb.Api().prune("nope", 1)
    assert store_snapshot() == before


def test_prune_older_than_uses_creation_time() -> None:
    for index in range(4):
        log("bikes", {"a": str(index)})
    later = datetime.now(timezone.utc) + timedelta(days=10)
    young = wandb.Api().prune("bikes", 1, older_than="30d", now=later, dry_run=True)
    assert young.deleted == []
    old = wandb.Api().prune("bikes", 1, older_than=timedelta(days=5), now=later)
    assert [a.version for a in old.deleted] == ["v0", "v1", "v2"]
    assert [a.version for a in wandb.Api().artifact_versions("dataset", "bikes")] == ["v3"]


def test_prune_in_another_project_by_path() -> None:
    with wandb.init(project="other", job_type="t") as run:
        for index in range(3):
            artifact = wandb.Artifact("bikes", type="dataset")
            with artifact.new_file("a") as handle:
                handle.write(str(index))
            run.log_artifact(artifact).wait()
    result = wandb.Api().prune("other/bikes", keep_last=2)
    assert [a.version for a in result.deleted] == ["v0"]
    assert result.freed_size == 1


def test_ttl_expiry_in_gc_deletes_even_aliased_versions(isolated_store: Path) -> None:
    log("tmp", {"a": "short-lived"}, aliases=["best"], ttl=timedelta(hours=1))
    log("kept", {"a": "forever"})
    now = datetime.now(timezone.utc)
    assert gc(store(), grace="0", now=now).expired == []
    report = gc(store(), grace=timedelta(0), now=now + timedelta(hours=2))
    assert [r.name for r in report.expired] == ["tmp"]
    with pytest.raises(ArtifactNotFoundError):
        wandb.Api().artifact("tmp:best")
    wandb.Api().artifact("kept:latest").download()


def test_ttl_is_editable_after_logging() -> None:
    artifact = log("tmp", {"a": "x"})
    artifact.ttl = timedelta(days=1)
    artifact.save()
    now = datetime.now(timezone.utc)
    assert [r.name for r in gc(store(), now=now + timedelta(days=2), dry_run=True).expired] == [
        "tmp"
    ]
    artifact.ttl = None
    artifact.save()
    assert gc(store(), now=now + timedelta(days=2), dry_run=True).expired == []


def test_api_prune_delegates() -> None:
    for index in range(3):
        log("bikes", {"a": str(index)})
    api = wandb.Api()
    result = api.prune("bikes", keep_last=1)
    assert [a.version for a in result.deleted] == ["v0", "v1"]
    assert [a.version for a in api.artifact_versions("dataset", "bikes")] == ["v2"]


def test_prune_and_gc_at_the_same_time_do_not_trip_over_each_other() -> None:
    for index in range(8):
        log("bikes", {"a": str(index)}, ttl=timedelta(seconds=1))
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    results: list[Any] = []
    errors: list[BaseException] = []

    def call(func: Any) -> None:
        try:
            results.append(func())
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [
        threading.Thread(target=call, args=(lambda: wandb.Api().prune("bikes", 1),)),
        threading.Thread(target=call, args=(lambda: gc(store(), grace="0", now=later),)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    remaining = wandb.Api().artifact_versions("dataset", "bikes")
    assert remaining == []  # every version had expired; the newest went by TTL, not by prune
