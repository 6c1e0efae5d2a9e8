"""Store files damaged behind the package's back: manifests deleted, truncated or edited, blobs
deleted or changed, a registry file that is not a database.

Desired: a typed error naming the version (a manifest problem is a ``ManifestError``, a
``StorageError``), never a raw ``OSError``/``JSONDecodeError``/``KeyError``; nothing wrong is
written at a final path; every CLI command prints one ``Error:`` line and exits 1.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import dagster_artifacts as wandb
from dagster_artifacts import errors
from dagster_artifacts.errors import ArtifactError, ChecksumMismatchError, StorageError
from dagster_artifacts.settings import ENV_CACHE
from dagster_artifacts.state import reset_stores
from tests.faults.helpers import (
    assert_one_line_error,
    blob_path,
    cli,
    log_folder,
    make_files,
    manifest_path,
    replace_manifest,
)

#: The package's error for a damaged manifest; ``StorageError`` until it exists.
ManifestError: type[StorageError] = getattr(errors, "ManifestError", StorageError)

FILES = {"a.txt": "alpha " * 50, "sub/b.txt": "beta " * 80}


@pytest.fixture
def logged(tmp_path: Path) -> wandb.Artifact:
    """``x:v0`` holding FILES."""
    return log_folder("x", make_files(tmp_path / "data", FILES))


def _damage_manifest(path: Path, how: str) -> None:
    raw = path.read_bytes()
    if how == "deleted":
        path.unlink()
        return
    path.write_bytes(
        {
            "truncated": raw[: len(raw) // 2],
            "empty": b"",
            "not json": b"this is not JSON {",
            "a list": b"[]",
            "contents not a mapping": b'{"version": 1, "contents": 5}',
            "entry not a mapping": b'{"version": 1, "contents": {"a.txt": 5}}',
            "entry without digest": b'{"version": 1, "contents": {"a.txt": {"size": 5}}}',
        }[how]
    )


MANIFEST_DAMAGE = [
    "deleted",
    "truncated",
    "empty",
    "not json",
    "a list",
    "contents not a mapping",
    "entry not a mapping",
    "entry without digest",
]

ACCESS: dict[str, Callable[[wandb.Artifact, Path], Any]] = {
    "download": lambda artifact, out: artifact.download(root=out),
    "manifest": lambda artifact, out: artifact.manifest,
    "files": lambda artifact, out: artifact.files(),
}


@pytest.mark.parametrize("access", list(ACCESS))
@pytest.mark.parametrize("how", MANIFEST_DAMAGE)
def test_a_damaged_manifest_is_a_manifest_error_naming_the_version(
    logged: wandb.Artifact, isolated_store: Path, tmp_path: Path, how: str, access: str
) -> None:
    _damage_manifest(manifest_path(isolated_store, "x:v0"), how)
    reset_stores()  # as a new process would: no manifest kept in memory
    out = tmp_path / "out"
    with pytest.raises(ManifestError) as caught:
        ACCESS[access](wandb.Api().artifact("x:v0"), out)
    assert "x:v0" in str(caught.value), str(caught.value)
    assert not out.exists()


WRONG_SHAPES = {
    "a list": b"[]",
    "a string": b'"manifest"',
    "contents not a mapping": b'{"version": 1, "contents": 5}',
    "entry not a mapping": b'{"version": 1, "contents": {"a.txt": 5}}',
    "entry without digest": b'{"version": 1, "contents": {"a.txt": {"size": 5}}}',
    "digest not a string": b'{"version": 1, "contents": {"a.txt": {"digest": 5, "size": 5}}}',
    "size not a number": b'{"version": 1, "contents": {"a.txt": {"digest": "x", "size": "5"}}}',
}


@pytest.mark.parametrize("access", list(ACCESS))
@pytest.mark.parametrize("raw", list(WRONG_SHAPES.values()), ids=list(WRONG_SHAPES))
def test_a_well_named_manifest_of_the_wrong_shape_is_a_manifest_error(
    logged: wandb.Artifact, isolated_store: Path, tmp_path: Path, raw: bytes, access: str
) -> None:
    """The same shapes stored under their own MD5 key (the registry pointing at them), so the
    check of the bytes against the name passes and the shape itself must be refused."""
    replace_manifest(isolated_store, "x:v0", raw)
    out = tmp_path / "out"
    with pytest.raises(ManifestError) as caught:
        ACCESS[access](wandb.Api().artifact("x:v0"), out)
    assert "x:v0" in str(caught.value), str(caught.value)
    assert not out.exists()


def test_a_manifest_pointing_an_entry_at_another_blob_is_refused(
    logged: wandb.Artifact, isolated_store: Path, tmp_path: Path
) -> None:
    earlier = Path(wandb.Api().artifact("x:v0").download(root=tmp_path / "earlier"))
    path = manifest_path(isolated_store, "x:v0")
    data = json.loads(path.read_bytes())
    other = data["contents"]["sub/b.txt"]
    data["contents"]["a.txt"].update(digest=other["digest"], size=other["size"])
    path.write_bytes(json.dumps(data, sort_keys=True, separators=(",", ":")).encode())
    reset_stores()

    later = tmp_path / "later"
    with pytest.raises(ArtifactError) as caught:
        wandb.Api().artifact("x:v0").download(root=later)
    assert "x:v0" in str(caught.value), str(caught.value)
    assert not (later / "a.txt").exists() or (later / "a.txt").read_text() == FILES["a.txt"]
    with pytest.raises(ArtifactError):
        wandb.Api().artifact("x:v0").verify(earlier)


@pytest.fixture(params=["no cache", "download cache"])
def cache_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Downloads straight from the store, or through the machine's download cache."""
    monkeypatch.setenv(ENV_CACHE, "0" if request.param == "no cache" else "1")
    reset_stores()
    return str(request.param)


def test_a_deleted_blob_is_a_storage_error_naming_the_artifact_entry_and_blob(
    logged: wandb.Artifact, isolated_store: Path, tmp_path: Path, cache_mode: str
) -> None:
    digest = logged.manifest.entries["a.txt"].digest
    blob_path(isolated_store, digest).unlink()
    hex_digest = base64.b64decode(digest).hex()
    out = tmp_path / "out"
    with pytest.raises(StorageError) as caught:
        wandb.Api().artifact("x:v0").download(root=out)
    message = str(caught.value)
    assert "x:v0" in message and "a.txt" in message, message
    assert f"{hex_digest[:2]}/{hex_digest[2:]}" in message, f"name the blob: {message}"
    assert not (out / "a.txt").exists()


@pytest.mark.parametrize("how", ["truncated", "edited"])
def test_a_changed_blob_is_a_checksum_mismatch_and_nothing_lands(
    logged: wandb.Artifact, isolated_store: Path, tmp_path: Path, cache_mode: str, how: str
) -> None:
    blob = blob_path(isolated_store, logged.manifest.entries["a.txt"].digest)
    raw = blob.read_bytes()
    blob.write_bytes(raw[: len(raw) // 2] if how == "truncated" else b"A" + raw[1:])
    out = tmp_path / "out"
    with pytest.raises(ChecksumMismatchError):
        wandb.Api().artifact("x:v0").download(root=out)
    assert not (out / "a.txt").exists()


# -- the command line on a damaged store -----------------------------------------------------


def _damage(store: Path, artifact: wandb.Artifact, how: str) -> None:
    if how.startswith("blob "):
        blob = blob_path(store, artifact.manifest.entries["a.txt"].digest)
        if how == "blob deleted":
            blob.unlink()
        else:
            blob.write_bytes(b"edited" + blob.read_bytes()[6:])
    else:
        _damage_manifest(manifest_path(store, "x:v0"), how.removeprefix("manifest "))
    reset_stores()


@pytest.mark.parametrize(
    ("command", "how"),
    [("show", f"manifest {how}") for how in ("deleted", "truncated", "not json", "a list")]
    + [
        ("get", f"manifest {how}")
        for how in ("deleted", "truncated", "not json", "contents not a mapping")
    ]
    + [("get", "blob deleted"), ("get", "blob edited")],
)
def test_cli_show_and_get_on_a_damaged_version_print_one_error_line(
    logged: wandb.Artifact, isolated_store: Path, tmp_path: Path, command: str, how: str
) -> None:
    _damage(isolated_store, logged, how)
    args = [command, "x:v0"] + (["--root", str(tmp_path / "out")] if command == "get" else [])
    line = assert_one_line_error(cli(*args))
    if how != "blob edited":  # a checksum mismatch names the blob; the rest name the version
        assert "x:v0" in line, line


def _junk_registry(store: Path) -> None:
    reset_stores()
    for suffix in ("-wal", "-shm"):
        (store / f"registry.db{suffix}").unlink(missing_ok=True)
    (store / "registry.db").write_bytes(b"this is not a database\n" * 200)


CLI_COMMANDS = {
    "ls": ["ls"],
    "versions": ["versions", "x"],
    "show": ["show", "x:v0"],
    "get": ["get", "x:v0", "--root", "{out}"],
    "verify": ["verify", "x:v0", "--root", "{downloaded}"],
    "lineage": ["lineage", "x:v0"],
    "runs": ["runs"],
    "gc": ["gc", "--dry-run"],
    "prune": ["prune", "x", "--keep-last", "1", "--dry-run"],
    "delete": ["delete", "x:v0", "--force"],
    "alias add": ["alias", "add", "x:v0", "best"],
    "put": ["put", "{data}", "--name", "x", "--type", "dataset"],
}


@pytest.mark.parametrize("command", list(CLI_COMMANDS))
def test_every_cli_command_on_a_registry_that_is_not_a_database_prints_one_error_line(
    logged: wandb.Artifact, isolated_store: Path, tmp_path: Path, command: str
) -> None:
    downloaded = wandb.Api().artifact("x:v0").download(root=tmp_path / "downloaded")
    _junk_registry(isolated_store)
    args = [
        part.format(out=tmp_path / "out", downloaded=downloaded, data=tmp_path / "data")
        for part in CLI_COMMANDS[command]
    ]
    assert_one_line_error(cli(*args))
