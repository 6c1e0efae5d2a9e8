"""The one commit path. Every way a version comes to be goes through here: ``Run.log_artifact``,
``Run.use_artifact`` of a draft, ``upsert_artifact`` / ``finish_artifact`` (parallel writers,
:mod:`.distributed`), the CLI's ``put`` and the Dagster IO manager (both through ``Run``).

1. The prologue (``Run`` runs it, :func:`merge_aliases` and :func:`check_type` are its checks):
   the draft is still a draft, its aliases are valid (plus ``latest``, plus those set on the
   draft itself), its name is not logged under another type; only then is it frozen. Bad input
   fails there, before anything is written (invariant 7).
2. :func:`commit_version`: blobs first, then the manifest, then one registry transaction that
   assigns the version number and moves the aliases (invariant 2); equal content dedupes to the
   existing version (invariant 4).

This module works on manifests and registry requests, never on ``Artifact`` or ``Run``: the
faces drive their own state and call down into it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace

from dagster_artifacts.errors import ArtifactTypeMismatchError, StorageError
from dagster_artifacts.manifest import Manifest
from dagster_artifacts.names import LATEST, validate_aliases
from dagster_artifacts.progress import byte_callback
from dagster_artifacts.registry import CommitRequest, ReusedVersionGoneError, VersionRecord
from dagster_artifacts.storage import BlobUpload
from dagster_artifacts.storage.layout import blob_key, keys_of, manifest_key
from dagster_artifacts.storage.protection import protect_reuse
from dagster_artifacts.store import Store


def merge_aliases(given: list[str] | None, requested: list[str], *, latest: bool) -> list[str]:
    """The aliases a log applies: the given ones (validated), ``latest`` when asked, then those
    set on the draft itself (``requested``), each once, in that order."""
    aliases = validate_aliases(given)
    if latest and LATEST not in aliases:
        aliases.append(LATEST)
    return aliases + [a for a in requested if a not in aliases]


def check_type(store: Store, entity: str, project: str, name: str, artifact_type: str) -> None:
    """Refuse, before anything is written, to log ``name`` under a second type."""
    existing = store.registry.collection_type(entity, project, name)
    if existing is not None and existing != artifact_type:
        raise ArtifactTypeMismatchError(
            f"Artifact {name!r} in {entity}/{project} has type {existing!r}, not "
            f"{artifact_type!r}; use type={existing!r} or another name."
        )


def commit_version(
    store: Store, request: CommitRequest, manifest: Manifest
) -> tuple[VersionRecord, bool]:
    """Blobs first, then the manifest, then one registry transaction (invariant 2).

    When an equal version (same digest, same partition key) is already committed, nothing is
    uploaded and the registry dedupes to it; should that version be deleted before the registry
    transaction, the registry says so and the upload happens after all.
    """
    existing = _equal_version(store, request, manifest)
    if existing is not None and existing.type == request.type and existing.manifest_key:
        try:
            return store.registry.commit_version(
                replace(
                    request,
                    digest=existing.digest or request.digest,  # the legacy form, if recorded so
                    manifest_key=existing.manifest_key,
                    manifest_written=False,
                )
            )
        except ReusedVersionGoneError:
            pass  # deleted meanwhile: its bytes may be gone, so upload as for new content
    data = manifest.to_bytes()  # once: 10,000 entries cost tens of ms to serialize
    key = manifest_key(data)
    with protect_reuse(store.blobs, keys_of([(manifest, key)]), store.clock) as present:
        with logging_failures(store, request.name, manifest):
            upload_blobs(store, manifest, present)
            write_manifest(store, key, data, present)
        return store.registry.commit_version(replace(request, manifest_key=key))


def _equal_version(
    store: Store, request: CommitRequest, manifest: Manifest
) -> VersionRecord | None:
    """The committed version with this content (same digest, same partition key), if any.

    An xxh128 version logged before this project hashed xxh128 artifact digests with xxh128
    (as W&B does) is recorded under the MD5 form of the digest: it is the same content, so it
    is found too (invariant 4), and the request then carries that recorded digest.
    """
    for digest in [request.digest, *sorted(manifest.accepted_digests() - {request.digest})]:
        existing = store.registry.find_committed(
            request.entity, request.project, request.name, digest, request.partition_key
        )
        if existing is not None:
            return existing
    return None


@contextlib.contextmanager
def logging_failures(store: Store, name: str, manifest: Manifest) -> Iterator[None]:
    """A failure to store bytes, restated with the artifact and the entry it concerns."""
    try:
        yield
    except StorageError as error:
        algorithm = manifest.digest_algorithm
        paths = [
            path
            for path, entry in manifest.entries.items()
            if not entry.is_reference
            and (
                store.blobs.url(blob_key(entry.digest, algorithm)) == error.url
                or entry.local_path == error.url
            )
        ]
        where = f" (entry {paths[0]!r})" if paths else ""
        raise StorageError(
            f"Logging {name}{where} failed, and nothing was committed: {error}",
            url=error.url,
            errno=error.errno,
        ) from error


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
