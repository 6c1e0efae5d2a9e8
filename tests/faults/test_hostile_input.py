"""Input built to break things: entry names the OS cannot create, absurd version numbers,
metadata that is not JSON, NUL bytes in aliases, manifests whose paths escape the root.

Desired: a typed ``ArtifactError`` (bad input also a ``ValueError``) raised before anything is
written, on SQLite and PostgreSQL alike; never a raw ``OSError``/``ValueError``/driver error.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

import dagster_artifacts as wandb
from dagster_artifacts.errors import (
    ArtifactError,
    ArtifactNotFoundError,
    InvalidNameError,
    InvalidPathError,
)
from tests.faults.helpers import Snapshot, files_under, forge_manifest, log_folder, make_files

#: Entry names no common filesystem can create: a NUL byte, a component over 255 bytes.
UNCREATABLE = {
    "NUL byte": "a\x00b",
    "NUL in a folder": "sub\x00dir/a.txt",
    "256 bytes": "x" * 256,
    "260 bytes of UTF-8": "é" * 130,
    "nested 260 bytes": "dir/" + "é" * 130 + "/x.txt",
}


@pytest.mark.parametrize("name", list(UNCREATABLE.values()), ids=list(UNCREATABLE))
def test_new_file_with_a_name_the_os_cannot_create_is_an_invalid_path_error(name: str) -> None:
    artifact = wandb.Artifact("hostile", type="dataset")
    with pytest.raises(InvalidPathError), artifact.new_file(name) as handle:
        handle.write("content")
    assert artifact.manifest.entries == {}


@pytest.mark.parametrize("name", list(UNCREATABLE.values()), ids=list(UNCREATABLE))
def test_add_file_with_a_name_the_os_cannot_create_is_an_invalid_path_error(
    tmp_path: Path, name: str
) -> None:
    source = make_files(tmp_path / "data", {"a.txt": "alpha"}) / "a.txt"
    artifact = wandb.Artifact("hostile", type="dataset")
    with pytest.raises(InvalidPathError):
        artifact.add_file(str(source), name=name)
    assert artifact.manifest.entries == {}


def _rename_entry(old: str, new: str) -> Any:
    def edit(data: dict[str, Any]) -> None:
        data["contents"][new] = data["contents"].pop(old)

    return edit


def test_a_consistently_forged_harmless_manifest_is_accepted(
    isolated_store: Path, tmp_path: Path
) -> None:
    """The precondition of the forged-manifest tests: an edit that is harmless in itself (a
    rename), stored under its own key with the matching registry digest, downloads fine, so
    the tests below fail only for what their edit makes wrong."""
    log_folder("x", make_files(tmp_path / "data", {"a.txt": "alpha", "b.txt": "beta"}))
    forge_manifest(isolated_store, "x:v0", _rename_entry("a.txt", "renamed/c.txt"))
    artifact = wandb.Api().artifact("x:v0")
    folder = Path(artifact.download(root=tmp_path / "out"))
    assert (folder / "renamed" / "c.txt").read_text() == "alpha"
    assert artifact.verify(folder).checked == 2


@pytest.mark.parametrize("name", list(UNCREATABLE.values()), ids=list(UNCREATABLE))
def test_a_stored_entry_the_os_cannot_create_is_a_typed_error_at_download(
    isolated_store: Path, tmp_path: Path, name: str
) -> None:
    log_folder("x", make_files(tmp_path / "data", {"a.txt": "alpha", "b.txt": "beta"}))
    forge_manifest(isolated_store, "x:v0", _rename_entry("a.txt", name))
    artifact = wandb.Api().artifact("x:v0")
    with pytest.raises(ArtifactError) as caught:
        artifact.download(root=tmp_path / "out")
    assert "x:v0" in str(caught.value), str(caught.value)


@pytest.mark.parametrize(
    "escape",
    ["../../etc/x", "a/../../../x", "{absolute}"],
    ids=["parent", "nested parent", "absolute"],
)
def test_a_stored_entry_escaping_the_root_is_refused_and_nothing_lands_outside(
    isolated_store: Path, tmp_path: Path, escape: str
) -> None:
    log_folder("x", make_files(tmp_path / "data", {"a.txt": "alpha", "b.txt": "beta"}))
    path = escape.format(absolute=tmp_path / "absolute-target" / "x")
    forge_manifest(isolated_store, "x:v0", _rename_entry("a.txt", path))
    root = tmp_path / "dl" / "inner"

    def outside() -> dict[str, bytes]:
        return {
            name: content
            for name, content in files_under(tmp_path).items()
            if not name.startswith(("store/", "cache/", "dl/inner/"))
        }

    before = outside()
    with pytest.raises(InvalidPathError):
        wandb.Api().artifact("x:v0").download(root=root)
    assert outside() == before
    assert not (tmp_path / "etc").exists() and not (tmp_path / "absolute-target").exists()


# -- names and versions, on both registries -------------------------------------------------------


def test_a_version_number_beyond_any_integer_is_not_found(
    registry_url: str, tmp_path: Path
) -> None:
    log_folder("x", make_files(tmp_path / "data", {"a.txt": "alpha"}))
    with pytest.raises(ArtifactNotFoundError):
        wandb.Api().artifact("x:v99999999999999999999")
    assert not wandb.Api().artifact_exists("x:v99999999999999999999")


@pytest.mark.parametrize(
    "tag", ["v-1", "v", "v1.5", "v" + "9" * 400, "-1", "v1\x00", "\x00", "late\x00st"]
)
def test_odd_version_and_alias_forms_are_typed_errors(
    registry_url: str, tmp_path: Path, tag: str
) -> None:
    log_folder("x", make_files(tmp_path / "data", {"a.txt": "alpha"}))
    with pytest.raises(ArtifactError):
        wandb.Api().artifact(f"x:{tag}")


NOT_JSON: dict[str, Any] = {
    "set": {1, 2},
    "datetime": datetime(2026, 1, 1, tzinfo=timezone.utc),
    "bytes": b"raw",
    "nan": float("nan"),
    "inf": float("inf"),
    "-inf": -math.inf,
    "nan in a list": [1.0, float("nan")],
    "object": object(),
}


@pytest.mark.parametrize("how", ["item", "constructor"])
@pytest.mark.parametrize("value", list(NOT_JSON.values()), ids=list(NOT_JSON))
def test_metadata_that_is_not_json_is_refused_before_anything_is_written(
    registry_url: str,
    tmp_path: Path,
    store_snapshot: Snapshot,
    value: Any,
    how: str,
) -> None:
    data = make_files(tmp_path / "data", {"a.txt": "alpha"})
    before = store_snapshot()["files"]
    with pytest.raises(ArtifactError) as caught, wandb.init(job_type="writer") as run:
        if how == "item":
            artifact = wandb.Artifact("meta", type="dataset")
            artifact.metadata["k"] = value
        else:
            artifact = wandb.Artifact("meta", type="dataset", metadata={"k": value})
        artifact.add_dir(str(data))
        run.log_artifact(artifact).wait()
    assert isinstance(caught.value, ValueError), f"bad input is a ValueError: {caught.value!r}"
    assert store_snapshot()["files"] == before
    assert wandb.Api().artifact_versions("dataset", "meta") == []


@pytest.mark.parametrize("alias", ["best\x00", "\x00", "be\x00st"])
def test_an_alias_with_a_nul_byte_is_an_invalid_name_before_anything_is_written(
    registry_url: str,
    tmp_path: Path,
    store_snapshot: Snapshot,
    alias: str,
) -> None:
    data = make_files(tmp_path / "data", {"a.txt": "alpha"})
    before = store_snapshot()["files"]
    with pytest.raises(InvalidNameError), wandb.init(job_type="writer") as run:
        artifact = wandb.Artifact("nul", type="dataset")
        artifact.add_dir(str(data))
        run.log_artifact(artifact, aliases=[alias]).wait()
    assert store_snapshot()["files"] == before
    assert wandb.Api().artifact_versions("dataset", "nul") == []
