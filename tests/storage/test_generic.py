"""The ``memory://`` store: the whole API in one process, registry included, nothing on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

import dagster_artifacts as wandb


@pytest.fixture
def memory_root(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    root = f"memory://{request.node.name}"
    monkeypatch.setenv("DAGSTER_ARTIFACTS_ROOT", root)
    return root


def test_log_use_download_on_memory_store(
    memory_root: str, tmp_path: Path, isolated_store: Path
) -> None:
    (tmp_path / "f.txt").write_text("hello")
    with wandb.init(job_type="mem") as run:
        for i in range(5):
            artifact = wandb.Artifact("mem", type="dataset")
            artifact.add_file(str(tmp_path / "f.txt"))
            with artifact.new_file("i.txt") as handle:
                handle.write(str(i))
            run.log_artifact(artifact)
    with wandb.init(job_type="read") as run:
        used = run.use_artifact("mem:v3")
        folder = Path(used.download(root=tmp_path / "out"))
    assert (folder / "i.txt").read_text() == "3"
    assert [v.name for v in wandb.Api().artifact_versions("dataset", "mem")] == [
        f"mem:v{i}" for i in range(5)
    ]
    assert not isolated_store.exists()  # nothing went to the local default
    import fsspec

    assert fsspec.filesystem("memory").exists(f"/{memory_root.removeprefix('memory://')}/blobs")
