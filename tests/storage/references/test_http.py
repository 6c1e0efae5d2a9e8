"""http(s) references against a local server: ETag and Content-Length, verified downloads."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import dagster_artifacts as wandb
from dagster_artifacts.api import Api
from dagster_artifacts.errors import (
    ArtifactFileNotFoundError,
    ChecksumMismatchError,
    InvalidReferenceError,
    StorageError,
)
from tests.services.http import HttpFiles


def log(artifact: wandb.Artifact) -> wandb.Artifact:
    with wandb.init() as run:
        run.log_artifact(artifact).wait()
    return Api().artifact(f"{artifact.collection_name}:latest")


def test_http_reference_records_etag_and_length(http_files: HttpFiles, tmp_path: Path) -> None:
    url = http_files.serve("/data/table.csv", b"a,b\n1,2\n")
    artifact = wandb.Artifact("web", type="dataset")
    artifact.add_reference(url)
    fetched = log(artifact)
    entry = fetched.manifest.entries["table.csv"]
    etag = hashlib.md5(b"a,b\n1,2\n", usedforsecurity=False).hexdigest()
    # As W&B: the digest without the quotes, the ETag as sent (quoted) in extra.
    quoted = f'"{etag}"'
    assert (entry.digest, entry.size, entry.extra, entry.ref) == (etag, 8, {"etag": quoted}, url)
    root = Path(fetched.download(str(tmp_path / "out")))
    assert (root / "table.csv").read_bytes() == b"a,b\n1,2\n"


def test_body_changed_under_the_same_url_fails(http_files: HttpFiles, tmp_path: Path) -> None:
    url = http_files.serve("/model.bin", b"weights-v1")
    artifact = wandb.Artifact("web-model", type="model")
    artifact.add_reference(url)
    fetched = log(artifact)
    http_files.serve("/model.bin", b"weights-v2-longer")
    with pytest.raises(ChecksumMismatchError, match="changed since it was referenced"):
        fetched.download(str(tmp_path / "out"))
    assert not (tmp_path / "out" / "model.bin").exists()


def test_same_etag_but_other_bytes_is_caught(http_files: HttpFiles, tmp_path: Path) -> None:
    """A server that keeps an MD5 ETag while serving other bytes: the content check catches it."""
    url = http_files.serve("/model.bin", b"weights-v1")
    artifact = wandb.Artifact("lying-server", type="model")
    artifact.add_reference(url)
    fetched = log(artifact)
    etag = fetched.manifest.entries["model.bin"].extra["etag"]
    http_files.serve("/model.bin", b"weights-v9", etag=etag)  # same size, same ETag
    with pytest.raises(ChecksumMismatchError, match="does not match"):
        fetched.download(str(tmp_path / "out"))
    assert not (tmp_path / "out" / "model.bin").exists()


def test_gone_url_fails_clearly(http_files: HttpFiles, tmp_path: Path) -> None:
    url = http_files.serve("/gone.txt", b"here today")
    artifact = wandb.Artifact("gone", type="dataset")
    artifact.add_reference(url)
    fetched = log(artifact)
    http_files.fail("/gone.txt", 404)
    with pytest.raises(ArtifactFileNotFoundError, match="gone.txt"):
        fetched.download(str(tmp_path / "out"))


def test_server_errors_are_retried(http_files: HttpFiles, tmp_path: Path) -> None:
    url = http_files.serve("/busy.txt", b"eventually")
    artifact = wandb.Artifact("busy", type="dataset")
    artifact.add_reference(url)
    fetched = log(artifact)
    http_files.fail("/busy.txt", 503, times=2)
    root = Path(fetched.download(str(tmp_path / "out")))
    assert (root / "busy.txt").read_bytes() == b"eventually"


def test_server_that_keeps_failing_names_the_url(http_files: HttpFiles, tmp_path: Path) -> None:
    url = http_files.serve("/down.txt", b"never again")
    artifact = wandb.Artifact("down", type="dataset")
    artifact.add_reference(url)
    fetched = log(artifact)
    http_files.fail("/down.txt", 500)
    with pytest.raises(StorageError, match=f"Could not download {url}"):
        fetched.download(str(tmp_path / "out"))


def test_adding_a_reference_retries_a_busy_server(http_files: HttpFiles) -> None:
    url = http_files.serve("/later.txt", b"soon")
    http_files.fail("/later.txt", 503, times=1)
    artifact = wandb.Artifact("later", type="dataset")
    (entry,) = artifact.add_reference(url)
    assert entry.size == 4


def test_unreachable_url_is_a_clear_error(http_files: HttpFiles) -> None:
    url = http_files.serve("/present.txt", b"x")
    http_files.fail("/missing.txt", 404)
    artifact = wandb.Artifact("unreachable", type="dataset")
    with pytest.raises(InvalidReferenceError, match="Cannot reference .*missing.txt"):
        artifact.add_reference(url.replace("present", "missing"))
    assert artifact.manifest.entries == {}
