"""Garbage collection: what it frees, what it keeps, and its race with concurrent writers, on a
local store and on the object-store servers (moto S3, the GCS emulator)."""

from __future__ import annotations

import os
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

import dagster_artifacts as wandb
from dagster_artifacts import garbage
from dagster_artifacts.clock import Clock
from dagster_artifacts.garbage import gc
from dagster_artifacts.registry.models import PENDING, CollectionRow, PendingEntryRow, VersionRow
from dagster_artifacts.runs import start_run
from dagster_artifacts.settings import Settings
from dagster_artifacts.storage import objects
from dagster_artifacts.storage.layout import blob_key, keys_of, manifest_key
from dagster_artifacts.storage.protection import protect_reuse
from tests.lifecycle_helpers import age_store, blob_count, log, store


def test_deleted_version_blobs_stay_while_shared(isolated_store: Path) -> None:
    log("a", {"shared": "same bytes", "mine": "only a"})
    log("b", {"shared": "same bytes"})  # another artifact shares the blob
    wandb.Api().artifact("a:v0").delete(delete_aliases=True)
    report = gc(store(), grace="0")
    assert (report.blobs_deleted, report.bytes_freed > 0) == (1, True)
    assert blob_count(isolated_store) == 1
    path = wandb.Api().artifact("b:v0").download()
    assert Path(path, "shared").read_text() == "same bytes"


def test_gc_keeps_blobs_of_pending_versions(isolated_store: Path) -> None:
    """A parallel writer's upserted files (pending_entries) are live until finished."""
    artifact = log("p", {"f": "pending content"})
    digest = artifact.manifest.entries["f"].digest
    registry = store().registry
    with Session(registry.sql_engine) as session, session.begin():
        collection_id = session.query(CollectionRow.id).filter_by(name="p").scalar()
        pending = VersionRow(
            collection_id=collection_id, state=PENDING, distributed_id="d1", size=0
        )
        session.add(pending)
        session.flush()
        session.add(
            PendingEntryRow(version_id=pending.id, path="f", entry={"digest": digest, "size": 15})
        )
    artifact.delete(delete_aliases=True)
    report = gc(store(), grace="0")
    assert report.blobs_deleted == 0 and report.blobs_kept == 1
    assert report.manifests_deleted == 1  # the deleted version's manifest is not needed
    assert blob_count(isolated_store) == 1


def test_gc_dry_run_changes_nothing(store_snapshot: Any) -> None:
    log("a", {"x": "1"}, ttl=timedelta(seconds=1))
    log("a", {"x": "2"})
    wandb.Api().artifact("a:v1").delete(delete_aliases=True)
    before = store_snapshot()
    report = gc(
        store(), grace="0", dry_run=True, now=datetime.now(timezone.utc) + timedelta(hours=1)
    )
    assert len(report.expired) == 1 and report.blobs_deleted == 2 and report.manifests_deleted == 2
    assert store_snapshot() == before


def test_a_writer_reusing_an_old_orphan_blob_keeps_it_from_gc(
    isolated_store: Path, tmp_path: Path
) -> None:
    """The dedupe race: a writer finds an orphan blob already stored and skips uploading it."""
    log("old", {"data": "reused bytes"}).delete(delete_aliases=True)
    age_store(isolated_store, 2 * 86400)
    source = tmp_path / "data"
    source.write_text("reused bytes")

    control = wandb.Artifact("new", type="dataset")
    control.add_file(str(source))
    # Without the refresh, gc (grace 1 h) collects the orphan the writer is about to rely on.
    assert gc(store(), grace="1h", dry_run=True).blobs_deleted == 1

    manifest = control.manifest
    keys = keys_of([(manifest, manifest_key(manifest.to_bytes()))])
    with protect_reuse(store().blobs, keys):  # what a commit does before it checks the store
        report = gc(store(), grace="1h")
    assert report.blobs_deleted == 0 and report.recent_kept >= 1
    with wandb.init(job_type="writer") as run:
        run.log_artifact(control).wait()
    path = wandb.Api().artifact("new:v0").download(root=str(tmp_path / "out"))
    assert Path(path, "data").read_text() == "reused bytes"


def test_gc_between_upsert_and_finish_keeps_the_parallel_version_whole(tmp_path: Path) -> None:
    """Real upserts: a gc with no grace between writers and the finish collects nothing needed."""
    settings = Settings.resolve()
    for writer in range(3):
        with start_run(settings, job_type="writer", group="batch-1") as run:
            part = wandb.Artifact("parts", type="dataset")
            with part.new_file(f"part-{writer}.txt") as handle:
                handle.write(f"rows of writer {writer}")
            run.upsert_artifact(part, distributed_id="batch-1")
    report = gc(store(), grace="0")
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
    assert gc(store(), grace="0").blobs_deleted == 0


def test_gc_rereads_the_registry_before_deleting(
    monkeypatch: pytest.MonkeyPatch, isolated_store: Path, tmp_path: Path
) -> None:
    """A writer commits a version reusing an old orphan after gc read the registry and chose its
    candidates, and before gc's deletion batch: its lease is gone by then (the commit is done), so
    only gc's re-read of the registry before each deletion batch keeps the new version whole.

    The interleaving is forced by wrapping gc's first registry read (the commit itself is real:
    it runs to the end while gc holds the stale answer), and the store is aged afterwards so
    that nothing is spared for its age.
    """
    log("old", {"data": "reused bytes"}).delete(delete_aliases=True)
    age_store(isolated_store, 2 * 86400)
    registry = store().registry
    real = registry.live_references
    calls: list[int] = []

    def interleaved() -> Any:
        calls.append(1)
        stale = real()
        if len(calls) == 1:  # gc now holds a registry answer without the new version
            log("new", {"data": "reused bytes"})
            age_store(isolated_store, 2 * 86400)
        return stale

    monkeypatch.setattr(registry, "live_references", interleaved)
    report = gc(store(), grace="1h")
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
    assert gc(store(), grace="1h", now=later, dry_run=True).blobs_deleted == 1  # collectable

    blobs = store().blobs
    real_existing = blobs.existing
    reports: list[Any] = []

    def existing_then_gc(keys: Any, **options: Any) -> set[str]:
        present = real_existing(keys, **options)
        if not reports:  # the writer has decided what to skip; now gc runs in full
            reports.append(gc(store(), grace="1h", now=later))
        return present

    monkeypatch.setattr(blobs, "existing", existing_then_gc)
    log("new", {"data": "reused bytes"})

    [report] = reports
    assert (report.blobs_deleted, report.manifests_deleted) == (0, 0)
    assert report.recent_kept == 2  # the leased blob and manifest
    path = wandb.Api().artifact("new:v0").download(root=str(tmp_path / "new"))
    assert Path(path, "data").read_text() == "reused bytes"
    keys = s3.keys(bucket, "art/")
    assert not [k for k in keys if k.startswith(("art/leases/", "art/gc/"))]  # all released
    assert gc(store(), grace="1h", now=later).blobs_deleted == 0  # now live


def test_s3_writer_starting_during_a_gc_batch_waits_then_uploads_what_gc_removed(
    s3_store: tuple[Any, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The other order: gc has read the leases (none) and is about to delete the orphan when a
    writer that needs it starts. The writer finds gc's batch marker, waits for the batch, then
    sees the blob gone and uploads it: its version is complete."""
    s3, bucket = s3_store
    log("old", {"data": "reused bytes"}).delete(delete_aliases=True)
    real_leased = garbage.leased_keys
    writer_waits = threading.Event()
    errors: list[BaseException] = []
    threads: list[threading.Thread] = []

    class WaitingClock(Clock):
        """The system clock, telling the test when a writer waits for a gc batch."""

        def sleep(self, seconds: float) -> None:
            writer_waits.set()
            super().sleep(seconds)

    store().clock = WaitingClock()  # the writer thread opens the same store

    def leased_then_writer_starts(blobs: Any, clock: Clock) -> set[str]:
        leased = real_leased(blobs, clock)  # no lease yet: the writer has not started
        threads.append(_log_in_thread("new", "reused bytes", errors))
        assert writer_waits.wait(timeout=20), "the writer never waited for the gc batch"
        return leased

    monkeypatch.setattr(garbage, "leased_keys", leased_then_writer_starts)
    report = gc(store(), grace="1h", now=_two_days_on())
    threads[0].join(timeout=60)
    assert not errors, errors
    assert (report.blobs_deleted, report.manifests_deleted) == (1, 1)  # the orphan went...
    blob = blob_key(wandb.Api().artifact("new:v0").manifest.entries["data"].digest)
    assert f"art/{blob}" in s3.keys(bucket, "art/blobs/")  # ...and the writer put it back
    path = wandb.Api().artifact("new:v0").download(root=str(tmp_path / "new"))
    assert Path(path, "data").read_text() == "reused bytes"


def test_s3_gc_deletes_in_bulk_and_frees_what_it_reports(
    s3_store: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    s3, bucket = s3_store
    monkeypatch.setattr(garbage, "DELETE_BATCH", 8)  # several batches from a small store
    monkeypatch.setattr(objects, "DELETE_CHUNK", 3)  # several requests per batch
    kept = log("kept", {"shared.txt": "in both"})
    doomed = {f"f{index:02d}.txt": f"only in the deleted version {index}" for index in range(20)}
    log("gone", {"shared.txt": "in both", **doomed}).delete(delete_aliases=True)
    sizes = {
        item["Key"]: item["Size"]
        for item in s3.client.list_objects_v2(Bucket=bucket, Prefix="art/")["Contents"]
    }
    blobs = store().blobs
    requests: list[str] = []
    real_call = blobs.fs._call_s3

    async def spy(method: str, *args: Any, **kwargs: Any) -> Any:
        requests.append(method)
        return await real_call(method, *args, **kwargs)

    monkeypatch.setattr(blobs.fs, "_call_s3", spy)
    report = gc(store(), grace="0", now=_two_days_on())

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
    assert kept.download() and gc(store(), grace="0", now=_two_days_on()).blobs_deleted == 0


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
    report = gc(store(), grace="0", now=_two_days_on())
    after = set(gcs.keys(bucket, "art/"))
    assert (report.blobs_deleted, report.manifests_deleted, report.blobs_kept) == (2, 1, 1)
    assert {f"art/{key}" for key in report.deleted_keys} == before - after
    assert {key.split("/")[1] for key in after} == {"blobs", "manifests"}
    path = kept.download(root=str(tmp_path / "kept"))
    assert Path(path, "shared.txt").read_text() == "in both"


def test_a_commit_is_safe_from_gc_whatever_the_age_of_its_staged_files(
    isolated_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A draft built long ago: its staged copies keep their old mtime when renamed into the
    store. A gc (grace 1 h) after the blobs are stored and before the manifest is (so no young
    manifest vouches for them yet) must not collect them: the writer's lease covers every key
    of the commit, not only reused ones."""
    draft = wandb.Artifact("slow-draft", type="dataset")
    with draft.new_file("data.txt") as handle:
        handle.write("made two days ago")
    cache = Path(Settings.resolve().cache_dir)
    for path in (cache / "staging").rglob("*"):  # the staging area lives in the cache dir
        if path.is_file():
            stamp = path.stat().st_mtime - 2 * 86400
            os.utime(path, (stamp, stamp))
    blobs = store().blobs
    real_put_bytes = blobs.put_bytes
    reports: list[Any] = []

    def gc_then_put(data: bytes, key: str) -> None:
        if key.startswith("manifests/") and not reports:
            reports.append(gc(store(), grace="1h"))  # the blobs are stored, nothing else yet
        real_put_bytes(data, key)

    monkeypatch.setattr(blobs, "put_bytes", gc_then_put)
    with wandb.init(job_type="writer") as run:
        run.log_artifact(draft).wait()
    assert reports and reports[0].blobs_deleted == 0
    path = wandb.Api().artifact("slow-draft:v0").download(root=str(tmp_path / "out"))
    assert Path(path, "data.txt").read_text() == "made two days ago"
