"""The registry on SQLite and PostgreSQL: commits, dedupe, aliases, migrations and faults.

Every test that takes ``registry_url`` runs twice, once per backend (see
``tests/services/postgres.py``); PostgreSQL tests use a throwaway cluster started by the suite.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from multiprocessing.pool import Pool
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

import dagster_artifacts as wandb
from dagster_artifacts.errors import ConflictError, RegistryError
from dagster_artifacts.registry import (
    CommitRequest,
    PendingChangedError,
    PendingUpsert,
    Registry,
    migrate,
)
from dagster_artifacts.settings import Settings
from dagster_artifacts.state import open_store
from tests.services.postgres import PostgresCluster, find_bin_dir
from tests.services.processes import stoppable


def _log(run: wandb.Run, text_content: str, aliases: list[str] | None = None) -> wandb.Artifact:
    artifact = wandb.Artifact("data", type="dataset")
    with artifact.new_file("data.txt") as handle:
        handle.write(text_content)
    return run.log_artifact(artifact, aliases=aliases).wait()


def test_versions_dedupe_and_aliases(registry_url: str) -> None:
    with wandb.init(job_type="writer") as run:
        first = _log(run, "one", aliases=["best"])
        second = _log(run, "two")
        again = _log(run, "one")
    assert (first.version, second.version, again.version) == ("v0", "v1", "v0")
    assert again.deduplicated and not second.deduplicated
    api = wandb.Api()
    # The dedupe applied `latest` again, as W&B does; `best` stayed where it was.
    assert api.artifact("data:latest").version == "v0"
    assert api.artifact("data:best").version == "v0"
    assert [a.version for a in api.artifact_versions("dataset", "data")] == ["v0", "v1"]
    assert open_store(Settings.resolve()).registry.url == registry_url


def test_migrations_match_models_and_run_twice(registry_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from dagster_artifacts.registry.models import Base

    Registry(registry_url).dispose()
    Registry(registry_url).dispose()  # at head already: a no-op
    engine = create_engine(registry_url)
    try:
        with engine.connect() as connection:
            assert migrate.current_revision(connection) == migrate.head_revision()
            assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert diff == [], f"models and migrations drifted apart: {diff}"
        assert "pending_entries" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def _migrate(url: str) -> str | None:
    registry = Registry(url)
    try:
        with registry.sql_engine.connect() as connection:
            return migrate.current_revision(connection)
    finally:
        registry.dispose()


def _warm(_: int) -> None:
    import dagster_artifacts.registry.registry  # noqa: F401  (the package itself is lazy)


@pytest.fixture(scope="module")
def pool() -> Iterator[Pool]:
    """Four spawned processes, imported up front so that they really migrate at once."""
    with multiprocessing.get_context("spawn").Pool(4, initializer=stoppable) as workers:
        workers.map(_warm, range(4), chunksize=1)
        yield workers


def test_concurrent_migrations_from_many_processes(registry_url: str, pool: Pool) -> None:
    revisions = pool.map(_migrate, [registry_url] * 4, chunksize=1)
    assert revisions == [migrate.head_revision()] * 4
    with wandb.init() as run:
        assert _log(run, "after").version == "v0"


def test_database_down_at_start_names_the_redacted_url() -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql+psycopg://alice:s3cret@127.0.0.1:{port}/registry"
    with pytest.raises(RegistryError) as caught:
        wandb.init(database=url)
    message = str(caught.value)
    assert f"127.0.0.1:{port}/registry" in message and "alice" in message
    assert "s3cret" not in message
    assert "DAGSTER_ARTIFACTS_DATABASE" in message


def test_missing_database_is_a_clear_error(postgres_cluster: PostgresCluster) -> None:
    url = postgres_cluster.url("no_such_database")
    with pytest.raises(RegistryError, match="no_such_database"):
        Registry(url)


@pytest.mark.skipif(find_bin_dir() is None, reason="PostgreSQL binaries not installed")
def test_database_gone_mid_run_then_back(tmp_path: Path) -> None:
    """The server stops between two logs: a clear error, no half-committed version; after a
    restart the next log gets the next number."""
    cluster = PostgresCluster()
    try:
        cluster.start()
        url = cluster.create_database("registry")
        with wandb.init(database=url) as run:
            assert _log(run, "before").version == "v0"
        run = wandb.init(database=url)
        # Fail fast instead of retrying for seconds.
        open_store(run.settings).registry.max_attempts = 3
        # A fast shutdown terminates every session, as an outage does (an immediate one could
        # also drop the last commit: this throwaway cluster runs with synchronous_commit=off).
        cluster.stop("fast")
        artifact = wandb.Artifact("data", type="dataset")
        with artifact.new_file("data.txt") as handle:
            handle.write("during the outage")
        with pytest.raises(RegistryError) as caught:
            run.log_artifact(artifact).wait()
        assert "127.0.0.1" in str(caught.value)
        with pytest.raises(RegistryError):
            run.finish()
        cluster.start(same_port=True)
        with wandb.init(database=url) as run:
            assert _log(run, "after").version == "v1"
        versions = wandb.Api(database=url).artifact_versions("dataset", "data")
        assert [v.version for v in versions] == ["v0", "v1"]
        assert [v.digest for v in versions] != [artifact.digest] * 2
    finally:
        cluster.destroy()


def _request(name: str, digest: str, **extra: object) -> CommitRequest:
    return CommitRequest(
        entity="e",
        project="p",
        name=name,
        type="dataset",
        digest=digest,
        manifest_key=f"manifests/{digest}",
        size=1,
        file_count=1,
        **extra,  # type: ignore[arg-type]
    )


def _upsert(registry: Registry, path: str, digest: str, run_id: str | None = None) -> int:
    return registry.upsert_pending(
        PendingUpsert(
            entity="e",
            project="p",
            name="par",
            type="dataset",
            distributed_id="batch",
            entries={path: {"digest": digest, "size": 1}},
            digest_algorithm="md5",
            run_id=run_id,
        )
    )


def test_finish_refuses_entries_that_changed_since_it_read_them(registry_url: str) -> None:
    registry = Registry(registry_url)
    try:
        version_id = _upsert(registry, "a.txt", "AAAA")
        snapshot = registry.pending_snapshot("e", "p", "par", "batch")
        assert snapshot is not None and snapshot.version_id == version_id
        assert _upsert(registry, "b.txt", "BBBB") == version_id  # a late writer
        stale = _request("par", "d1", pending_version_id=version_id, pending_marker=snapshot.marker)
        with pytest.raises(PendingChangedError):
            registry.commit_version(stale)
        fresh = registry.pending_snapshot("e", "p", "par", "batch")
        assert fresh is not None and sorted(fresh.entries) == ["a.txt", "b.txt"]
        record, created = registry.commit_version(
            _request("par", "d2", pending_version_id=version_id, pending_marker=fresh.marker)
        )
        assert created and record.index == 0 and record.state == "COMMITTED"
        # A second finisher holding the old snapshot is told the batch is already finished.
        with pytest.raises(ConflictError, match="finished"):
            registry.commit_version(
                _request("par", "d3", pending_version_id=version_id, pending_marker=fresh.marker)
            )
        # An upsert after the finish starts a new pending version.
        assert _upsert(registry, "a.txt", "CCCC") != version_id
    finally:
        registry.dispose()


def test_conflicting_upsert_records_nothing(registry_url: str) -> None:
    registry = Registry(registry_url)
    try:
        _upsert(registry, "a.txt", "AAAA")
        _upsert(registry, "a.txt", "AAAA")  # same content again: fine
        with pytest.raises(ConflictError, match=r"a\.txt"):
            registry.upsert_pending(
                PendingUpsert(
                    entity="e",
                    project="p",
                    name="par",
                    type="dataset",
                    distributed_id="batch",
                    entries={"b.txt": {"digest": "BBBB"}, "a.txt": {"digest": "ZZZZ"}},
                    digest_algorithm="md5",
                )
            )
        snapshot = registry.pending_snapshot("e", "p", "par", "batch")
        assert snapshot is not None and list(snapshot.entries) == ["a.txt"]
    finally:
        registry.dispose()


def test_non_race_integrity_errors_are_not_retried(registry_url: str) -> None:
    """A foreign key violation is a bug, not a race: one attempt, a clear RegistryError."""
    registry = Registry(registry_url)
    try:
        with pytest.raises(RegistryError, match="Registry error"):
            registry.add_lineage("no-such-run", 123456)
    finally:
        registry.dispose()


def test_alias_moves_race_with_new_versions(registry_url: str) -> None:
    """Threads log versions while moving `best` by hand: no deadlock, one `best`, 0..N-1."""
    import threading

    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            with wandb.init(job_type="alias-race") as run:
                for log in range(6):
                    artifact = _log(run, f"thread {index} log {log}")
                    artifact.aliases.append("best")
                    artifact.save()
        except BaseException as error:  # noqa: BLE001  (reported below)
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    versions = wandb.Api().artifact_versions("dataset", "data")
    assert [v.version_index for v in versions] == list(range(24))
    assert sum("best" in v.aliases for v in versions) == 1
    assert sum("latest" in v.aliases for v in versions) == 1
