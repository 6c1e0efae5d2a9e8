"""Retention, TTL expiry and garbage collection through the Python API."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

import dagster_artifacts as wandb
from dagster_artifacts.engine import get_engine
from dagster_artifacts.errors import ArtifactNotFoundError, InvalidArgumentError
from dagster_artifacts.lifecycle import format_size, gc, parse_duration, parse_size, prune
from dagster_artifacts.registry.models import PENDING, Collection, PendingEntry, Version
from dagster_artifacts.settings import Settings


def engine() -> Any:
    return get_engine(Settings.resolve())


def log(
    name: str, files: dict[str, str], aliases: list[str] | None = None, ttl: timedelta | None = None
) -> wandb.Artifact:
    with wandb.init(job_type="test") as run:
        artifact = wandb.Artifact(name, type="dataset")
        for path, text in files.items():
            with artifact.new_file(path) as handle:
                handle.write(text)
        if ttl is not None:
            artifact.ttl = ttl
        run.log_artifact(artifact, aliases=aliases)
        artifact.wait()
    return artifact


def blob_count(store: Path) -> int:
    return sum(1 for p in (store / "blobs").rglob("*") if p.is_file())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("1h30m", timedelta(minutes=90)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("0", timedelta(0)),
        ("1.5h", timedelta(minutes=90)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "soon", "10", "5x", "1h junk", "-1h"])
def test_parse_duration_refuses_garbage(text: str) -> None:
    with pytest.raises(InvalidArgumentError, match="e.g. 90s"):
        parse_duration(text)


def test_parse_and_format_size() -> None:
    assert parse_size("500MB") == 500_000_000
    assert parse_size("2GiB") == 2 * 1024**3
    assert parse_size("4kB") == 4000
    assert parse_size("1024") == 1024
    assert format_size(6000) == "6.0 kB"
    assert format_size(12) == "12 B"
    with pytest.raises(InvalidArgumentError):
        parse_size("lots")


def test_prune_rejects_keep_last_zero_before_anything_changes(store_snapshot: Any) -> None:
    log("bikes", {"a": "1"})
    before = store_snapshot()
    for bad in (0, -1, True, 1.5):
        with pytest.raises(InvalidArgumentError, match="keep_last must be 1 or more"):
            prune(engine(), "bikes", bad)  # type: ignore[arg-type]
    with pytest.raises(ArtifactNotFoundError, match="No artifact"):
        prune(engine(), "nope", 1)
    assert store_snapshot() == before


def test_prune_older_than_uses_creation_time() -> None:
    for index in range(4):
        log("bikes", {"a": str(index)})
    later = datetime.now(timezone.utc) + timedelta(days=10)
    young = prune(engine(), "bikes", 1, older_than="30d", now=later, dry_run=True)
    assert young.deleted == []
    old = prune(engine(), "bikes", 1, older_than=timedelta(days=5), now=later)
    assert [r.index for r in old.deleted] == [0, 1, 2]
    assert [a.version for a in wandb.Api().artifact_versions("dataset", "bikes")] == ["v3"]


def test_prune_in_another_project_by_path() -> None:
    with wandb.init(project="other", job_type="t") as run:
        for index in range(3):
            artifact = wandb.Artifact("bikes", type="dataset")
            with artifact.new_file("a") as handle:
                handle.write(str(index))
            run.log_artifact(artifact).wait()
    result = prune(engine(), "other/bikes", keep_last=2)
    assert [r.index for r in result.deleted] == [0]
    assert result.freed_size == 1


def test_ttl_expiry_in_gc_deletes_even_aliased_versions(isolated_store: Path) -> None:
    log("tmp", {"a": "short-lived"}, aliases=["best"], ttl=timedelta(hours=1))
    log("kept", {"a": "forever"})
    now = datetime.now(timezone.utc)
    assert gc(engine(), grace="0", now=now).expired == []
    report = gc(engine(), grace=timedelta(0), now=now + timedelta(hours=2))
    assert [r.name for r in report.expired] == ["tmp"]
    with pytest.raises(ArtifactNotFoundError):
        wandb.Api().artifact("tmp:best")
    wandb.Api().artifact("kept:latest").download()


def test_ttl_is_editable_after_logging() -> None:
    artifact = log("tmp", {"a": "x"})
    artifact.ttl = timedelta(days=1)
    artifact.save()
    now = datetime.now(timezone.utc)
    assert [r.name for r in gc(engine(), now=now + timedelta(days=2), dry_run=True).expired] == [
        "tmp"
    ]
    artifact.ttl = None
    artifact.save()
    assert gc(engine(), now=now + timedelta(days=2), dry_run=True).expired == []


def test_deleted_version_blobs_stay_while_shared(isolated_store: Path) -> None:
    log("a", {"shared": "same bytes", "mine": "only a"})
    log("b", {"shared": "same bytes"})  # another artifact shares the blob
    wandb.Api().artifact("a:v0").delete(delete_aliases=True)
    report = gc(engine(), grace="0")
    assert (report.blobs_deleted, report.bytes_freed > 0) == (1, True)
    assert blob_count(isolated_store) == 1
    path = wandb.Api().artifact("b:v0").download()
    assert Path(path, "shared").read_text() == "same bytes"


def test_gc_keeps_blobs_of_pending_versions(isolated_store: Path) -> None:
    """A parallel writer's upserted files (pending_entries) are live until finished."""
    artifact = log("p", {"f": "pending content"})
    digest = artifact.manifest.entries["f"].digest
    registry = engine().registry
    with Session(registry.engine) as session, session.begin():
        collection_id = session.query(Collection.id).filter_by(name="p").scalar()
        pending = Version(collection_id=collection_id, state=PENDING, distributed_id="d1", size=0)
        session.add(pending)
        session.flush()
        session.add(
            PendingEntry(version_id=pending.id, path="f", entry={"digest": digest, "size": 15})
        )
    artifact.delete(delete_aliases=True)
    report = gc(engine(), grace="0")
    assert report.blobs_deleted == 0 and report.blobs_kept == 1
    assert report.manifests_deleted == 1  # the deleted version's manifest is not needed
    assert blob_count(isolated_store) == 1


def test_gc_dry_run_changes_nothing(store_snapshot: Any) -> None:
    log("a", {"x": "1"}, ttl=timedelta(seconds=1))
    log("a", {"x": "2"})
    wandb.Api().artifact("a:v1").delete(delete_aliases=True)
    before = store_snapshot()
    report = gc(
        engine(), grace="0", dry_run=True, now=datetime.now(timezone.utc) + timedelta(hours=1)
    )
    assert len(report.expired) == 1 and report.blobs_deleted == 2 and report.manifests_deleted == 2
    assert store_snapshot() == before


def test_api_prune_delegates() -> None:
    for index in range(3):
        log("bikes", {"a": str(index)})
    api = wandb.Api()
    result = api.prune("bikes", keep_last=1)
    assert [r.index for r in result.deleted] == [0, 1]
    assert [a.version for a in api.artifact_versions("dataset", "bikes")] == ["v2"]


def _age_store(store: Path, seconds: float) -> None:
    import os
    import time

    stamp = time.time() - seconds
    for path in store.rglob("*"):
        if path.is_file() and ("blobs" in path.parts or "manifests" in path.parts):
            os.utime(path, (stamp, stamp))


def test_a_writer_reusing_an_old_orphan_blob_keeps_it_from_gc(
    isolated_store: Path, tmp_path: Path
) -> None:
    """The dedupe race: a writer finds an orphan blob already stored and skips uploading it."""
    from dagster_artifacts.lifecycle import refresh_reused

    log("old", {"data": "reused bytes"}).delete(delete_aliases=True)
    _age_store(isolated_store, 2 * 86400)
    source = tmp_path / "data"
    source.write_text("reused bytes")

    control = wandb.Artifact("new", type="dataset")
    control.add_file(str(source))
    # Without the refresh, gc (grace 1 h) collects the orphan the writer is about to rely on.
    assert gc(engine(), grace="1h", dry_run=True).blobs_deleted == 1

    refresh_reused(engine(), control._manifest)  # what Engine.upload_blobs does first
    report = gc(engine(), grace="1h")
    assert report.blobs_deleted == 0 and report.recent_kept >= 1
    with wandb.init(job_type="writer") as run:
        run.log_artifact(control).wait()
    path = wandb.Api().artifact("new:v0").download(root=str(tmp_path / "out"))
    assert Path(path, "data").read_text() == "reused bytes"


def test_format_duration_round_trips() -> None:
    from dagster_artifacts.lifecycle import format_duration

    for text in ("1d", "1h30m", "14d", "45s", "0s"):
        assert format_duration(parse_duration(text)) == text


def test_prune_and_gc_at_the_same_time_do_not_trip_over_each_other() -> None:
    import threading

    for index in range(8):
        log("bikes", {"a": str(index)}, ttl=timedelta(seconds=1))
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    results: list[Any] = []
    errors: list[BaseException] = []

    def call(func: Any) -> None:
        try:
            results.append(func())
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [
        threading.Thread(target=call, args=(lambda: prune(engine(), "bikes", 1),)),
        threading.Thread(target=call, args=(lambda: gc(engine(), grace="0", now=later),)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    remaining = wandb.Api().artifact_versions("dataset", "bikes")
    assert remaining == []  # every version had expired; the newest went by TTL, not by prune


def test_gc_between_upsert_and_finish_keeps_the_parallel_version_whole(tmp_path: Path) -> None:
    """Real upserts: a gc with no grace between writers and the finish collects nothing needed."""
    settings = Settings.resolve()
    from dagster_artifacts.runs import start_run

    for writer in range(3):
        with start_run(settings, job_type="writer", group="batch-1") as run:
            part = wandb.Artifact("parts", type="dataset")
            with part.new_file(f"part-{writer}.txt") as handle:
                handle.write(f"rows of writer {writer}")
            run.upsert_artifact(part, distributed_id="batch-1")
    report = gc(engine(), grace="0")
    assert report.blobs_deleted == 0 and report.blobs_kept == 3
    with start_run(settings, job_type="finisher", group="batch-1") as run:
        final = wandb.Artifact("parts", type="dataset")
        run.finish_artifact(final, distributed_id="batch-1")
    path = wandb.Api().artifact("parts:v0").download(root=str(tmp_path / "parts"))
    assert sorted(p.name for p in Path(path).iterdir()) == [
        "part-0.txt",
        "part-1.txt",
        "part-2.txt",
    ]
    assert gc(engine(), grace="0").blobs_deleted == 0


def test_gc_rereads_the_registry_before_deleting(
    monkeypatch: pytest.MonkeyPatch, isolated_store: Path, tmp_path: Path
) -> None:
    """A writer commits a version reusing an old orphan while gc is between reading and deleting.

    The interleaving is forced by wrapping gc's registry read (the commit itself is real), and
    the store is aged afterwards as on an object store, where reused blobs cannot be refreshed:
    only gc's re-read of the registry before each deletion batch keeps the new version whole.
    """
    from dagster_artifacts import lifecycle

    log("old", {"data": "reused bytes"}).delete(delete_aliases=True)
    _age_store(isolated_store, 2 * 86400)
    real = lifecycle.live_references
    calls: list[int] = []

    def interleaved(registry: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            log("new", {"data": "reused bytes"})
            _age_store(isolated_store, 2 * 86400)
        return real(registry)

    monkeypatch.setattr(lifecycle, "live_references", interleaved)
    report = gc(engine(), grace="1h")
    assert len(calls) >= 2
    assert (report.blobs_deleted, report.manifests_deleted) == (0, 0)  # both reused by new:v0
    path = wandb.Api().artifact("new:v0").download(root=str(tmp_path / "new"))
    assert Path(path, "data").read_text() == "reused bytes"


# -- gc on object stores (moto S3, GCS emulator) -------------------------------------------------------
@pytest.fixture
def s3_store(s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str]:
    """The library's store on a fresh moto bucket (root ``s3://<bucket>/art``), SQLite registry."""
    bucket = s3.make_bucket()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3.endpoint_url)
    monkeypatch.setenv("DAGSTER_ARTIFACTS_ROOT", f"s3://{bucket}/art")
    monkeypatch.setenv("DAGSTER_ARTIFACTS_DATABASE", f"sqlite:///{tmp_path / 'registry.db'}")
    return s3, bucket


def _two_days_on() -> datetime:
    """A gc ``now`` that puts every object past any grace period (S3 times cannot be set back)."""
    return datetime.now(timezone.utc) + timedelta(days=2)


def _log_in_thread(name: str, text: str, errors: list[BaseException]) -> Any:
    import threading

    from dagster_artifacts.runs import start_run

    def work() -> None:
        try:
            with start_run(Settings.resolve(), job_type="writer") as run:
                artifact = wandb.Artifact(name, type="dataset")
                with artifact.new_file("data") as handle:
                    handle.write(text)
                run.log_artifact(artifact).wait()
        except BaseException as error:  # pragma: no cover - reported by the test
            errors.append(error)

    thread = threading.Thread(target=work)
    thread.start()
    return thread


def test_s3_gc_between_a_writers_reuse_check_and_its_commit_spares_the_blob(
    s3_store: tuple[Any, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The race: the writer sees an old orphan blob stored and skips it; gc runs; it commits.

    The interleaving is forced at the writer's real existence check: gc runs in full right after
    it returns. Its lease (taken before the check) keeps the orphan and its manifest alive.
    """
    s3, bucket = s3_store
    log("old", {"data": "reused bytes"}).delete(delete_aliases=True)
    later = _two_days_on()
    assert gc(engine(), grace="1h", now=later, dry_run=True).blobs_deleted == 1  # collectable

    store = engine().blobs
    real_existing = store.existing
    reports: list[Any] = []

    def existing_then_gc(keys: Any) -> set[str]:
        present = real_existing(keys)
        if not reports:  # the writer has decided what to skip; now gc runs in full
            reports.append(gc(engine(), grace="1h", now=later))
        return present

    monkeypatch.setattr(store, "existing", existing_then_gc)
    log("new", {"data": "reused bytes"})

    [report] = reports
    assert (report.blobs_deleted, report.manifests_deleted) == (0, 0)
    assert report.recent_kept == 2  # the leased blob and manifest
    path = wandb.Api().artifact("new:v0").download(root=str(tmp_path / "new"))
    assert Path(path, "data").read_text() == "reused bytes"
    keys = s3.keys(bucket, "art/")
    assert not [k for k in keys if k.startswith(("art/leases/", "art/gc/"))]  # all released
    assert gc(engine(), grace="1h", now=later).blobs_deleted == 0  # now live


def test_s3_writer_starting_during_a_gc_batch_waits_then_uploads_what_gc_removed(
    s3_store: tuple[Any, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The other order: gc has read the leases (none) and is about to delete the orphan when a
    writer that needs it starts. The writer finds gc's batch marker, waits for the batch, then
    sees the blob gone and uploads it: its version is complete."""
    import threading

    from dagster_artifacts import lifecycle

    s3, bucket = s3_store
    log("old", {"data": "reused bytes"}).delete(delete_aliases=True)
    real_leased = lifecycle._leased_keys
    real_pause = lifecycle._pause
    writer_waits = threading.Event()
    errors: list[BaseException] = []
    threads: list[threading.Thread] = []

    def pause() -> None:
        writer_waits.set()
        real_pause()

    def leased_then_writer_starts(engine_: Any) -> set[str]:
        leased = real_leased(engine_)  # no lease yet: the writer has not started
        threads.append(_log_in_thread("new", "reused bytes", errors))
        assert writer_waits.wait(timeout=20), "the writer never waited for the gc batch"
        return leased

    monkeypatch.setattr(lifecycle, "_pause", pause)
    monkeypatch.setattr(lifecycle, "_leased_keys", leased_then_writer_starts)
    report = gc(engine(), grace="1h", now=_two_days_on())
    threads[0].join(timeout=60)
    assert not errors, errors
    assert (report.blobs_deleted, report.manifests_deleted) == (1, 1)  # the orphan went...
    blob = engine().blobs.blob_key(wandb.Api().artifact("new:v0").manifest.entries["data"].digest)
    assert f"art/{blob}" in s3.keys(bucket, "art/blobs/")  # ...and the writer put it back
    path = wandb.Api().artifact("new:v0").download(root=str(tmp_path / "new"))
    assert Path(path, "data").read_text() == "reused bytes"


def test_s3_gc_deletes_in_bulk_and_frees_what_it_reports(
    s3_store: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster_artifacts import lifecycle
    from dagster_artifacts.storage import blobstore

    s3, bucket = s3_store
    monkeypatch.setattr(lifecycle, "DELETE_BATCH", 8)  # several batches from a small store
    monkeypatch.setattr(blobstore, "DELETE_CHUNK", 3)  # several requests per batch
    kept = log("kept", {"shared.txt": "in both"})
    doomed = {f"f{index:02d}.txt": f"only in the deleted version {index}" for index in range(20)}
    log("gone", {"shared.txt": "in both", **doomed}).delete(delete_aliases=True)
    sizes = {
        item["Key"]: item["Size"]
        for item in s3.client.list_objects_v2(Bucket=bucket, Prefix="art/")["Contents"]
    }
    store = engine().blobs
    requests: list[str] = []
    real_call = store.fs._call_s3

    async def spy(method: str, *args: Any, **kwargs: Any) -> Any:
        requests.append(method)
        return await real_call(method, *args, **kwargs)

    monkeypatch.setattr(store.fs, "_call_s3", spy)
    report = gc(engine(), grace="0", now=_two_days_on())

    after = set(s3.keys(bucket, "art/"))
    freed = set(sizes) - after
    assert {f"art/{key}" for key in report.deleted_keys} == freed
    assert (report.blobs_deleted, report.manifests_deleted) == (20, 1)
    assert report.bytes_freed == sum(sizes[key] for key in freed)
    assert report.blobs_kept == 1
    assert requests.count("delete_object") == 0  # never one request per key
    # 21 keys in batches of 8, 8 and 5, chunks of 3: 3 + 3 + 2 requests; plus one per batch
    # marker removed afterwards.
    assert requests.count("delete_objects") == 8 + 3
    assert not [k for k in after if k.startswith(("art/leases/", "art/gc/"))]
    assert kept.download() and gc(engine(), grace="0", now=_two_days_on()).blobs_deleted == 0


def test_gcs_gc_frees_what_it_reports(
    gcs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same on a gs:// root: gcsfs batch deletes, leases and markers cleaned up."""
    bucket = gcs.make_bucket()
    monkeypatch.setenv("DAGSTER_ARTIFACTS_ROOT", f"gs://{bucket}/art")
    monkeypatch.setenv("DAGSTER_ARTIFACTS_DATABASE", f"sqlite:///{tmp_path / 'registry.db'}")
    kept = log("kept", {"shared.txt": "in both"})
    log("gone", {"shared.txt": "in both", "a.txt": "only a", "b.txt": "only b"}).delete(
        delete_aliases=True
    )
    before = set(gcs.keys(bucket, "art/"))
    report = gc(engine(), grace="0", now=_two_days_on())
    after = set(gcs.keys(bucket, "art/"))
    assert (report.blobs_deleted, report.manifests_deleted, report.blobs_kept) == (2, 1, 1)
    assert {f"art/{key}" for key in report.deleted_keys} == before - after
    assert {key.split("/")[1] for key in after} == {"blobs", "manifests"}
    path = kept.download(root=str(tmp_path / "kept"))
    assert Path(path, "shared.txt").read_text() == "in both"
