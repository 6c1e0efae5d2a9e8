"""``add_reference("s3://...")`` against moto: the seed's table, versions, limits and changes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import dagster_artifacts as wandb
from dagster_artifacts.api import Api
from dagster_artifacts.errors import (
    ArtifactFileNotFoundError,
    ChecksumMismatchError,
    ReferenceLimitError,
    StorageError,
)
from tests.services.s3 import S3Service

FILES = {
    "images/cat.png": b"cat-pixels",
    "images/dog.png": b"dog-pixels",
    "checkpoints/model.h5": b"checkpoint-weights",
    "model.h5": b"final-weights",
}


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


@pytest.fixture
def my_bucket(s3: S3Service, monkeypatch: pytest.MonkeyPatch) -> str:
    """The reference's ``s3://my-bucket`` layout; the endpoint comes from the AWS environment."""
    bucket = s3.make_bucket()
    for key, data in FILES.items():
        s3.put(bucket, key, data)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3.endpoint_url)
    return bucket


def log_and_fetch(artifact: wandb.Artifact) -> wandb.Artifact:
    with wandb.init(job_type="reference") as run:
        run.log_artifact(artifact).wait()
    return Api().artifact(f"{artifact.collection_name}:latest")


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
def test_seed_s3_reference_table(
    my_bucket: str, tmp_path: Path, uri: str, name: str | None, expected: dict[str, str]
) -> None:
    artifact = wandb.Artifact("s3-table", type="dataset")
    artifact.add_reference(f"s3://{my_bucket}/{uri}", name=name)
    fetched = log_and_fetch(artifact)
    entries = fetched.manifest.entries
    assert sorted(entries) == sorted(expected)
    for path, key in expected.items():
        entry = entries[path]
        assert entry.ref == f"s3://{my_bucket}/{key}"
        assert entry.digest == md5_hex(FILES[key])  # the ETag, quotes stripped
        assert entry.extra == {"etag": md5_hex(FILES[key])}  # unversioned: no versionID
        assert entry.size == len(FILES[key])
    root = Path(fetched.download(str(tmp_path / "out")))
    for path, key in expected.items():
        assert (root / path).read_bytes() == FILES[key]


def test_checksum_false_records_the_uri(my_bucket: str, tmp_path: Path) -> None:
    artifact = wandb.Artifact("untracked", type="dataset")
    artifact.add_reference(f"s3://{my_bucket}/images", checksum=False)
    fetched = log_and_fetch(artifact)
    (entry,) = fetched.manifest.entries.values()
    assert entry.path == "images"
    assert entry.digest == entry.ref == f"s3://{my_bucket}/images"
    assert entry.size is None


def test_prefix_over_max_objects_adds_nothing(s3: S3Service, my_bucket: str) -> None:
    for index in range(5):
        s3.put(my_bucket, f"many/part-{index}.bin", b"x")
    artifact = wandb.Artifact("limited", type="dataset")
    with pytest.raises(ReferenceLimitError, match="max_objects=4"):
        artifact.add_reference(f"s3://{my_bucket}/many", max_objects=4)
    assert artifact.manifest.entries == {}
    assert len(artifact.add_reference(f"s3://{my_bucket}/many", max_objects=5)) == 5


def test_default_limit_is_ten_thousand(my_bucket: str) -> None:
    from dagster_artifacts.storage.references import DEFAULT_MAX_OBJECTS

    assert DEFAULT_MAX_OBJECTS == 10_000


def test_versioned_bucket_records_and_fetches_the_version(
    s3: S3Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint_url)  # the generic variable works too
    bucket = s3.make_bucket(versioned=True)
    first = s3.put(bucket, "data/table.csv", b"a,b\n1,2\n")
    s3.put(bucket, "data/other.csv", b"x\n")
    artifact = wandb.Artifact("versioned", type="dataset")
    artifact.add_reference(f"s3://{bucket}/data/table.csv", name="table.csv")
    artifact.add_reference(f"s3://{bucket}/data", name="all")
    entries = {e.path: e for e in artifact.manifest.entries.values()}
    assert entries["table.csv"].extra["versionID"] == first["VersionId"]
    assert entries["all/table.csv"].extra["versionID"] == first["VersionId"]
    assert "versionID" in entries["all/other.csv"].extra

    s3.put(bucket, "data/table.csv", b"a,b\n3,4\n5,6\n")  # a new version replaces it
    fetched = log_and_fetch(artifact)
    root = Path(fetched.download(str(tmp_path / "out")))
    assert (root / "table.csv").read_bytes() == b"a,b\n1,2\n"
    assert (root / "all" / "table.csv").read_bytes() == b"a,b\n1,2\n"


def test_changed_object_without_version_fails_download(
    s3: S3Service, my_bucket: str, tmp_path: Path
) -> None:
    artifact = wandb.Artifact("changing", type="dataset")
    artifact.add_reference(f"s3://{my_bucket}/model.h5")
    fetched = log_and_fetch(artifact)
    s3.put(my_bucket, "model.h5", b"other-weights")
    with pytest.raises(ChecksumMismatchError, match=f"s3://{my_bucket}/model.h5 changed"):
        fetched.download(str(tmp_path / "out"))
    assert not (tmp_path / "out" / "model.h5").exists()


def test_deleted_object_fails_download_clearly(
    s3: S3Service, my_bucket: str, tmp_path: Path
) -> None:
    artifact = wandb.Artifact("deleted", type="dataset")
    artifact.add_reference(f"s3://{my_bucket}/images")
    fetched = log_and_fetch(artifact)
    s3.client.delete_object(Bucket=my_bucket, Key="images/dog.png")
    with pytest.raises(ArtifactFileNotFoundError, match=f"s3://{my_bucket}/images/dog.png"):
        fetched.download(str(tmp_path / "out"))
    assert not (tmp_path / "out" / "dog.png").exists()


def test_reference_into_missing_bucket_or_key(my_bucket: str) -> None:
    artifact = wandb.Artifact("missing", type="dataset")
    with pytest.raises((ArtifactFileNotFoundError, StorageError), match="no-such-bucket-x"):
        artifact.add_reference("s3://no-such-bucket-x/model.h5")
    with pytest.raises(ArtifactFileNotFoundError, match="matches no object"):
        artifact.add_reference(f"s3://{my_bucket}/nothing/here")
    assert artifact.manifest.entries == {}


def test_store_options_reach_references_on_an_s3_root(s3: S3Service, tmp_path: Path) -> None:
    """No AWS endpoint in the environment: the store's storage_options are used for references."""
    bucket = s3.make_bucket()
    s3.put(bucket, "external/notes.txt", b"notes")
    settings = wandb.Settings.resolve(
        root=f"s3://{bucket}/store",
        database=f"sqlite:///{tmp_path / 'registry.db'}",
        storage_options=s3.storage_options,
    )
    with wandb.init(settings=settings) as run:
        artifact = wandb.Artifact("notes", type="dataset")
        artifact.add_reference(f"s3://{bucket}/external/notes.txt")
        run.log_artifact(artifact).wait()
    fetched = Api(settings=settings).artifact("notes:v0")
    root = Path(fetched.download(str(tmp_path / "out")))
    assert (root / "notes.txt").read_bytes() == b"notes"


def test_reference_with_wrong_credentials_fails_clearly(
    my_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto import settings as moto_settings
    from moto.core.responses import ActionAuthenticatorMixin

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIANOTAREALKEY00000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-for-test")
    artifact = wandb.Artifact("denied", type="dataset")
    with pytest.MonkeyPatch.context() as auth:
        auth.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
        auth.setattr(ActionAuthenticatorMixin, "request_count", 0)
        with pytest.raises(StorageError, match=f"Access denied to s3://{my_bucket}/images") as info:
            artifact.add_reference(f"s3://{my_bucket}/images")
    assert "wrong-secret-for-test" not in str(info.value)
    assert artifact.manifest.entries == {}
