"""PostgreSQL for tests: a throwaway cluster from the machine's own binaries, on 127.0.0.1.

:class:`PostgresCluster` runs ``initdb`` and ``pg_ctl`` from ``/usr/lib/postgresql/*/bin`` (as
the ``postgres`` user when we are root, since PostgreSQL refuses to run as root) in a temporary
folder, on a free port, with durability switched off for speed. It depends on nothing but the
standard library and psycopg, so ``benchmarks/`` reuses it.

Fixtures:
- ``postgres_cluster`` (session): one cluster per test process (each pytest-xdist worker starts
  its own, in its own folder on its own port); skipped with the reason when the binaries are
  missing (CI installs them, see ``.ci/run``).
- ``postgres_url``: a fresh, empty database on that cluster for one test.
- ``registry_url``: parametrized over ``sqlite`` and ``postgresql``; also sets
  ``DAGSTER_ARTIFACTS_DATABASE`` so ``init()``/``Api()`` use it.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_GLOB = "/usr/lib/postgresql/*/bin/initdb"


def find_bin_dir() -> Path | None:
    """The newest installed PostgreSQL's ``bin`` folder, or None."""
    found = sorted(
        glob.glob(PG_GLOB),
        key=lambda p: [int(x) for x in Path(p).parts[-3].split(".") if x.isdigit()],
    )
    return Path(found[-1]).parent if found else None


def _temp_parent() -> str:
    """A temp folder the ``postgres`` user can traverse (a private TMPDIR would lock it out)."""
    parent = tempfile.gettempdir()
    if os.geteuid() == 0 and not os.stat(parent).st_mode & 0o001:
        return "/tmp"
    return parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresCluster:
    """A private PostgreSQL server: ``start()``, ``create_database()``, ``stop()``, ``destroy()``."""

    def __init__(self, bin_dir: Path | None = None) -> None:
        found = bin_dir or find_bin_dir()
        if found is None:
            raise FileNotFoundError(
                f"No PostgreSQL binaries at {PG_GLOB}; install Debian's postgresql package."
            )
        self.bin_dir = found
        self.as_postgres = os.geteuid() == 0
        self.base = Path(tempfile.mkdtemp(prefix="dagster-artifacts-pg-", dir=_temp_parent()))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.port = 0
        if self.as_postgres:
            shutil.chown(self.base, user="postgres", group="postgres")
            self.base.chmod(0o700)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )

    def _command(self, tool: str, *args: str) -> list[str]:
        command = [str(self.bin_dir / tool), *args]
        return ["runuser", "-u", "postgres", "--", *command] if self.as_postgres else command

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run(
            self._command(tool, *args), capture_output=True, text=True, cwd=self.base, check=False
        )
        if result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(
                f"{tool} failed ({result.returncode}): {result.stderr or result.stdout}\n{log}"
            )

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def start(self, same_port: bool = False) -> PostgresCluster:
        """Start on a free port (retrying if another process grabbed it first).

        ``same_port=True`` restarts on the previous port, so existing URLs work again.
        """
        for attempt in range(5):
            if not (same_port and self.port):
                self.port = _free_port()
            options = (
                f"-h 127.0.0.1 -p {self.port} -k {self.base} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
            )
            try:
                self._run(
                    "pg_ctl",
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "60",
                    "start",
                )
                return self
            except RuntimeError:
                if attempt == 4:
                    raise
                time.sleep(0.2)
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``immediate`` is the closest thing to pulling the plug)."""
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        import psycopg

        name = name or f"test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One throwaway PostgreSQL cluster for this test process, removed at the end."""
    if find_bin_dir() is None:
        pytest.skip(f"PostgreSQL binaries not found ({PG_GLOB}); apt-get install postgresql")
    cluster = PostgresCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """A fresh, empty database for one test."""
    return postgres_cluster.create_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_url(
    request: pytest.FixtureRequest, isolated_store: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The registry URL for one test, on each backend; exported as DAGSTER_ARTIFACTS_DATABASE."""
    if request.param == "sqlite":
        url = f"sqlite:///{isolated_store / 'registry.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    monkeypatch.setenv("DAGSTER_ARTIFACTS_DATABASE", url)
    return url
