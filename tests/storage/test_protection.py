"""gc's batch markers and writers' leases on a local store: a dead gc never holds writers up for
long, a live one always does, and a gc that cannot keep its marker fresh deletes nothing.
Temp files of live writers are not part of the store; a dead writer's are garbage."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import dagster_artifacts as wandb
from dagster_artifacts.errors import StorageError
from dagster_artifacts.garbage import gc
from dagster_artifacts.storage import protection
from dagster_artifacts.storage.layout import GC_MARKERS, blob_key
from dagster_artifacts.storage.protection import deletion_batch
from dagster_artifacts.storage.scratch import host_tag, owner_tag, temp_path_beside
from tests.lifecycle_helpers import log, store

CONTENT = {"data.txt": "bytes an old version had", "more.txt": "and some more"}


def _orphan_keys() -> list[str]:
    """Log CONTENT, delete the version: its blobs are orphans gc may collect."""
    artifact = log("a", CONTENT)
    keys = [blob_key(entry.digest) for entry in artifact.manifest.entries.values()]
    artifact.delete(delete_aliases=True)
    return keys


def _timed_relog() -> float:
    started = time.monotonic()
    log("a", CONTENT)
    return time.monotonic() - started


def _downloads_whole(tmp_path: Path) -> None:
    artifact = wandb.Api().artifact("a:latest")
    folder = artifact.download(root=str(tmp_path / "check"))
    assert artifact.verify(folder).checked == len(CONTENT)


def test_a_silent_marker_of_another_host_holds_a_writer_only_until_it_goes_silent(
    isolated_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gc on another machine that died mid-batch: its owner cannot be asked, so the writer
    waits until the marker has not been rewritten for MARKER_SILENCE, then goes on."""
    monkeypatch.setattr(protection, "MARKER_SILENCE", protection.MARKER_SILENCE / 30)  # 1 s
    keys = _orphan_keys()
    marker = {"keys": keys, "owner": "another_machine-4242-4026531836"}
    store().blobs.put_bytes(json.dumps(marker).encode(), f"{GC_MARKERS}/dead.json")

    waited = _timed_relog()
    assert 1.0 <= waited < 10.0
    _downloads_whole(tmp_path)


def test_a_live_gc_holds_writers_for_its_whole_batch_however_long(
    isolated_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The heartbeat: a batch that runs three times the silence keeps the writer waiting."""
    monkeypatch.setattr(protection, "MARKER_SILENCE", protection.MARKER_SILENCE / 30)  # 1 s
    monkeypatch.setattr(protection, "MARKER_HEARTBEAT", protection.MARKER_HEARTBEAT / 15)  # 0.2
    keys = _orphan_keys()
    announced = threading.Event()

    def long_batch() -> None:
        with deletion_batch(store().blobs, keys):
            announced.set()
            time.sleep(3.0)
        # (deletes nothing: the writer must still find its blobs, or upload them again)

    batch = threading.Thread(target=long_batch)
    batch.start()
    assert announced.wait(10)
    waited = _timed_relog()
    batch.join()
    assert waited >= 2.5, f"the writer went on after {waited:.1f} s while the batch ran 3 s"
    _downloads_whole(tmp_path)


def test_gc_that_cannot_refresh_its_marker_deletes_nothing(
    isolated_store: Path, monkeypatch: pytest.MonkeyPatch, store_snapshot: Any
) -> None:
    """If writers may already take it for dead, gc must not delete: it stops and says so."""
    _orphan_keys()
    monkeypatch.setattr(protection, "MARKER_FRESH", protection.MARKER_FRESH * 0)
    before = store_snapshot()
    with pytest.raises(StorageError, match="gc stopped before deleting"):
        gc(store(), grace="0")
    assert store_snapshot() == before


def _dead_pid() -> int:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(child.stdout)


def test_temp_files_of_live_writers_are_not_listed_and_dead_ones_are_collected(
    isolated_store: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log("kept", {"f": "live"})
    blobs = store().blobs
    live_blob = Path(temp_path_beside(blobs.path(blob_key("1B2M2Y8AsgTpgAmY7PhCfg=="))))
    live_manifest = Path(temp_path_beside(blobs.path("manifests/" + "0" * 32 + ".json")))
    dead_tag = f"{host_tag()}-{_dead_pid()}-{owner_tag().split('-')[2]}-cafe-0"
    dead_blob = live_blob.with_name(f".abc.tmp-{dead_tag}")
    dead_manifest = live_manifest.with_name(f".{'1' * 32}.json.tmp-{dead_tag}")
    for path in (live_blob, live_manifest, dead_blob, dead_manifest):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("half written")

    listed = {item.key for prefix in ("blobs", "manifests") for item in blobs.listing(prefix)}
    assert not any(
        str(live_blob).endswith(key) or str(live_manifest).endswith(key) for key in listed
    )
    assert any(str(dead_blob).endswith(key) for key in listed)

    with caplog.at_level(logging.WARNING):
        report = gc(store(), grace="0")
    assert (report.blobs_deleted, report.manifests_deleted) == (1, 1)
    assert not dead_blob.exists() and not dead_manifest.exists()
    assert live_blob.exists() and live_manifest.exists()  # a live writer is still filling them
    assert caplog.records == [], [record.getMessage() for record in caplog.records]
    assert Path(wandb.Api().artifact("kept:v0").download(), "f").read_text() == "live"
