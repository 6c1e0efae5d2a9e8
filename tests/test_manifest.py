"""The W&B v1 manifest format."""

from __future__ import annotations

import json

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
