"""Reading logged artifacts: download, verify, get, files, entries."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pandas as pd
import pytest

import dagster_artifacts as wandb
from dagster_artifacts import errors
from dagster_artifacts.download import download
from dagster_artifacts.manifest import Manifest, ManifestEntry
from dagster_artifacts.state import open_store
from dagster_artifacts.storage.layout import blob_key


@pytest.fixture
def dataset(tmp_path: Path) -> wandb.Artifact:
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("alpha")
    (source / "sub" / "b.txt").write_text("beta")
    with wandb.init(job_type="setup") as run:
        artifact = wandb.Artifact("ds", type="dataset", description="two files", metadata={"n": 2})
        artifact.add_dir(str(source))
        artifact.add(wandb.Table(columns=["x", "y"], data=[[1, "a"], [2, "b"]]), "table")
        artifact.add(pd.DataFrame({"c": [1.5, 2.5]}), "frame")
        run.log_artifact(artifact)
    return wandb.Api().artifact("ds:latest")


def test_logged_artifact_attributes(dataset: wandb.Artifact) -> None:
    assert dataset.name == "ds:v0"
    assert dataset.version == "v0"
    assert dataset.qualified_name == "default/uncategorized/ds:v0"
    assert dataset.type == "dataset"
    assert dataset.description == "two files"
    assert dataset.metadata == {"n": 2}
    assert dataset.file_count == 4
    assert dataset.size == sum(e.size or 0 for e in dataset.manifest.entries.values())
    assert dataset.aliases == ["latest"]
    assert [f.path for f in dataset.files()] == [
        "a.txt",
        "frame.parquet",
        "sub/b.txt",
        "table.table.json",
    ]


def test_download_skips_files_already_present_with_the_right_digest(
    dataset: wandb.Artifact, tmp_path: Path
) -> None:
    root = Path(dataset.download(root=tmp_path / "dl"))
    first = (root / "a.txt").stat().st_mtime_ns
    (root / "sub" / "b.txt").write_text("tampered")
    os.utime(root / "a.txt", ns=(first, first))
    dataset.download(root=tmp_path / "dl")
    assert (root / "a.txt").stat().st_mtime_ns == first  # untouched: digest matched
    assert (root / "sub" / "b.txt").read_text() == "beta"  # repaired: digest differed


def test_verify_returns_a_result_or_raises(dataset: wandb.Artifact, tmp_path: Path) -> None:
    root = Path(dataset.download(root=tmp_path / "v"))
    result = dataset.verify(root)
    assert result and result.checked == 4
    (root / "a.txt").write_text("changed")
    (root / "extra.txt").write_text("x")
    (root / "sub" / "b.txt").unlink()
    with pytest.raises(errors.VerificationError) as raised:
        dataset.verify(root)
    message = str(raised.value)
    assert "a.txt: content differs" in message
    assert "sub/b.txt: missing" in message
    assert "extra.txt: not in the artifact" in message
    with pytest.raises(errors.VerificationError, match="download the artifact first"):
        dataset.verify(tmp_path / "never-downloaded")


def test_get_returns_tables_frames_and_files(dataset: wandb.Artifact) -> None:
    table = dataset.get("table")
    assert isinstance(table, wandb.Table)
    assert table.columns == ["x", "y"] and table.data == [[1, "a"], [2, "b"]]
    frame = dataset.get("frame")
    pd.testing.assert_frame_equal(frame, pd.DataFrame({"c": [1.5, 2.5]}))
    assert Path(dataset.get("a.txt")).read_text() == "alpha"
    with pytest.raises(errors.EntryNotFoundError):
        dataset.get("nothing")
    stored = json.loads(Path(dataset.get_entry("table.table.json").download()).read_text())
    assert stored["_type"] == "table" and stored["columns"] == ["x", "y"]


def test_entry_download_fetches_one_file(dataset: wandb.Artifact, tmp_path: Path) -> None:
    path = dataset.get_entry("sub/b.txt").download(root=tmp_path / "one")
    assert Path(path).read_text() == "beta"
    assert sorted(p.name for p in (tmp_path / "one").rglob("*") if p.is_file()) == ["b.txt"]
    with pytest.raises(errors.EntryNotFoundError, match="files\\(\\) lists them"):
        dataset.get_entry("missing.txt")


def test_partial_download_by_path_prefix(dataset: wandb.Artifact, tmp_path: Path) -> None:
    root = Path(dataset.download(root=tmp_path / "p", path_prefix="sub/"))
    assert [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()] == ["sub/b.txt"]


def test_damaged_blob_is_detected_on_download(dataset: wandb.Artifact, tmp_path: Path) -> None:
    store = open_store(wandb.Api().settings)
    entry = dataset.manifest.entries["a.txt"]
    blob = Path(store.blobs.path(blob_key(entry.digest)))
    blob.write_text("rottn")  # same size, other bytes
    with pytest.raises(errors.ChecksumMismatchError, match="does not match"):
        dataset.download(root=tmp_path / "bad")
    assert not (tmp_path / "bad" / "a.txt").exists()


def test_manifest_paths_can_never_escape_the_download_root(tmp_path: Path) -> None:
    """A hand-crafted manifest with '..' in a path is refused at download (invariant 6)."""
    store = open_store(wandb.Api().settings)
    manifest = Manifest()
    manifest.entries["../../evil.txt"] = ManifestEntry(
        "../../evil.txt", "XUFAKrxLKna5cZ2REBfFkg==", 5
    )
    with pytest.raises(errors.InvalidPathError, match="outside"):
        download(store, manifest, str(tmp_path / "root"))
    assert not (tmp_path / "evil.txt").exists()


def test_file_reference_changed_after_logging_fails_download(tmp_path: Path) -> None:
    target = tmp_path / "ref.txt"
    target.write_text("original")
    with wandb.init(job_type="refs") as run:
        artifact = wandb.Artifact("refs", type="dataset")
        artifact.add_reference(f"file://{target}")
        run.log_artifact(artifact)
    target.write_text("modified")
    with pytest.raises(errors.ChecksumMismatchError):
        wandb.Api().artifact("refs:v0").download(root=tmp_path / "out")


def test_untracked_and_unchecksummed_references(tmp_path: Path) -> None:
    with wandb.init(job_type="refs") as run:
        artifact = wandb.Artifact("refs", type="dataset")
        artifact.add_reference("ftp://archive.example/data.bin", name="data.bin")
        (tmp_path / "here.txt").write_text("here")
        artifact.add_reference(f"file://{tmp_path}/here.txt", checksum=False)
        # As in W&B, checksum=False still needs the path to exist (it is walked and sized).
        with pytest.raises(errors.ArtifactFileNotFoundError, match="nowhere"):
            artifact.add_reference(f"file://{tmp_path}/nowhere.txt", checksum=False)
        run.log_artifact(artifact)
    logged = wandb.Api().artifact("refs:v0")
    entries = logged.manifest.entries
    assert entries["data.bin"].digest == "ftp://archive.example/data.bin"
    # W&B's digest of an unchecksummed file reference: base64 MD5 of the file's URI.
    uri_md5 = hashlib.md5((tmp_path / "here.txt").resolve().as_uri().encode()).digest()
    assert entries["here.txt"].digest == base64.b64encode(uri_md5).decode()
    assert entries["here.txt"].size == 4
    with pytest.raises(errors.ReferenceNotDownloadableError, match="ref\\(\\)"):
        logged.get_entry("data.bin").download()


def test_metadata_and_description_are_not_part_of_the_digest(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("same")
    with wandb.init(job_type="meta") as run:
        for i in range(2):
            artifact = wandb.Artifact("m", type="dataset", description=f"d{i}", metadata={"i": i})
            artifact.add_file(str(tmp_path / "f.txt"))
            run.log_artifact(artifact)
    assert [v.name for v in wandb.Api().artifact_versions("dataset", "m")] == ["m:v0"]


def test_current_run_and_module_finish() -> None:
    run = wandb.init(job_type="current")
    assert wandb.run is run
    wandb.finish()
    assert wandb.run is None
    assert wandb.Api().run(run.path).state == "finished"


def test_run_failure_inside_with_block_marks_it_failed() -> None:
    with pytest.raises(RuntimeError), wandb.init(job_type="boom") as run:
        raise RuntimeError("boom")
    assert wandb.Api().run(run.id).state == "failed"


def test_api_runs_filters() -> None:
    for job_type, group in [("a", "g1"), ("b", "g1"), ("a", "g2")]:
        wandb.init(job_type=job_type, group=group).finish()
    api = wandb.Api()
    assert [r.job_type for r in api.runs(filters={"group": "g1"})] == ["a", "b"]
    assert [r.group for r in api.runs(filters={"job_type": "a"})] == ["g1", "g2"]
    with pytest.raises(TypeError, match="job_type or group"):
        api.runs(filters={"tags": "x"})


def test_refused_duplicate_add_leaves_the_first_entry_intact(tmp_path: Path) -> None:
    """A second ``add`` under the same name with other content is refused, and the first
    table is logged with its own bytes (it used to be overwritten in staging)."""
    with wandb.init(job_type="t") as run:
        artifact = wandb.Artifact("dup-table", type="dataset")
        artifact.add(wandb.Table(columns=["x"], data=[[1]]), "t")
        with pytest.raises(errors.DuplicateEntryError):
            artifact.add(wandb.Table(columns=["x"], data=[[2]]), "t")
        run.log_artifact(artifact).wait()
    logged = wandb.Api().artifact("dup-table:latest")
    root = logged.download(root=str(tmp_path / "out"))
    assert logged.verify(root).checked == 1
    assert logged.get("t").data == [[1]]
