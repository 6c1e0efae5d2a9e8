"""Linking: W&B's registry promotion (``artifact.link()``, ``run.link_artifact()``), self-hosted.

A link makes a logged version a member of another collection, a collection of links (W&B's
"portfolio": ``model-registry/production-models``, ``wandb-registry-model/<collection>``), with
its own version index and its own aliases there, and no byte copied: it resolves to its source's
manifest and digest (:mod:`.registry.links`). Target paths map onto this store's names as W&B's
do onto W&B's: ``[[entity/]project/]collection``; the entity defaults to the source's, the
project to the configured one (``run.link_artifact`` uses the run's). A W&B registry path,
``wandb-registry-<registry>/<collection>``, is simply a project named ``wandb-registry-<registry>``
(its W&B organization prefix, if given, is the entity).

:class:`LinkMembers` holds the members of ``Artifact`` that are about links and sources (W&B's
``is_link``, ``source_*``, ``linked_artifacts``, ``link``, ``unlink``), so ``artifact.py``
stays the state machine and the content; ``Artifact`` provides the four hooks at the top.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, TypeVar

from dagster_artifacts.clock import iso_utc
from dagster_artifacts.errors import ArtifactTypeMismatchError, InvalidNameError, LinkError
from dagster_artifacts.names import validate_aliases, validate_name
from dagster_artifacts.registry import PORTFOLIO, VersionRecord, wrong_kind
from dagster_artifacts.store import Store

if TYPE_CHECKING:
    from dagster_artifacts.collection import ArtifactCollection

A = TypeVar("A")

#: W&B's prefix of registry projects (``wandb-registry-model``).
REGISTRY_PREFIX = "wandb-registry-"


def parse_link_target(path: str, entity: str, project: str) -> tuple[str, str, str]:
    """``[[entity/]project/]collection`` -> (entity, project, collection), with defaults.

    An alias or version (``:prod``) has no place in a target: aliases are ``aliases=[...]``.
    """
    if not isinstance(path, str) or not path:
        raise InvalidNameError(f"A link target is a collection path, got {path!r}.")
    if ":" in path:
        raise InvalidNameError(
            f"Link target {path!r} names a version or alias; give the collection only "
            "('project/collection') and the aliases as aliases=[...]."
        )
    parts = path.split("/")
    if len(parts) > 3 or not all(parts):
        raise InvalidNameError(
            f"Malformed link target {path!r}; expected 'collection', 'project/collection' or "
            "'entity/project/collection' (such as 'wandb-registry-model/bike-model')."
        )
    name = parts[-1]
    project = parts[-2] if len(parts) >= 2 else project
    entity = parts[-3] if len(parts) == 3 else entity
    return validate_name(entity), validate_name(project), validate_name(name)


class LinkMembers(Generic[A]):
    """The link and source members of ``Artifact`` (mixed in; ``A`` is ``Artifact``)."""

    # -- hooks Artifact provides ------------------------------------------------------------
    def _logged(self) -> VersionRecord:
        raise NotImplementedError

    def _logged_store(self) -> Store:
        raise NotImplementedError

    def _artifact_for(self, record: VersionRecord) -> A:
        raise NotImplementedError

    def _collection_of(self, entity: str, project: str, name: str) -> ArtifactCollection[A]:
        raise NotImplementedError

    def _log_draft(self) -> None:
        """Log a draft before linking it (in the current run, else a run of its own)."""
        raise NotImplementedError

    # -- members ----------------------------------------------------------------------------
    @property
    def is_link(self) -> bool:
        """True for a version read from a collection it is linked into (W&B's link artifact)."""
        return self._logged().source is not None

    @property
    def source_entity(self) -> str:
        record = self._logged()
        return record.entity if record.source is None else record.source.entity

    @property
    def source_project(self) -> str:
        record = self._logged()
        return record.project if record.source is None else record.source.project

    @property
    def source_version(self) -> str:
        record = self._logged()
        return f"v{record.index if record.source is None else record.source.index}"

    @property
    def source_name(self) -> str:
        """``collection:vN`` of the logged version this is (or links to)."""
        record = self._logged()
        name = record.name if record.source is None else record.source.name
        return f"{name}:{self.source_version}"

    @property
    def source_qualified_name(self) -> str:
        return f"{self.source_entity}/{self.source_project}/{self.source_name}"

    @property
    def source_collection(self) -> ArtifactCollection[A]:
        """The collection the version was logged into (for a link, not the one it is in)."""
        record = self._logged()
        name = record.name if record.source is None else record.source.name
        return self._collection_of(self.source_entity, self.source_project, name)

    @property
    def source_artifact(self) -> A:
        """The logged version itself: this artifact unless it is a link."""
        record = self._logged()
        if record.source is None:
            return self._artifact_for(record)
        return self._artifact_for(self._logged_store().registry.get_version(record.source.id))

    @property
    def linked_artifacts(self) -> list[A]:
        """Every link of this logged version (an empty list for a link, as in W&B)."""
        record = self._logged()
        if record.source is not None:
            return []
        links = self._logged_store().registry.linked_versions(record.id)
        return [self._artifact_for(link) for link in links]

    @property
    def linked_at(self) -> str | None:
        """When this link was made (ISO 8601, UTC); None for a logged version."""
        return iso_utc(self._logged().linked_at)

    def link(self, target_path: str, aliases: list[str] | None = None) -> A:
        """Link this version into the collection ``target_path`` (see the module docstring),
        with ``latest`` and ``aliases`` there; returns the link. A draft is logged first, as in
        W&B; linking a link links its source; linking again returns the same link (and moves
        the aliases). A bad target or alias is refused before anything is written."""
        return self.link_to(target_path, aliases)

    def link_target(
        self, target_path: str, defaults: tuple[str, str] | None = None
    ) -> tuple[Store, str, str, str]:
        """Where ``target_path`` links to: (store, entity, project, collection), checked but
        not written. ``defaults``: the (entity, project) a bare name means (a run's), else the
        source's entity and the configured project."""
        draft = self._draft_store()
        if draft is not None:
            store, entity = draft, draft.settings.entity
        else:
            store, entity = self._logged_store(), self.source_entity
        target = parse_link_target(target_path, *(defaults or (entity, store.settings.project)))
        self._check_target(store, *target)
        return (store, *target)

    def link_to(
        self,
        target_path: str,
        aliases: list[str] | None,
        defaults: tuple[str, str] | None = None,
    ) -> A:
        """:meth:`link` with the target's default (entity, project) given (see
        :meth:`link_target`); ``run.link_artifact`` passes the run's."""
        checked = validate_aliases(aliases)
        store, entity, project, name = self.link_target(target_path, defaults)
        if self._draft_store() is not None:
            self._log_draft()
        record = self._logged()
        link, _created = store.registry.link_version(record.id, entity, project, name, checked)
        return self._artifact_for(link)

    def _draft_store(self) -> Store | None:
        """The store a draft would be logged to, or None once the artifact is logged."""
        raise NotImplementedError

    def _check_target(self, store: Store, entity: str, project: str, name: str) -> None:
        """Refuse, before anything is written, a target that holds logged versions or another
        type (the registry checks again in the link transaction)."""
        target = store.registry.find_collection(entity, project, name)
        if target is None:
            return
        where = f"{entity}/{project}/{name}"
        if target.kind != PORTFOLIO:
            raise LinkError(wrong_kind(where, target.kind))
        own_type = self._type_name()
        if target.type != own_type:
            raise ArtifactTypeMismatchError(
                f"{where} links artifacts of type {target.type!r}, not {own_type!r}; link into "
                "another collection."
            )

    def _type_name(self) -> str:
        raise NotImplementedError

    def unlink(self) -> None:
        """Remove this link from its collection (its source stays); a logged version is refused
        with :class:`LinkError` (delete it instead)."""
        record = self._logged()
        if record.source is None:
            raise LinkError(
                f"{record.entity}/{record.project}/{record.name}:v{record.index} is not a "
                "linked artifact and cannot be unlinked; to delete it, use delete() instead."
            )
        self._logged_store().registry.unlink_version(record.id)
