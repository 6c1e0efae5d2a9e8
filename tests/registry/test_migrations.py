"""Upgrading a registry that already holds data, on SQLite and PostgreSQL.

Each test builds a store at an older revision with the packaged migrations, fills it with rows
as that revision wrote them (through the reflected schema, so the test does not depend on
today's models), then opens it with :class:`Registry`, which upgrades it to head in place.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

import dagster_artifacts as wandb
from dagster_artifacts.errors import RegistryError
from dagster_artifacts.registry import CommitRequest, Registry, migrate

NOW = datetime.now(timezone.utc)


def _store_at(url: str, revision: str) -> sa.Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        command.upgrade(migrate.alembic_config(connection), revision)
    return engine


def _insert(connection: sa.Connection, table: str, *rows: dict[str, Any]) -> None:
    tables = sa.MetaData()
    tables.reflect(connection, only=[table])
    connection.execute(tables.tables[table].insert(), list(rows))


def _project_and_collection(connection: sa.Connection, name: str, next_index: int) -> None:
    _insert(connection, "projects", {"id": 1, "entity": "e", "name": "p", "created_at": NOW})
    _insert(
        connection,
        "collections",
        {
            "id": 1,
            "project_id": 1,
            "name": name,
            "type": "dataset",
            "next_index": next_index,
            "created_at": NOW,
        },
    )


def _version(**values: Any) -> dict[str, Any]:
    row = {
        "collection_id": 1,
        "state": "COMMITTED",
        "size": 1,
        "file_count": 1,
        "metadata": {},
        "created_at": NOW,
    }
    return {**row, **values}


def _commit(registry: Registry, digest: str, partition: str | None) -> tuple[int | None, bool]:
    record, created = registry.commit_version(
        CommitRequest(
            entity="e",
            project="p",
            name="data",
            type="dataset",
            digest=digest,
            manifest_key=f"manifests/{digest}.json",
            size=1,
            file_count=1,
            partition_key=partition,
        )
    )
    return record.index, created


def test_upgrade_from_0001_keeps_data_and_applies_partition_identity(registry_url: str) -> None:
    """Versions, aliases and dedupe survive; partitions get their own versions from then on."""
    engine = _store_at(registry_url, "0001")
    try:
        with engine.begin() as connection:
            _project_and_collection(connection, "data", next_index=2)
            _insert(
                connection,
                "versions",
                *(
                    _version(
                        id=index + 1,
                        index=index,
                        digest=f"d{index}",
                        manifest_key=f"manifests/{index}.json",
                        metadata={"k": index},
                        partition_key=partition,
                        committed_at=NOW,
                    )
                    for index, partition in ((0, "a"), (1, None))
                ),
            )
            _insert(connection, "aliases", {"collection_id": 1, "version_id": 2, "alias": "latest"})
            assert migrate.current_revision(connection) == "0001"
    finally:
        engine.dispose()

    registry = Registry(registry_url)  # upgrades to head
    try:
        with registry.sql_engine.connect() as connection:
            assert migrate.current_revision(connection) == migrate.head_revision()
        assert registry.resolve("e", "p", "data", "latest").index == 1
        assert registry.resolve("e", "p", "data", "v0").partition_key == "a"
        assert registry.resolve("e", "p", "data", "v0").metadata == {"k": 0}
        assert _commit(registry, "d0", "a") == (0, False)  # same partition: dedupes
        assert _commit(registry, "d0", "b") == (2, True)  # another partition: its own version
        assert _commit(registry, "d1", None) == (1, False)  # unpartitioned dedupe unchanged
        assert _commit(registry, "d0", None) == (3, True)
    finally:
        registry.dispose()


def test_downgrade_refuses_data_the_old_schema_cannot_hold(registry_url: str) -> None:
    registry = Registry(registry_url)
    try:
        assert _commit(registry, "same", "a") == (0, True)
        assert _commit(registry, "same", "b") == (1, True)
        with pytest.raises(RuntimeError, match="0002"), registry.sql_engine.begin() as connection:
            command.downgrade(migrate.alembic_config(connection), "0001")
        with registry.sql_engine.connect() as connection:
            assert migrate.current_revision(connection) == migrate.head_revision()
        assert len(registry.list_versions("e", "p", "data")) == 2
    finally:
        registry.dispose()


OLD_PENDING_STATE = {
    "digest_algorithm": "md5",
    "aliases": ["nightly"],
    "metadata": {"writers": 2},
    "description": "parts of the nightly table",
}


def test_pending_version_written_by_0002_upgrades_and_finishes(registry_url: str) -> None:
    """A parallel artifact half-written before the upgrade (its state inside the metadata
    JSON) keeps its aliases, metadata, description and algorithm, and finishes after it."""
    engine = _store_at(registry_url, "0002")
    try:
        with engine.begin() as connection:
            _project_and_collection(connection, "par", next_index=0)
            _insert(
                connection,
                "versions",
                _version(id=7, state="PENDING", distributed_id="batch", metadata=OLD_PENDING_STATE),
            )
            _insert(
                connection,
                "pending_entries",
                {"version_id": 7, "path": "a.txt", "entry": {"digest": "AAAA", "size": 1}},
            )
    finally:
        engine.dispose()

    registry = Registry(registry_url)
    try:
        snapshot = registry.pending_snapshot("e", "p", "par", "batch")
        assert snapshot is not None
        assert (snapshot.version_id, snapshot.digest_algorithm) == (7, "md5")
        assert snapshot.aliases == ("nightly",)
        assert snapshot.metadata == {"writers": 2}
        assert snapshot.description == "parts of the nightly table"
        assert list(snapshot.entries) == ["a.txt"]

        # Back down to 0002 restores the old JSON exactly, and up again converts it again.
        with registry.sql_engine.begin() as connection:
            command.downgrade(migrate.alembic_config(connection), "0002")
            old = connection.execute(sa.text("SELECT metadata FROM versions WHERE id = 7"))
            stored = old.scalar()
        assert (json.loads(stored) if isinstance(stored, str) else stored) == OLD_PENDING_STATE
        registry.dispose()
        registry = Registry(registry_url)
        again = registry.pending_snapshot("e", "p", "par", "batch")
        assert again is not None and again.aliases == ("nightly",)

        record, created = registry.commit_version(
            CommitRequest(
                entity="e",
                project="p",
                name="par",
                type="dataset",
                digest="d-par",
                manifest_key="manifests/par.json",
                size=1,
                file_count=1,
                metadata=again.metadata,
                description=again.description,
                aliases=(*again.aliases, "latest"),
                pending_version_id=again.version_id,
                pending_marker=again.marker,
            )
        )
        assert created and record.index == 0
        assert sorted(record.aliases) == ["latest", "nightly"]
        assert record.metadata == {"writers": 2}
        assert record.description == "parts of the nightly table"
    finally:
        registry.dispose()


def test_parallel_writers_state_lives_in_columns(registry_url: str) -> None:
    """Upserted aliases, metadata and description reach the finished version; the version's
    metadata holds only what the writers gave (no bookkeeping keys)."""
    with wandb.init(group="g1") as first, wandb.init(group="g1") as second:
        for run, index in ((first, 1), (second, 2)):
            part = wandb.Artifact("par", type="dataset", metadata={f"writer{index}": True})
            with part.new_file(f"part{index}.txt") as handle:
                handle.write(f"part {index}")
            run.upsert_artifact(part, aliases=[f"w{index}"]).wait()
    with wandb.init(group="g1") as finisher:
        finished = finisher.finish_artifact(wandb.Artifact("par", type="dataset")).wait()
    assert finished.metadata == {"writer1": True, "writer2": True}
    assert sorted(finished.aliases) == ["latest", "w1", "w2"]
    assert sorted(p.path for p in finished.files()) == ["part1.txt", "part2.txt"]


def test_registry_newer_than_this_package_is_a_clear_error(registry_url: str) -> None:
    """Another machine ran a newer dagster-artifacts: say so, and change nothing."""
    Registry(registry_url).dispose()
    engine = sa.create_engine(registry_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE alembic_version SET version_num = '0999'"))
        with pytest.raises(RegistryError, match="0999.*pip install -U dagster-artifacts"):
            Registry(registry_url)
        with engine.connect() as connection:
            assert migrate.current_revision(connection) == "0999"
    finally:
        engine.dispose()


def test_revisions_are_named_by_their_file_so_the_head_is_known_without_alembic() -> None:
    """``migrate.packaged_head`` (the fast path of every start) reads the head from file names."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS))
    for script in ScriptDirectory.from_config(config).walk_revisions():
        assert script.path is not None
        assert Path(script.path).name.startswith(f"{script.revision}_"), script.path
    assert migrate.packaged_head() == migrate.head_revision()


def test_upgrade_to_0004_keeps_aliases_and_lineage_and_links_work(registry_url: str) -> None:
    """0004 adds columns and indexes in place (no table rebuild, whose DROP would cascade to
    aliases and lineage on SQLite); existing collections are sequences without tags."""
    engine = _store_at(registry_url, "0003")
    try:
        with engine.begin() as connection:
            _project_and_collection(connection, "model", next_index=1)
            _insert(
                connection,
                "versions",
                _version(
                    id=1, index=0, digest="d0", manifest_key="manifests/0.json", committed_at=NOW
                ),
            )
            _insert(connection, "aliases", {"collection_id": 1, "version_id": 1, "alias": "best"})
            _insert(
                connection,
                "runs",
                {
                    "id": "r1",
                    "project_id": 1,
                    "name": "r1",
                    "config": {},
                    "state": "finished",
                    "created_at": NOW,
                },
            )
            _insert(
                connection,
                "lineage",
                {"run_id": "r1", "version_id": 1, "direction": "used", "created_at": NOW},
            )
    finally:
        engine.dispose()

    registry = Registry(registry_url)  # upgrades to head
    try:
        source = registry.resolve("e", "p", "model", "best")
        assert source.aliases == ["best"] and source.tags == [] and source.source is None
        assert [run.id for run in registry.used_by(source.id)] == ["r1"]
        collection = registry.find_collection("e", "p", "model")
        assert collection is not None and collection.kind == "sequence"
        link, created = registry.link_version(source.id, "e", "registry", "models", ["prod"])
        assert created and link.source is not None and link.digest == "d0"
        assert registry.resolve("e", "registry", "models", "prod").id == link.id
        # One link per source and collection; logged versions keep deduping by digest.
        assert registry.link_version(source.id, "e", "registry", "models", [])[1] is False
        assert _commit(registry, "d0", None) == (0, True)  # another collection: its own v0

        with pytest.raises(RuntimeError, match="links"), registry.sql_engine.begin() as connection:
            command.downgrade(migrate.alembic_config(connection), "0003")
        registry.unlink_version(link.id)
        with registry.sql_engine.begin() as connection:  # no committed link left: allowed
            command.downgrade(migrate.alembic_config(connection), "0003")
            assert migrate.current_revision(connection) == "0003"
    finally:
        registry.dispose()
