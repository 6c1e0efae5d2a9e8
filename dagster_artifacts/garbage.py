"""Garbage collection: the only code that removes bytes from a store.

gc keeps every blob and manifest that a committed or pending version references, and everything
modified within a grace period (default 24 h), so that the fresh blobs of a writer that has not
committed yet are never collected.

Order matters for safety against concurrent writers, which write blobs, then the manifest, then
commit in the registry: gc first lists the store, *then* reads the registry. Anything a writer
committed before that read is protected by the registry; anything it wrote after the listing is
not a candidate; anything in between is younger than the grace period. Manifests younger than
the grace period protect their blobs too. Writers lease every key they store or reuse until
their commit lands, and gc honours the leases just before each deletion batch
(:mod:`.storage.protection`), so a commit is safe whatever the grace period.
Deletion is batched (S3 ``DeleteObjects``, GCS batch requests), one request per 1,000 (S3) or
100 (GCS) keys instead of one per key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from dagster_artifacts.errors import ManifestError
from dagster_artifacts.manifest import Manifest
from dagster_artifacts.registry import VersionRecord
from dagster_artifacts.retention import expire
from dagster_artifacts.storage import StoredObject
from dagster_artifacts.storage.layout import (
    BLOBS,
    MANIFESTS,
    PACKS,
    blob_identity,
    is_manifest_key,
    is_scratch_key,
    stored_blob_keys,
)
from dagster_artifacts.storage.packs import PackedBlob, pack_id_of
from dagster_artifacts.storage.protection import (
    LEASE_TTL,
    deletion_batch,
    leased_keys,
    purge_stale,
)
from dagster_artifacts.storage.repack import RepackResult, repack_loose, rewrite_pack
from dagster_artifacts.store import Store, read_manifest
from dagster_artifacts.units import parse_duration

log = logging.getLogger(__name__)

DEFAULT_GRACE = timedelta(hours=24)
#: A pack whose live blobs fill less than this fraction of it is rewritten (its live blobs into
#: a new pack). Higher reclaims more space sooner and copies more bytes per gc.
REWRITE_BELOW = 0.5
#: Keys gc deletes per batch (one marker, one lease read, one registry read, one bulk delete).
DELETE_BATCH = 1000


@dataclass
class GcResult:
    """What :func:`gc` freed (or would free, on a dry run)."""

    dry_run: bool
    expired: list[VersionRecord] = field(default_factory=list)
    blobs_deleted: int = 0
    manifests_deleted: int = 0
    bytes_freed: int = 0
    blobs_kept: int = 0
    recent_kept: int = 0
    deleted_keys: list[str] = field(default_factory=list)
    packs_rewritten: int = 0
    packs_deleted: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "expired_versions": [
                f"{r.entity}/{r.project}/{r.name}:v{r.index}" for r in self.expired
            ],
            "blobs_deleted": self.blobs_deleted,
            "manifests_deleted": self.manifests_deleted,
            "bytes_freed": self.bytes_freed,
            "blobs_kept": self.blobs_kept,
            "recent_kept": self.recent_kept,
            "packs_rewritten": self.packs_rewritten,
            "packs_deleted": self.packs_deleted,
        }

    def count(self, item: StoredObject) -> None:
        if is_manifest_key(item.key):
            self.manifests_deleted += 1
        else:
            self.blobs_deleted += 1
        self.bytes_freed += item.size
        self.deleted_keys.append(item.key)


def gc(
    store: Store,
    *,
    grace: timedelta | str = DEFAULT_GRACE,
    dry_run: bool = False,
    now: datetime | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> GcResult:
    """Expire TTL'd versions, then delete blobs and manifests nothing live references.

    A blob or manifest modified less than ``grace`` ago is never deleted, whatever the registry
    says: it may belong to a writer that has not committed yet. Neither is anything a writer
    protects. Deletion goes in batches of ``DELETE_BATCH`` keys, one bulk request each where the
    store has one. ``on_progress`` is called with the number of keys examined.
    """
    grace_period = parse_duration(grace)
    moment = now or store.clock.now()
    cutoff = (moment - grace_period).timestamp()
    result = GcResult(dry_run=dry_run)
    result.expired = expire(store, dry_run=dry_run, now=moment)
    expired_manifests = {record.manifest_key for record in result.expired} if dry_run else set()

    # 1. List the store first, 2. then read what is live (see the module docstring for why).
    manifests = {item.key: item for item in store.blobs.listing(MANIFESTS)}
    blobs = {item.key: item for item in store.blobs.listing(BLOBS)}
    pack_files = {item.key: item for item in store.blobs.listing(PACKS)}
    live = _LiveSet(store, expired_manifests)
    live.refresh()
    young_manifests = {key for key, item in manifests.items() if not _older(item, cutoff)}
    young_blobs: set[tuple[str, str]] = set()  # referenced only by a young, uncommitted manifest
    for key in sorted(young_manifests - live.manifests):
        if is_scratch_key(key):
            continue  # a dead writer's temp file: not a manifest
        manifest = _read_manifest(store, key, required=False)
        if manifest is not None:
            young_blobs.update(_blob_identities(manifest))

    # 3. Candidates: unreferenced and older than the grace period.
    candidates: list[StoredObject] = []
    examined = 0
    for key, item in sorted(manifests.items()):
        examined += 1
        if key in live.manifests:
            continue
        if key in young_manifests:
            result.recent_kept += 1
            continue
        candidates.append(item)
    for key, item in sorted(blobs.items()):
        examined += 1
        if on_progress is not None and examined % 256 == 0:
            on_progress(examined)
        identity = blob_identity(key)
        if live.keeps(identity):
            result.blobs_kept += 1
        elif identity in young_blobs or not _older(item, cutoff):
            result.recent_kept += 1
        else:
            candidates.append(item)
    if on_progress is not None:
        on_progress(examined)

    # 4. Delete them batch by batch, each batch announced to writers first (object stores).
    for start in range(0, len(candidates), DELETE_BATCH):
        batch = candidates[start : start + DELETE_BATCH]
        if dry_run:
            for item in batch:
                result.count(item)
        else:
            _delete_batch(store, batch, cutoff, live, result)

    # 5. Packs: rewrite those mostly dead, delete retired ones once the grace period is over.
    _collect_packs(store, pack_files, cutoff, live, young_blobs, result)
    if not dry_run:
        purge_stale(store.blobs, store.clock)
    return result


def _delete_batch(
    store: Store,
    batch: list[StoredObject],
    cutoff: float,
    live: _LiveSet,
    result: GcResult,
) -> None:
    """Delete one batch of candidates, sparing whatever became needed since they were chosen.

    Order (the writer's side is :func:`.storage.protection.protect_reuse`): announce the batch,
    *then* read the writers' leases and the registry, then delete. A writer whose lease this read
    missed wrote it after the announcement was visible, so it waits for this batch to end before
    it checks which blobs exist.
    """
    with deletion_batch(store.blobs, [item.key for item in batch]) as announced:
        leased = leased_keys(store.blobs, store.clock)
        live.refresh()
        doomed: list[StoredObject] = []
        for item in batch:
            is_manifest = is_manifest_key(item.key)
            needed = (
                item.key in live.manifests if is_manifest else live.keeps(blob_identity(item.key))
            )
            if needed:  # a version referencing it was committed meanwhile
                if not is_manifest:
                    result.blobs_kept += 1
                continue
            if item.key in leased:
                result.recent_kept += 1  # a writer is storing or reusing it right now
                continue
            doomed.append(item)
        announced.check_fresh()
        store.blobs.delete_many(item.key for item in doomed)
        for item in doomed:
            result.count(item)


class _LiveSet:
    """What live versions reference, re-read from the registry before each deletion batch.

    Each read picks up versions committed while gc runs, reading only the manifests not seen
    before, so a long collection never deletes what a writer has since committed.
    """

    def __init__(self, store: Store, ignored_manifests: set[str | None]) -> None:
        self.store = store
        self.ignored = ignored_manifests
        self.manifests: set[str] = set()
        self.blobs: set[tuple[str, str]] = set()
        self.pending_hex: set[str] = set()

    def refresh(self) -> None:
        refs = self.store.registry.live_references()
        for key in sorted(refs.manifest_keys - self.manifests - self.ignored):
            manifest = _read_manifest(self.store, key, required=True)
            assert manifest is not None
            self.blobs.update(_blob_identities(manifest))
            self.manifests.add(key)
        self.pending_hex |= refs.pending_hex

    def keeps(self, identity: tuple[str, str]) -> bool:
        return identity in self.blobs or identity[1] in self.pending_hex


def _blob_identities(manifest: Manifest) -> Iterator[tuple[str, str]]:
    return (blob_identity(key) for key in stored_blob_keys(manifest))


def _read_manifest(store: Store, key: str, *, required: bool) -> Manifest | None:
    """A manifest gc must honour (``required``: a live version's; gc stops rather than guess)
    or may skip (a young, uncommitted one that is unreadable)."""
    try:
        return read_manifest(store.blobs, key, "a live version" if required else "a young one")
    except ManifestError as error:
        if required:
            raise ManifestError(
                f"gc stops without deleting anything: {error}", url=error.url
            ) from error
        log.warning("Skipping unreadable manifest %s: %s", key, error)
        return None


def _older(item: StoredObject, cutoff: float) -> bool:
    """True only if the key is known to be older than ``cutoff``; an undated key is kept."""
    return item.modified is not None and item.modified < cutoff


def repack(store: Store, *, dry_run: bool = False) -> RepackResult:
    """Move the store's loose small blobs into packs (``dagster-artifacts repack``); see
    :func:`.storage.repack.repack_loose`."""
    return repack_loose(store.blobs, dry_run=dry_run)


def _collect_packs(
    store: Store,
    listed: dict[str, StoredObject],
    cutoff: float,
    live: _LiveSet,
    young_blobs: set[tuple[str, str]],
    result: GcResult,
) -> None:
    """gc of store format v2 (see :mod:`.storage.packs`).

    - A pack older than the grace period whose live blobs fill less than :data:`REWRITE_BELOW`
      of it is rewritten: its dead blobs are announced as one deletion batch (the same marker
      writers wait for), leases and the registry are read again, and everything still needed
      is copied into a new pack, published before the old pack is retired.
    - A retired pack (its note older than the grace period) is deleted, as is a pack without an
      index or note older than :data:`.storage.protection.LEASE_TTL` (a writer that died between
      the pack and its index; a younger one may be a live writer's, its index not written yet).
    """
    orphan_cutoff = store.clock.time() - LEASE_TTL.total_seconds()
    by_pack: dict[str, dict[str, StoredObject]] = {}
    for key, item in listed.items():
        pack_id, kind = pack_id_of(key)
        if pack_id:
            by_pack.setdefault(pack_id, {})[kind] = item
    if not by_pack:
        return
    store.blobs.pack_index.refresh()
    contents = store.blobs.pack_index.packs()
    for pack_id, files in sorted(by_pack.items()):
        pack = files.get("pack")
        if "idx" not in files:
            # A retired pack goes once its note is older than the grace period. A pack with no
            # index and no note is either a crashed writer's or one being published right now
            # (its index is the next write): only the leases' horizon tells them apart.
            note = files.get("retired")
            limit = cutoff if note is not None else min(cutoff, orphan_cutoff)
            note = note if note is not None else pack
            if note is not None and _older(note, limit):
                doomed = [item.key for item in files.values()]
                result.packs_deleted += 1 if pack is not None else 0
                result.bytes_freed += pack.size if pack is not None else 0
                if not result.dry_run:
                    store.blobs.delete_many(doomed)
            continue
        if pack is None or not _older(files["idx"], cutoff) or pack_id not in contents:
            continue  # young (a writer may still be committing what it holds), or gone
        # Its own copy of every blob it lists, even one also in another pack: a concurrent gc
        # may be rewriting that other pack without it, so a rewrite keeps every live copy.
        mine = contents[pack_id]
        keys = list(mine)
        dead = [
            key
            for key in keys
            if not live.keeps(blob_identity(key)) and blob_identity(key) not in young_blobs
        ]
        dead_set = set(dead)
        live_bytes = sum(spot.length for key, spot in mine.items() if key not in dead_set)
        if not dead or live_bytes >= REWRITE_BELOW * max(pack.size, 1):
            result.blobs_kept += len(keys) - len(dead)
            continue
        if result.dry_run:
            result.blobs_deleted += len(dead)
            result.packs_rewritten += 1
            continue
        _rewrite(store, pack_id, keys, dead, mine, live, result)


def _rewrite(
    store: Store,
    pack_id: str,
    keys: list[str],
    dead: list[str],
    where: dict[str, PackedBlob],
    live: _LiveSet,
    result: GcResult,
) -> None:
    """One pack's rewrite as one announced deletion batch (see :func:`_delete_batch`)."""
    with deletion_batch(store.blobs, dead) as announced:
        leased = leased_keys(store.blobs, store.clock)
        live.refresh()
        doomed = {key for key in dead if key not in leased and not live.keeps(blob_identity(key))}
        keep = [key for key in keys if key not in doomed and key in where]
        announced.check_fresh()
        rewrite_pack(store.blobs, pack_id, keep, where)
    result.blobs_deleted += len(doomed)
    result.blobs_kept += len(keep)
    result.packs_rewritten += 1  # its bytes are freed when the retired pack is deleted
    result.deleted_keys.extend(sorted(doomed))
