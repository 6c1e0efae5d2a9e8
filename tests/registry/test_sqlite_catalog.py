"""The light listings reader (``registry.sqlite_catalog``) against the full ``Registry``.

``dagster-artifacts ls`` reads projects, types and collections through :func:`open_catalog`,
which answers from the standard library's ``sqlite3`` when it can. These tests build one
registry with everything a listing must see or leave out (several projects and entities, types,
aliases, tags, links, partitions, deleted and pending versions, a project with runs only)
through the real API, and check that both readers return equal records; then that every other
database (PostgreSQL, a missing file, an older or a newer schema, a file that is no database)
goes to the full registry, which creates, migrates or explains it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

import dagster_artifacts as wandb
from dagster_artifacts.errors import RegistryError
from dagster_artifacts.registry import Catalog, Registry, migrate, open_catalog
from dagster_artifacts.registry.sqlite_catalog import SCHEMA_REVISION, SQLiteCatalog
from dagster_artifacts.settings import Settings
from dagster_artifacts.state import reset_stores


def _log(
    name: str,
    text: str,
    *,
    type: str = "dataset",
    project: str | None = None,
    entity: str | None = None,
    aliases: list[str] | None = None,
    partition_key: str | None = None,
) -> wandb.Artifact:
    with wandb.init(job_type="test", project=project, entity=entity) as run:
        artifact = wandb.Artifact(name, type=type)
        with artifact.new_file("data.txt") as handle:
            handle.write(text)
        run.log_artifact(artifact, aliases=aliases, partition_key=partition_key).wait()
    return artifact


def _upsert_only(name: str, text: str, distributed_id: str) -> None:
    """A parallel writer's part of a version that nobody finishes: it stays pending."""
    with wandb.init(job_type="writer", group=distributed_id) as run:
        part = wandb.Artifact(name, type="dataset")
        with part.new_file(f"part-{text}.txt") as handle:
            handle.write(text)
        run.upsert_artifact(part, distributed_id=distributed_id)


def _fill_registry() -> None:
    # default/uncategorized: versions kept, deleted, aliased, partitioned; tags and description.
    for text in ("v0", "v1", "v2"):
        _log("rides", text, aliases=["best"] if text == "v0" else None)
    wandb.Api().artifact("rides:v1").delete()
    _log("rides", "partition a", partition_key="2024-01")
    _log("gone", "only version")
    wandb.Api().artifact("gone:v0").delete(delete_aliases=True)  # a collection of none
    _upsert_only("half-done", "x", "batch-1")  # a collection whose one version is pending
    _log("mixed", "committed")
    _upsert_only("mixed", "y", "batch-2")  # a committed version and a pending one
    model = _log("bike-model", "weights", type="model")
    _log("bike-model", "weights 2", type="model")
    collection = wandb.Api().artifact_collection("model", "bike-model")
    collection.description = "the bike model"
    collection.tags = ["prod", "bikes"]
    collection.save()
    # default/wandb-registry-model: a collection of links (a portfolio), one link deleted.
    model.link("wandb-registry-model/bikes", aliases=["production"])
    wandb.Api().artifact("bike-model:v1").link("wandb-registry-model/bikes")
    wandb.Api().artifact("wandb-registry-model/bikes:v1").unlink()
    # Other entities and projects; one holds a run and no artifact.
    _log("eval-set", "e", type="eval", project="p2", entity="team")
    _log("rides", "other project", project="p2", entity="team")
    _log("zeta", "z", type="dataset", project="p2", entity="alpha")
    with wandb.init(job_type="empty", project="runs-only"):
        pass


@pytest.fixture
def filled() -> Iterator[str]:
    """The URL of a SQLite registry holding all of the above."""
    _fill_registry()
    url = Settings.resolve().database
    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        states = dict(connection.execute("SELECT state, count(*) FROM versions GROUP BY state"))
    connection.close()
    assert states == {"COMMITTED": 10, "DELETED": 3, "PENDING": 2}  # all three kinds are there
    yield url


def _everything(catalog: Catalog) -> dict[str, object]:
    """Every listing a catalog gives of every project (and of one that does not exist)."""
    projects = catalog.list_projects()
    seen: dict[str, object] = {"projects": projects}
    for entity, project in [*projects, ("nobody", "nothing")]:
        types = catalog.list_types(entity, project)
        seen[f"{entity}/{project} types"] = types
        for type_name in [None, *types, "no-such-type"]:
            seen[f"{entity}/{project} {type_name}"] = catalog.list_collections(
                entity, project, type=type_name
            )
    return seen


def test_light_catalog_lists_what_the_registry_lists(filled: str) -> None:
    light = open_catalog(filled)
    full = Registry(filled)
    try:
        assert isinstance(light, SQLiteCatalog)
        listed = _everything(light)
        assert listed == _everything(full)
    finally:
        full.dispose()
    # What a user reads in ``ls``, spelled out once (the comparison above covers the rest).
    assert listed["projects"] == [
        ("alpha", "p2"),
        ("default", "runs-only"),
        ("default", "uncategorized"),
        ("default", "wandb-registry-model"),
        ("team", "p2"),
    ]
    here = {c.name: c for c in listed["default/uncategorized None"]}  # type: ignore[attr-defined]
    assert list(here) == ["bike-model", "gone", "half-done", "mixed", "rides"]
    counts = {name: (c.version_count, c.kind) for name, c in here.items()}
    assert counts == {
        "bike-model": (2, "sequence"),
        "gone": (0, "sequence"),
        "half-done": (0, "sequence"),
        "mixed": (1, "sequence"),
        "rides": (3, "sequence"),
    }
    assert here["rides"].size == len("v0") + len("v2") + len("partition a")
    assert here["bike-model"].tags == ["prod", "bikes"] and here["bike-model"].updated_at
    links = listed["default/wandb-registry-model None"]
    assert [(c.name, c.version_count, c.kind) for c in links] == [("bikes", 1, "portfolio")]  # type: ignore[attr-defined]
    assert listed["default/uncategorized types"] == ["dataset", "model"]
    assert listed["nobody/nothing None"] == []


def test_api_listings_open_the_store_only_when_a_collection_needs_it(filled: str) -> None:
    """Collections listed without the store still give versions, aliases and edits."""
    api = wandb.Api()
    assert api.projects()[0] == ("alpha", "p2")
    assert api.artifact_types() == ["dataset", "model"]
    rides = next(c for c in api.artifact_collections() if c.name == "rides")
    assert rides.version_count == 3
    assert [a.version for a in rides.artifacts()] == ["v3", "v2", "v0"]
    assert rides.aliases == ["best", "latest"]
    rides.description = "city rides"
    rides.save()
    # Read again by a new Api (the light reader again): the edit is there.
    (again,) = [c for c in wandb.Api().artifact_collections() if c.name == "rides"]
    assert again.description == "city rides" and again.version_count == 3
    dataset = wandb.Api().artifact_type("dataset")
    assert [c.name for c in dataset.collections()] == ["gone", "half-done", "mixed", "rides"]


def test_schema_revision_is_the_packaged_head() -> None:
    """A new migration must bump :data:`SCHEMA_REVISION` after checking the light reader's
    SQL against the new schema; until then such registries go to the full registry."""
    assert SCHEMA_REVISION == migrate.head_revision() == migrate.packaged_head()


def test_postgresql_goes_to_the_full_registry(postgres_url: str) -> None:
    catalog = open_catalog(postgres_url)
    try:
        assert isinstance(catalog, Registry)
        assert catalog.list_projects() == []
    finally:
        catalog.dispose()


def test_a_missing_file_goes_to_the_full_registry_which_creates_it(tmp_path: Path) -> None:
    path = tmp_path / "new" / "registry.db"
    catalog = open_catalog(f"sqlite:///{path}")
    try:
        assert isinstance(catalog, Registry)
        assert catalog.list_projects() == []
    finally:
        catalog.dispose()
    assert path.is_file()
    light = open_catalog(f"sqlite:///{path}")  # now at head: the light reader
    assert isinstance(light, SQLiteCatalog) and light.list_projects() == []


def test_an_older_schema_goes_to_the_full_registry_which_migrates_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        command.upgrade(migrate.alembic_config(connection), "0003")
    engine.dispose()
    catalog = open_catalog(url)
    try:
        assert isinstance(catalog, Registry)
        assert catalog.list_collections("e", "p") == []
    finally:
        catalog.dispose()
    assert _revision(tmp_path / "registry.db") == SCHEMA_REVISION


def test_a_newer_schema_is_refused_by_the_full_registry(tmp_path: Path) -> None:
    """A registry that a newer package migrated: the light reader does not guess at its
    tables, and the full registry says to upgrade."""
    path = tmp_path / "registry.db"
    Registry(f"sqlite:///{path}").dispose()
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0999'")
    connection.close()
    with pytest.raises(RegistryError, match="newer than this dagster-artifacts"):
        open_catalog(f"sqlite:///{path}")
    assert _revision(path) == "0999"


def test_a_file_that_is_no_database_gets_the_registry_error(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    path.write_text("not a database")
    with pytest.raises(RegistryError, match="registry file"):
        open_catalog(f"sqlite:///{path}")
    assert path.read_text() == "not a database"


def test_a_registry_file_damaged_after_opening_is_a_registry_error(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    Registry(f"sqlite:///{path}").dispose()
    light = open_catalog(f"sqlite:///{path}")
    assert isinstance(light, SQLiteCatalog)
    path.write_bytes(b"not a database any more" * 100)
    with pytest.raises(RegistryError, match=f"Cannot read the registry file {path}"):
        light.list_projects()


def test_the_light_reader_never_writes(filled: str, tmp_path: Path) -> None:
    """Opened ``mode=ro``: a listing leaves the file byte for byte as it was, and SQLite
    itself refuses a write through that connection."""
    path = Path(filled.removeprefix("sqlite:///"))
    reset_stores()  # closes the registry, which folds its WAL in: the bytes are all in the file
    before = path.read_bytes()
    light = open_catalog(filled)
    assert isinstance(light, SQLiteCatalog)
    _everything(light)
    connection = light.connect()
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            connection.execute("DELETE FROM projects")
    finally:
        connection.close()
    assert path.read_bytes() == before


def _revision(path: Path) -> str:
    with sqlite3.connect(path) as connection:
        (revision,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    connection.close()
    return str(revision)
