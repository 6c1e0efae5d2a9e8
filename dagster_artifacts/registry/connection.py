"""The registry's database connection: engine setup, dialect details and retried transactions.

Every dialect detail of the registry lives here (SQLite's WAL and ``BEGIN IMMEDIATE``,
PostgreSQL's SQLSTATEs), so the concern modules write plain SQLAlchemy that means the same on
both backends. Concurrency safety comes from the database, not the client: unique constraints
catch every race that slips through the row locks, and :func:`run_transaction` then re-runs the
whole transaction with jittered backoff (the package's one retry policy,
:func:`dagster_artifacts.retrying.retry_policy`).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import tenacity
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from dagster_artifacts.errors import ConfigurationError, RegistryError
from dagster_artifacts.registry import migrate
from dagster_artifacts.retrying import retry_policy

T = TypeVar("T")

#: How many times a transaction is tried before a race or an outage becomes an error.
MAX_ATTEMPTS = 12
#: Backoff of those attempts, in seconds: the first waits ~10 ms, none more than 2 s.
INITIAL_WAIT = 0.01
MAX_WAIT = 2.0
#: Execution option marking a read-only transaction (SQLite: deferred instead of IMMEDIATE).
READ_ONLY_OPTION = "dagster_artifacts_read_only"
#: SQLSTATEs of PostgreSQL errors that a retry of the whole transaction can fix: unique
#: violation (a race lost), serialization failure, deadlock, lock timeout, admin shutdown and
#: the connection exceptions class.
RETRYABLE_SQLSTATES = ("23505", "40001", "40P01", "55P03", "57P01", "57P02", "57P03")
#: SQLSTATEs of a server shutting down: the connection is gone, not a race lost.
SHUTDOWN_SQLSTATES = ("57P01", "57P02", "57P03")
SQLITE_BUSY_TIMEOUT_MS = 60_000


def open_engine(url: str) -> Engine:
    """The engine of the registry at ``url``, its schema created or upgraded to head.

    Opening fails early, with the URL (password hidden) and a hint, rather than at the first
    log: an unreachable server, a missing database and a schema newer than this package each
    get their own :class:`RegistryError`, and the half-opened engine is disposed.
    """
    sqlite_path = _sqlite_file(url)
    read_only_file = False
    if sqlite_path is not None:
        _prepare_sqlite_folder(sqlite_path)
        read_only_file = sqlite_path.exists() and not _writable(sqlite_path)
    engine = make_engine(url, read_only_file=read_only_file)
    try:
        migrate.upgrade(engine)
    except DBAPIError as error:
        engine.dispose()
        if sqlite_path is not None:
            raise RegistryError(
                f"Cannot open the registry file {sqlite_path}: {first_line(error.orig)} "
                f"({_sqlite_problem(sqlite_path)}). Check DAGSTER_ARTIFACTS_DATABASE or the "
                "store root."
            ) from error
        if isinstance(error, OperationalError):
            raise RegistryError(
                f"Cannot reach the registry database {redact(url)}: {first_line(error.orig)}. "
                "Check that it is running and that DAGSTER_ARTIFACTS_DATABASE is right."
            ) from error
        raise RegistryError(
            f"Cannot prepare the registry database {redact(url)}: "
            f"{first_line(error.orig)}. Check the URL, the user's rights and that the "
            "database exists."
        ) from error
    except RegistryError:  # a schema newer than this package
        engine.dispose()
        raise
    return engine


def make_engine(url: str, *, read_only_file: bool = False) -> Engine:
    """A SQLAlchemy engine tuned for the registry's access pattern.

    ``read_only_file``: a SQLite file on a read-only mount (or folder) is opened immutable, so
    that it can be read without the WAL's shared-memory file, which nobody could create there;
    writes then fail with a message saying so. (Commits still in a ``-wal`` file that a killed
    writer left are not seen that way; opening the store writable once folds them in.)
    """
    if url.startswith("sqlite"):
        if url in ("sqlite://", "sqlite:///:memory:"):
            # One shared connection, or every session would see its own empty database.
            engine = create_engine(
                url, poolclass=StaticPool, connect_args={"check_same_thread": False}
            )
        elif read_only_file:
            path = _sqlite_file(url)
            engine = create_engine(
                f"sqlite:///file:{path}?mode=ro&immutable=1&uri=true",
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            )
        else:
            engine = create_engine(
                url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, pool_pre_ping=True
            )
        _configure_sqlite(engine, read_only_file=read_only_file)
        return engine
    try:
        return create_engine(url, pool_pre_ping=True)
    except Exception as error:  # unknown dialect, missing driver
        raise ConfigurationError(
            f"Cannot open registry database {redact(url)}: {error}. For PostgreSQL install "
            "the extra: pip install 'dagster-artifacts[postgres]'."
        ) from error


def read_only(engine: Engine) -> Engine:
    """``engine`` for read transactions: on SQLite they skip the write lock (see below)."""
    return engine.execution_options(**{READ_ONLY_OPTION: True})


def _configure_sqlite(engine: Engine, *, read_only_file: bool = False) -> None:
    """WAL, a long busy timeout and foreign keys on every connection; our own BEGIN."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        if not read_only_file:  # switching the journal mode is a write
            _switch_to_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Writers take the write lock up front so two of them never both read the same next
        # index; readers use a deferred transaction, which WAL never blocks behind a writer.
        if connection.get_execution_options().get(READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def _switch_to_wal(cursor: Any) -> None:
    """Put the file in WAL mode (persistent, so usually already done), waiting out a race.

    SQLite answers "database is locked" at once, without its busy handler, when another
    process is switching the same new file to WAL or recovering its WAL at that moment: eight
    writers opening a fresh store together hit this. The switch is retried with the registry's
    backoff until the busy timeout, so only a lock held that long becomes an error.
    """
    policy = retry_policy(
        _is_sqlite_locked, attempts=1, initial_wait=INITIAL_WAIT, max_wait=MAX_WAIT
    )
    policy["stop"] = tenacity.stop_after_delay(SQLITE_BUSY_TIMEOUT_MS / 1000)
    retrying = tenacity.Retrying(**policy)
    mode = retrying(_query_journal_mode, cursor, "PRAGMA journal_mode")
    if mode != "wal":
        retrying(_query_journal_mode, cursor, "PRAGMA journal_mode=WAL")


def _query_journal_mode(cursor: Any, statement: str) -> str:
    row = cursor.execute(statement).fetchone()
    return str(row[0]).lower() if row else ""


def _is_sqlite_locked(error: BaseException) -> bool:
    return isinstance(error, sqlite3.OperationalError) and "locked" in str(error).lower()


def run_transaction(engine: Engine, work: Callable[[Session], T], *, attempts: int, url: str) -> T:
    """Run ``work`` in one transaction on ``engine``, retrying races with jittered backoff.

    A retry re-runs ``work`` from the start in a new transaction, so a lost race (a unique
    violation, a deadlock, a serialization failure) or a dropped connection never leaves half
    of a change behind. Errors of ``work`` itself (not found, conflicts) are never retried.
    Database errors become a :class:`RegistryError` naming ``url`` (password hidden): at once
    when a retry cannot help, after ``attempts`` tries otherwise.
    """
    retrying = tenacity.Retrying(
        **retry_policy(
            is_transient, attempts=attempts, initial_wait=INITIAL_WAIT, max_wait=MAX_WAIT
        )
    )
    try:
        result: T = retrying(_run_once, engine, work)
    except DBAPIError as error:
        raise _registry_error(error, attempts, url) from error
    return result


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for in-memory databases and other dialects)."""
    if not url.startswith("sqlite:///") or url == "sqlite:///:memory:":
        return None
    return Path(url.removeprefix("sqlite:///"))


def _prepare_sqlite_folder(path: Path) -> None:
    """Create the file's folder if it is missing; a folder that cannot be created is a
    :class:`RegistryError` naming the real cause (not "check that it is running")."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RegistryError(
            f"Cannot create the folder of the registry file {path}: {error.strerror or error}. "
            "Point DAGSTER_ARTIFACTS_DATABASE (or the store root) at a writable folder."
        ) from error


def _writable(path: Path) -> bool:
    """Whether SQLite can write the file and create its journal beside it (``access`` also
    says no for root on a read-only mount)."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _sqlite_problem(path: Path) -> str:
    """What is wrong with a SQLite file that would not open, in words."""
    if path.is_dir():
        return f"{path} is a folder, not a database file"
    if not path.parent.is_dir():
        return f"the folder {path.parent} does not exist"
    if not path.exists() and not os.access(path.parent, os.W_OK):
        return f"the folder {path.parent} is not writable, so the file cannot be created"
    if path.exists() and not os.access(path, os.R_OK):
        return f"{path} is not readable"
    if path.exists() and not _writable(path):
        return f"{path} or its folder is read-only"
    return "the file exists and is readable: it may not be a SQLite database"


def _run_once(engine: Engine, work: Callable[[Session], T]) -> T:
    # expire_on_commit=False: work may return ORM-loaded values read after the commit.
    with Session(engine, expire_on_commit=False) as session, session.begin():
        return work(session)


def _registry_error(error: DBAPIError, attempts: int, url: str) -> RegistryError:
    """The error to raise for a database error that :func:`run_transaction` gave up on."""
    if "readonly database" in str(error.orig).lower():
        return RegistryError(
            f"The registry {redact(url)} is read-only (a read-only mount or folder): listing, "
            "downloading and verifying work, logging and changing do not. Write to a writable "
            "copy of the store, or point DAGSTER_ARTIFACTS_DATABASE at a writable registry."
        )
    if not is_transient(error):
        return RegistryError(f"Registry error on {redact(url)}: {first_line(error.orig)}")
    if is_disconnect(error):
        return RegistryError(
            f"Lost the registry database {redact(url)} and could not reconnect after "
            f"{attempts} attempts: {first_line(error.orig)}. Nothing was half-committed; "
            "check that the database is running, then run the same step again."
        )
    return RegistryError(
        f"Registry transaction on {redact(url)} kept losing races after {attempts} attempts: "
        f"{first_line(error.orig)}"
    )


def is_transient(error: BaseException) -> bool:
    """Races (unique violations, lock timeouts, serialization failures) and lost connections.

    Other integrity errors (a foreign key or NOT NULL violation) are bugs or bad input that a
    retry cannot fix, so they are not retried; nor is anything but a database error.
    """
    if not isinstance(error, DBAPIError):
        return False
    sqlstate = _sqlstate(error)
    if sqlstate:
        return sqlstate in RETRYABLE_SQLSTATES or sqlstate.startswith("08")
    message = str(error.orig).lower()
    if isinstance(error, IntegrityError):
        return "unique constraint" in message
    if is_disconnect(error):
        return True
    return isinstance(error, OperationalError) and any(
        marker in message for marker in ("locked", "busy", "deadlock", "serializ")
    )


def is_disconnect(error: DBAPIError) -> bool:
    """Whether the connection (not the transaction) failed: the message then says so."""
    if error.connection_invalidated:
        return True
    sqlstate = _sqlstate(error)
    if sqlstate.startswith("08") or sqlstate in SHUTDOWN_SQLSTATES:
        return True
    message = str(error.orig).lower()
    return any(
        marker in message
        for marker in ("connection", "terminating", "server closed", "could not connect")
    )


def _sqlstate(error: DBAPIError) -> str:
    """The PostgreSQL SQLSTATE of ``error`` ("" on SQLite, whose errors have none)."""
    return str(getattr(error.orig, "sqlstate", "") or "")


def redact(url: str) -> str:
    """Hide the password of a database URL before it reaches a message or a log."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<database url>"


def first_line(error: BaseException | None) -> str:
    """The first line of a driver error: PostgreSQL's carry a multi-line detail we leave out."""
    return str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
