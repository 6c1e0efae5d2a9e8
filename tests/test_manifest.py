"""The W&B v1 manifest format."""

from __future__ import annotations

import json

import pytest

from dagster_artifacts.manifest import Manifest, ManifestEntry


def test_manifest_json_has_wandb_v1_shape_and_round_trips() -> None:
    manifest = Manifest()
    manifest.entries["file1.txt"] = ManifestEntry("file1.txt", "XUFAKrxLKna5cZ2REBfFkg==", 5)
    manifest.entries["ref.bin"] = ManifestEntry(
        "ref.bin", "etag123", 10, ref="https://example.test/ref.bin", extra={"etag": "etag123"}
    )
    data = json.loads(manifest.to_bytes())
    assert data == {
        "version": 1,
        "storagePolicy": "wandb-storage-policy-v1",
        "storagePolicyConfig": {"storageLayout": "V2"},
        "contents": {
            "file1.txt": {"digest": "XUFAKrxLKna5cZ2REBfFkg==", "size": 5},
            "ref.bin": {
                "digest": "etag123",
                "size": 10,
                "ref": "https://example.test/ref.bin",
                "extra": {"etag": "etag123"},
            },
        },
    }
    again = Manifest.from_bytes(manifest.to_bytes())
    assert again.entries == manifest.entries
    assert again.digest() == manifest.digest()


def test_manifest_digest_equals_wandb_golden_value() -> None:
    manifest = Manifest()
    manifest.entries["file1.txt"] = ManifestEntry("file1.txt", "XUFAKrxLKna5cZ2REBfFkg==", 5)
    assert manifest.digest() == "a00c2239f036fb656c1dcbf9a32d89b4"


def test_xxh128_manifest_records_its_algorithm() -> None:
    manifest = Manifest(digest_algorithm="xxh128")
    assert json.loads(manifest.to_bytes())["storagePolicyConfig"]["digestAlgorithm"] == "xxh128"
    assert Manifest.from_bytes(manifest.to_bytes()).digest_algorithm == "xxh128"


@pytest.mark.parametrize("count", [0, 1, 7, 23])
def test_the_stored_form_is_written_in_batches_to_exactly_the_one_shot_bytes(
    monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    """A million-entry manifest is encoded a batch at a time; the bytes (and so its key and
    W&B's reading of it) must be those of encoding the whole document at once, also across
    batch boundaries, for every kind of entry."""
    from dagster_artifacts import manifest as manifest_module

    monkeypatch.setattr(manifest_module, "_ENCODE_BATCH", 5)
    entries = {}
    for index in range(count):
        path = f"dir {index % 3}/é\\\"{index}.bin"
        entries[path] = ManifestEntry(
            path=path,
            digest=f"digest{index}==",
            size=index,
            ref="s3://bucket/key" if index % 4 == 0 else None,
            extra={"etag": "x", "versionID": "v"} if index % 3 == 0 else {},
            birth_artifact_id="QXJ0aWZhY3Q6MQ==" if index % 5 == 0 else None,
        )
    for algorithm in ("md5", "xxh128"):
        manifest = Manifest(entries=entries, digest_algorithm=algorithm)
        one_shot = json.dumps(manifest.to_json(), sort_keys=True, separators=(",", ":"))
        assert manifest.to_bytes() == one_shot.encode("utf-8")
        assert Manifest.from_bytes(manifest.to_bytes()) == manifest
