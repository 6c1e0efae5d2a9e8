"""Versions derived from another: ``artifact.new_draft()`` and ``Artifact(..., incremental=True)``.

A derived draft carries the entries of a committed version over by digest: nothing is read from
disk, hashed or uploaded for them, and at commit they are neither leased nor checked in the store
(:func:`.commit.commit_version` stores only the entries that are not carried). Two kinds, as in
W&B:

- ``new_draft()``: the draft starts with every entry of the version it was made from (its
  base); ``add_*`` and ``remove`` change it; logging it makes the next version.
- ``incremental=True``: the draft holds only what changes. At log time it is merged over the
  newest committed version of the artifact (the highest index, of the same partition key): the
  draft's entries win on equal paths; nothing is removed. No version yet: the draft alone.

Why carrying blobs without a lease is safe against gc: gc reads the registry *after* listing the
store, and only blobs no committed version references are candidates. The registry commit of a
derived version refuses (``BaseVersionChangedError``) unless its base is still committed, under
the artifact's lock; so either the base was committed when gc read the registry (its blobs are
live for that whole gc pass), or the derived version is (and references the same blobs). An
incremental log also requires its base to still be the newest version, and merges again when a
concurrent log got there first, as W&B's server merges with the newest version at commit. A
``new_draft()`` whose base was deleted meanwhile is committed the ordinary way, every blob
leased and checked: what gc took is an error naming the fix, never a version with holes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from dagster_artifacts import state
from dagster_artifacts.commit import commit_version
from dagster_artifacts.errors import ConflictError, InvalidArgumentError
from dagster_artifacts.manifest import Manifest, ManifestEntry
from dagster_artifacts.registry import BaseVersionChangedError, CommitRequest, VersionRecord
from dagster_artifacts.settings import Settings
from dagster_artifacts.store import Store

#: How many times an incremental log merges again because another log committed first.
MERGE_ATTEMPTS = 20


@dataclass(frozen=True)
class DraftBase:
    """The committed version a ``new_draft()`` was made from (in the store of ``settings``),
    and the entries it carried over (the base manifest's own entry objects: an entry still
    identical to its base's is carried)."""

    record: VersionRecord
    entries: Mapping[str, ManifestEntry]
    settings: Settings

    def check_target(self, settings: Settings, entity: str, project: str) -> None:
        """Refuse, before anything is written, to log the draft anywhere but where its base is
        (its carried blobs are in that store; W&B refuses to move an artifact too)."""
        record = self.record
        same_store = (settings.root, settings.database) == (
            self.settings.root,
            self.settings.database,
        )
        if not same_store or (entity, project) != (record.entity, record.project):
            raise InvalidArgumentError(
                f"This draft of {record.entity}/{record.project}/{record.name} (new_draft() of "
                f"v{record.index}, in {self.settings.root}) must be logged there: log it from "
                f"wandb.init(entity={record.entity!r}, project={record.project!r}) on that store, "
                f"not {entity}/{project} in {settings.root}."
            )


def draft_of(store: Store, record: VersionRecord) -> tuple[Manifest, DraftBase]:
    """A new draft manifest holding every entry of version ``record`` (its source's, for a
    link): a copy of the mapping, sharing the entries, no file touched."""
    with state.gc_frozen():  # a million entries: no use scanning them, nor the process's
        base = store.manifest(record)
        manifest = Manifest(entries=dict(base.entries), digest_algorithm=base.digest_algorithm)
    return manifest, DraftBase(record=record, entries=base.entries, settings=store.settings)


def commit_new_draft(
    store: Store, request: CommitRequest, manifest: Manifest, base: DraftBase
) -> tuple[VersionRecord, bool]:
    """Commit a ``new_draft()``: only its fresh entries are stored (see the module docstring)."""
    derived = replace(request, base_version_id=base.record.artifact_id)
    with state.gc_frozen():
        try:
            return commit_version(store, derived, manifest, carried=base.entries)
        except BaseVersionChangedError:
            # The base was deleted meanwhile: lease and check every blob, as a plain log does.
            return commit_version(store, request, manifest)


def commit_incremental(
    store: Store, request: CommitRequest, patch: Manifest
) -> tuple[VersionRecord, bool, Manifest]:
    """Merge ``patch`` over the newest committed version and commit the result; merge again
    (up to :data:`MERGE_ATTEMPTS` times) when another log commits first. Returns the version,
    whether it is new, and the merged manifest."""
    for _ in range(MERGE_ATTEMPTS):
        with state.gc_frozen():
            outcome = _merge_and_commit(store, request, patch)
        if outcome is not None:
            return outcome
    raise ConflictError(
        f"Could not log {request.name!r} incrementally: {MERGE_ATTEMPTS} other logs committed "
        "a newer version first, each time. Log it again."
    )


def _merge_and_commit(
    store: Store, request: CommitRequest, patch: Manifest
) -> tuple[VersionRecord, bool, Manifest] | None:
    """One attempt of :func:`commit_incremental`; None when another log committed first."""
    base = store.registry.newest_version(
        request.entity, request.project, request.name, request.partition_key
    )
    merged, carried = merge(store, base, patch)
    derived = replace(
        request,
        digest=merged.digest(),
        size=merged.size,
        file_count=len(merged.entries),
        base_version_id=None if base is None else base.id,
        base_is_newest=True,
    )
    try:
        record, created = commit_version(store, derived, merged, carried=carried)
    except BaseVersionChangedError:
        return None
    return record, created, merged


def merge(
    store: Store, base: VersionRecord | None, patch: Manifest
) -> tuple[Manifest, Mapping[str, ManifestEntry]]:
    """``base``'s entries overlaid with ``patch``'s, and the base entries carried over."""
    if base is None:
        return patch, {}
    current = store.manifest(base)
    if current.digest_algorithm != patch.digest_algorithm:
        raise InvalidArgumentError(
            f"{base.name}:v{base.index} is hashed with {current.digest_algorithm}, this "
            f"incremental draft with {patch.digest_algorithm}; build it with "
            f"digest_algorithm={current.digest_algorithm!r}. Nothing was logged."
        )
    entries = dict(current.entries)
    entries.update(patch.entries)
    return Manifest(entries=entries, digest_algorithm=patch.digest_algorithm), current.entries
