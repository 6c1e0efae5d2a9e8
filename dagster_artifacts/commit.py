"""The one commit path. Every way a version comes to be goes through here: ``Run.log_artifact``,
``Run.use_artifact`` of a draft, ``upsert_artifact`` / ``finish_artifact`` (parallel writers,
:mod:`.distributed`), the CLI's ``put`` and the Dagster IO manager (both through ``Run``).

1. :func:`begin_log`, the prologue: the draft is still a draft, its aliases are valid (plus
   ``latest``, plus those set on the draft itself), its name is not logged under another type;
   only then is it frozen (``DRAFT`` -> ``COMMITTING``). Bad input fails here, before anything
   is written (invariant 7).
2. :func:`commit_log`: blobs first, then the manifest, then one registry transaction that
   assigns the version number and moves the aliases (invariant 2); equal content dedupes to the
   existing version (invariant 4). The artifact becomes ``COMMITTED``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from dagster_artifacts.artifact import Artifact
from dagster_artifacts.errors import ArtifactTypeMismatchError
from dagster_artifacts.manifest import Manifest
from dagster_artifacts.names import LATEST, validate_aliases
from dagster_artifacts.progress import byte_callback
from dagster_artifacts.registry import CommitRequest, ReusedVersionGoneError, VersionRecord
from dagster_artifacts.storage import BlobUpload
from dagster_artifacts.storage.layout import blob_key, keys_of, manifest_key
from dagster_artifacts.storage.protection import protect_reuse
from dagster_artifacts.store import Store


@dataclass(frozen=True)
class LogRequest:
    """A frozen draft on its way into ``store``, and everything the commit needs besides it."""

    store: Store
    artifact: Artifact
    manifest: Manifest
    entity: str
    project: str
    run_id: str | None
    aliases: tuple[str, ...]

    def commit_request(self, manifest: Manifest | None = None) -> CommitRequest:
        """The registry's request for ``manifest`` (default: the draft's own)."""
        manifest = manifest or self.manifest
        artifact = self.artifact
        return CommitRequest(
            entity=self.entity,
            project=self.project,
            name=artifact.collection_name,
            type=artifact.type,
            digest=manifest.digest(),
            manifest_key="",
            size=manifest.size,
            file_count=len(manifest.entries),
            description=artifact.description,
            metadata=dict(artifact.metadata),
            aliases=self.aliases,
            run_id=self.run_id,
            partition_key=artifact.partition_key,
            ttl_seconds=int(artifact.ttl.total_seconds()) if artifact.ttl else None,
        )


def merge_aliases(given: list[str] | None, artifact: Artifact, *, latest: bool) -> list[str]:
    """The aliases a log applies: the given ones (validated), ``latest`` when asked, then those
    set on the draft itself, each once, in that order."""
    aliases = validate_aliases(given)
    if latest and LATEST not in aliases:
        aliases.append(LATEST)
    return aliases + [a for a in artifact.requested_aliases() if a not in aliases]


def check_type(store: Store, entity: str, project: str, name: str, artifact_type: str) -> None:
    """Refuse, before anything is written, to log ``name`` under a second type."""
    existing = store.registry.collection_type(entity, project, name)
    if existing is not None and existing != artifact_type:
        raise ArtifactTypeMismatchError(
            f"Artifact {name!r} in {entity}/{project} has type {existing!r}, not "
            f"{artifact_type!r}; use type={existing!r} or another name."
        )


def begin_log(
    store: Store,
    artifact: Artifact,
    *,
    entity: str,
    project: str,
    run_id: str | None,
    aliases: list[str] | None,
    partition_key: str | None = None,
) -> LogRequest:
    """The prologue of every log; freezes ``artifact`` once everything is checked."""
    alias_list = merge_aliases(aliases, artifact, latest=True)
    artifact.ensure_draft("log_artifact")
    check_type(store, entity, project, artifact.collection_name, artifact.type)
    if partition_key is not None:
        artifact.partition_key = partition_key
    manifest = artifact.begin_commit(store)
    return LogRequest(store, artifact, manifest, entity, project, run_id, tuple(alias_list))


def commit_log(request: LogRequest) -> Artifact:
    """Store and commit a frozen draft; it becomes the logged (or deduplicated-to) version."""
    record, created = commit_version(request.store, request.commit_request(), request.manifest)
    request.artifact.finish_commit(record, deduplicated=not created)
    return request.artifact


def commit_version(
    store: Store, request: CommitRequest, manifest: Manifest
) -> tuple[VersionRecord, bool]:
    """Blobs first, then the manifest, then one registry transaction (invariant 2).

    When an equal version (same digest, same partition key) is already committed, nothing is
    uploaded and the registry dedupes to it; should that version be deleted before the registry
    transaction, the registry says so and the upload happens after all.
    """
    existing = store.registry.find_committed(
        request.entity, request.project, request.name, request.digest, request.partition_key
    )
    if existing is not None and existing.type == request.type and existing.manifest_key:
        try:
            return store.registry.commit_version(
                replace(request, manifest_key=existing.manifest_key, manifest_written=False)
            )
        except ReusedVersionGoneError:
            pass  # deleted meanwhile: its bytes may be gone, so upload as for new content
    data = manifest.to_bytes()  # once: 10,000 entries cost tens of ms to serialize
    key = manifest_key(data)
    with protect_reuse(store.blobs, keys_of([(manifest, key)]), store.clock) as present:
        upload_blobs(store, manifest, present)
        write_manifest(store, key, data, present)
        return store.registry.commit_version(replace(request, manifest_key=key))


def upload_blobs(store: Store, manifest: Manifest, present: set[str] | None = None) -> int:
    """Put every stored (non-reference) entry's bytes into the blob store, skipping known ones.

    Staged entries (the draft's own copies, see :mod:`dagster_artifacts.staging`) move into a
    local store by rename; the others are copied, verified. ``present``: keys known to be stored
    already (see :func:`.storage.protection.protect_reuse`). Returns how many were written.
    """
    algorithm = manifest.digest_algorithm
    uploads = [
        BlobUpload(
            local_path=entry.local_path or "",
            key=blob_key(entry.digest, algorithm),
            digest=entry.digest,
            algorithm=algorithm,
            staged=entry.staged,
            size=entry.size,
        )
        for entry in manifest.entries.values()
        if not entry.is_reference
    ]
    missing = store.blobs.missing(uploads, present)
    if missing:
        total = sum(upload.size or 0 for upload in missing)
        with byte_callback(f"Storing {len(missing)} files", total) as callback:
            store.blobs.put_many(missing, callback)
    return len(missing)


def write_manifest(store: Store, key: str, data: bytes, present: set[str] | None = None) -> None:
    """Store a manifest's bytes under its key unless they are there already."""
    if present is not None and key in present:
        return
    if not store.blobs.exists(key):
        store.blobs.put_bytes(data, key)
