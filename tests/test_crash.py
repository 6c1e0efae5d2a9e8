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
        artifact.add_dir(sys.argv[1])
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
    tmp_path: Path, isolated_store: Path
) -> None:
    data = tmp_path / "big"
    data.mkdir()
    files = 400
    for i in range(files):
        (data / f"part-{i:04d}.bin").write_bytes(os.urandom(256 * 1024))
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(data)],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    assert writer.stdout is not None
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
