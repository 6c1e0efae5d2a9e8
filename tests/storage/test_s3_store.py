"""A store rooted in S3 (moto): log, dedupe, download, verify, and every fault of the issue."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

import dagster_artifacts as wandb
from dagster_artifacts.api import Api
from dagster_artifacts.errors import ArtifactError, ChecksumMismatchError, StorageError
from dagster_artifacts.settings import Settings
from dagster_artifacts.storage import BlobUpload, open_blob_store
from dagster_artifacts.storage.layout import blob_key
from tests.services.s3 import S3Service
from tests.storage import faults


def make_files(folder: Path, count: int, prefix: str = "file") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        (folder / f"{prefix}-{index:03d}.txt").write_text(f"{prefix} number {index}\n")
    return folder


def s3_settings(s3: S3Service, bucket: str, tmp_path: Path, **options: object) -> Settings:
    return Settings.resolve(
        root=f"s3://{bucket}/artifacts",
        database=f"sqlite:///{tmp_path / 'registry.db'}",
        storage_options={**s3.storage_options, **options},
    )


def log_dir(settings: Settings, folder: Path, name: str = "dataset") -> wandb.Artifact:
    with wandb.init(settings=settings, job_type="upload") as run:
        artifact = wandb.Artifact(name, type="dataset")
        artifact.add_dir(str(folder))
        run.log_artifact(artifact).wait()
    return artifact


def test_log_and_download_round_trip_on_s3(s3: S3Service, tmp_path: Path) -> None:
    bucket = s3.make_bucket()
    settings = s3_settings(s3, bucket, tmp_path)
    folder = make_files(tmp_path / "data", 12)
    logged = log_dir(settings, folder)
    assert logged.version == "v0"

    keys = s3.keys(bucket, "artifacts/")
    assert len([k for k in keys if k.startswith("artifacts/blobs/md5/")]) == 12
    assert len([k for k in keys if k.startswith("artifacts/manifests/")]) == 1

    fetched = Api(settings=settings).artifact("dataset:v0")
    root = Path(fetched.download(str(tmp_path / "out")))
    for source in folder.iterdir():
        assert (root / source.name).read_bytes() == source.read_bytes()
    assert fetched.verify(str(root))


def test_second_artifact_with_known_blobs_uploads_nothing(s3: S3Service, tmp_path: Path) -> None:
    bucket = s3.make_bucket()
    settings = s3_settings(s3, bucket, tmp_path)
    folder = make_files(tmp_path / "data", 5)
    log_dir(settings, folder, "first")
    before = {
        item["Key"]: item["LastModified"]
        for item in s3.client.list_objects_v2(Bucket=bucket)["Contents"]
    }
    logged = log_dir(settings, folder, "second")  # same files, another artifact
    after = {
        item["Key"]: item["LastModified"]
        for item in s3.client.list_objects_v2(Bucket=bucket)["Contents"]
    }
    blobs_before = {k: v for k, v in before.items() if "/blobs/" in k}
    blobs_after = {k: v for k, v in after.items() if "/blobs/" in k}
    assert blobs_after == blobs_before  # no blob rewritten
    assert logged.version == "v0"


def test_put_files_skips_present_blobs_and_reports_writes(s3: S3Service, tmp_path: Path) -> None:
    from dagster_artifacts.digests import digest_file

    bucket = s3.make_bucket()
    store = open_blob_store(f"s3://{bucket}/root", s3.storage_options)
    folder = make_files(tmp_path / "data", 40)
    uploads = []
    for path in sorted(folder.iterdir()):
        digest, _size = digest_file(str(path))
        uploads.append(BlobUpload(str(path), blob_key(digest), digest))
    assert store.put_files(uploads[:10]) == 10
    assert store.put_files(uploads) == 30  # the first ten are found by listing and skipped
    assert store.put_files(uploads) == 0
    assert len(s3.keys(bucket, "root/blobs/")) == 40


def test_corrupted_blob_fails_download_and_leaves_no_file(s3: S3Service, tmp_path: Path) -> None:
    bucket = s3.make_bucket()
    settings = s3_settings(s3, bucket, tmp_path)
    folder = make_files(tmp_path / "data", 1)
    log_dir(settings, folder)
    (blob_key,) = s3.keys(bucket, "artifacts/blobs/")
    s3.put(bucket, blob_key, b"file number 9\n")  # same size, other bytes
    fetched = Api(settings=settings).artifact("dataset:latest")
    with pytest.raises(ChecksumMismatchError, match=f"s3://{bucket}/{blob_key}"):
        fetched.download(str(tmp_path / "out"))
    assert not (tmp_path / "out" / "file-000.txt").exists()
    # a new root appears complete or not at all; nothing (not even a hidden folder) is left
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_immutable_file_changed_after_add_is_refused_before_upload(
    s3: S3Service, tmp_path: Path
) -> None:
    bucket = s3.make_bucket()
    settings = s3_settings(s3, bucket, tmp_path)
    folder = make_files(tmp_path / "data", 1)
    with (
        pytest.raises(ChecksumMismatchError, match="changed after it was added"),
        wandb.init(settings=settings) as run,
    ):
        artifact = wandb.Artifact("dataset", type="dataset")
        artifact.add_file(str(folder / "file-000.txt"), policy="immutable")
        (folder / "file-000.txt").write_text("changed behind our back\n")
        run.log_artifact(artifact).wait()
    assert s3.keys(bucket) == []
    with pytest.raises(ArtifactError):
        Api(settings=settings).artifact("dataset:latest")


def test_missing_bucket_is_a_storage_error_and_no_version(s3: S3Service, tmp_path: Path) -> None:
    settings = s3_settings(s3, "no-such-bucket-here", tmp_path)
    folder = make_files(tmp_path / "data", 2)
    with pytest.raises(StorageError, match="s3://no-such-bucket-here/artifacts/blobs/"):
        log_dir(settings, folder)
    assert registry_versions(tmp_path) == 0
    with pytest.raises(ArtifactError):
        Api(settings=settings).artifact("dataset:latest")


def test_wrong_credentials_fail_clearly(s3: S3Service, tmp_path: Path) -> None:
    from moto import settings as moto_settings
    from moto.core.responses import ActionAuthenticatorMixin

    bucket = s3.make_bucket()
    settings = s3_settings(s3, bucket, tmp_path, key="AKIAWRONGWRONGWRONG", secret="not-it")
    folder = make_files(tmp_path / "data", 2)
    # moto checks credentials only when told to: the real server then refuses unknown keys.
    with pytest.MonkeyPatch.context() as auth:
        auth.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
        auth.setattr(ActionAuthenticatorMixin, "request_count", 0)
        with pytest.raises(StorageError, match=rf"(?s)Access denied to s3://{bucket}/artifacts"):
            log_dir(settings, folder)
    assert s3.keys(bucket) == []
    assert registry_versions(tmp_path) == 0


def test_flaky_store_failing_one_request_in_five_still_logs(s3: S3Service, tmp_path: Path) -> None:
    bucket = s3.make_bucket()
    faults.FlakyS3FileSystem.calls = faults.FlakyS3FileSystem.failures = 0
    settings = Settings.resolve(
        root=f"flakys3://{bucket}/artifacts",
        database=f"sqlite:///{tmp_path / 'registry.db'}",
        storage_options=s3.storage_options,
    )
    folder = make_files(tmp_path / "data", 30)
    logged = log_dir(settings, folder)
    assert faults.FlakyS3FileSystem.failures >= 5  # the faults really happened
    assert len(s3.keys(bucket, "artifacts/blobs/")) == 30
    fetched = Api(settings=settings).artifact(f"dataset:{logged.version}")
    root = Path(fetched.download(str(tmp_path / "out")))
    assert sorted(p.name for p in root.iterdir()) == sorted(p.name for p in folder.iterdir())
    assert fetched.verify(str(root))


def test_store_that_stays_down_commits_nothing(s3: S3Service, tmp_path: Path) -> None:
    bucket = s3.make_bucket()
    settings = Settings.resolve(
        root=f"deads3://{bucket}/artifacts",
        database=f"sqlite:///{tmp_path / 'registry.db'}",
        storage_options=s3.storage_options,
    )
    folder = make_files(tmp_path / "data", 3)
    with pytest.raises(StorageError, match=f"deads3://{bucket}/artifacts/blobs/"):
        log_dir(settings, folder)
    assert registry_versions(tmp_path) == 0
    with pytest.raises(ArtifactError):
        Api(settings=settings).artifact("dataset:latest")


def test_writer_that_fails_after_taking_its_lease_leaves_no_lease(
    s3: S3Service, tmp_path: Path
) -> None:
    """A lease left behind would hold gc off its keys for a day: it goes whatever failed."""
    bucket = s3.make_bucket()
    faults.NoMarkerListingS3FileSystem.failures = 0
    settings = Settings.resolve(
        root=f"nomarkers3://{bucket}/artifacts",
        database=f"sqlite:///{tmp_path / 'registry.db'}",
        storage_options=s3.storage_options,
    )
    with pytest.raises(StorageError, match="access denied"):
        log_dir(settings, make_files(tmp_path / "data", 3))
    assert faults.NoMarkerListingS3FileSystem.failures >= 1  # the fault really happened
    assert s3.keys(bucket, "artifacts/leases/") == []
    assert s3.keys(bucket, "artifacts/blobs/") == []
    assert registry_versions(tmp_path) == 0


def test_credentials_never_reach_registry_manifests_or_logs(
    s3: S3Service, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.services.s3 import DUMMY_KEY_ID, DUMMY_SECRET

    bucket = s3.make_bucket()
    # The same credentials the environment holds, passed explicitly as users do.
    settings = s3_settings(s3, bucket, tmp_path, key=DUMMY_KEY_ID, secret=DUMMY_SECRET)
    folder = make_files(tmp_path / "data", 3)
    s3.put(bucket, "refs/readme.txt", b"referenced, not copied")
    caplog.set_level(logging.DEBUG)
    with wandb.init(settings=settings, config={"note": "hi"}) as run:
        artifact = wandb.Artifact("dataset", type="dataset", metadata={"source": "s3"})
        artifact.add_dir(str(folder))
        artifact.add_reference(f"s3://{bucket}/refs/readme.txt")
        run.log_artifact(artifact).wait()
    Api(settings=settings).artifact("dataset:v0").download(str(tmp_path / "out"))
    database = (tmp_path / "registry.db").read_bytes()
    manifests = [s3.get(bucket, key) for key in s3.keys(bucket, "artifacts/manifests/")]
    assert manifests
    for secret in (DUMMY_SECRET.encode(), DUMMY_KEY_ID.encode()):
        assert secret not in database
        for manifest in manifests:
            assert secret not in manifest
    assert "/refs/readme.txt" in manifests[0].decode()  # the manifests are the right ones
    # Nothing logs the secret, at any level, our loggers or the cloud clients'. (botocore's
    # DEBUG log shows the access key *id* in signed headers, as every AWS tool does.)
    assert DUMMY_SECRET not in caplog.text
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("dagster_artifacts")]
    assert not any(DUMMY_KEY_ID in message for message in ours)


def test_server_side_encryption_options_reach_every_put(s3: S3Service, tmp_path: Path) -> None:
    bucket = s3.make_bucket()
    settings = s3_settings(
        s3, bucket, tmp_path, s3_additional_kwargs={"ServerSideEncryption": "AES256"}
    )
    log_dir(settings, make_files(tmp_path / "data", 2))
    keys = s3.keys(bucket, "artifacts/")
    assert len(keys) == 3
    for key in keys:
        head = s3.client.head_object(Bucket=bucket, Key=key)
        assert head.get("ServerSideEncryption") == "AES256", key


def test_endpoint_from_aws_environment(
    s3: S3Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3.make_bucket()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3.endpoint_url)
    with wandb.init(root=f"s3://{bucket}/env", database=f"sqlite:///{tmp_path / 'r.db'}") as run:
        artifact = wandb.Artifact("from-env", type="dataset")
        artifact.add_file(str(make_files(tmp_path / "data", 1) / "file-000.txt"))
        run.log_artifact(artifact).wait()
    assert len(s3.keys(bucket, "env/blobs/")) == 1


def registry_versions(tmp_path: Path) -> int:
    database = tmp_path / "registry.db"
    if not database.exists():
        return 0
    connection = sqlite3.connect(database)
    try:
        return int(connection.execute("SELECT COUNT(*) FROM versions").fetchone()[0])
    finally:
        connection.close()


def test_settings_repr_hides_storage_options(s3: S3Service, tmp_path: Path) -> None:
    settings = s3_settings(s3, "any-bucket", tmp_path, secret="very-secret-value")
    assert "very-secret-value" not in repr(settings)


def test_s3_root_with_each_registry_backend(
    s3: S3Service, tmp_path: Path, registry_url: str
) -> None:
    """The same flow with the registry in SQLite and in PostgreSQL."""
    bucket = s3.make_bucket()
    settings = Settings.resolve(
        root=f"s3://{bucket}/artifacts", database=registry_url, storage_options=s3.storage_options
    )
    folder = make_files(tmp_path / "data", 4)
    assert log_dir(settings, folder).version == "v0"
    (folder / "file-000.txt").write_text("new content\n")
    assert log_dir(settings, folder).version == "v1"
    fetched = Api(settings=settings).artifact("dataset:v0")
    root = Path(fetched.download(str(tmp_path / "out")))
    assert (root / "file-000.txt").read_text() == "file number 0\n"
    assert [a.version for a in Api(settings=settings).artifact_versions("dataset", "dataset")] in (
        ["v0", "v1"],
        ["v1", "v0"],
    )


def test_file_changed_after_add_is_uploaded_as_it_was_added(s3: S3Service, tmp_path: Path) -> None:
    """The default policy snapshots the file at add: the staged copy is what goes up."""
    bucket = s3.make_bucket()
    settings = s3_settings(s3, bucket, tmp_path)
    folder = make_files(tmp_path / "data", 1)
    original = (folder / "file-000.txt").read_bytes()
    with wandb.init(settings=settings) as run:
        artifact = wandb.Artifact("dataset", type="dataset")
        artifact.add_file(str(folder / "file-000.txt"))
        (folder / "file-000.txt").write_text("changed after add\n")
        run.log_artifact(artifact).wait()
    fetched = Api(settings=settings).artifact("dataset:latest")
    out = Path(fetched.download(str(tmp_path / "out")))
    assert (out / "file-000.txt").read_bytes() == original
