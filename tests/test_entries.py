"""Reading a logged version's files the W&B way: ``artifact.file()`` and ``artifact.checkout()``,
and ``files()`` paging arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

import dagster_artifacts as wandb
from dagster_artifacts import errors


def _log(files: dict[str, str], name: str = "data") -> wandb.Artifact:
    with wandb.init(job_type="t") as run:
        artifact = wandb.Artifact(name, type="dataset")
        for path, text in files.items():
            with artifact.new_file(path) as handle:
                handle.write(text)
        return run.log_artifact(artifact).wait()


def test_file_downloads_the_one_file(tmp_path: Path) -> None:
    _log({"model.bin": "weights"}, name="model")
    path = wandb.Api().artifact("model:latest").file(str(tmp_path / "out"))
    assert Path(path) == tmp_path / "out" / "model.bin"
    assert Path(path).read_text() == "weights"
    default = Path(wandb.Api().artifact("model:latest").file())
    assert default.read_text() == "weights" and default.parent.name == "model:v0"


def test_file_of_several_files_is_refused(tmp_path: Path) -> None:
    _log({"a.txt": "a", "b.txt": "b"})
    with pytest.raises(errors.InvalidArgumentError, match="single-file") as raised:
        wandb.Api().artifact("data:latest").file(str(tmp_path / "out"))
    assert isinstance(raised.value, ValueError)  # W&B raises ValueError
    assert not (tmp_path / "out").exists()


def test_checkout_makes_the_folder_hold_exactly_the_version(tmp_path: Path) -> None:
    _log({"a.txt": "a", "sub/b.txt": "b"})
    _log({"a.txt": "a2", "c.txt": "c"})
    root = tmp_path / "work"
    first = Path(wandb.Api().artifact("data:v0").checkout(str(root)))
    assert first == root
    (root / "mine.txt").write_text("not in the artifact")
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == [
        "a.txt",
        "mine.txt",
        "sub/b.txt",
    ]
    wandb.Api().artifact("data:v1").checkout(str(root))
    files = {p.relative_to(root).as_posix(): p.read_text() for p in root.rglob("*") if p.is_file()}
    assert files == {"a.txt": "a2", "c.txt": "c"}


def test_checkout_defaults_to_the_collection_folder() -> None:
    artifact = _log({"a.txt": "a"})
    root = Path(wandb.Api().artifact("data:v0").checkout())
    assert root.name == "data" and (root / "a.txt").read_text() == "a"
    assert artifact.name == "data:v0"


def test_checkout_refuses_the_home_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "precious.txt").write_text("keep")
    monkeypatch.setenv("HOME", str(home))
    _log({"a.txt": "a"})
    with pytest.raises(errors.InvalidArgumentError, match="delete every other file"):
        wandb.Api().artifact("data:v0").checkout(str(home))
    assert (home / "precious.txt").read_text() == "keep"


def test_files_paging_arguments() -> None:
    _log({"a.txt": "a", "b.txt": "b"})
    artifact = wandb.Api().artifact("data:v0")
    assert [f.path for f in artifact.files(per_page=1)] == ["a.txt", "b.txt"]
    with pytest.raises(errors.NotApplicableError, match="slice"):
        artifact.files(start="cursor")
