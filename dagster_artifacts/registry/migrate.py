"""Create or upgrade the registry schema with the packaged Alembic migrations.

Safe to run from many processes at once: on SQLite the migration runs inside ``BEGIN IMMEDIATE``;
on PostgreSQL under a transaction-level advisory lock. A database already at head is a no-op.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from dagster_artifacts.errors import RegistryError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
ADVISORY_LOCK_ID = 0x0DA6A27F


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's config for the packaged migrations, in code: no alembic.ini to ship or find.

    With ``connection``, ``migrations/env.py`` migrates on it (inside the caller's transaction
    and lock) instead of opening its own.
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """The newest revision this package knows, the one :func:`upgrade` brings a database to."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def packaged_head() -> str:
    """:func:`head_revision` without importing Alembic (70 ms of every process's start): each
    revision is named by the four digits its file starts with, in order (a test keeps it so)."""
    return max(path.name[:4] for path in (MIGRATIONS / "versions").glob("[0-9]" * 4 + "_*.py"))


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at (None before the first migration)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def _recorded_revision(engine: Engine) -> str | None:
    """The revision in ``alembic_version``, read with plain SQL; None if there is none yet."""
    with engine.connect() as probe:
        try:
            return probe.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except DBAPIError:  # no table yet: a new database
            return None


def known_revisions() -> set[str]:
    """Every revision this package ships; one outside it was written by a newer package."""
    from alembic.script import ScriptDirectory

    return {
        script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()
    }


def upgrade(engine: Engine) -> None:
    """Bring the schema to head: a database at head is left alone; one behind is migrated
    under the lock, by whichever of several concurrent openers gets it first."""
    if _recorded_revision(engine) == packaged_head():
        return  # the usual case: no Alembic import at all
    from alembic import command

    head = head_revision()
    with engine.connect() as probe:
        current = current_revision(probe)
        if current == head:
            return
    _refuse_newer(current)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": ADVISORY_LOCK_ID})
        current = current_revision(connection)
        if current != head:
            _refuse_newer(current)
            command.upgrade(alembic_config(connection), "head")


def _refuse_newer(current: str | None) -> None:
    """A registry migrated by a newer dagster-artifacts: say so instead of Alembic's riddle.

    Downgrading the schema silently would break the newer clients, so the fix is on this side.
    """
    if current is not None and current not in known_revisions():
        raise RegistryError(
            f"The registry's schema is at revision {current}, newer than this "
            f"dagster-artifacts knows (up to {head_revision()}); another machine upgraded it. "
            "Upgrade dagster-artifacts here: pip install -U dagster-artifacts."
        )
