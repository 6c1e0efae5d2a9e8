"""BlobStore's batched transfers on every kind of store: skip what is there, verify what comes back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dagster_artifacts.digests import digest_file
from dagster_artifacts.errors import ChecksumMismatchError
from dagster_artifacts.storage import BlobDownload, BlobStore, BlobUpload, open_blob_store
from dagster_artifacts.storage.layout import blob_key


@pytest.fixture(params=["local", "memory", "s3", "gcs"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    kind = request.param
    if kind == "local":
        return open_blob_store(str(tmp_path / "store"))
    if kind == "memory":
        return open_blob_store(f"memory://batching-{tmp_path.name}")
    service: Any = request.getfixturevalue("s3" if kind == "s3" else "gcs")
    bucket = service.make_bucket()
    scheme = "s3" if kind == "s3" else "gs"
    return open_blob_store(f"{scheme}://{bucket}/root", service.storage_options, batch_size=8)


def uploads_for(store: BlobStore, folder: Path, count: int) -> list[BlobUpload]:
    folder.mkdir(parents=True, exist_ok=True)
    uploads = []
    for index in range(count):
        path = folder / f"f{index:03d}.bin"
        path.write_bytes(f"payload {index}".encode() * 10)
        digest, _size = digest_file(str(path))
        uploads.append(BlobUpload(str(path), blob_key(digest), digest))
    return uploads


def test_put_files_writes_only_missing_blobs(store: BlobStore, tmp_path: Path) -> None:
    uploads = uploads_for(store, tmp_path / "src", 25)
    assert store.existing(u.key for u in uploads) == set()
    assert store.put_files(uploads[:5]) == 5
    assert store.existing(u.key for u in uploads) == {u.key for u in uploads[:5]}
    assert store.put_files(uploads + uploads[:3]) == 20  # duplicates collapse, present skipped
    assert store.put_files(uploads) == 0
    assert sorted(item.key for item in store.listing("blobs")) == sorted(u.key for u in uploads)


def test_get_files_round_trip_and_refuses_damaged_blob(store: BlobStore, tmp_path: Path) -> None:
    uploads = uploads_for(store, tmp_path / "src", 6)
    store.put_files(uploads)
    downloads = [
        BlobDownload(u.key, str(tmp_path / "out" / Path(u.local_path).name), u.digest or "")
        for u in uploads
    ]
    store.get_files(downloads)
    for upload, download in zip(uploads, downloads, strict=True):
        assert Path(download.dest).read_bytes() == Path(upload.local_path).read_bytes()

    damaged = uploads[0]
    store.delete_many([damaged.key])
    store.put_bytes(b"not the payload", damaged.key)
    dest = tmp_path / "again" / "f000.bin"
    with pytest.raises(ChecksumMismatchError, match=damaged.key):
        store.get_files([BlobDownload(damaged.key, str(dest), damaged.digest or "")])
    assert not dest.exists()
    assert list((tmp_path / "again").iterdir()) == []  # no temporary file left behind


def test_stored_digests_answers_alike_for_few_and_many(store: BlobStore, tmp_path: Path) -> None:
    """Asked about a few digests (a check per blob) or many (a listing per fan-out folder, on a
    local store), the answer is the same; a malformed digest is simply not stored."""
    uploads = uploads_for(store, tmp_path / "src", 600)
    store.put_files(uploads[:300])
    stored = {u.digest for u in uploads[:300]}
    absent = {u.digest for u in uploads[300:]}
    assert store.stored_digests(stored | absent | {"not base64!"}) == stored
    few = {uploads[0].digest, uploads[450].digest}
    assert store.stored_digests(few) == {uploads[0].digest}
    assert store.stored_digests(set()) == set()
