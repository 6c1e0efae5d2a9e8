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
faces drive their own state and call down into it. That state, :class:`CommitState`, and the
members that move an artifact through it (:class:`CommitMembers`, mixed into ``Artifact``) are
defined here, beside the path they serve.
"""

from __future__ import annotations

import contextlib
import enum
import os
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from dataclasses import replace

from dagster_artifacts.errors import (
    ArtifactError,
    ArtifactTypeMismatchError,
    LinkError,
    StorageError,
)
from dagster_artifacts.manifest import Manifest, ManifestEntry
from dagster_artifacts.names import LATEST, validate_aliases
from dagster_artifacts.progress import byte_callback
from dagster_artifacts.registry import (
    PORTFOLIO,
    CommitRequest,
    ReusedVersionGoneError,
    VersionRecord,
    wrong_kind,
)
from dagster_artifacts.staging import STAGING
from dagster_artifacts.storage import BlobUpload
from dagster_artifacts.storage.layout import blob_key, keys_of, manifest_key_of_md5
from dagster_artifacts.storage.protection import protect_reuse
from dagster_artifacts.storage.spool import Spool
from dagster_artifacts.store import Store


class CommitState(enum.Enum):
    """Where an artifact is on its way into the store."""

    DRAFT = "draft"  # being filled; nothing stored yet
    COMMITTING = "committing"  # frozen; blobs, manifest and registry commit under way
    COMMITTED = "committed"  # a logged version (or one read back from the registry)
    UPSERTED = "upserted"  # a parallel writer's files handed to a pending version


class CommitMembers:
    """The members of ``Artifact`` that this module's callers drive (mixed in)."""

    _name: str
    _state: CommitState
    _store: Store | None
    _future: Future[None] | None
    _manifest: Manifest | None
    _deduplicated: bool | None
    _aliases: list[str]

    # -- hooks Artifact provides ------------------------------------------------------------
    def _apply(self, record: VersionRecord) -> None:
        raise NotImplementedError

    def _drop_draft(self) -> None:
        raise NotImplementedError

    @property
    def manifest(self) -> Manifest:
        raise NotImplementedError

    # -- members ----------------------------------------------------------------------------
    @property
    def commit_state(self) -> CommitState:
        return self._state

    def ensure_draft(self, action: str) -> None:
        """Refuse to log, upsert or finish an artifact that already went that way once."""
        if self._state is CommitState.DRAFT:
            return
        if action == "log_artifact":
            raise ArtifactError(
                f"Artifact {self._name!r} was already logged; build a new Artifact to log "
                "another version."
            )
        raise ArtifactError(
            f"Artifact {self._name!r} was already logged, upserted or finished; build a new "
            f"Artifact for each {action} call."
        )

    def begin_commit(self, store: Store) -> Manifest:
        """DRAFT -> COMMITTING: no more changes; returns the manifest to commit."""
        self.ensure_draft("log_artifact")
        self._state = CommitState.COMMITTING
        self._store = store
        return self.manifest

    def track_commit(self, future: Future[None]) -> None:
        """The background commit of an asynchronous ``log_artifact`` (``wait()`` joins it)."""
        self._future = future

    def finish_commit(
        self, record: VersionRecord, *, deduplicated: bool, manifest: Manifest | None = None
    ) -> None:
        """COMMITTING -> COMMITTED: this object now answers as version ``record``.

        ``manifest``: what was committed when it is not the draft's own (a parallel finish
        merges every writer's files).
        """
        if manifest is not None:
            self._manifest = manifest
        self._deduplicated = deduplicated
        self._apply(record)
        self._state = CommitState.COMMITTED
        self._drop_draft()

    def finish_upsert(self, store: Store) -> None:
        """DRAFT -> UPSERTED: a parallel writer's files now belong to the pending version."""
        self._state = CommitState.UPSERTED
        self._store = store
        self._drop_draft()

    def requested_aliases(self) -> list[str]:
        """The aliases set on the draft itself, added to the ones given to ``log_artifact``."""
        return list(self._aliases)


def merge_aliases(given: list[str] | None, requested: list[str], *, latest: bool) -> list[str]:
    """The aliases a log applies: the given ones (validated), ``latest`` when asked, then those
    set on the draft itself (``requested``), each once, in that order."""
    aliases = validate_aliases(given)
    if latest and LATEST not in aliases:
        aliases.append(LATEST)
    return aliases + [a for a in requested if a not in aliases]


def check_type(store: Store, entity: str, project: str, name: str, artifact_type: str) -> None:
    """Refuse, before anything is written, to log ``name`` under a second type, or into a
    collection of links (a registry collection: versions get there by linking)."""
    existing = store.registry.find_collection(entity, project, name)
    if existing is None:
        return
    if existing.kind == PORTFOLIO:
        raise LinkError(wrong_kind(f"{entity}/{project}/{name}", existing.kind))
    if existing.type != artifact_type:
        raise ArtifactTypeMismatchError(
            f"Artifact {name!r} in {entity}/{project} has type {existing.type!r}, not "
            f"{artifact_type!r}; use type={existing.type!r} or another name."
        )


def commit_version(
    store: Store,
    request: CommitRequest,
    manifest: Manifest,
    carried: Mapping[str, ManifestEntry] | None = None,
) -> tuple[VersionRecord, bool]:
    """Blobs first, then the manifest, then one registry transaction (invariant 2).

    When an equal version (same digest, same partition key) is already committed, nothing is
    uploaded and the registry dedupes to it; should that version be deleted before the registry
    transaction, the registry says so and the upload happens after all.

    ``carried``: the entries of ``request.base_version_id`` (a ``new_draft()``, an incremental
    log) that ``manifest`` took over unchanged (the same objects). Their blobs are stored under
    a committed version, so they are neither leased, checked nor uploaded: a version derived
    from a million files that gains ten touches ten. The registry transaction refuses
    (:class:`~.registry.BaseVersionChangedError`) if the base is no longer committed by then,
    which is what keeps gc off those blobs (see :mod:`dagster_artifacts.incremental`).
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
    fresh = manifest if carried is None else fresh_entries(manifest, carried)
    with manifest_under_lease(store, manifest, fresh) as (key, data, present):
        with logging_failures(store, request.name, fresh):
            upload_blobs(store, fresh, present)
            write_manifest(store, key, data, present)
        return store.registry.commit_version(replace(request, manifest_key=key))


@contextlib.contextmanager
def manifest_under_lease(
    store: Store, manifest: Manifest, stored: Manifest
) -> Iterator[tuple[str, Spool, set[str] | None]]:
    """``manifest`` encoded once (spooled: a million entries are 80 MB), and a gc lease on its
    key and on the blobs of ``stored`` (the entries this writer stores or reuses); yields the
    manifest key, its bytes and what :func:`.storage.protection.protect_reuse` yields.

    Large spools go beside the staging folders (a local store on the same filesystem then
    takes them by hard link).
    """
    spool_dir = os.path.join(os.path.abspath(store.settings.cache_dir), STAGING)
    with Spool(manifest.iter_bytes(), spool_dir) as data:
        key = manifest_key_of_md5(data.md5)
        # The keys are passed, not named: a million of them (100 MB) go once the lease holds.
        lease = protect_reuse(
            store.blobs, keys_of([(stored, key)]), store.clock, spool_dir=spool_dir
        )
        with lease as present:
            yield key, data, present


def _equal_version(
    store: Store, request: CommitRequest, manifest: Manifest
) -> VersionRecord | None:
    """The committed version with this content (same digest, same partition key), if any.

    An xxh128 version logged before this project hashed xxh128 artifact digests with xxh128
    (as W&B does) is recorded under the MD5 form of the digest: it is the same content, so it
    is found too (invariant 4), and the request then carries that recorded digest.
    """
    for digest in [request.digest, *sorted(manifest.legacy_digests() - {request.digest})]:
        existing = store.registry.find_committed(
            request.entity, request.project, request.name, digest, request.partition_key
        )
        if existing is not None:
            return existing
    return None


def fresh_entries(manifest: Manifest, carried: Mapping[str, ManifestEntry]) -> Manifest:
    """The entries of ``manifest`` that are not carried over from its base: what to store."""
    return Manifest(
        entries={
            path: entry
            for path, entry in manifest.entries.items()
            if carried.get(path) is not entry
        },
        digest_algorithm=manifest.digest_algorithm,
    )


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


#: Entries whose blobs are looked up and stored together by :func:`upload_blobs`; the same
#: size as ``hashing.FILE_BATCH``, so a batch holds whole staging files (whole packs).
UPLOAD_BATCH = 50_000


def upload_blobs(store: Store, manifest: Manifest, present: set[str] | None = None) -> int:
    """Put every stored (non-reference) entry's bytes into the blob store, skipping known ones.

    Staged entries (the draft's own copies, see :mod:`dagster_artifacts.staging`) move into a
    local store by rename; the others are copied, verified. ``present``: keys known to be stored
    already (see :func:`.storage.protection.protect_reuse`). Returns how many were written.
    """
    algorithm = manifest.digest_algorithm
    stored = [entry for entry in manifest.entries.values() if not entry.is_reference]

    def uploads_of(entries: list[ManifestEntry]) -> list[BlobUpload]:
        return [
            BlobUpload(
                local_path=entry.local_path or "",
                key=blob_key(entry.digest, algorithm),
                digest=entry.digest,
                algorithm=algorithm,
                staged=entry.staged,
                size=entry.size,
            )
            for entry in entries
        ]

    if len(stored) <= UPLOAD_BATCH:
        missing = store.blobs.missing(uploads_of(stored), present)
        _refuse_lost(store, missing)
        if missing:
            total = sum(upload.size or 0 for upload in missing)
            with byte_callback(f"Storing {len(missing)} files", total) as callback:
                store.blobs.put_many(missing, callback)
        return len(missing)
    # A batch at a time: a million files' upload descriptions never exist at once. Entries
    # without a local copy are checked first, so a lost one refuses the log before any write.
    _refuse_lost(store, store.blobs.missing(uploads_of([e for e in stored if not e.local_path])))
    written: set[str] = set()  # digests stored by earlier batches (the entries' own strings)
    total = sum(entry.size or 0 for entry in stored)
    with byte_callback(f"Storing {len(stored)} files", total) as callback:
        for start in range(0, len(stored), UPLOAD_BATCH):
            uploads = uploads_of(stored[start : start + UPLOAD_BATCH])
            # The pack index is refreshed once, for the first batch: a refresh in a later one
            # would load the packs this loop just wrote (a million blobs: 130 MB) only to learn
            # what ``written`` says. A pack another writer publishes meanwhile is not seen, so
            # a blob it holds may be stored twice: harmless (a blob may be in several packs).
            missing = [
                upload
                for upload in store.blobs.missing(uploads, present, refresh=start == 0)
                if upload.digest not in written
            ]
            if missing:
                store.blobs.put_many(missing, callback)
            written.update(upload.digest for upload in missing if upload.digest is not None)
            done = sum(u.size or 0 for u in uploads) - sum(u.size or 0 for u in missing)
            callback.relative_update(done)  # already stored: nothing to do for these
    return len(written)


def _refuse_lost(store: Store, missing: list[BlobUpload]) -> None:
    """Entries taken over from another version (no local copy) whose blobs are gone: refuse."""
    lost = [upload.key for upload in missing if not upload.local_path]
    if lost:
        raise StorageError(
            f"{len(lost)} stored file(s) of the version this artifact was derived from are gone "
            f"from the store ({store.blobs.url(lost[0])}, ...): that version was deleted and gc "
            "collected them after this draft was made. Nothing was committed; add those files "
            "again from their source and log again.",
            url=store.blobs.url(lost[0]),
        )


def write_manifest(store: Store, key: str, data: Spool, present: set[str] | None = None) -> None:
    """Store a manifest's bytes under its key unless they are there already."""
    if present is not None and key in present:
        return
    if not store.blobs.exists(key):
        data.put(store.blobs, key)
