"""The CLI against an S3 store (moto on loopback) with a SQLite registry: gc and the cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dagster_artifacts.cli import main

pytest.importorskip("s3fs", reason="s3fs is needed for the S3 CLI test")


def test_put_get_delete_gc_on_s3(s3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    bucket = s3.make_bucket()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3.endpoint_url)
    monkeypatch.setenv("DAGSTER_ARTIFACTS_ROOT", f"s3://{bucket}/art")
    monkeypatch.setenv("DAGSTER_ARTIFACTS_DATABASE", f"sqlite:///{tmp_path / 'registry.db'}")
    runner = CliRunner()

    def cli(*args: str, code: int = 0) -> str:
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.stdout

    data = tmp_path / "data"
    data.mkdir()
    (data / "shared.txt").write_text("in both versions")
    (data / "v0.txt").write_text("only in v0")
    cli("put", str(data), "--name", "ds", "--type", "dataset")
    (data / "v0.txt").unlink()
    (data / "v1.txt").write_text("only in v1")
    cli("put", str(data), "--name", "ds", "--type", "dataset")
    assert len(s3.keys(bucket, "art/blobs/")) == 3

    target = tmp_path / "got"
    cli("get", "ds:v1", "--root", str(target))
    assert (target / "v1.txt").read_text() == "only in v1"
    assert json.loads(cli("cache", "info", "--json"))["files"] == 2  # S3 downloads are cached

    cli("delete", "ds:v0")
    assert json.loads(cli("gc", "--json"))["blobs_deleted"] == 0  # 24 h grace
    report = json.loads(cli("gc", "--grace", "0", "--json"))
    assert (report["blobs_deleted"], report["manifests_deleted"]) == (1, 1)
    assert report["bytes_freed"] > len("only in v0")
    assert len(s3.keys(bucket, "art/blobs/")) == 2
    # gc and the writers leave no lease or batch marker behind.
    assert {key.split("/")[1] for key in s3.keys(bucket, "art/")} == {"blobs", "manifests"}
    fresh = tmp_path / "fresh"
    cli("get", "ds:v1", "--root", str(fresh))
    cli("verify", "ds:v1", "--root", str(fresh))


def test_gc_racing_a_log_that_reuses_an_orphan_on_s3(  # type: ignore[no-untyped-def]
    s3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``gc --grace 0`` runs right after a writer found an orphan blob stored and skipped it.

    The writer is a real ``put``; the interleaving is forced at its existence check. The blob it
    reuses is leased, so gc keeps it and the new version is complete and downloadable.
    """
    from dagster_artifacts.settings import Settings
    from dagster_artifacts.state import open_store

    bucket = s3.make_bucket()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3.endpoint_url)
    monkeypatch.setenv("DAGSTER_ARTIFACTS_ROOT", f"s3://{bucket}/art")
    monkeypatch.setenv("DAGSTER_ARTIFACTS_DATABASE", f"sqlite:///{tmp_path / 'registry.db'}")
    runner = CliRunner()

    def cli(*args: str) -> str:
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout

    data = tmp_path / "data.txt"
    data.write_text("bytes the second artifact reuses")
    cli("put", str(data), "--name", "first", "--type", "dataset")
    cli("delete", "first:v0", "--force")
    store = open_store(Settings.resolve()).blobs
    real_existing = store.existing
    reports: list[dict[str, int]] = []

    def existing_then_gc(keys, **options):  # type: ignore[no-untyped-def]
        present = real_existing(keys, **options)
        if not reports:
            reports.append(json.loads(cli("gc", "--grace", "0", "--json")))
        return present

    monkeypatch.setattr(store, "existing", existing_then_gc)
    cli("put", str(data), "--name", "second", "--type", "dataset")
    assert (reports[0]["blobs_deleted"], reports[0]["recent_kept"]) == (0, 2)
    target = tmp_path / "got"
    cli("get", "second:v0", "--root", str(target))
    assert (target / "data.txt").read_text() == "bytes the second artifact reuses"
    cli("verify", "second:v0", "--root", str(target))
