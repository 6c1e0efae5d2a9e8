"""What a version says about itself: its names, number, id, type, digest, size, timestamps,
URL and collection (W&B's read-only ``Artifact`` properties).

:class:`IdentityMembers` is mixed into ``Artifact``, which provides the hooks at the top; a
draft answers from its manifest (``digest``, ``size``) or refuses with ``ArtifactNotLoggedError``
what only a logged version has (``version``, ``created_at``), as W&B does. Timestamps are W&B's
ISO 8601 strings, always in UTC with their offset.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Generic, TypeVar

from dagster_artifacts.clock import iso_utc
from dagster_artifacts.manifest import Manifest
from dagster_artifacts.registry import VersionRecord
from dagster_artifacts.store import Store
from dagster_artifacts.urls import version_path

if TYPE_CHECKING:
    from dagster_artifacts.collection import ArtifactCollection

A = TypeVar("A")


class IdentityMembers(Generic[A]):
    """The read-only identity members of ``Artifact`` (mixed in; ``A`` is ``Artifact``)."""

    _name: str
    _type: str
    _incremental: bool
    _deduplicated: bool | None

    # -- hooks Artifact provides ------------------------------------------------------------
    def _logged(self) -> VersionRecord:
        raise NotImplementedError

    def _logged_store(self) -> Store:
        raise NotImplementedError

    def _has_version(self) -> bool:
        raise NotImplementedError

    def _collection_of(self, entity: str, project: str, name: str) -> ArtifactCollection[A]:
        raise NotImplementedError

    @property
    def manifest(self) -> Manifest:
        raise NotImplementedError

    # -- members ----------------------------------------------------------------------------
    @property
    def incremental(self) -> bool:
        """Whether logging merges this draft over the artifact's newest version."""
        return self._incremental

    @property
    def use_as(self) -> str | None:
        """Deprecated in W&B; always None."""
        warnings.warn(
            "The use_as property of Artifact is deprecated.", DeprecationWarning, stacklevel=2
        )
        return None

    @property
    def name(self) -> str:
        """``bike-dataset:v1`` once logged; the bare name for a draft."""
        if not self._has_version():
            return self._name
        return f"{self._name}:v{self._logged().index}"

    @property
    def collection_name(self) -> str:
        return self._name

    @property
    def version(self) -> str:
        return f"v{self._logged().index}"

    @property
    def version_index(self) -> int:
        index = self._logged().index
        assert index is not None
        return index

    @property
    def id(self) -> int:
        """The version's id; a link has its source's (as in W&B), lineage is recorded there."""
        return self._logged().artifact_id

    @property
    def entity(self) -> str:
        return self._logged().entity

    @property
    def project(self) -> str:
        return self._logged().project

    @property
    def qualified_name(self) -> str:
        record = self._logged()
        return f"{record.entity}/{record.project}/{record.name}:v{record.index}"

    @property
    def type(self) -> str:
        return self._type

    @property
    def digest(self) -> str:
        if not self._has_version():
            return self.manifest.digest()
        digest = self._logged().digest
        assert digest is not None
        return digest

    @property
    def size(self) -> int:
        if not self._has_version():
            return self.manifest.size
        return self._logged().size

    @property
    def file_count(self) -> int:
        if not self._has_version():
            return len(self.manifest.entries)
        return self._logged().file_count

    @property
    def created_at(self) -> str:
        """When the version was logged (ISO 8601 in UTC, W&B's string; for a link, its
        source's: see ``linked_at``)."""
        return iso_utc(self._logged().created_at) or ""

    @property
    def updated_at(self) -> str:
        """When description, metadata, aliases, tags or TTL last changed (else ``created_at``)."""
        return iso_utc(self._logged().updated_at) or self.created_at

    @property
    def url(self) -> str:
        """``<ui_url>/<entity>/<project>/artifacts/<type>/<collection>/<version>`` (W&B's form),
        for the artifact browser at ``DAGSTER_ARTIFACTS_UI_URL``; ``""`` when none is
        configured (W&B, too, returns ``""`` when it cannot build a URL)."""
        record = self._logged()
        base = self._logged_store().settings.ui_url
        if not base or record.index is None:  # no browser, or not committed yet
            return ""
        path = version_path(record.entity, record.project, record.type, record.name, record.index)
        return f"{base}{path}"

    @property
    def collection(self) -> ArtifactCollection[A]:
        """The collection this version was read from (for a link, the one it is linked into)."""
        record = self._logged()
        return self._collection_of(record.entity, record.project, record.name)

    @property
    def deduplicated(self) -> bool:
        """True when logging found an existing version with the same content."""
        self._logged()
        return bool(self._deduplicated)

    @property
    def history_step(self) -> int | None:
        """W&B's step of the logging run's metric history; runs here keep no history: None,
        which is also W&B's answer for a run that logged no metrics."""
        self._logged()
        return None

    @property
    def digest_algorithm(self) -> str:
        return self.manifest.digest_algorithm
