"""Progress bars: on stderr, only when watched or forced, never on stdout."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import dagster_artifacts as wandb
from dagster_artifacts.progress import progress_enabled, watch_folder


def test_watch_folder_draws_a_byte_bar_on_stderr_when_forced(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("DAGSTER_ARTIFACTS_PROGRESS", "1")
    with watch_folder("Downloading 1 files", str(tmp_path), 4000, interval=0.02, delay=0):
        time.sleep(0.1)
        (tmp_path / "x").write_bytes(b"x" * 4000)
        time.sleep(0.1)
    out, err = capfd.readouterr()
    assert out == ""
    assert "Downloading 1 files" in err and "4.0 kB" in err


def test_quick_work_and_unwatched_work_print_nothing(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("DAGSTER_ARTIFACTS_PROGRESS", "1")
    with watch_folder("quick", str(tmp_path), 10, delay=5):  # done before the bar would appear
        (tmp_path / "y").write_bytes(b"y" * 10)
    monkeypatch.setenv("DAGSTER_ARTIFACTS_PROGRESS", "0")
    assert not progress_enabled()
    with watch_folder("off", str(tmp_path), 10, delay=0):
        time.sleep(0.05)
    assert capfd.readouterr() == ("", "")


def test_python_api_download_reports_progress(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with wandb.init(job_type="t") as run:
        artifact = wandb.Artifact("big", type="blob")
        with artifact.new_file("big.bin", mode="wb") as handle:
            handle.write(b"z" * 3_000_000)
        run.log_artifact(artifact).wait()
    capfd.readouterr()
    monkeypatch.setenv("DAGSTER_ARTIFACTS_PROGRESS", "1")
    import dagster_artifacts.progress as progress

    monkeypatch.setattr(progress, "DEFAULT_DELAY", 0.0)  # show at once
    wandb.Api().artifact("big:v0").download(root=str(tmp_path / "out"))
    out, err = capfd.readouterr()
    assert "Downloading 1 files" in err and out == ""
