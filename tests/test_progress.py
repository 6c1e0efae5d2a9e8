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


def test_python_api_logging_reports_hashing_and_storing(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    for index in range(3):
        (folder / f"part-{index}.bin").write_bytes(bytes([index]) * 1_000_000)
    monkeypatch.setenv("DAGSTER_ARTIFACTS_PROGRESS", "1")
    import dagster_artifacts.progress as progress

    monkeypatch.setattr(progress, "DEFAULT_DELAY", 0.0)  # show at once
    with wandb.init(job_type="t") as run:
        artifact = wandb.Artifact("parts", type="dataset")
        artifact.add_dir(str(folder))
        run.log_artifact(artifact).wait()
    out, err = capfd.readouterr()
    assert out == ""
    assert "Hashing 3 files" in err and "Storing 3 files" in err
    assert "3.0 MB" in err  # byte bars: the three files' total


def test_byte_callback_sums_what_threads_report_and_is_silent_when_off(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from dagster_artifacts.progress import byte_callback

    monkeypatch.setenv("DAGSTER_ARTIFACTS_PROGRESS", "1")
    with byte_callback("Hashing 8000 files", 8000, interval=0.01, delay=0) as callback:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _i: callback.relative_update(1), range(8000)))
        assert callback.value == 8000  # no update lost between threads
        time.sleep(0.05)
    assert "Hashing 8000 files" in capfd.readouterr().err
    monkeypatch.setenv("DAGSTER_ARTIFACTS_PROGRESS", "0")
    with byte_callback("off", 10, delay=0) as callback:
        callback.relative_update(10)
        time.sleep(0.05)
    assert capfd.readouterr() == ("", "")
