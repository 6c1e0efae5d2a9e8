"""Create or upgrade the registry schema with the packaged Alembic migrations.

Safe to run from many processes at once: on SQLite the migration runs inside ``BEGIN IMMEDIATE``;
on PostgreSQL under a transaction-level advisory lock. A database already at head is a no-op.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from dagster_artifacts.errors import RegistryError

MIGRATIONS = Path(__file__).with_name("migrations")
ADVISORY_LOCK_ID = 0x0DA6A27F


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's config for the packaged migrations, in code: no alembic.ini to ship or find.

    With ``connection``, ``migrations/env.py`` migrates on it (inside the caller's transaction
    and lock) instead of opening its own.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """The newest revision this package knows, the one :func:`upgrade` brings a database to."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at (None before the first migration)."""
    return MigrationContext.configure(connection).get_current_revision()


def known_revisions() -> set[str]:
    """Every revision this package ships; one outside it was written by a newer package."""
    return {
        script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()
    }


def upgrade(engine: Engine) -> None:
    """Bring the schema to head: a database at head is left alone; one behind is migrated
    under the lock, by whichever of several concurrent openers gets it first."""
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
