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

Cost per commit: one small write, one listing, one delete. A gc that dies mid-batch must not
hold writers up: it rewrites its marker every :data:`MARKER_HEARTBEAT` while the batch runs, and
a writer stops waiting for a marker that its own clock has seen unchanged for
:data:`MARKER_SILENCE` (no clock is compared with the store's), or at once when the marker's
owner is a process of this host that is gone. gc, in turn, stops before deleting if it could not
refresh its marker recently, so a writer never gives up on a gc that is still deleting. Leases
older than :data:`LEASE_TTL` (a crashed writer) and markers older than :data:`MARKER_TTL` are
ignored and purged by the next gc. gc's grace period is a second line (for blobs written outside
any lease).
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from types import TracebackType
from typing import Any

from dagster_artifacts.clock import SYSTEM_CLOCK, Clock
from dagster_artifacts.errors import StorageError
from dagster_artifacts.storage.base import BlobStore, StoredObject
from dagster_artifacts.storage.layout import GC_MARKERS, LEASES
from dagster_artifacts.storage.scratch import left_by_dead_process, owner_tag
from dagster_artifacts.storage.spool import Spool

log = logging.getLogger(__name__)

#: A writer's lease older than this is from a crashed writer and no longer protects anything.
LEASE_TTL = timedelta(hours=24)
#: A running gc rewrites its batch marker this often.
MARKER_HEARTBEAT = timedelta(seconds=3)
#: A marker a waiting writer has seen unchanged for this long is a dead gc's: the writer goes on.
MARKER_SILENCE = timedelta(seconds=30)
#: gc deletes nothing once its last successful heartbeat is older than this (a third of the
#: silence: a deletion request that starts then still ends long before writers give up).
MARKER_FRESH = MARKER_SILENCE / 3
#: A marker older than this by its own timestamp is a dead gc's at first sight, and purged.
MARKER_TTL = timedelta(minutes=10)
WAIT_POLL_SECONDS = 0.2
_LEASE_BATCH = 10_000  # keys encoded together into a lease


class ReuseLease:
    """The writer's side (see the module docstring); made by :func:`protect_reuse`.

    A class, not a generator: ``contextlib.contextmanager`` keeps its arguments for the whole
    block, and a commit of a million files would hold its million keys (about 100 MB) through
    the upload. The lease drops them once written and checked against gc's markers.
    """

    def __init__(
        self, blobs: BlobStore, keys: list[str], clock: Clock, spool_dir: str | None
    ) -> None:
        self.blobs = blobs
        self.clock = clock
        self._keys: list[str] | None = keys
        self._spool_dir = spool_dir or tempfile.gettempdir()
        self._lease: str | None = None

    def __enter__(self) -> set[str] | None:
        """Yields None: which keys are present is the writer's next question, asked after."""
        keys, self._keys = self._keys or [], None
        if not keys:
            return None
        lease = f"{LEASES}/{uuid.uuid4().hex}.json"
        try:
            with Spool(_lease_chunks(keys), self._spool_dir) as body:
                body.put(self.blobs, lease)
        except StorageError as error:
            # A store that refuses this small write (no bucket, no access, a full or read-only
            # disk) refuses the blobs too, and that error, naming a blob, is the one to show.
            # Should the blobs go through anyway, the commit is only as safe as gc's grace
            # period: say so.
            log.warning("No gc lease for this commit (%s); continuing without one.", error)
            return None
        self._lease = lease
        try:
            _wait_for_gc(self.blobs, keys, self.clock)
        except BaseException:  # the lease goes whatever happened, even if waiting failed
            self._release()
            raise
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._release()

    def _release(self) -> None:
        if self._lease is not None:
            _remove_quietly(self.blobs, self._lease)
            self._lease = None


def protect_reuse(
    blobs: BlobStore,
    keys: list[str],
    clock: Clock = SYSTEM_CLOCK,
    *,
    spool_dir: str | None = None,
) -> ReuseLease:
    """Hold gc off ``keys`` while a writer stores and commits them (see the module docstring).

    ``spool_dir``: where a lease too large to hold in memory is written before it is stored
    (the machine's staging folder; default the system's temp folder).
    """
    return ReuseLease(blobs, keys, clock, spool_dir)


def _lease_chunks(keys: list[str]) -> Iterator[bytes]:
    """``json.dumps({"keys": keys})``, encoded a batch of keys at a time."""
    yield b'{"keys": ['
    for start in range(0, len(keys), _LEASE_BATCH):
        if start:
            yield b", "
        yield ", ".join([json.dumps(key) for key in keys[start : start + _LEASE_BATCH]]).encode()
    yield b"]}"


def _wait_for_gc(blobs: BlobStore, keys: list[str], clock: Clock) -> None:
    """Wait while a live gc batch is deleting any of ``keys`` (no marker, no wait: the usual
    case costs one listing)."""
    first_seen: dict[tuple[str, float | None], float] = {}
    logged = False
    wanted: set[str] | None = None
    while True:
        markers = list(blobs.listing(GC_MARKERS))
        if not markers:
            return
        wanted = wanted if wanted is not None else set(keys)
        if not any(_blocks(blobs, marker, wanted, clock, first_seen) for marker in markers):
            return
        if not logged:
            log.info("Waiting for a running gc batch to finish before reusing stored blobs")
            logged = True
        clock.sleep(WAIT_POLL_SECONDS)


def _blocks(
    blobs: BlobStore,
    marker: StoredObject,
    keys: set[str],
    clock: Clock,
    first_seen: dict[tuple[str, float | None], float],
) -> bool:
    """Whether ``marker`` is a live gc's batch that deletes one of ``keys``."""
    if _age_seconds(marker, clock) > MARKER_TTL.total_seconds():
        return False  # a gc that crashed long ago (the next gc removes it)
    # Each heartbeat changes the marker's timestamp: one unchanged for long is a dead gc's.
    since = first_seen.setdefault((marker.key, marker.modified), clock.time())
    if clock.time() - since > MARKER_SILENCE.total_seconds():
        return False
    body = _read_body(blobs, marker.key)
    if body is None:
        return False
    owner = body.get("owner")
    if isinstance(owner, str) and left_by_dead_process(owner):
        return False  # its gc process, on this host, is gone
    return not keys.isdisjoint(str(key) for key in body.get("keys", []))


class DeletionBatch:
    """gc's announcement of one batch of deletions, kept fresh by a heartbeat thread."""

    def __init__(self, blobs: BlobStore, keys: list[str]) -> None:
        self.blobs = blobs
        self.key = f"{GC_MARKERS}/{uuid.uuid4().hex}.json"
        self._body = json.dumps({"keys": keys, "owner": owner_tag()}).encode()
        self._last_beat = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="gc-heartbeat", daemon=True)

    def start(self) -> None:
        self.blobs.put_bytes(self._body, self.key)
        self._last_beat = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        _remove_quietly(self.blobs, self.key)

    def check_fresh(self) -> None:
        """Refuse to delete when writers may already take this gc for dead."""
        stale_for = time.monotonic() - self._last_beat
        if stale_for > MARKER_FRESH.total_seconds():
            raise StorageError(
                f"gc stopped before deleting: its batch marker {self.blobs.url(self.key)} could "
                f"not be refreshed for {stale_for:.0f} s, so writers may no longer wait for it. "
                "Nothing of this batch was deleted; check the store's health and run gc again.",
                url=self.blobs.url(self.key),
            )

    def _beat(self) -> None:
        while not self._stop.wait(MARKER_HEARTBEAT.total_seconds()):
            try:
                self.blobs.put_bytes(self._body, self.key)
                self._last_beat = time.monotonic()
            except Exception as error:  # noqa: BLE001 - check_fresh stops gc if this persists
                log.warning("Could not refresh the gc batch marker %s: %s", self.key, error)


@contextmanager
def deletion_batch(blobs: BlobStore, keys: list[str]) -> Iterator[DeletionBatch]:
    """gc's side: announce a batch of deletions for as long as it runs (call
    :meth:`DeletionBatch.check_fresh` right before deleting)."""
    batch = DeletionBatch(blobs, keys)
    batch.start()
    try:
        yield batch
    finally:
        batch.stop()


def leased_keys(blobs: BlobStore, clock: Clock = SYSTEM_CLOCK) -> set[str]:
    """Every key a live writer holds a lease on."""
    leased: set[str] = set()
    for lease in blobs.listing(LEASES):
        if _age_seconds(lease, clock) > LEASE_TTL.total_seconds():
            continue
        body = _read_body(blobs, lease.key)
        leased.update(str(key) for key in (body or {}).get("keys", []))
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


def _read_body(blobs: BlobStore, key: str) -> dict[str, Any] | None:
    """A lease or marker's JSON; None if it is gone (finished meanwhile) or unreadable."""
    try:
        data = json.loads(blobs.read_bytes(key))
    except FileNotFoundError:
        return None
    except ValueError:
        log.warning("Ignoring unreadable %s", key)
        return None
    return data if isinstance(data, dict) else None


def _remove_quietly(blobs: BlobStore, key: str) -> None:
    """Remove a lease or marker; a failure only delays its keys' collection until it goes stale."""
    try:
        blobs.delete_many([key])
    except Exception as error:  # noqa: BLE001 - never mask the writer's own outcome
        log.warning("Could not remove %s (it expires by itself): %s", blobs.url(key), error)


def _age_seconds(item: StoredObject, clock: Clock) -> float:
    """Wall-clock age of a lease or marker (these are about live processes, not gc's ``now``)."""
    return 0.0 if item.modified is None else clock.time() - item.modified
