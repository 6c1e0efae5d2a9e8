"""Processes killed with SIGKILL (a crash, the OOM killer) at chosen moments of a log, a download
and a gc, as ``tests/test_crash.py`` does: the parent polls the files the child writes to pick
the moment.

Desired: no visible version and no damaged store; the next run of the same operation (from a new
process for logs) completes, and what it produced downloads and verifies.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import dagster_artifacts as wandb
from dagster_artifacts.storage.protection import MARKER_SILENCE
from tests.faults.helpers import (
    blob_files,
    blob_path,
    count_files,
    kill,
    log_folder,
    manifest_path,
    random_files,
    start_python,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

LOG = """
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

DOWNLOAD = """
import sys
import dagster_artifacts as wandb

print("downloading", flush=True)
wandb.Api().artifact(sys.argv[1]).download(root=sys.argv[2])
print("downloaded", flush=True)
"""

GC_KILLED_MIDWAY = """
import os
import signal
import sys
import dagster_artifacts as wandb

# A real SIGKILL at a chosen moment: right after the store's N-th deletion. Polling from the
# parent cannot pick that moment on a loaded machine (a batch of local deletions takes ~20 ms).
deletions_left = int(sys.argv[1])
unlink = os.unlink


def unlink_then_die_midway(path, *args, **kwargs):
    global deletions_left
    unlink(path, *args, **kwargs)
    if ".tmp-" not in os.path.basename(path):
        deletions_left -= 1
        if deletions_left == 0:
            os.kill(os.getpid(), signal.SIGKILL)


os.unlink = unlink_then_die_midway
print("collecting", flush=True)
wandb.Api().gc(grace="0")
print("collected", flush=True)
"""

FILES = 120
FILE_SIZE = 300 * 1024  # above the small-file limit: streamed, so each file takes a while


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """``spawn(script, *args)`` starts a child (``start_python``); whatever is still running
    when the test ends (a failed wait) is killed, so no writer outlives its test."""
    children: list[subprocess.Popen[str]] = []

    def start(script: str, *args: str) -> subprocess.Popen[str]:
        children.append(start_python(script, *args))
        return children[-1]

    yield start
    for child in children:
        if child.poll() is None:
            kill(child)


def _expect_line(process: subprocess.Popen[str], line: str) -> None:
    assert process.stdout is not None
    got = process.stdout.readline().strip()
    if got != line:
        kill(process)
        raise AssertionError(f"expected {line!r} from the child, got {got!r}: {process.stderr}")


@contextmanager
def _registry_locked(store: Path) -> Iterator[None]:
    """Hold the SQLite registry's write lock (another writer in the middle of a transaction):
    a log can store its blobs and manifest but cannot commit, whenever it is killed."""
    connection = sqlite3.connect(store / "registry.db", timeout=60, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield
    finally:
        connection.execute("ROLLBACK")
        connection.close()


def _relog_from_a_new_process_and_check(data: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", LOG, str(data), "mutable"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and "committed" in done.stdout, done.stderr[-3000:]
    artifact = wandb.Api().artifact("big:latest")
    assert artifact.version == "v0"
    folder = artifact.download(root=tmp_path / "check")
    assert artifact.verify(folder).checked == FILES
    assert (Path(folder) / "part-0007.bin").read_bytes() == (data / "part-0007.bin").read_bytes()


@pytest.mark.parametrize("moment", ["staging", "storing blobs", "blobs stored"])
def test_a_log_killed_leaves_no_version_and_the_next_log_works(
    tmp_path: Path,
    isolated_store: Path,
    spawn: Callable[..., subprocess.Popen[str]],
    moment: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The loose layout, whose blob files show the moment to kill (packs: test_packs_faults.py).
    monkeypatch.setenv("DAGSTER_ARTIFACTS_PACK_THRESHOLD", "0")
    data = random_files(tmp_path / "big", FILES, FILE_SIZE)
    staging = tmp_path / "cache" / "staging"
    manifests = isolated_store / "manifests"
    # "immutable": adding only hashes, so the commit copies every file (a long store to kill)
    policy = "mutable" if moment == "staging" else "immutable"
    writer = spawn(LOG, str(data), policy)
    _expect_line(writer, "adding")
    if moment == "staging":
        assert wait_for(lambda: count_files(staging) >= 5), "nothing was staged"
        kill(writer)
        assert count_files(staging) < FILES, "the kill must land in the middle of staging"
    else:
        _expect_line(writer, "hashed")
        with _registry_locked(isolated_store):
            if moment == "storing blobs":
                assert wait_for(lambda: len(blob_files(isolated_store)) >= 5), "no blob stored"
                kill(writer)
                assert len(blob_files(isolated_store)) < FILES, "the kill must land mid-store"
            else:
                assert wait_for(
                    lambda: (
                        len(blob_files(isolated_store)) == FILES
                        and manifests.exists()
                        and any(manifests.iterdir())
                    )
                ), "the writer never stored its blobs and manifest"
                kill(writer)
    assert writer.returncode == -9

    api = wandb.Api()
    assert api.artifact_versions("dataset", "big") == []
    assert not api.artifact_exists("big:latest")
    _relog_from_a_new_process_and_check(data, tmp_path)


@pytest.mark.parametrize("into", ["new folder", "existing folder"])
def test_a_download_killed_is_completed_by_the_next_download(
    tmp_path: Path, spawn: Callable[..., subprocess.Popen[str]], into: str
) -> None:
    size = FILE_SIZE if into == "new folder" else 1024 * 1024
    count = FILES if into == "new folder" else 40
    data = random_files(tmp_path / "data", count, size)
    log_folder("dl", data)
    target = tmp_path / "out"
    if into == "existing folder":
        target.mkdir()
        (target / "part-0000.bin").write_bytes((data / "part-0000.bin").read_bytes())
        (target / "part-0001.bin").write_bytes(os.urandom(size))  # stale: must be replaced
    before = set(os.listdir(target)) if target.exists() else set()

    def started() -> bool:
        if into == "existing folder":
            return len(os.listdir(target)) > len(before)
        partial = [p for p in tmp_path.iterdir() if p.name.startswith(".out.partial-")]
        return sum(count_files(p) for p in partial) >= 5

    downloader = spawn(DOWNLOAD, "dl:v0", str(target))
    _expect_line(downloader, "downloading")
    assert wait_for(started), "the download never started writing"
    kill(downloader)
    if into == "new folder":
        assert not target.exists(), "a new folder must appear complete or not at all"
        hidden = [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")]
    else:
        hidden = [p.name for p in target.rglob(".*")]
    assert hidden, "the kill must leave the download's hidden scratch files behind"

    artifact = wandb.Api().artifact("dl:v0")
    artifact.download(root=target)
    assert artifact.verify(target).checked == count
    leftovers = [
        p.name for p in [*tmp_path.iterdir(), *target.rglob("*")] if ".partial-" in p.name
    ] + [p.name for p in target.rglob("*") if ".tmp-" in p.name]
    assert leftovers == [], leftovers


def test_a_gc_killed_is_finished_by_the_next_gc(
    tmp_path: Path,
    isolated_store: Path,
    spawn: Callable[..., subprocess.Popen[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The loose layout, one file per blob to watch (packs: test_packs_faults.py).
    monkeypatch.setenv("DAGSTER_ARTIFACTS_PACK_THRESHOLD", "0")
    for i in range(4):
        log_folder("g", random_files(tmp_path / f"g{i}", 250, 2048, prefix=f"g{i}"))
    log_folder("keep", random_files(tmp_path / "keep", 50, 2048))
    api = wandb.Api()
    doomed: list[Path] = []
    for version in ("v0", "v1", "v2"):
        artifact = api.artifact(f"g:{version}")
        doomed.append(manifest_path(isolated_store, f"g:{version}"))
        doomed += [blob_path(isolated_store, e.digest) for e in artifact.manifest.entries.values()]
        artifact.delete()
    assert all(path.exists() for path in doomed)

    collector = spawn(GC_KILLED_MIDWAY, str(len(doomed) // 2))
    assert collector.wait(timeout=120) == -signal.SIGKILL, collector.stderr.read()
    left = sum(path.exists() for path in doomed)
    assert 0 < left < len(doomed), "the kill lands in the middle of the deletions"

    api.gc(grace="0")
    assert [path for path in doomed if path.exists()] == []
    for name in ("g:v3", "keep:v0"):
        artifact = wandb.Api().artifact(name)
        folder = artifact.download(root=tmp_path / "check" / name.replace(":", "-"))
        assert artifact.verify(folder).checked == len(artifact.manifest.entries)


def test_a_gc_killed_mid_batch_does_not_hold_up_writers(
    tmp_path: Path,
    isolated_store: Path,
    spawn: Callable[..., subprocess.Popen[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The dead gc leaves its batch marker behind; a writer reusing a key of that batch sees
    that the marker's owner (a process of this host) is gone and goes on at once, instead of
    waiting for the marker to go silent or stale."""
    monkeypatch.setenv("DAGSTER_ARTIFACTS_PACK_THRESHOLD", "0")  # one file per blob to watch
    # One deletion batch (under DELETE_BATCH), killed after its 100th deletion.
    data = random_files(tmp_path / "d", 300, 2048)
    log_folder("g", data)
    log_folder("other", random_files(tmp_path / "o", 5, 2048))
    logged = wandb.Api().artifact("g:v0")
    doomed = sorted(blob_path(isolated_store, e.digest) for e in logged.manifest.entries.values())
    logged.delete(delete_aliases=True)

    collector = spawn(GC_KILLED_MIDWAY, "100")
    assert collector.wait(timeout=120) == -signal.SIGKILL, collector.stderr.read()
    left = sum(path.exists() for path in doomed)
    assert 0 < left < len(doomed), "the kill lands in the middle of the batch"
    assert list((isolated_store / "gc").iterdir()), "the dead gc's batch marker is left behind"

    started = time.monotonic()
    log_folder("g", data)  # reuses what the dead batch did not delete, uploads the rest
    assert time.monotonic() - started < MARKER_SILENCE.total_seconds() / 2
    artifact = wandb.Api().artifact("g:latest")
    folder = artifact.download(root=tmp_path / "check")
    assert artifact.verify(folder).checked == 300
