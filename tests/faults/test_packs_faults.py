"""The fault suites, for store format v2 (small blobs in packs): a full disk, a read-only
store, a killed writer, a damaged index. Same desires as the loose layout's suites: typed
errors naming the place, nothing stored changed by a failed write, no wrong byte ever read."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

import dagster_artifacts as wandb
from dagster_artifacts.errors import StorageError
from dagster_artifacts.settings import ENV_DATABASE, ENV_ROOT
from dagster_artifacts.state import reset_stores
from tests.faults.helpers import (
    Mount,
    files_under,
    fill,
    kill,
    log_folder,
    no_space_hint,
    random_files,
    start_python,
    wait_for,
)

COUNT = 120  # a batch this big is packed (the policy's minimum is 64)


def packs(store: Path, suffix: str) -> list[Path]:
    folder = store / "packs"
    return sorted(folder.glob(f"*{suffix}")) if folder.exists() else []


def test_a_packed_log_to_a_full_store_is_a_storage_error_and_stores_nothing(
    tmpfs: Mount, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = tmpfs("2m", "store-disk")
    root = disk / "store"
    monkeypatch.setenv(ENV_ROOT, str(root))
    monkeypatch.setenv(ENV_DATABASE, f"sqlite:///{tmp_path / 'registry.db'}")
    reset_stores()
    wandb.Api().artifact_types()
    data = random_files(tmp_path / "data", COUNT, 4096)
    filler = fill(disk)
    before = files_under(root)
    with pytest.raises(StorageError) as caught, wandb.init(job_type="writer") as run:
        artifact = wandb.Artifact("full-log", type="dataset")
        artifact.add_dir(str(data))
        run.log_artifact(artifact).wait()
    message = str(caught.value)
    assert "full-log" in message and str(root) in message, message
    assert no_space_hint(message), message
    assert caught.value.errno == errno.ENOSPC
    assert files_under(root) == before, "a failed log left files in the store"
    assert wandb.Api().artifact_versions("dataset", "full-log") == []

    filler.unlink()
    log_folder("full-log", data)
    artifact = wandb.Api().artifact("full-log:v0")
    assert artifact.verify(artifact.download(root=tmp_path / "out")).checked == COUNT
    assert len(packs(root, ".pack")) == 1


def test_a_read_only_store_with_packs_downloads_and_verifies(
    isolated_store: Path, tmp_path: Path, read_only: Mount
) -> None:
    data = random_files(tmp_path / "data", COUNT, 1000)
    log_folder("x", data)
    assert packs(isolated_store, ".idx")
    read_only(isolated_store)
    reset_stores()
    artifact = wandb.Api().artifact("x:v0")
    folder = artifact.download(root=tmp_path / "out")
    assert artifact.verify(folder).checked == COUNT
    assert (Path(folder) / "part-0007.bin").read_bytes() == (data / "part-0007.bin").read_bytes()


LOG = """
import sys
import dagster_artifacts as wandb

with wandb.init(job_type="writer") as run:
    artifact = wandb.Artifact("big", type="dataset")
    artifact.add_dir(sys.argv[1])
    print("hashed", flush=True)
    run.log_artifact(artifact).wait()
print("committed", flush=True)
"""


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_writer_killed_after_publishing_its_pack_leaves_no_version_and_the_pack_is_reused(
    isolated_store: Path, tmp_path: Path
) -> None:
    import sqlite3

    data = random_files(tmp_path / "data", COUNT, 2000)
    writer = start_python(LOG, str(data))
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "hashed"
    connection = sqlite3.connect(isolated_store / "registry.db", timeout=60, isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")  # the writer can store but never commit
    try:
        assert wait_for(lambda: bool(packs(isolated_store, ".idx")), timeout=60), "no pack"
        manifests = isolated_store / "manifests"
        assert wait_for(lambda: manifests.exists() and any(manifests.iterdir()), timeout=60)
        kill(writer)
    finally:
        connection.execute("ROLLBACK")
        connection.close()
    assert wandb.Api().artifact_versions("dataset", "big") == []
    published = packs(isolated_store, ".pack")

    done = subprocess.run(
        [sys.executable, "-c", LOG, str(data)],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and "committed" in done.stdout, done.stderr[-3000:]
    assert packs(isolated_store, ".pack") == published  # the orphan pack's blobs were reused
    artifact = wandb.Api().artifact("big:v0")
    assert artifact.verify(artifact.download(root=tmp_path / "out")).checked == COUNT


def test_a_damaged_pack_index_is_a_storage_error_naming_it(
    isolated_store: Path, tmp_path: Path
) -> None:
    log_folder("x", random_files(tmp_path / "data", COUNT, 100))
    (index,) = packs(isolated_store, ".idx")
    index.chmod(0o644)
    index.write_bytes(index.read_bytes()[:-7])
    reset_stores()
    with pytest.raises(StorageError, match=r"pack index .*\.idx is damaged"):
        wandb.Api().artifact("x:v0").download(root=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_gc_that_dies_between_the_new_pack_and_the_retirement_is_finished_by_the_next(
    isolated_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster_artifacts.storage import repack

    keep = random_files(tmp_path / "keep", 20, 500, prefix="keep")
    both = random_files(tmp_path / "both", 100, 500, prefix="gone")
    for path in keep.iterdir():
        (both / path.name).write_bytes(path.read_bytes())
    log_folder("big", both)
    log_folder("small", keep)
    wandb.Api().artifact("big:v0").delete(delete_aliases=True)

    def die(*_args: object) -> None:
        raise KeyboardInterrupt("killed after publishing the new pack")

    with monkeypatch.context() as patched, pytest.raises(KeyboardInterrupt):
        patched.setattr(repack, "retire_pack", die)
        wandb.Api().gc(grace="0")
    assert len(packs(isolated_store, ".idx")) == 2  # old and new both published
    reset_stores()
    artifact = wandb.Api().artifact("small:v0")
    assert artifact.verify(artifact.download(root=tmp_path / "mid")).checked == 20

    assert wandb.Api().gc(grace="0").packs_rewritten == 1
    assert wandb.Api().gc(grace="0").packs_deleted == 1
    # the first new pack and the second rewrite both hold the live blobs (a rewrite keeps every
    # live copy it holds: never lossy, even against a second gc); no retired pack is left
    assert len(packs(isolated_store, ".pack")) == len(packs(isolated_store, ".idx"))
    assert packs(isolated_store, ".retired") == []
    reset_stores()
    artifact = wandb.Api().artifact("small:v0")
    assert artifact.verify(artifact.download(root=tmp_path / "after")).checked == 20
