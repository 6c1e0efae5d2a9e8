"""Shared fixtures. Service fixtures (S3, GCS, PostgreSQL, HTTP) live in ``tests/services/``."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dagster_artifacts.settings import (
    ENV_CACHE_DIR,
    ENV_DATABASE,
    ENV_DOWNLOAD_DIR,
    ENV_ENTITY,
    ENV_PROJECT,
    ENV_ROOT,
)
from dagster_artifacts.state import reset_stores

pytest_plugins = [
    name
    for name in (
        "tests.services.s3",
        "tests.services.gcs",
        "tests.services.postgres",
        "tests.services.http",
    )
    if (Path(__file__).parent / "services" / f"{name.rsplit('.', 1)[1]}.py").exists()
]


#: Fixtures that start a server (moto S3, the GCS emulator, a PostgreSQL cluster): a test using
#: one is marked ``services`` (``make test-fast`` skips those; CI runs everything).
SERVICE_FIXTURES = {
    "moto_endpoint",
    "s3",
    "gcs_endpoint",
    "gcs",
    "postgres_cluster",
    "postgres_url",
}
#: Test modules whose every test takes seconds (subprocesses, real Dagster runs, stress).
SLOW_MODULES = {
    "test_benchmarks_smoke.py",
    "test_webserver.py",
    "test_multiprocess.py",
    "test_fan_out.py",
    "test_stress.py",
    "test_crash.py",
    "test_readme.py",
    "test_cloud_roots.py",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark service-backed and slow tests (``make test-fast`` leaves them out).

    Collection order is kept: the slow tests start processes of their own, so running them
    side by side on two cores (slow first) made the whole suite a quarter slower, measured.
    """
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        params = getattr(getattr(item, "callspec", None), "params", {})
        if fixtures & SERVICE_FIXTURES or params.get("registry_url") == "postgresql":
            item.add_marker(pytest.mark.services)
        if item.path.name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def isolated_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own local store, registry, cache and download folder, and cwd."""
    store = tmp_path / "store"
    monkeypatch.setenv(ENV_ROOT, str(store))
    monkeypatch.delenv(ENV_DATABASE, raising=False)
    monkeypatch.delenv(ENV_ENTITY, raising=False)
    monkeypatch.delenv(ENV_PROJECT, raising=False)
    monkeypatch.setenv(ENV_CACHE_DIR, str(tmp_path / "cache"))
    monkeypatch.setenv(ENV_DOWNLOAD_DIR, str(tmp_path / "artifacts"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    reset_stores()
    yield store
    import dagster_artifacts as wandb

    run = wandb.run
    if run is not None:
        with contextlib.suppress(Exception):
            run.finish()
    reset_stores()


def snapshot_store(store: Path) -> dict[str, object]:
    """Everything a user could observe in a local store: files with sizes, and registry rows."""
    files = {}
    for path in sorted(store.rglob("*")):
        if path.is_file() and not path.name.startswith("registry.db"):
            files[str(path.relative_to(store))] = path.stat().st_size
    rows: dict[str, object] = {}
    db = store / "registry.db"
    if db.exists():
        import sqlite3

        connection = sqlite3.connect(db)
        try:
            for (table,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"
            ):
                rows[table] = connection.execute(f'SELECT * FROM "{table}" ORDER BY 1').fetchall()
        finally:
            connection.close()
    return {"files": files, "rows": rows}


@pytest.fixture
def store_snapshot(isolated_store: Path):  # type: ignore[no-untyped-def]
    """Call it to snapshot the store; compare two snapshots to prove nothing changed."""
    return lambda: snapshot_store(isolated_store)


__all__ = ["snapshot_store"]
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
