"""A store on a read-only filesystem (a read-only bind mount of the root, registry inside it).

Desired: everything that only reads works (listings, downloads into a writable folder, verify,
the CLI's read commands); a writer gets a typed error naming the read-only place and saying
that it is read-only, never a raw ``OSError``/``sqlite3`` error or "check that it is running".
"""

from __future__ import annotations

from pathlib import Path

import pytest

import dagster_artifacts as wandb
from dagster_artifacts.errors import ArtifactError, RegistryError, StorageError
from tests.faults.helpers import (
    Mount,
    assert_ok,
    assert_one_line_error,
    cli,
    log_folder,
    make_files,
)

FILES = {"a.txt": "alpha", "sub/b.txt": "beta"}


@pytest.fixture
def frozen_store(isolated_store: Path, tmp_path: Path, read_only: Mount) -> Path:
    """Two versions of ``x`` (v0 ``best``, v1 ``latest``), then the root made read-only."""
    log_folder("x", make_files(tmp_path / "v0", FILES), aliases=["best"])
    log_folder("x", make_files(tmp_path / "v1", {**FILES, "c.txt": "gamma"}))
    read_only(isolated_store)
    with pytest.raises(OSError):
        (isolated_store / "probe").write_text("the mount must be read-only")
    return isolated_store


def _says_read_only(message: str, store: Path) -> None:
    lowered = message.lower()
    assert "read-only" in lowered or "read only" in lowered, message
    assert str(store) in message, f"the message should name {store}: {message}"
    assert "check that it is running" not in lowered, message


def test_a_reader_lists_downloads_and_verifies_a_read_only_store(
    frozen_store: Path, tmp_path: Path
) -> None:
    api = wandb.Api()
    assert [a.version for a in api.artifact_versions("dataset", "x")] == ["v0", "v1"]
    artifact = api.artifact("x:v0")
    assert artifact.aliases == ["best"]
    assert sorted(artifact.manifest.entries) == ["a.txt", "sub/b.txt"]
    folder = artifact.download(root=tmp_path / "out")
    assert artifact.verify(folder).checked == 2
    assert (Path(folder) / "sub" / "b.txt").read_text() == "beta"
    assert api.artifact("x:latest").version == "v1"


@pytest.mark.parametrize(
    "command",
    [
        ["ls"],
        ["versions", "x"],
        ["show", "x:best"],
        ["get", "x:v0", "--root", "{out}"],
        ["verify", "x:v1", "--root", "{downloaded}"],
        ["lineage", "x:v0"],
        ["runs"],
    ],
    ids=lambda command: command[0],
)
def test_cli_read_commands_work_on_a_read_only_store(
    frozen_store: Path, tmp_path: Path, command: list[str]
) -> None:
    downloaded = tmp_path / "downloaded"
    if "{downloaded}" in command:
        wandb.Api().artifact("x:v1").download(root=downloaded)
    args = [part.format(out=tmp_path / "out", downloaded=downloaded) for part in command]
    output = assert_ok(cli(*args))
    if command[0] == "get":
        assert (tmp_path / "out" / "a.txt").read_text() == "alpha", output


def test_a_writer_gets_a_typed_error_naming_the_read_only_store(
    frozen_store: Path, tmp_path: Path
) -> None:
    data = make_files(tmp_path / "new", {"new.txt": "new content"})
    with pytest.raises(ArtifactError) as caught, wandb.init(job_type="writer") as run:
        artifact = wandb.Artifact("x", type="dataset")
        artifact.add_dir(str(data))
        run.log_artifact(artifact).wait()
    assert isinstance(caught.value, (StorageError, RegistryError)), repr(caught.value)
    _says_read_only(str(caught.value), frozen_store)
    assert [a.version for a in wandb.Api().artifact_versions("dataset", "x")] == ["v0", "v1"]


@pytest.mark.parametrize(
    "command",
    [
        ["put", "{data}", "--name", "x", "--type", "dataset"],
        ["alias", "add", "x:v0", "candidate"],
        ["delete", "x:v0", "--force"],
        ["prune", "x", "--keep-last", "1"],
    ],
    ids=lambda command: " ".join(command[:2]) if command[0] == "alias" else command[0],
)
def test_cli_writers_fail_with_one_line_on_a_read_only_store(
    frozen_store: Path, tmp_path: Path, command: list[str]
) -> None:
    data = make_files(tmp_path / "new", {"new.txt": "new content"})
    line = assert_one_line_error(cli(*[part.format(data=data) for part in command]))
    _says_read_only(line, frozen_store)
    versions = wandb.Api().artifact_versions("dataset", "x")
    assert [(a.version, a.aliases) for a in versions] == [("v0", ["best"]), ("v1", ["latest"])]
