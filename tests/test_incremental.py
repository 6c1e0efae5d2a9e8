"""Versions derived from another: ``artifact.new_draft()``, ``Artifact(..., incremental=True)``
and ``artifact.remove(path)``, as W&B does them, without reading, hashing, checking or
uploading again the entries carried over."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

import dagster_artifacts as wandb
from dagster_artifacts import errors
from dagster_artifacts.runs import start_run
from dagster_artifacts.settings import Settings
from dagster_artifacts.state import open_store


def _tree(root: Path, count: int, prefix: str = "f") -> Path:
    (root / "sub").mkdir(parents=True, exist_ok=True)
    for index in range(count):
        folder = root / "sub" if index % 2 else root
        (folder / f"{prefix}{index}.txt").write_text(f"{prefix} {index}")
    return root


def _log_dir(folder: Path, name: str = "data", **log: object) -> wandb.Artifact:
    with wandb.init(job_type="ingest") as run:
        artifact = wandb.Artifact(name, type="dataset")
        artifact.add_dir(str(folder))
        return run.log_artifact(artifact, **log).wait()  # type: ignore[arg-type]


class KeySpy:
    """Records the keys the real blob store is asked about (the store still answers)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        blobs = open_store(Settings.resolve()).blobs
        self.asked: list[str] = []
        original = blobs.existing

        def existing(keys: Iterable[str], **options: Any) -> set[str]:
            keys = list(keys)
            self.asked.extend(keys)
            return original(keys, **options)

        monkeypatch.setattr(blobs, "existing", existing)

    def blobs(self) -> list[str]:
        return [key for key in self.asked if not key.startswith("manifests/")]


def test_new_draft_carries_every_entry_without_reading_or_checking_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _tree(tmp_path / "src", 40)
    v0 = _log_dir(source)
    shutil.rmtree(source)  # the carried files are never read again: they are gone
    spy = KeySpy(monkeypatch)

    draft = wandb.Api().artifact("data:latest").new_draft()
    assert draft.is_draft() and sorted(draft.manifest.entries) == sorted(v0.manifest.entries)
    (tmp_path / "new.txt").write_text("new")
    draft.add_file(str(tmp_path / "new.txt"), name="extra/new.txt")
    draft.remove("sub")  # a folder: every entry under it
    draft.remove("f0.txt")
    with wandb.init(job_type="update") as run:
        v1 = run.log_artifact(draft, aliases=["curated"]).wait()

    assert v1.name == "data:v1" and v1.aliases == ["curated", "latest"]
    expected = {f"f{i}.txt" for i in range(2, 40, 2)} | {"extra/new.txt"}
    assert set(v1.manifest.entries) == expected
    assert len(spy.blobs()) == 1  # only the added file's blob was checked (and stored)
    out = Path(wandb.Api().artifact("data:v1").download(root=str(tmp_path / "out")))
    assert (out / "extra" / "new.txt").read_text() == "new"
    assert (out / "f2.txt").read_text() == "f 2"
    assert wandb.Api().artifact("data:v0").file_count == 40  # the base is unchanged


def test_new_draft_keeps_name_type_description_and_metadata() -> None:
    with wandb.init(job_type="t") as run:
        artifact = wandb.Artifact("m", type="model", description="d", metadata={"k": 1})
        with artifact.new_file("w") as handle:
            handle.write("w")
        run.log_artifact(artifact).wait()
    draft = artifact.new_draft()
    assert (draft.name, draft.type, draft.description, draft.metadata) == (
        "m",
        "model",
        "d",
        {"k": 1},
    )
    with pytest.raises(errors.ArtifactNotLoggedError):
        _ = draft.version
    draft.metadata["k"] = 2
    with draft.new_file("w2") as handle:
        handle.write("w2")
    draft.save()  # outside a run: logged by a run of its own, as in W&B
    assert draft.name == "m:v1" and draft.metadata == {"k": 2}


def test_new_draft_of_a_link_drafts_its_source() -> None:
    with wandb.init(job_type="t") as run:
        artifact = wandb.Artifact("m", type="model")
        with artifact.new_file("w") as handle:
            handle.write("w")
        run.log_artifact(artifact).wait()
    link = artifact.link("registry/models")
    draft = link.new_draft()
    with draft.new_file("w2") as handle:
        handle.write("w2")
    with wandb.init(job_type="t") as run:
        run.log_artifact(draft).wait()
    assert draft.qualified_name == "default/uncategorized/m:v1"


def test_unchanged_new_draft_dedupes_to_its_base(tmp_path: Path) -> None:
    v0 = _log_dir(_tree(tmp_path / "src", 4))
    draft = v0.new_draft()
    with wandb.init(job_type="t") as run:
        again = run.log_artifact(draft).wait()
    assert again.name == "data:v0" and again.deduplicated


def test_remove_of_an_unknown_path_changes_nothing(tmp_path: Path) -> None:
    v0 = _log_dir(_tree(tmp_path / "src", 4))
    draft = v0.new_draft()
    before = dict(draft.manifest.entries)
    with pytest.raises(FileNotFoundError, match="no file or folder 'nope'"):
        draft.remove("nope")
    with pytest.raises(errors.EntryNotFoundError):
        draft.remove("su")  # a prefix of a folder's name is not the folder
    assert draft.manifest.entries == before
    draft.remove(draft.manifest.entries["f0.txt"])  # an entry object, as W&B accepts
    assert "f0.txt" not in draft.manifest.entries


def test_remove_on_a_logged_version_is_refused(tmp_path: Path) -> None:
    v0 = _log_dir(_tree(tmp_path / "src", 2))
    with pytest.raises(errors.ArtifactFinalizedError):
        v0.remove("f0.txt")


def test_new_draft_must_be_logged_where_its_base_is(tmp_path: Path, store_snapshot) -> None:  # type: ignore[no-untyped-def]
    v0 = _log_dir(_tree(tmp_path / "src", 2))
    draft = v0.new_draft()
    (tmp_path / "x.txt").write_text("x")
    draft.add_file(str(tmp_path / "x.txt"))
    before = store_snapshot()
    with (
        wandb.init(job_type="t", project="elsewhere") as run,
        pytest.raises(errors.InvalidArgumentError, match="must be logged there"),
    ):
        run.log_artifact(draft)
    assert store_snapshot()["files"] == before["files"]
    assert not wandb.Api().artifact_exists("elsewhere/data:v0")


def test_new_draft_of_a_draft_is_refused() -> None:
    with pytest.raises(errors.ArtifactNotLoggedError):
        wandb.Artifact("d", type="dataset").new_draft()


def test_incremental_log_merges_over_the_newest_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _log_dir(_tree(tmp_path / "src", 10))
    spy = KeySpy(monkeypatch)
    patch = wandb.Artifact("data", type="dataset", incremental=True)
    assert patch.incremental
    with patch.new_file("f1.txt") as handle:  # sub/f1.txt is another path: f1.txt is new
        handle.write("replaced")
    with patch.new_file("f0.txt") as handle:  # replaces f0.txt
        handle.write("replaced 0")
    with wandb.init(job_type="append") as run:
        v1 = run.log_artifact(patch).wait()
    assert v1.name == "data:v1" and v1.file_count == 11
    assert len(spy.blobs()) == 2
    logged = wandb.Api().artifact("data:latest")
    assert logged.digest == v1.digest
    out = Path(logged.download(root=str(tmp_path / "out")))
    assert (out / "f0.txt").read_text() == "replaced 0"
    assert (out / "sub" / "f1.txt").read_text() == "f 1"
    assert logged.verify(str(out)).checked == 11


def test_incremental_first_version_is_the_draft_alone() -> None:
    patch = wandb.Artifact("new-data", type="dataset", incremental=True)
    with patch.new_file("a.txt") as handle:
        handle.write("a")
    with wandb.init(job_type="t") as run:
        v0 = run.log_artifact(patch).wait()
    assert v0.name == "new-data:v0" and list(v0.manifest.entries) == ["a.txt"]


def test_concurrent_incremental_logs_keep_every_file() -> None:
    """Eight writers each add one file at the same time: the last version holds them all, as
    W&B's server merges each incremental commit with the newest version."""
    seed = wandb.Artifact("shared", type="dataset")
    with seed.new_file("seed.txt") as handle:
        handle.write("seed")
    with wandb.init(job_type="seed") as run:
        run.log_artifact(seed).wait()
    errors_seen: list[BaseException] = []

    def writer(index: int) -> None:
        try:
            patch = wandb.Artifact("shared", type="dataset", incremental=True)
            with patch.new_file(f"part-{index}.txt") as handle:
                handle.write(str(index))
            with start_run(Settings.resolve(), job_type="writer") as own:
                own.log_artifact(patch).wait()
        except BaseException as error:  # pragma: no cover - reported below
            errors_seen.append(error)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors_seen
    latest = wandb.Api().artifact("shared:latest")
    assert latest.version == "v8"
    assert set(latest.manifest.entries) == {"seed.txt", *(f"part-{i}.txt" for i in range(8))}


def test_incremental_with_another_digest_algorithm_is_refused(tmp_path: Path) -> None:
    _log_dir(_tree(tmp_path / "src", 2))
    patch = wandb.Artifact("data", type="dataset", incremental=True, digest_algorithm="xxh128")
    with patch.new_file("x.txt") as handle:
        handle.write("x")
    with (
        pytest.raises(errors.InvalidArgumentError, match="hashed with md5"),
        wandb.init(job_type="t") as run,
    ):
        run.log_artifact(patch).wait()
    assert [a.version for a in wandb.Api().artifacts("dataset", "data")] == ["v0"]


def test_incremental_or_derived_drafts_are_not_upserted() -> None:
    patch = wandb.Artifact("data", type="dataset", incremental=True)
    with patch.new_file("x.txt") as handle:
        handle.write("x")
    with (
        wandb.init(job_type="t", group="g") as run,
        pytest.raises(errors.InvalidArgumentError, match="log_artifact"),
    ):
        run.upsert_artifact(patch)


def test_new_draft_after_its_base_was_collected_is_a_clear_error(tmp_path: Path) -> None:
    """The base is deleted and gc frees its blobs before the draft is logged: the log names the
    problem and commits nothing, never a version whose files are gone."""
    v0 = _log_dir(_tree(tmp_path / "src", 3))
    draft = v0.new_draft()
    (tmp_path / "x.txt").write_text("x")
    draft.add_file(str(tmp_path / "x.txt"))
    v0.delete(delete_aliases=True)
    wandb.Api().gc(grace="0s")
    with (
        pytest.raises(errors.StorageError, match="gone from the store"),
        wandb.init(job_type="t") as run,
    ):
        run.log_artifact(draft).wait()
    assert not wandb.Api().artifact_exists("data:latest")


def test_new_draft_after_its_base_was_deleted_but_not_collected_logs(tmp_path: Path) -> None:
    v0 = _log_dir(_tree(tmp_path / "src", 3))
    draft = v0.new_draft()
    v0.delete(delete_aliases=True)
    (tmp_path / "x.txt").write_text("x")
    draft.add_file(str(tmp_path / "x.txt"))
    with wandb.init(job_type="t") as run:
        v1 = run.log_artifact(draft).wait()
    out = Path(v1.download(root=str(tmp_path / "out")))
    assert v1.verify(str(out)).checked == 4
