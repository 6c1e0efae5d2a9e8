"""The W&B v1 manifest format."""

from __future__ import annotations

import json
import re
from typing import Any

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
    monkeypatch.setattr(manifest_module, "STREAM_PARSE_FROM", 0)
    entries = {}
    for index in range(count):
        path = f'dir {index % 3}/é\\"\t😀{index}.bin'
        entries[path] = ManifestEntry(
            path=path,
            digest=f"digest{index}==",
            size=None if index % 7 == 3 else index * 10**12,
            ref="s3://bucket/key" if index % 4 == 0 else None,
            extra={"etag": "x", "versionID": "v"} if index % 3 == 0 else {},
            birth_artifact_id="QXJ0aWZhY3Q6MQ==" if index % 5 == 0 else None,
        )
    for algorithm in ("md5", "xxh128"):
        manifest = Manifest(entries=entries, digest_algorithm=algorithm)
        one_shot = json.dumps(manifest.to_json(), sort_keys=True, separators=(",", ":"))
        assert manifest.to_bytes() == one_shot.encode("utf-8")
        assert Manifest.from_bytes(manifest.to_bytes()) == manifest


def _document(**changes: object) -> dict[str, object]:
    document: dict[str, object] = {
        "version": 1,
        "storagePolicy": "wandb-storage-policy-v1",
        "storagePolicyConfig": {"storageLayout": "V2"},
        "contents": {
            "a.txt": {"digest": "XUFAKrxLKna5cZ2REBfFkg==", "size": 5},
            "dir/b.bin": {"digest": "1B2M2Y8AsgTpgAmY7PhCfg==", "size": 0, "extra": {"x": 1}},
            "ref": {"digest": "etag", "ref": "s3://bucket/key", "birthArtifactID": "QQ=="},
        },
    }
    document.update(changes)
    return document


@pytest.mark.parametrize(
    "encode",
    [
        lambda d: json.dumps(d, sort_keys=True, separators=(",", ":")),  # as this project writes
        lambda d: json.dumps(d, indent=2),  # as W&B writes, contents not first
        lambda d: " \n" + json.dumps(d, indent="\t", sort_keys=True) + "\r\n ",
    ],
)
def test_a_manifest_is_read_entry_by_entry_to_what_a_one_shot_parse_gives(
    encode: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster_artifacts import manifest as manifest_module

    monkeypatch.setattr(manifest_module, "STREAM_PARSE_FROM", 0)  # every size, entry by entry
    raw = encode(_document()).encode("utf-8")
    assert manifest_module._parse_streaming(raw.decode()) is not None  # not the fallback
    assert Manifest.from_bytes(raw) == Manifest.from_json(json.loads(raw))
    assert list(Manifest.from_bytes(raw).entries) == ["a.txt", "dir/b.bin", "ref"]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (_document(version=2, contents={"a": {"no": "digest"}}), "manifest version 2"),
        (_document(contents={"a": {"size": 1}}), "has no digest"),
        (_document(contents={"a\u0000b": {"digest": "x"}}), "NUL byte"),
        # the usual two-key shape, with something wrong in it
        (_document(contents={"a": {"digest": "", "size": 1}}), "has no digest"),
        (_document(contents={"a": {"digest": "x", "size": -1}}), "has size -1"),
        (_document(contents={"a": {"digest": "x", "size": True}}), "has size True"),
        (_document(contents={"a": {"digest": "x", "size": 1.5}}), "has size 1.5"),
        (_document(contents={"a": {"digest": 7, "size": 1}}), "has no digest"),
        (_document(contents={"a\u0000b": {"digest": "x", "size": 1}}), "NUL byte"),
        (_document(contents="x"), "not an object"),
        ([1, 2], "not an object"),
    ],
)
def test_a_bad_manifest_read_entry_by_entry_fails_as_before(
    document: Any, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster_artifacts import manifest as manifest_module

    monkeypatch.setattr(manifest_module, "STREAM_PARSE_FROM", 0)
    raw = json.dumps(document, sort_keys=True).encode()
    with pytest.raises(ValueError, match=re.escape(message)):
        Manifest.from_bytes(raw)
    with pytest.raises(ValueError, match=re.escape(message)):
        Manifest.from_json(json.loads(raw))


def test_a_manifest_with_a_repeated_contents_key_reads_as_json_loads_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dagster_artifacts import manifest as manifest_module

    monkeypatch.setattr(manifest_module, "STREAM_PARSE_FROM", 0)
    raw = b'{"contents":{"a":{"digest":"x"}},"version":1,"contents":{"b":{"digest":"y"}}}'
    assert list(Manifest.from_bytes(raw).entries) == ["b"]
    assert Manifest.from_bytes(raw) == Manifest.from_json(json.loads(raw))
