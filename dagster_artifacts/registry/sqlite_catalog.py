"""Listings of a SQLite registry through the standard library's ``sqlite3``, without SQLAlchemy.

Why: ``dagster-artifacts ls`` answers from three small queries, yet opening the full
:class:`~.registry.Registry` imports SQLAlchemy (its ORM and the dialects that the models'
partial indexes name), which alone takes some 0.3 s, longer than the whole command should.
:func:`open_catalog` gives the listings (:class:`Catalog`) from a light reader when it can
and from the full registry otherwise, so the layers above ask for a catalog and never learn
which backend they got.

The light reader is used only for a SQLite file that exists and whose schema is at
:data:`SCHEMA_REVISION`, the revision its SQL was written against; it opens the file read-only,
so it can neither create, migrate nor change a registry. Every other case (PostgreSQL, a file
not created yet, a schema to migrate or newer than this package, a file SQLite cannot open)
gets the full registry, which creates, migrates or explains. Its queries are those of
:mod:`.catalog` written in SQL, with the same semantics: only committed versions count,
pending and deleted ones are invisible, the same order, the same records
(``tests/registry/test_sqlite_catalog.py`` compares the two on one registry).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from dagster_artifacts.errors import RegistryError
from dagster_artifacts.registry.records import COMMITTED, CollectionRecord

#: The Alembic revision whose schema the SQL below reads. A registry at another revision goes
#: to the full registry (which migrates it, or refuses a newer one). Known without importing
#: Alembic; a test checks it is the head of ``migrations/versions``, so a new migration makes
#: whoever adds it look at these queries (and then bump this).
SCHEMA_REVISION = "0004"
#: How long a read waits for a lock (a WAL reader only waits while the file is being recovered
#: after a crash); the same as the full registry's.
BUSY_TIMEOUT_S = 60.0

_PROJECTS = "SELECT entity, name FROM projects ORDER BY entity, name"
_TYPES = (
    "SELECT DISTINCT collections.type FROM collections"
    " JOIN projects ON projects.id = collections.project_id"
    " WHERE projects.entity = ? AND projects.name = ?"
    " ORDER BY collections.type"
)
#: One row per collection with its committed versions' count and total size (a collection
#: with none has 0 and 0: the outer join keeps it, the CASEs leave the other versions out;
#: CASE rather than ``FILTER``, which SQLite only knows since 3.30).
_COLLECTIONS = (
    "SELECT collections.id, collections.name, collections.type, collections.description,"
    " collections.kind, collections.tags, collections.created_at, collections.updated_at,"
    " count(CASE WHEN versions.state = :committed THEN versions.id END),"
    " coalesce(sum(CASE WHEN versions.state = :committed THEN versions.size END), 0)"
    " FROM collections"
    " JOIN projects ON projects.id = collections.project_id"
    " LEFT OUTER JOIN versions ON versions.collection_id = collections.id"
    " WHERE projects.entity = :entity AND projects.name = :project{type_filter}"
    " GROUP BY collections.id"
    " ORDER BY collections.name"
)


class Catalog(Protocol):
    """What a listing reads: projects, the types of a project, its collections with counts.

    Both :class:`~.registry.Registry` and :class:`SQLiteCatalog` are one.
    """

    def list_projects(self) -> list[tuple[str, str]]:
        """Every ``(entity, project)`` pair, sorted."""
        ...

    def list_types(self, entity: str, project: str) -> list[str]:
        """The distinct artifact types of a project, sorted."""
        ...

    def list_collections(
        self, entity: str, project: str, type: str | None = None
    ) -> list[CollectionRecord]:
        """The artifacts of a project by name, with their committed versions' count and size."""
        ...


class StaleSchemaError(Exception):
    """The file's schema is not :data:`SCHEMA_REVISION` (or it has none): the full registry
    must open it (to create, migrate or refuse it)."""


class SQLiteCatalog:
    """The listings of one SQLite registry file, read-only, through ``sqlite3``.

    Opening checks the schema revision and raises :class:`sqlite3.Error` or
    :class:`StaleSchemaError` when the file is not for this reader (:func:`open_catalog` then
    falls back). Each call opens its own connection and closes it (well under a millisecond):
    nothing stays open to hold a read-only mount busy, to be shared by threads (a web server
    lists from several) or to be carried across a fork.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        revision = self._query("SELECT version_num FROM alembic_version", ())
        if [tuple(row) for row in revision] != [(SCHEMA_REVISION,)]:
            found = revision[0][0] if revision else None
            raise StaleSchemaError(
                f"{path} is at schema revision {found}, this reader reads {SCHEMA_REVISION}."
            )

    def connect(self) -> sqlite3.Connection:
        """A new connection, read-only (``mode=ro``: no write can reach the file).

        A file SQLite may not write beside (a read-only mount) is opened ``immutable``, as
        the full registry opens it there: without the WAL's shared-memory file, which nobody
        could create.
        """
        uri = self.path.absolute().as_uri() + "?mode=ro"
        if not _writable(self.path):
            uri += "&immutable=1"
        return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S)

    def _query(self, sql: str, parameters: Any) -> list[Any]:
        """All rows of one statement, on a connection of its own."""
        connection = self.connect()
        try:
            return connection.execute(sql, parameters).fetchall()
        finally:
            connection.close()

    def _listing(self, sql: str, parameters: Any) -> list[Any]:
        """:meth:`_query` for a listing: the file was a registry when this reader opened it, so
        a failure now (it was replaced, removed or damaged) is a :class:`RegistryError` naming
        it, as the full registry would raise, not a raw ``sqlite3`` one."""
        try:
            return self._query(sql, parameters)
        except sqlite3.Error as error:
            raise RegistryError(
                f"Cannot read the registry file {self.path}: {error}. Check that it is the "
                "store's registry.db and that it is readable."
            ) from error

    def list_projects(self) -> list[tuple[str, str]]:
        """Every ``(entity, project)`` pair, sorted."""
        rows = self._listing(_PROJECTS, ())
        return [(entity, name) for entity, name in rows]

    def list_types(self, entity: str, project: str) -> list[str]:
        """The distinct artifact types of a project, sorted."""
        rows = self._listing(_TYPES, (entity, project))
        return [type_name for (type_name,) in rows]

    def list_collections(
        self, entity: str, project: str, type: str | None = None
    ) -> list[CollectionRecord]:
        """The artifacts of a project by name, with their committed versions' count and size."""
        parameters: dict[str, Any] = {
            "committed": COMMITTED,
            "entity": entity,
            "project": project,
            "type": type,
        }
        sql = _COLLECTIONS.format(
            type_filter="" if type is None else " AND collections.type = :type"
        )
        rows = self._listing(sql, parameters)
        return [
            CollectionRecord(
                id=row[0],
                entity=entity,
                project=project,
                name=row[1],
                type=row[2],
                description=row[3],
                version_count=int(row[8]),
                size=int(row[9]),
                kind=row[4],
                tags=list(_json(row[5]) or []),
                created_at=_datetime(row[6]),
                updated_at=_datetime(row[7]),
            )
            for row in rows
        ]


def open_catalog(url: str, full: Callable[[], Catalog] | None = None) -> Catalog:
    """The listings of the registry at ``url``: the light :class:`SQLiteCatalog` when it can
    read it as it is, else ``full()`` (default: a :class:`~.registry.Registry` of ``url``,
    which creates or migrates the database as every opening of a store does)."""
    path = _sqlite_file(url)
    if path is not None and path.is_file():
        try:
            return SQLiteCatalog(path)
        except (sqlite3.Error, StaleSchemaError):
            pass  # the full registry opens it, or says what is wrong with it
    if full is not None:
        return full()
    from dagster_artifacts.registry.registry import Registry

    return Registry(url)


def _sqlite_file(url: str) -> Path | None:
    """The file of a plain ``sqlite:///path`` URL; None for anything else (other dialects,
    in-memory databases, driver options), which the full registry handles."""
    if not url.startswith("sqlite:///") or "?" in url:
        return None
    path = url.removeprefix("sqlite:///")
    return None if path in ("", ":memory:") else Path(path)


def _writable(path: Path) -> bool:
    """Whether SQLite can write the file and create its journal beside it (as the full
    registry's ``connection._writable`` decides it)."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _json(text: str | None) -> Any:
    """A JSON column's value (SQL NULL and JSON ``null`` both read as None)."""
    return None if text is None else json.loads(text)


def _datetime(text: str | None) -> datetime | None:
    """A timestamp as SQLAlchemy stores it on SQLite (ISO 8601, no zone), read as it does."""
    return None if text is None else datetime.fromisoformat(text)
