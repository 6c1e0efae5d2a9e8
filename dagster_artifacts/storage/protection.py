"""How a writer keeps a concurrent gc away from the blobs it stores and reuses, on every store.

Writers store blobs, then the manifest, then commit in the registry; gc lists the store, then
reads the registry, and deletes what no live version references. Two races matter: a writer that
*reuses* an old orphan blob (it finds it stored and skips the upload), and a writer whose fresh
blobs are not referenced by the registry until its commit lands, however long the upload takes.
Leases close both, on a local folder as on a bucket, whatever gc's grace period:

- the writer puts one small lease (``leases/<id>.json``, every key it needs) *before* it checks
  which blobs exist, and removes it after its registry commit;
- gc publishes each deletion batch as a marker (``gc/<id>.json``) *before* it reads the leases
  and the registry, and never deletes a leased key;
- a writer whose lease gc's read missed wrote it after the marker was visible: it finds the
  marker (one listing), waits for the batch to end, then checks what exists and uploads what the
  batch removed.

Cost per commit: one small write, one listing, one delete. Leases older than :data:`LEASE_TTL`
(a crashed writer) and markers older than :data:`MARKER_TTL` (a crashed gc) are ignored and
purged by the next gc. gc's grace period is a second line (for blobs written outside any lease).
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
    """Hold gc off ``keys`` while a writer stores and commits them (see the module docstring).

    Yields None: which keys are present is the writer's next question, asked after the lease.
    """
    if not keys:
        yield None
        return
    lease = f"{LEASES}/{uuid.uuid4().hex}.json"
    try:
        blobs.put_bytes(json.dumps({"keys": keys}).encode(), lease)
    except StorageError as error:
        # A store that refuses this small write (no bucket, no access, a full or read-only
        # disk) refuses the blobs too, and that error, naming a blob, is the one to show. Should
        # the blobs go through anyway, the commit is only as safe as gc's grace period: say so.
        log.warning("No gc lease for this commit (%s); continuing without one.", error)
        yield None
        return
    try:
        _wait_for_gc(blobs, set(keys), clock)
        yield None
    finally:  # the lease goes whatever happened, even if waiting for gc failed
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
    """gc's side: announce a batch of deletions for as long as it runs."""
    marker = f"{GC_MARKERS}/{uuid.uuid4().hex}.json"
    blobs.put_bytes(json.dumps({"keys": keys}).encode(), marker)
    try:
        yield
    finally:
        _remove_quietly(blobs, marker)


def leased_keys(blobs: BlobStore, clock: Clock = SYSTEM_CLOCK) -> set[str]:
    """Every key a live writer holds a lease on."""
    leased: set[str] = set()
    for lease in blobs.listing(LEASES):
        if _age_seconds(lease, clock) > LEASE_TTL.total_seconds():
            continue
        leased.update(_read_keys(blobs, lease.key) or ())
    return leased


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
