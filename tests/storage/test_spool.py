"""Large manifests and leases go through a spool file instead of memory; small ones never touch
disk. Both store exactly the bytes the one-shot encoders make."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

import dagster_artifacts as wandb
from dagster_artifacts.storage import open_blob_store, spool
from dagster_artifacts.storage.layout import LEASES, manifest_key
from dagster_artifacts.storage.protection import _lease_chunks, protect_reuse
from dagster_artifacts.storage.spool import Spool
from tests.lifecycle_helpers import store


def test_a_small_spool_stays_in_memory(tmp_path: Path) -> None:
    blobs = open_blob_store(str(tmp_path / "store"))
    with Spool([b"small ", b"object"], str(tmp_path / "spool")) as data:
        assert not (tmp_path / "spool").exists()  # no folder, no file: nothing on disk
        data.put(blobs, "objects/one")
        assert data.md5 == hashlib.md5(b"small object").hexdigest()
    assert blobs.read_bytes("objects/one") == b"small object"


def test_a_large_spool_goes_to_a_file_that_is_stored_then_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spool, "SPOOL_LIMIT", 10)
    blobs = open_blob_store(str(tmp_path / "store"))
    chunks = [b"0123456789", b"abcdefghij", b"tail"]
    with Spool(chunks, str(tmp_path / "spool")) as data:
        [held] = os.listdir(tmp_path / "spool")
        assert (tmp_path / "spool" / held).read_bytes() == b"".join(chunks)
        data.put(blobs, "objects/big")
        assert (data.md5, data.size) == (hashlib.md5(b"".join(chunks)).hexdigest(), 24)
    assert blobs.read_bytes("objects/big") == b"".join(chunks)
    assert os.listdir(tmp_path / "spool") == []


def test_a_spool_whose_chunks_fail_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spool, "SPOOL_LIMIT", 4)

    def chunks():  # type: ignore[no-untyped-def]
        yield b"more than four bytes"
        raise RuntimeError("encoding failed")

    with pytest.raises(RuntimeError, match="encoding failed"):
        Spool(chunks(), str(tmp_path / "spool"))
    assert os.listdir(tmp_path / "spool") == []


def test_a_lease_is_the_json_gc_reads_whatever_its_size() -> None:
    keys = [f"blobs/md5/{n:02x}/{'é' if n % 7 == 0 else 'x'}{n}" for n in range(25_003)]
    assert b"".join(_lease_chunks(keys)) == json.dumps({"keys": keys}).encode()
    assert b"".join(_lease_chunks([])) == json.dumps({"keys": []}).encode()


def test_a_spooled_lease_is_stored_whole_and_removed_after_the_commit(
    isolated_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spool, "SPOOL_LIMIT", 64)
    blobs = store().blobs
    keys = [f"blobs/md5/ab/{n:030d}" for n in range(100)]
    with protect_reuse(blobs, keys, spool_dir=str(tmp_path / "spool")):
        [lease] = [item.key for item in blobs.listing(LEASES)]
        assert json.loads(blobs.read_bytes(lease)) == {"keys": keys}
        assert os.listdir(tmp_path / "spool") == []  # stored, so no longer held
    assert list(blobs.listing(LEASES)) == []


def test_a_log_with_a_spooled_manifest_reads_back_and_is_named_by_its_bytes(
    isolated_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A manifest past the limit (here 1 KiB: 200 entries) is written from its spool file; its
    key is the MD5 of the stored bytes, which are to_bytes(); no spool file is left behind."""
    monkeypatch.setattr(spool, "SPOOL_LIMIT", 1024)
    folder = tmp_path / "data"
    folder.mkdir()
    for n in range(200):
        (folder / f"part-{n:03d}.txt").write_text(f"record {n}")
    with wandb.init(job_type="writer") as run:
        artifact = wandb.Artifact("spooled", type="dataset")
        artifact.add_dir(str(folder))
        run.log_artifact(artifact).wait()
    logged = wandb.Api().artifact("spooled:latest")
    [record] = store().registry.list_versions(logged.entity, logged.project, "spooled")
    stored = store().blobs.read_bytes(record.manifest_key)
    assert record.manifest_key == manifest_key(stored)
    assert stored == artifact.manifest.to_bytes()
    out = Path(logged.download(root=str(tmp_path / "out")))
    assert (out / "part-123.txt").read_text() == "record 123"
    staging = Path(store().settings.cache_dir) / "staging"
    assert [path for path in staging.iterdir() if path.is_file()] == []
