"""A full disk (a size-limited tmpfs) under the store, the download folder or the cache dir.

Desired: a typed ``StorageError`` (never a bare ``OSError``) naming the artifact and telling the
user to free space; no version and no partial file become visible; once there is room again the
same operation works.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

import dagster_artifacts as wandb
from dagster_artifacts.errors import StorageError
from dagster_artifacts.settings import ENV_CACHE_DIR, ENV_DATABASE, ENV_ROOT
from dagster_artifacts.state import reset_stores
from tests.faults.helpers import (
    Mount,
    Snapshot,
    assert_ok,
    assert_one_line_error,
    cli,
    files_under,
    fill,
    log_folder,
    make_files,
    no_space_hint,
    random_files,
    stored_state,
)

SMALL = 100 * 1024  # the small-file fast path (at most 256 KiB)
LARGE = 700 * 1024  # the streaming path


@pytest.fixture
def full_store(tmpfs: Mount, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A store root on a 2 MiB tmpfs (registry on the normal disk); returns (root, tmpfs)."""
    disk = tmpfs("2m", "store-disk")
    root = disk / "store"
    monkeypatch.setenv(ENV_ROOT, str(root))
    monkeypatch.setenv(ENV_DATABASE, f"sqlite:///{tmp_path / 'registry.db'}")
    reset_stores()
    wandb.Api().artifact_types()  # opens the store: its root and the registry exist
    return root, disk


def _assert_no_version(name: str) -> None:
    api = wandb.Api()
    assert api.artifact_versions("dataset", name) == []
    assert not api.artifact_exists(f"{name}:latest")


@pytest.mark.parametrize(
    ("what", "policy"),
    [
        ("small blobs", "mutable"),
        ("large blobs", "mutable"),
        ("large blobs", "immutable"),
        ("manifest", "mutable"),
    ],
)
def test_log_to_a_full_store_is_a_storage_error_and_works_once_there_is_room(
    full_store: tuple[Path, Path], tmp_path: Path, what: str, policy: str
) -> None:
    root, disk = full_store
    size = LARGE if what == "large blobs" else SMALL
    data = random_files(tmp_path / "data", 2, size)
    if what == "manifest":
        # Both blobs are stored (by another artifact); only the new manifest must be written.
        other = make_files(tmp_path / "other", {"extra.txt": "another file"})
        for path in data.iterdir():
            (other / path.name).write_bytes(path.read_bytes())
        log_folder("other", other)
    filler = fill(disk)
    before = files_under(root)

    # (a failed log fails the run too: its exit re-raises, so both are inside the check)
    with pytest.raises(StorageError) as caught, wandb.init(job_type="writer") as run:
        artifact = wandb.Artifact("full-log", type="dataset")
        artifact.add_dir(str(data), policy=policy)
        run.log_artifact(artifact).wait()
    message = str(caught.value)
    assert "full-log" in message, message
    assert str(root) in message, f"the message should name the full place: {message}"
    assert no_space_hint(message), f"the message should say to free space: {message}"
    assert caught.value.errno == errno.ENOSPC  # scripts can tell a full disk apart
    _assert_no_version("full-log")
    assert files_under(root) == before, "a failed log left files in the store"

    filler.unlink()
    with wandb.init(job_type="writer") as run:
        again = wandb.Artifact("full-log", type="dataset")
        again.add_dir(str(data), policy=policy)
        run.log_artifact(again).wait()
    assert again.version == "v0"
    folder = wandb.Api().artifact("full-log:v0").download(root=tmp_path / "out")
    assert wandb.Api().artifact("full-log:v0").verify(folder).checked == 2


@pytest.mark.parametrize("into", ["new folder", "existing folder"])
def test_download_into_a_full_disk_is_a_storage_error_with_no_partial_file(
    tmpfs: Mount, tmp_path: Path, into: str
) -> None:
    # 3 small files and 1 large one: 1.3 MiB into a 1 MiB disk, both copy paths in play
    data = make_files(
        tmp_path / "data",
        {
            **{f"small-{i}.bin": os.urandom(200 * 1024) for i in range(3)},
            "large.bin": os.urandom(700 * 1024),
        },
    )
    log_folder("dl", data)
    disk = tmpfs("1m", "download-disk")
    target = disk / "dl"
    if into == "existing folder":
        make_files(target, {"small-0.bin": (data / "small-0.bin").read_bytes()})
    before = files_under(disk)

    artifact = wandb.Api().artifact("dl:v0")
    with pytest.raises(StorageError) as caught:
        artifact.download(root=target)
    message = str(caught.value)
    assert "dl:v0" in message, message
    assert str(disk) in message, f"the message should name the full place: {message}"
    assert no_space_hint(message), f"the message should say to free space: {message}"
    assert caught.value.errno == errno.ENOSPC  # scripts can tell a full disk apart
    # No file at a final path holds anything but the logged bytes, and nothing else is left
    # on the full disk (no hidden temp file or partial folder keeps the space it took). A new
    # folder appears whole or not at all; an existing one may keep the files that were done.
    after = files_under(disk)
    if into == "new folder":
        assert after == before, sorted(after)
    for relative, content in after.items():
        if relative in before:
            continue
        entry = relative.removeprefix("dl/")
        assert entry in artifact.manifest.entries, f"left behind: {relative}"
        assert content == (data / entry).read_bytes(), f"partial file at {relative}"

    roomy = artifact.download(root=tmp_path / "roomy")
    assert artifact.verify(roomy).checked == 4


def test_log_with_the_staging_area_on_a_full_disk_is_a_storage_error_and_stores_nothing(
    tmpfs: Mount,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    store_snapshot: Snapshot,
) -> None:
    data = random_files(tmp_path / "data", 4, 512 * 1024)  # 2 MiB to stage on a 1 MiB disk
    log_folder("seed", make_files(tmp_path / "seed", {"a.txt": "seed"}))
    cache = tmpfs("1m", "cache-disk") / "cache"
    monkeypatch.setenv(ENV_CACHE_DIR, str(cache))
    reset_stores()
    before = stored_state(store_snapshot())

    with pytest.raises(StorageError) as caught, wandb.init(job_type="writer") as run:
        artifact = wandb.Artifact("staged", type="dataset")
        artifact.add_dir(str(data))
        run.log_artifact(artifact).wait()
    message = str(caught.value)
    assert "staged" in message, message
    assert str(cache) in message, f"the message should name the full place: {message}"
    assert no_space_hint(message), f"the message should say to free space: {message}"
    assert caught.value.errno == errno.ENOSPC  # scripts can tell a full disk apart
    assert stored_state(store_snapshot()) == before
    assert wandb.Api().artifact_versions("dataset", "staged") == []


# -- the same through the command line ------------------------------------------------------------


def test_cli_put_to_a_full_store_prints_one_error_line(
    full_store: tuple[Path, Path], tmp_path: Path
) -> None:
    _root, disk = full_store
    data = random_files(tmp_path / "data", 2, SMALL)
    fill(disk)
    line = assert_one_line_error(cli("put", str(data), "--name", "full-put", "--type", "dataset"))
    assert "full-put" in line and no_space_hint(line), line
    _assert_no_version("full-put")


def test_cli_put_with_the_staging_area_on_a_full_disk_prints_one_error_line(
    tmpfs: Mount,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    store_snapshot: Snapshot,
) -> None:
    data = random_files(tmp_path / "data", 4, 512 * 1024)
    cache = tmpfs("1m", "cache-disk") / "cache"
    monkeypatch.setenv(ENV_CACHE_DIR, str(cache))
    reset_stores()
    line = assert_one_line_error(cli("put", str(data), "--name", "staged", "--type", "dataset"))
    assert "staged" in line and str(cache) in line and no_space_hint(line), line
    assert store_snapshot()["files"] == {}


def test_cli_get_into_a_full_disk_prints_one_error_line(tmpfs: Mount, tmp_path: Path) -> None:
    data = random_files(tmp_path / "data", 3, 500 * 1024)
    log_folder("dl", data)
    disk = tmpfs("1m", "download-disk")
    line = assert_one_line_error(cli("get", "dl:v0", "--root", str(disk / "dl")))
    assert "dl:v0" in line and no_space_hint(line), line
    assert files_under(disk) == {}
    folder = assert_ok(cli("get", "dl:v0", "--root", str(tmp_path / "roomy"))).strip()
    assert_ok(cli("verify", "dl:v0", "--root", folder))
