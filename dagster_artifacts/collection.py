"""``ArtifactCollection`` and ``ArtifactType``: W&B's public objects for a named artifact and for
the artifacts of one type in a project.

A collection is either a *sequence* (versions logged into it) or, once something was linked
into it, a *portfolio* (links to versions of other collections; see :mod:`.links`). Edits to
``name``, ``type``, ``description`` and ``tags`` are local until :meth:`ArtifactCollection.save`,
as in W&B. Listings are plain lists: the registry answers in one query, so there is no
server-side paging to resume (a ``start=`` cursor is refused with :class:`NotApplicableError`).

Generic over the artifact class (``A``): these objects hand out ``Artifact`` objects through a
factory the caller passes, so this module sits below ``artifact.py`` in the layers.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from dagster_artifacts.clock import iso_utc
from dagster_artifacts.errors import (
    ArtifactNotFoundError,
    InvalidArgumentError,
    LinkError,
    NotApplicableError,
)
from dagster_artifacts.names import (
    validate_description,
    validate_name,
    validate_tags,
    validate_type,
)
from dagster_artifacts.registry import SEQUENCE

if TYPE_CHECKING:
    from dagster_artifacts.registry import CollectionRecord, VersionRecord
    from dagster_artifacts.store import Store

A = TypeVar("A")
#: Turns a registry record into the caller's artifact object.
MakeArtifact = Callable[["VersionRecord"], A]

#: ``order=`` values a listing of collections takes (W&B's field names, ``+``/``-`` prefixed).
COLLECTION_ORDERS = ("name", "createdAt", "updatedAt")


def no_cursor(start: str | None) -> None:
    """W&B's ``start=`` resumes a server-side page; listings here are whole lists."""
    if start is not None:
        raise NotApplicableError(
            "start= resumes a W&B server page; this store returns whole lists, so slice the "
            "list instead (for example versions[100:])."
        )


def sort_collections(records: list[CollectionRecord], order: str | None) -> list[CollectionRecord]:
    """``records`` in W&B's ``order`` (``name``, ``createdAt``, ``updatedAt``; ``-`` for
    descending); None keeps the registry's order (by name)."""
    if order is None:
        return records
    field = order.lstrip("+-")
    if field not in COLLECTION_ORDERS:
        raise InvalidArgumentError(
            f"Unknown order {order!r}; use one of {', '.join(COLLECTION_ORDERS)}, prefixed by "
            "'+' (ascending, the default) or '-' (descending)."
        )

    def key(record: CollectionRecord) -> Any:
        if field == "name":
            return record.name
        moment = record.created_at if field == "createdAt" else record.updated_at
        return (moment or datetime.min).replace(tzinfo=None)

    return sorted(records, key=key, reverse=order.startswith("-"))


class _OnStore:
    """Holds the store, or what opens it: a listing read without the store (the registry's
    light reader, see ``Api.artifact_collections``) hands out objects whose names, counts and
    sizes need none, and that open it only when asked for versions, aliases or an edit."""

    def __init__(self, store: Store | Callable[[], Store]) -> None:
        self._store_source = store

    @property
    def _store(self) -> Store:
        """The store, opened on first need."""
        source = self._store_source
        if callable(source):
            source = self._store_source = source()
        return source


class ArtifactCollection(_OnStore, Generic[A]):
    """A named artifact of a project and its versions (or, for a portfolio, its links)."""

    def __init__(
        self,
        store: Store | Callable[[], Store],
        record: CollectionRecord,
        make: MakeArtifact[A],
    ) -> None:
        super().__init__(store)
        self._make = make
        self._load(record)

    def _load(self, record: CollectionRecord) -> None:
        self._saved = record
        self._name = record.name
        self._type = record.type
        self._description = record.description
        self._tags = list(record.tags)

    # -- read-only --------------------------------------------------------------------------
    @property
    def id(self) -> int:
        return self._saved.id

    @property
    def entity(self) -> str:
        return self._saved.entity

    @property
    def project(self) -> str:
        return self._saved.project

    @property
    def version_count(self) -> int:
        """How many committed versions (or links) it holds when it was read."""
        return self._saved.version_count

    @property
    def size(self) -> int:
        """Total logical size of those versions, in bytes."""
        return self._saved.size

    @property
    def created_at(self) -> str:
        """When it was created (ISO 8601, UTC)."""
        return iso_utc(self._saved.created_at) or ""

    @property
    def updated_at(self) -> str | None:
        """When its name, type, description or tags last changed; None if never."""
        return iso_utc(self._saved.updated_at)

    @property
    def aliases(self) -> list[str]:
        """Every alias held by one of its versions."""
        return self._store.registry.collection_aliases(self._saved.id)

    def is_sequence(self) -> bool:
        """True for a collection of logged versions, False for a collection of links."""
        return self._saved.kind == SEQUENCE

    def artifacts(self, per_page: int = 50, start: str | None = None) -> list[A]:
        """Its versions (links, for a portfolio), newest first as W&B lists them."""
        no_cursor(start)
        saved = self._saved
        records = self._store.registry.list_versions(
            saved.entity, saved.project, saved.name, newest_first=True
        )
        return [self._make(record) for record in records]

    # -- editable, persisted by save() ------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @name.setter
    def name(self, name: str) -> None:
        self._name = validate_name(name)

    @property
    def type(self) -> str:
        return self._type

    @type.setter
    def type(self, type: str) -> None:
        if not self.is_sequence():
            raise LinkError(
                "Type can only be changed if the artifact collection is a sequence (a collection "
                "of links has its sources' type)."
            )
        self._type = validate_type(type)

    @property
    def description(self) -> str | None:
        return self._description

    @description.setter
    def description(self, description: str | None) -> None:
        self._description = validate_description(description)

    @property
    def tags(self) -> list[str]:
        return self._tags

    @tags.setter
    def tags(self, tags: list[str]) -> None:
        self._tags = validate_tags(list(tags))

    def change_type(self, new_type: str) -> None:
        """Deprecated in W&B: set ``type`` and call :meth:`save`."""
        warnings.warn(
            "ArtifactCollection.change_type(type) is deprecated, use ArtifactCollection.save() "
            "instead.",
            DeprecationWarning,
            stacklevel=2,
        )
        self.type = new_type
        self.save()

    def save(self) -> None:
        """Persist name, type, description and tags in one registry transaction."""
        tags = validate_tags(list(self._tags))
        updated = self._store.registry.update_collection(
            self._saved.id, self._name, self._type, self._description, tags
        )
        self._load(updated)

    def delete(self) -> None:
        """Delete the whole collection: every version and alias (for logged versions, also
        their links in other collections, as deleting one version does). gc frees the bytes."""
        self._store.registry.delete_collection(self._saved.id)

    def __repr__(self) -> str:
        return f"<ArtifactCollection {self._name} ({self._type})>"


class ArtifactType(_OnStore, Generic[A]):
    """The artifacts of one type in a project (``Api().artifact_type("model")``)."""

    def __init__(
        self,
        store: Store | Callable[[], Store],
        entity: str,
        project: str,
        type_name: str,
        make: MakeArtifact[A],
    ) -> None:
        super().__init__(store)
        self._make = make
        self.entity = entity
        self.project = project
        self.type = type_name

    @property
    def id(self) -> str:
        """Types have no row of their own here: a type is known by its name."""
        return self.type

    @property
    def name(self) -> str:
        return self.type

    def collections(
        self,
        filters: Mapping[str, Any] | None = None,
        order: str | None = None,
        per_page: int = 50,
        start: str | None = None,
    ) -> list[ArtifactCollection[A]]:
        """Every collection of this type in the project (by name, or in ``order``)."""
        if filters:
            raise NotApplicableError(
                "filters= is a W&B server query; filter the returned list in Python instead "
                "(for example [c for c in collections if 'prod' in c.tags])."
            )
        no_cursor(start)
        records = self._store.registry.list_collections(self.entity, self.project, self.type)
        return [
            ArtifactCollection(self._store, record, self._make)
            for record in sort_collections(records, order)
        ]

    def collection(self, name: str) -> ArtifactCollection[A]:
        """The collection ``name`` of this type."""
        return find_collection(self._store, self.entity, self.project, name, self.type, self._make)

    def __repr__(self) -> str:
        return f"<ArtifactType {self.type}>"


def find_collection(
    store: Store,
    entity: str,
    project: str,
    name: str,
    type_name: str | None,
    make: MakeArtifact[A],
) -> ArtifactCollection[A]:
    """The collection ``entity/project/name`` (of ``type_name`` when given), or
    :class:`ArtifactNotFoundError` saying what exists instead."""
    record = store.registry.find_collection(entity, project, validate_name(name))
    where = f"{entity}/{project}/{name}"
    if record is None:
        raise ArtifactNotFoundError(
            f"No artifact collection {where!r}; Api().artifact_collections() lists them."
        )
    if type_name is not None and record.type != type_name:
        raise ArtifactNotFoundError(
            f"Artifact collection {where!r} has type {record.type!r}, not {type_name!r}."
        )
    return ArtifactCollection(store, record, make)
