"""What makes two logs "the same version", on SQLite and PostgreSQL.

- The partition key is part of a version's identity: the same bytes for another partition are a
  new version tied to that partition; for the same partition (or unpartitioned) they dedupe.
- A commit that skipped its upload to reuse an equal version never ends up pointing at a manifest
  that a concurrent delete + gc removed.
- Listing an artifact's versions costs a fixed number of queries, whatever their number.

Upgrading an existing store to these rules: ``test_migrations.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

import dagster_artifacts as wandb
from dagster_artifacts.garbage import gc
from dagster_artifacts.registry import CommitRequest, Registry, ReusedVersionGoneError
from dagster_artifacts.settings import Settings
from dagster_artifacts.state import open_store


def _artifact(content: str, name: str = "data") -> wandb.Artifact:
    artifact = wandb.Artifact(name, type="dataset")
    with artifact.new_file("data.txt") as handle:
        handle.write(content)
    return artifact


def _log(
    run: wandb.Run, content: str, partition: str | None = None, name: str = "data"
) -> wandb.Artifact:
    return run.log_artifact(_artifact(content, name), partition_key=partition).wait()


def test_partition_key_is_part_of_version_identity(registry_url: str) -> None:
    with wandb.init(job_type="writer") as run:
        a = _log(run, "same bytes", partition="a")
        b = _log(run, "same bytes", partition="b")
        a_again = _log(run, "same bytes", partition="a")
        plain = _log(run, "same bytes")
        plain_again = _log(run, "same bytes")
    assert (a.version, b.version, a_again.version) == ("v0", "v1", "v0")
    assert (plain.version, plain_again.version) == ("v2", "v2")
    assert [x.deduplicated for x in (a, b, a_again, plain, plain_again)] == [
        False,
        False,
        True,
        False,
        True,
    ]
    assert a.digest == b.digest == plain.digest
    assert (a.partition_key, b.partition_key, plain.partition_key) == ("a", "b", None)

    api = wandb.Api()
    versions = api.artifact_versions("dataset", "data")
    assert [(v.version, v.partition_key) for v in versions] == [
        ("v0", "a"),
        ("v1", "b"),
        ("v2", None),
    ]
    assert api.artifact("data:latest").version == "v2"  # the last log, deduplicated, has it
    registry = open_store(Settings.resolve()).registry
    entity, project = api.default_entity, api.default_project
    for partition, expected in (("a", "v0"), ("b", "v1")):
        newest = registry.list_versions(entity, project, "data", partition_key=partition)[-1]
        assert f"v{newest.index}" == expected
        found = registry.find_committed(entity, project, "data", a.digest, partition)
        assert found is not None and f"v{found.index}" == expected
        assert api.artifact(f"data:{expected}").download()  # each version's bytes are there


def test_concurrent_logs_of_equal_partitions_make_one_version_each(registry_url: str) -> None:
    """Four threads log the same bytes for partitions a and b at once: exactly two versions."""
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with wandb.init(job_type="racer") as run:
                for partition in ("a", "b", "a", "b"):
                    _log(run, "shared", partition=partition)
        except BaseException as error:  # noqa: BLE001  (reported below)
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    versions = wandb.Api().artifact_versions("dataset", "data")
    assert sorted(v.partition_key for v in versions) == ["a", "b"]
    assert sorted(v.version_index for v in versions) == [0, 1]
    registry = open_store(Settings.resolve()).registry
    for version in versions:  # every thread's run has its lineage edge on both versions
        assert len(registry.logging_runs(version.id)) == 4


def test_reuse_of_a_version_deleted_and_collected_meanwhile_uploads(
    registry_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Force the race: the dedupe probe finds v0, then v0 is deleted and gc removes its
    manifest and blobs, then the commit runs. The new log must upload its own bytes and
    become a readable version, not point at the collected manifest."""
    with wandb.init() as run:
        first = _log(run, "to be collected")
    store = open_store(Settings.resolve())
    probe = store.registry.find_committed
    raced: list[str] = []

    def probe_then_delete_and_collect(*args: Any, **kwargs: Any) -> Any:
        found = probe(*args, **kwargs)
        if found is not None and not raced:
            raced.append(found.manifest_key or "")
            store.registry.delete_version(found.id, delete_aliases=True)
            collected = gc(store, grace="0")
            assert found.manifest_key in collected.deleted_keys
        return found

    monkeypatch.setattr(store.registry, "find_committed", probe_then_delete_and_collect)
    with wandb.init() as run:
        second = _log(run, "to be collected")
    assert len(raced) == 1  # the interleaving really happened
    assert second.version == "v1" and not second.deduplicated
    assert second.digest == first.digest
    api = wandb.Api()
    assert [v.version for v in api.artifact_versions("dataset", "data")] == ["v1"]
    folder = Path(api.artifact("data:latest").download())
    assert (folder / "data.txt").read_text() == "to be collected"


def test_commit_that_reuses_a_vanished_version_writes_nothing(registry_url: str) -> None:
    registry = Registry(registry_url)
    try:
        reuse = CommitRequest(
            entity="e",
            project="p",
            name="data",
            type="dataset",
            digest="d0",
            manifest_key="manifests/gone.json",
            size=1,
            file_count=1,
            aliases=("latest",),
            manifest_written=False,
        )
        with pytest.raises(ReusedVersionGoneError):
            registry.commit_version(reuse)
        assert registry.list_versions("e", "p", "data") == []
        assert registry.collection_type("e", "p", "data") is None  # rolled back entirely
        record, created = registry.commit_version(
            CommitRequest(**{**reuse.__dict__, "manifest_written": True})
        )
        assert created and record.index == 0
        # Reusing a version that is still there dedupes to it, whatever manifest key is given.
        again, created = registry.commit_version(reuse)
        assert not created and again.id == record.id
    finally:
        registry.dispose()


@contextmanager
def _count_statements(engine: sa.Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "PRAGMA")):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_listing_many_versions_is_a_few_queries_with_right_aliases(registry_url: str) -> None:
    registry = Registry(registry_url)
    try:
        for name in ("data", "other"):
            for index in range(150):
                aliases = ["latest"] + (["best"] if index == 70 else [])
                aliases += [f"tag{index}"] if index % 50 == 0 else []
                registry.commit_version(
                    CommitRequest(
                        entity="e",
                        project="p",
                        name=name,
                        type="dataset",
                        digest=f"{name}-{index}",
                        manifest_key=f"manifests/{name}-{index}.json",
                        size=index,
                        file_count=1,
                        aliases=tuple(aliases),
                    )
                )
        with _count_statements(registry.sql_engine) as statements:
            versions = registry.list_versions("e", "p", "data")
        assert len(statements) <= 5, statements
        assert [v.index for v in versions] == list(range(150))
        assert {v.index: v.aliases for v in versions if v.aliases} == {
            0: ["tag0"],
            50: ["tag50"],
            70: ["best"],
            100: ["tag100"],
            149: ["latest"],
        }
        assert {v.name for v in versions} == {"data"} and versions[3].size == 3
        with _count_statements(registry.sql_engine) as statements:
            best = registry.resolve("e", "p", "data", "best")
        assert best.index == 70 and best.aliases == ["best"]
        assert len(statements) <= 3, statements
    finally:
        registry.dispose()
