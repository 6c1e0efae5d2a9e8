"""The same flows on GCS (gcp-storage-emulator): a gs:// root, and gs:// references."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

import dagster_artifacts as wandb
from dagster_artifacts.api import Api
from dagster_artifacts.errors import (
    ArtifactError,
    ArtifactFileNotFoundError,
    ChecksumMismatchError,
    ReferenceLimitError,
    StorageError,
)
from dagster_artifacts.settings import Settings
from tests.services.gcs import GCSService

FILES = {
    "images/cat.png": b"cat-pixels",
    "images/dog.png": b"dog-pixels",
    "checkpoints/model.h5": b"checkpoint-weights",
    "model.h5": b"final-weights",
}


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


def gs_settings(gcs: GCSService, bucket: str, tmp_path: Path) -> Settings:
    return Settings.resolve(
        root=f"gs://{bucket}/artifacts",
        database=f"sqlite:///{tmp_path / 'registry.db'}",
        storage_options=gcs.storage_options,
    )


def make_files(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        (folder / f"file-{index:03d}.txt").write_text(f"file number {index}\n")
    return folder


def test_log_dedupe_and_download_on_gcs(gcs: GCSService, tmp_path: Path) -> None:
    bucket = gcs.make_bucket()
    settings = gs_settings(gcs, bucket, tmp_path)
    folder = make_files(tmp_path / "data", 8)
    for name in ("first", "second"):
        with wandb.init(settings=settings) as run:
            artifact = wandb.Artifact(name, type="dataset")
            artifact.add_dir(str(folder))
            run.log_artifact(artifact).wait()
    keys = gcs.keys(bucket, "artifacts/")
    assert len([k for k in keys if "/blobs/md5/" in k]) == 8  # shared by both artifacts
    assert len([k for k in keys if "/manifests/" in k]) == 1  # same content, same manifest

    fetched = Api(settings=settings).artifact("second:v0")
    root = Path(fetched.download(str(tmp_path / "out")))
    for source in folder.iterdir():
        assert (root / source.name).read_bytes() == source.read_bytes()
    assert fetched.verify(str(root))


def test_corrupted_blob_on_gcs_fails_download(gcs: GCSService, tmp_path: Path) -> None:
    bucket = gcs.make_bucket()
    settings = gs_settings(gcs, bucket, tmp_path)
    folder = make_files(tmp_path / "data", 1)
    with wandb.init(settings=settings) as run:
        artifact = wandb.Artifact("dataset", type="dataset")
        artifact.add_dir(str(folder))
        run.log_artifact(artifact).wait()
    (blob,) = [k for k in gcs.keys(bucket, "artifacts/") if "/blobs/" in k]
    gcs.put(bucket, blob, b"file number 7\n")
    with pytest.raises(ChecksumMismatchError, match=f"gs://{bucket}/{blob}"):
        Api(settings=settings).artifact("dataset:v0").download(str(tmp_path / "out"))


def test_missing_gcs_bucket_commits_nothing(gcs: GCSService, tmp_path: Path) -> None:
    settings = gs_settings(gcs, "no-such-gcs-bucket", tmp_path)
    folder = make_files(tmp_path / "data", 2)
    with (
        pytest.raises(StorageError, match="gs://no-such-gcs-bucket/artifacts"),
        wandb.init(settings=settings) as run,
    ):
        artifact = wandb.Artifact("dataset", type="dataset")
        artifact.add_dir(str(folder))
        run.log_artifact(artifact).wait()
    with pytest.raises(ArtifactError):
        Api(settings=settings).artifact("dataset:latest")


@pytest.fixture
def gcs_bucket(gcs: GCSService) -> str:
    bucket = gcs.make_bucket()
    for key, data in FILES.items():
        gcs.put(bucket, key, data)
    return bucket


@pytest.mark.parametrize(
    ("uri", "name", "expected"),
    [
        ("model.h5", None, {"model.h5": "model.h5"}),
        ("checkpoints/model.h5", None, {"model.h5": "checkpoints/model.h5"}),
        ("model.h5", "models/mymodel.h5", {"models/mymodel.h5": "model.h5"}),
        ("images", None, {"cat.png": "images/cat.png", "dog.png": "images/dog.png"}),
        (
            "images",
            "images",
            {"images/cat.png": "images/cat.png", "images/dog.png": "images/dog.png"},
        ),
    ],
    ids=["object", "nested-object", "renamed-object", "prefix", "named-prefix"],
)
def test_gcs_reference_table(
    gcs_bucket: str, tmp_path: Path, uri: str, name: str | None, expected: dict[str, str]
) -> None:
    """Only STORAGE_EMULATOR_HOST is set (by the fixture): the handler finds the emulator."""
    artifact = wandb.Artifact("gs-table", type="dataset")
    artifact.add_reference(f"gs://{gcs_bucket}/{uri}", name=name)
    with wandb.init() as run:
        run.log_artifact(artifact).wait()
    fetched = Api().artifact("gs-table:latest")
    entries = fetched.manifest.entries
    assert sorted(entries) == sorted(expected)
    for path, key in expected.items():
        entry = entries[path]
        assert entry.ref == f"gs://{gcs_bucket}/{key}"
        assert set(entry.extra) == {"versionID"}  # W&B's GCS entry: the generation, no etag
        assert entry.size == len(FILES[key])
    root = Path(fetched.download(str(tmp_path / "out")))
    for path, key in expected.items():
        assert (root / path).read_bytes() == FILES[key]


def test_changed_gcs_object_fails_download(
    gcs: GCSService, gcs_bucket: str, tmp_path: Path
) -> None:
    artifact = wandb.Artifact("changing", type="dataset")
    artifact.add_reference(f"gs://{gcs_bucket}/model.h5")
    with wandb.init() as run:
        run.log_artifact(artifact).wait()
    gcs.put(gcs_bucket, "model.h5", b"retrained-weights")
    with pytest.raises(ChecksumMismatchError, match="changed since it was referenced"):
        Api().artifact("changing:v0").download(str(tmp_path / "out"))
    assert not (tmp_path / "out" / "model.h5").exists()


def test_gcs_prefix_limit_and_deleted_object(
    gcs: GCSService, gcs_bucket: str, tmp_path: Path
) -> None:
    artifact = wandb.Artifact("limits", type="dataset")
    with pytest.raises(ReferenceLimitError, match="max_objects=1"):
        artifact.add_reference(f"gs://{gcs_bucket}/images", max_objects=1)
    assert artifact.manifest.entries == {}
    artifact.add_reference(f"gs://{gcs_bucket}/images")
    with wandb.init() as run:
        run.log_artifact(artifact).wait()
    gcs.fs.rm(f"{gcs_bucket}/images/cat.png")
    with pytest.raises(ArtifactFileNotFoundError, match=f"gs://{gcs_bucket}/images/cat.png"):
        Api().artifact("limits:v0").download(str(tmp_path / "out"))


def test_fixed_key_metadata_reaches_every_object(gcs: GCSService, tmp_path: Path) -> None:
    """GCS per-object options (fixed_key_metadata, kms_key_name) go with each write."""
    bucket = gcs.make_bucket()
    settings = Settings.resolve(
        root=f"gs://{bucket}/artifacts",
        database=f"sqlite:///{tmp_path / 'registry.db'}",
        storage_options={
            **gcs.storage_options,
            "fixed_key_metadata": {"cache_control": "no-store"},
        },
    )
    gcs.put(bucket, "external/notes.txt", b"notes")
    with wandb.init(settings=settings) as run:
        artifact = wandb.Artifact("dataset", type="dataset")
        artifact.add_dir(str(make_files(tmp_path / "data", 2)))
        artifact.add_reference(f"gs://{bucket}/external/notes.txt")  # same store's options
        run.log_artifact(artifact).wait()
    keys = gcs.keys(bucket, "artifacts/")
    assert len(keys) == 3
    fs = gcs.fs
    for key in keys:
        assert fs.info(f"{bucket}/{key}").get("cacheControl") == "no-store", key
    root = Path(Api(settings=settings).artifact("dataset:v0").download(str(tmp_path / "out")))
    assert sorted(p.name for p in root.iterdir()) == ["file-000.txt", "file-001.txt", "notes.txt"]


def test_versioned_gcs_bucket_records_the_generation(gcs: GCSService, tmp_path: Path) -> None:
    """The emulator keeps no old generations, so this checks recording and fetching by it."""
    bucket = gcs.make_bucket(versioned=True)
    gcs.put(bucket, "data/table.csv", b"a,b\n1,2\n")
    generation = str(gcs.fs.info(f"{bucket}/data/table.csv")["generation"])
    artifact = wandb.Artifact("gs-versioned", type="dataset")
    artifact.add_reference(f"gs://{bucket}/data/table.csv")
    artifact.add_reference(f"gs://{bucket}/data", name="all")
    with wandb.init() as run:
        run.log_artifact(artifact).wait()
    fetched = Api().artifact("gs-versioned:v0")
    for path in ("table.csv", "all/table.csv"):
        assert fetched.manifest.entries[path].extra == {"versionID": int(generation)}  # as W&B
    root = Path(fetched.download(str(tmp_path / "out")))
    assert (root / "table.csv").read_bytes() == b"a,b\n1,2\n"
    assert (root / "all" / "table.csv").read_bytes() == b"a,b\n1,2\n"


def test_packs_on_gcs_round_trip(gcs: GCSService, tmp_path: Path) -> None:
    """Store format v2 on GCS: many small files go up as one pack and its index, and come
    back as ranged reads of it."""
    bucket = gcs.make_bucket()
    settings = gs_settings(gcs, bucket, tmp_path)
    folder = make_files(tmp_path / "data", 150)
    with wandb.init(settings=settings) as run:
        artifact = wandb.Artifact("many", type="dataset")
        artifact.add_dir(str(folder))
        run.log_artifact(artifact).wait()
    keys = gcs.keys(bucket, "artifacts/")
    assert not [k for k in keys if "/blobs/" in k]
    assert len([k for k in keys if k.endswith(".pack")]) == 1
    fetched = Api(settings=settings).artifact("many:v0")
    root = Path(fetched.download(str(tmp_path / "out")))
    assert fetched.verify(str(root)).checked == 150
    assert (root / "file-077.txt").read_text() == "file number 77\n"
