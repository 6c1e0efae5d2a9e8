"""Parallel artifacts: many writers ``upsert`` files into one pending version, one ``finish``es it.

This is W&B's ``run.upsert_artifact`` / ``run.finish_artifact``. Writers are told apart by
nothing but their ``distributed_id`` (by default the run's ``group``): every writer of one batch
shares it, and the registry keeps one PENDING version per (artifact, distributed_id).

- ``upsert`` uploads the writer's blobs right away (so nothing is left to do at finish time), then
  records its manifest entries in the registry's ``pending_entries`` under the collection lock.
  Two writers adding one path with different content get a :class:`ConflictError`; the same path
  with the same content is fine (a retried writer).
- ``finish`` merges the pending entries with the finisher's own files, writes the manifest and
  commits it in one registry transaction that seals the pending version: it gets the next version
  number, ``latest`` and the aliases, and every writer's run gets a ``logged`` lineage edge. If a
  writer upserts between reading the entries and sealing, the commit is refused and the manifest
  rebuilt. Content equal to an existing version deduplicates to it, as ``log_artifact`` does.
- An upsert after a finish starts a new pending version (a new batch).

A crash anywhere leaves either a pending version (finish again) or orphan blobs (collected by
``gc``), never a half-committed version.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from dagster_artifacts.errors import ArtifactError, ConflictError, InvalidArgumentError
from dagster_artifacts.lifecycle import reuse_lease
from dagster_artifacts.manifest import Manifest, ManifestEntry
from dagster_artifacts.names import LATEST, validate_aliases
from dagster_artifacts.registry import CommitRequest, PendingChangedError, PendingUpsert

if TYPE_CHECKING:
    from dagster_artifacts.artifact import Artifact
    from dagster_artifacts.runs import Run

#: How often finish rebuilds its manifest when writers keep upserting meanwhile.
FINISH_ATTEMPTS = 20
MAX_DISTRIBUTED_ID = 256


def resolve_distributed_id(run: Run, distributed_id: str | None, action: str) -> str:
    """``distributed_id``, else the run's group; neither is an error that says what to do."""
    value = distributed_id if distributed_id is not None else run.group
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


def _check_unlogged(artifact: Artifact, action: str) -> None:
    if artifact._record is not None or artifact._future is not None or artifact._finalized:
        raise ArtifactError(
            f"Artifact {artifact.collection_name!r} was already logged, upserted or finished; "
            f"build a new Artifact for each {action} call."
        )


def _entries_json(manifest: Manifest) -> dict[str, dict[str, object]]:
    return {path: entry.to_json() for path, entry in manifest.entries.items()}


def upsert(
    run: Run, artifact: Artifact, distributed_id: str | None, aliases: list[str] | None
) -> Artifact:
    """Add ``artifact``'s files to the pending version shared by ``distributed_id``."""
    did = resolve_distributed_id(run, distributed_id, "upsert_artifact")
    alias_list = validate_aliases(aliases)
    _check_unlogged(artifact, "upsert_artifact")
    engine = run._engine
    engine.check_type(run.entity, run.project, artifact.collection_name, artifact.type)
    manifest = artifact._manifest
    entries = _entries_json(manifest)
    # A cheap early check, so that the common conflict uploads nothing.
    conflicts = engine.registry.pending_conflicts(
        run.entity, run.project, artifact.collection_name, did, entries
    )
    if conflicts:
        raise ConflictError(
            f"Parallel artifact {artifact.collection_name!r} ({did}) already has "
            f"{', '.join(conflicts[:10])} with other content; give each writer its own file "
            "names, e.g. parts/table_<writer>."
        )
    with reuse_lease(engine, manifest):  # until the registry protects them as pending entries
        engine.upload_blobs(manifest)
        engine.registry.upsert_pending(
            PendingUpsert(
                entity=run.entity,
                project=run.project,
                name=artifact.collection_name,
                type=artifact.type,
                distributed_id=did,
                entries=entries,
                digest_algorithm=manifest.digest_algorithm,
                run_id=run.id,
                aliases=tuple(alias_list + [a for a in artifact._aliases if a not in alias_list]),
                metadata=dict(artifact.metadata),
                description=artifact.description,
            )
        )
    artifact._finalized = True
    artifact._engine = engine
    artifact._cleanup_staging()
    return artifact


def finish(
    run: Run, artifact: Artifact, distributed_id: str | None, aliases: list[str] | None
) -> Artifact:
    """Seal the pending version of ``distributed_id`` with the finisher's own files; commit it."""
    did = resolve_distributed_id(run, distributed_id, "finish_artifact")
    alias_list = validate_aliases(aliases)
    if LATEST not in alias_list:
        alias_list.append(LATEST)
    _check_unlogged(artifact, "finish_artifact")
    engine = run._engine
    registry = engine.registry
    name = artifact.collection_name
    engine.check_type(run.entity, run.project, name, artifact.type)
    own = artifact._manifest
    for _attempt in range(FINISH_ATTEMPTS):
        snapshot = registry.pending_snapshot(run.entity, run.project, name, did)
        merged = Manifest(digest_algorithm=own.digest_algorithm)
        metadata = dict(artifact.metadata)
        description = artifact.description
        all_aliases = list(alias_list) + [a for a in artifact._aliases if a not in alias_list]
        if snapshot is None and _attempt == 0:
            warnings.warn(
                f"finish_artifact found no upserted files for {name!r} with distributed_id "
                f"{did!r}; committing only the finisher's own files. Check that the writers "
                "used the same group (or distributed_id) as the finisher.",
                UserWarning,
                stacklevel=3,
            )
        if snapshot is not None:
            if snapshot.digest_algorithm and snapshot.digest_algorithm != own.digest_algorithm:
                raise ConflictError(
                    f"The writers of {name!r} ({did}) hashed with {snapshot.digest_algorithm}, "
                    f"the finishing artifact with {own.digest_algorithm}; use "
                    f"Artifact(..., digest_algorithm={snapshot.digest_algorithm!r})."
                )
            for path, data in snapshot.entries.items():
                merged.entries[path] = ManifestEntry.from_json(path, data)
            metadata = {**snapshot.metadata, **metadata}
            description = description if description is not None else snapshot.description
            all_aliases += [a for a in snapshot.aliases if a not in all_aliases]
        clashes = sorted(
            path
            for path, entry in own.entries.items()
            if path in merged.entries and merged.entries[path].digest != entry.digest
        )
        if clashes:
            raise ConflictError(
                f"finish_artifact adds {', '.join(clashes[:10])} to {name!r} ({did}), which the "
                "writers already upserted with other content; rename the finisher's file."
            )
        merged.entries.update(own.entries)
        with reuse_lease(engine, own, merged):  # see lifecycle.reuse_lease
            # After the conflict checks, so a refused finish uploads nothing; again on a retry
            # (a no-op unless a gc removed them between attempts, when no lease held them).
            engine.upload_blobs(own)
            manifest_key = engine.write_manifest(merged)
            request = CommitRequest(
                entity=run.entity,
                project=run.project,
                name=name,
                type=artifact.type,
                digest=merged.digest(),
                manifest_key=manifest_key,
                size=merged.size,
                file_count=len(merged.entries),
                description=description,
                metadata=metadata,
                aliases=tuple(all_aliases),
                run_id=run.id,
                partition_key=artifact.partition_key,
                ttl_seconds=int(artifact.ttl.total_seconds()) if artifact.ttl else None,
                pending_version_id=snapshot.version_id if snapshot is not None else None,
                pending_marker=snapshot.marker if snapshot is not None else None,
            )
            try:
                record, created = registry.commit_version(request)
            except PendingChangedError:
                continue
        break
    else:
        raise ConflictError(
            f"Writers kept upserting into {name!r} ({did}) while it was being finished "
            f"({FINISH_ATTEMPTS} attempts); wait for every writer before finish_artifact."
        )
    artifact._finalized = True
    artifact._engine = engine
    artifact._manifest = merged
    artifact._deduplicated = not created
    artifact._apply_record(record)
    artifact._cleanup_staging()
    return artifact
