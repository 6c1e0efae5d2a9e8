"""How a writer keeps a concurrent gc away from the blobs it reuses, and how gc keeps its word.

Writers store blobs, then the manifest, then commit in the registry; gc lists the store, then
reads the registry, and never deletes anything younger than its grace period. The one hard case
is a writer that *reuses* an old orphan blob: it finds the blob present and skips the upload, and
gc could delete it before the writer's version is committed. Two mechanisms close that race,
chosen by what the store can promise (:attr:`BlobStore.can_touch`):

- **touch** (a filesystem): the writer refreshes the modification time of every key it needs
  before it checks which exist (one ``utime`` does both), which puts them inside gc's grace
  period; gc checks the time again just before deleting (:func:`still_collectable`).
- **leases** (object stores, which cannot change a modification time without rewriting the
  object): the writer puts one small lease (``leases/<id>.json``, the keys it needs) *before* it
  checks which blobs exist, and removes it after its registry commit; gc publishes each deletion
  batch as a marker (``gc/<id>.json``) *before* it reads the leases and the registry, and never
  deletes a leased key. A writer whose lease gc's read missed finds the marker and waits for the
  batch to end, then uploads what it removed. Cost: one PUT, one LIST, one DELETE per commit.

Leases older than :data:`LEASE_TTL` (a crashed writer) and markers older than :data:`MARKER_TTL`
(a crashed gc) are ignored and purged by the next gc.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from dagster_artifacts.clock import SYSTEM_CLOCK, Clock
from dagster_artifacts.errors import StorageError
from dagster_artifacts.storage.base import BlobStore, StoredObject
from dagster_artifacts.storage.layout import GC_MARKERS, LEASES

log = logging.getLogger(__name__)

#: A writer's lease older than this is from a crashed writer and no longer protects anything.
LEASE_TTL = timedelta(hours=24)
#: A gc batch marker older than this is from a crashed gc; writers stop waiting for it.
MARKER_TTL = timedelta(minutes=10)
WAIT_POLL_SECONDS = 0.2


@contextmanager
def protect_reuse(
    blobs: BlobStore, keys: list[str], clock: Clock = SYSTEM_CLOCK
) -> Iterator[set[str] | None]:
    """Hold gc off ``keys`` while a writer stores and commits them.

    Yields the keys known to be present where the protection found that out for free (a touch
    is an existence check), else None (the writer then asks the store).
    """
    if blobs.can_touch:
        yield blobs.touch(keys)
        return
    if not keys:
        yield None
        return
    lease: str | None = f"{LEASES}/{uuid.uuid4().hex}.json"
    try:
        blobs.put_bytes(json.dumps({"keys": keys}).encode(), lease)  # type: ignore[arg-type]
        _wait_for_gc(blobs, set(keys), clock)
    except StorageError as error:
        # A store that refuses this small write (no bucket, no access, down) refuses the blobs
        # too, and that error, naming a blob, is the one to show. Should the blobs go through
        # anyway, the commit is only as safe as gc's grace period, so say so.
        log.warning("No gc lease for this commit (%s); continuing without one.", error)
        lease = None
    try:
        yield None
    finally:
        if lease is not None:
            _remove_quietly(blobs, lease)


def _wait_for_gc(blobs: BlobStore, keys: set[str], clock: Clock) -> None:
    """Wait while a running gc batch is deleting any of ``keys``."""
    while True:
        busy = False
        for marker in blobs.listing(GC_MARKERS):
            if _age_seconds(marker, clock) > MARKER_TTL.total_seconds():
                continue  # a crashed gc: ignore (the next gc removes it)
            doomed = _read_keys(blobs, marker.key)
            if doomed is not None and not keys.isdisjoint(doomed):
                busy = True
                break
        if not busy:
            return
        log.info("Waiting for a running gc batch to finish before reusing stored blobs")
        clock.sleep(WAIT_POLL_SECONDS)


@contextmanager
def deletion_batch(blobs: BlobStore, keys: list[str]) -> Iterator[None]:
    """gc's side: announce a batch of deletions (object stores) for as long as it runs."""
    if blobs.can_touch:
        yield
        return
    marker = f"{GC_MARKERS}/{uuid.uuid4().hex}.json"
    blobs.put_bytes(json.dumps({"keys": keys}).encode(), marker)
    try:
        yield
    finally:
        _remove_quietly(blobs, marker)


def leased_keys(blobs: BlobStore, clock: Clock = SYSTEM_CLOCK) -> set[str]:
    """Every key a live writer holds a lease on (none on stores that touch instead)."""
    leased: set[str] = set()
    if blobs.can_touch:
        return leased
    for lease in blobs.listing(LEASES):
        if _age_seconds(lease, clock) > LEASE_TTL.total_seconds():
            continue
        leased.update(_read_keys(blobs, lease.key) or ())
    return leased


def still_collectable(blobs: BlobStore, key: str, cutoff: float) -> bool:
    """Whether ``key`` is still older than ``cutoff`` right before gc deletes it.

    A store that can be touched is asked again (a writer may have just touched the key); on
    the others the listing's time holds (leases stand in for touching) and no request per key
    is spent.
    """
    if not blobs.can_touch:
        return True
    try:
        modified = blobs.modified(key)
    except FileNotFoundError:
        return True  # someone else collected it; deleting again is harmless
    return modified is not None and modified < cutoff


def purge_stale(blobs: BlobStore, clock: Clock = SYSTEM_CLOCK) -> None:
    """Remove leases and batch markers left by writers or gc runs that crashed."""
    stale = [
        item.key
        for prefix, ttl in ((LEASES, LEASE_TTL), (GC_MARKERS, MARKER_TTL))
        for item in blobs.listing(prefix)
        if _age_seconds(item, clock) > ttl.total_seconds()
    ]
    blobs.delete_many(stale)


def _read_keys(blobs: BlobStore, key: str) -> list[str] | None:
    """The ``keys`` of a lease or marker; None if it is gone (finished meanwhile) or unreadable."""
    try:
        data = json.loads(blobs.read_bytes(key))
    except FileNotFoundError:
        return None
    except ValueError:
        log.warning("Ignoring unreadable %s", key)
        return None
    return [str(item) for item in data.get("keys", [])]


def _remove_quietly(blobs: BlobStore, key: str) -> None:
    """Remove a lease or marker; a failure only delays its keys' collection until it goes stale."""
    try:
        blobs.delete_many([key])
    except Exception as error:  # noqa: BLE001 - never mask the writer's own outcome
        log.warning("Could not remove %s (it expires by itself): %s", blobs.url(key), error)


def _age_seconds(item: StoredObject, clock: Clock) -> float:
    """Wall-clock age of a lease or marker (these are about live processes, not gc's ``now``)."""
    return 0.0 if item.modified is None else clock.time() - item.modified
