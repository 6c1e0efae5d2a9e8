"""Invariant 2: a writer killed (SIGKILL) mid-log leaves no visible version; the next log works."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import dagster_artifacts as wandb
from dagster_artifacts.errors import ArtifactNotFoundError

WRITER = textwrap.dedent(
    """
    import sys
    import dagster_artifacts as wandb

    with wandb.init(job_type="writer") as run:
        artifact = wandb.Artifact("big", type="dataset")
        print("adding", flush=True)
        artifact.add_dir(sys.argv[1], policy=sys.argv[2])
        print("hashed", flush=True)
        run.log_artifact(artifact).wait()
    print("committed", flush=True)
    """
)


def _blob_files(store: Path) -> int:
    blobs = store / "blobs"
    return sum(1 for p in blobs.rglob("*") if p.is_file()) if blobs.exists() else 0


@pytest.mark.timeout(180)
def test_sigkill_mid_log_leaves_no_version_and_next_log_succeeds(
    tmp_path: Path, isolated_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One file per blob, to watch the upload and kill it in the middle (packs have their own
    # killed-writer test in tests/faults/test_packs_faults.py).
    monkeypatch.setenv("DAGSTER_ARTIFACTS_PACK_THRESHOLD", "0")
    data = tmp_path / "big"
    data.mkdir()
    files = 400
    for i in range(files):
        (data / f"part-{i:04d}.bin").write_bytes(os.urandom(256 * 1024))
    # "immutable": add only hashes, so the commit copies every file (a long upload to kill)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(data), "immutable"],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "adding"
    assert writer.stdout.readline().strip() == "hashed"
    deadline = time.monotonic() + 60
    while _blob_files(isolated_store) < 20 and time.monotonic() < deadline:
        time.sleep(0.005)
    stored_before_kill = _blob_files(isolated_store)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert writer.returncode == -signal.SIGKILL
    assert 0 < stored_before_kill < files, "the kill must land in the middle of the upload"

    with pytest.raises(ArtifactNotFoundError):
        wandb.Api().artifact("big:latest")
    assert wandb.Api().artifact_versions("dataset", "big") == []
    # Whatever the killed writer left under a blob's key is whole: only temp files can be partial.
    for blob in (isolated_store / "blobs" / "md5").rglob("*"):
        if blob.is_file() and ".tmp-" not in blob.name:
            key = blob.parent.name + blob.name
            assert hashlib.md5(blob.read_bytes()).hexdigest() == key

    with wandb.init(job_type="writer") as run:
        artifact = wandb.Artifact("big", type="dataset")
        artifact.add_dir(str(data))
        run.log_artifact(artifact).wait()
    assert artifact.name == "big:v0"
    folder = Path(artifact.download())
    assert artifact.verify(folder).checked == files
    assert (folder / "part-0123.bin").read_bytes() == (data / "part-0123.bin").read_bytes()


@pytest.mark.timeout(180)
def test_sigkill_mid_add_leaves_the_store_untouched_and_its_staging_is_swept(
    tmp_path: Path,
    isolated_store: Path,
    store_snapshot,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the default policy the copies are made at add time, into the cache dir's staging
    area, never into the store: a writer killed while adding leaves no blob and no version, and
    the next writer on this host removes the dead process's staging folder."""
    monkeypatch.setenv("DAGSTER_ARTIFACTS_PACK_THRESHOLD", "0")  # one staged file per copy
    data = tmp_path / "big"
    data.mkdir()
    files = 400
    for i in range(files):
        (data / f"part-{i:04d}.bin").write_bytes(os.urandom(256 * 1024))
    staging = tmp_path / "cache" / "staging"
    before = store_snapshot()
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(data), "mutable"],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "adding"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        staged = sum(1 for p in staging.rglob("*") if p.is_file()) if staging.exists() else 0
        if staged >= 20:
            break
        time.sleep(0.005)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert writer.returncode == -signal.SIGKILL
    assert 20 <= staged < files, "the kill must land in the middle of the add"
    assert store_snapshot()["files"] == before["files"]  # nothing reached the store
    assert wandb.Api().artifact_versions("dataset", "big") == []
    orphans = [p.name for p in staging.iterdir()]
    assert orphans and all(f"-{writer.pid}-" in name for name in orphans)

    with wandb.init(job_type="writer") as run:
        artifact = wandb.Artifact("big", type="dataset")
        artifact.add_dir(str(data))
        assert [p.name for p in staging.iterdir() if f"-{writer.pid}-" in p.name] == []
        run.log_artifact(artifact).wait()
    folder = Path(artifact.download())
    assert artifact.verify(folder).checked == files
