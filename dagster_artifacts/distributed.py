"""Parallel artifacts: many writers ``upsert`` files into one pending version, one ``finish``es it.

This is W&B's ``run.upsert_artifact`` / ``run.finish_artifact``. Writers are told apart by
nothing but their ``distributed_id`` (by default the run's ``group``): every writer of one batch
shares it, and the registry keeps one PENDING version per (artifact, distributed_id).

- ``upsert`` uploads the writer's blobs right away (so nothing is left to do at finish time), then
  records its manifest entries in the registry's pending entries under the collection lock. Two
  writers adding one path with different content get a :class:`ConflictError`; the same path
  with the same content is fine (a retried writer).
- ``finish`` merges the pending entries with the finisher's own files, writes the manifest and
  commits it in one registry transaction that seals the pending version: it gets the next version
  number, ``latest`` and the aliases, and every writer's run gets a ``logged`` lineage edge. If a
  writer upserts between reading the entries and sealing, the commit is refused and the manifest
  rebuilt. Content equal to an existing version deduplicates to it, as ``log_artifact`` does.
- An upsert after a finish starts a new pending version (a new batch).

A crash anywhere leaves either a pending version (finish again) or orphan blobs (collected by
``gc``), never a half-committed version. Both take the prologue's checks from ``Run`` and
upload through :mod:`.commit`; neither knows the faces.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

from dagster_artifacts.commit import (
    logging_failures,
    manifest_under_lease,
    upload_blobs,
    write_manifest,
)
from dagster_artifacts.errors import ConflictError, InvalidArgumentError
from dagster_artifacts.manifest import Manifest, ManifestEntry
from dagster_artifacts.registry import (
    CommitRequest,
    PendingChangedError,
    PendingSnapshot,
    PendingUpsert,
    VersionRecord,
)
from dagster_artifacts.storage.layout import stored_blob_keys
from dagster_artifacts.storage.protection import protect_reuse
from dagster_artifacts.store import Store

#: How often finish rebuilds its manifest when writers keep upserting meanwhile.
FINISH_ATTEMPTS = 20
MAX_DISTRIBUTED_ID = 256


def resolve_distributed_id(group: str | None, distributed_id: str | None, action: str) -> str:
    """``distributed_id``, else the run's group; neither is an error that says what to do."""
    value = distributed_id if distributed_id is not None else group
    if not value:
        raise InvalidArgumentError(
            f"{action} needs a distributed_id to know which writers belong together: pass "
            f"run.{action}(artifact, distributed_id='batch-1'), or start every writer and the "
            "finisher with init(group='batch-1')."
        )
    value = str(value)
    if len(value) > MAX_DISTRIBUTED_ID or not value.strip():
        raise InvalidArgumentError(
            f"distributed_id {value[:40]!r}... must be 1 to {MAX_DISTRIBUTED_ID} characters."
        )
    return value


def upsert(store: Store, base: CommitRequest, manifest: Manifest, distributed_id: str) -> None:
    """Add ``manifest``'s files to the pending version shared by ``distributed_id``.

    ``base`` says who writes what (entity, project, name, type, run, aliases, metadata); it
    passed the prologue's checks.
    """
    name = base.name
    entries = {path: entry.to_json() for path, entry in manifest.entries.items()}
    # A cheap early check, so that the common conflict uploads nothing.
    conflicts = store.registry.pending_conflicts(
        base.entity, base.project, name, distributed_id, entries
    )
    if conflicts:
        raise ConflictError(
            f"Parallel artifact {name!r} ({distributed_id}) already has "
            f"{', '.join(conflicts[:10])} with other content; give each writer its own file "
            "names, e.g. parts/table_<writer>."
        )
    # Protected until the registry holds them as pending entries.
    keys = sorted(set(stored_blob_keys(manifest)))
    with protect_reuse(store.blobs, keys, store.clock) as present:
        with logging_failures(store, name, manifest):
            upload_blobs(store, manifest, present)
        store.registry.upsert_pending(
            PendingUpsert(
                entity=base.entity,
                project=base.project,
                name=name,
                type=base.type,
                distributed_id=distributed_id,
                entries=entries,
                digest_algorithm=manifest.digest_algorithm,
                run_id=base.run_id,
                aliases=base.aliases,
                metadata=dict(base.metadata),
                description=base.description,
            )
        )


def finish(
    store: Store, base: CommitRequest, own: Manifest, distributed_id: str
) -> tuple[VersionRecord, bool, Manifest]:
    """Seal the pending version of ``distributed_id`` with the finisher's own files; commit it.

    Returns the committed (or deduplicated-to) version, whether it is new, and the manifest
    that was committed: every writer's entries and the finisher's.
    """
    name = base.name
    for attempt in range(FINISH_ATTEMPTS):
        snapshot = store.registry.pending_snapshot(base.entity, base.project, name, distributed_id)
        if snapshot is None and attempt == 0:
            warnings.warn(
                f"finish_artifact found no upserted files for {name!r} with distributed_id "
                f"{distributed_id!r}; committing only the finisher's own files. Check that the "
                "writers used the same group (or distributed_id) as the finisher.",
                UserWarning,
                stacklevel=3,
            )
        merged, request = _merge(own, snapshot, base, name, distributed_id)
        with manifest_under_lease(store, merged, merged) as (key, data, present):
            # After the conflict checks, so a refused finish uploads nothing; again on a retry
            # (a no-op unless a gc removed them between attempts, when nothing protected them).
            with logging_failures(store, name, merged):
                upload_blobs(store, own, present)
                write_manifest(store, key, data, present)
            try:
                record, created = store.registry.commit_version(replace(request, manifest_key=key))
            except PendingChangedError:
                continue
        return record, created, merged
    raise ConflictError(
        f"Writers kept upserting into {name!r} ({distributed_id}) while it was being finished "
        f"({FINISH_ATTEMPTS} attempts); wait for every writer before finish_artifact."
    )


def _merge(
    own: Manifest,
    snapshot: PendingSnapshot | None,
    base: CommitRequest,
    name: str,
    distributed_id: str,
) -> tuple[Manifest, CommitRequest]:
    """The writers' entries plus the finisher's, and the commit request that seals them."""
    merged = Manifest(digest_algorithm=own.digest_algorithm)
    metadata, description, aliases = dict(base.metadata), base.description, list(base.aliases)
    if snapshot is not None:
        if snapshot.digest_algorithm and snapshot.digest_algorithm != own.digest_algorithm:
            raise ConflictError(
                f"The writers of {name!r} ({distributed_id}) hashed with "
                f"{snapshot.digest_algorithm}, the finishing artifact with {own.digest_algorithm}; "
                f"use Artifact(..., digest_algorithm={snapshot.digest_algorithm!r})."
            )
        for path, data in snapshot.entries.items():
            merged.entries[path] = ManifestEntry.from_json(path, data)
        metadata = {**snapshot.metadata, **metadata}
        description = description if description is not None else snapshot.description
        aliases += [a for a in snapshot.aliases if a not in aliases]
    clashes = sorted(
        path
        for path, entry in own.entries.items()
        if path in merged.entries and merged.entries[path].digest != entry.digest
    )
    if clashes:
        raise ConflictError(
            f"finish_artifact adds {', '.join(clashes[:10])} to {name!r} ({distributed_id}), "
            "which the writers already upserted with other content; rename the finisher's file."
        )
    merged.entries.update(own.entries)
    request = replace(
        base,
        digest=merged.digest(),
        size=merged.size,
        file_count=len(merged.entries),
        description=description,
        metadata=metadata,
        aliases=tuple(aliases),
        pending_version_id=snapshot.version_id if snapshot is not None else None,
        pending_marker=snapshot.marker if snapshot is not None else None,
    )
    return merged, request
