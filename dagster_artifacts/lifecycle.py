"""The life cycle of stored data: retention (``prune``), TTL expiry and garbage collection.

Deleting a version is a soft delete in the registry (``state = 'DELETED'``); its bytes stay in
the blob store, because other versions may share them (content addressing deduplicates across
versions and artifacts). :func:`gc` is the only code that removes bytes. It keeps every blob and
manifest that a committed or pending version references, and everything modified within a grace
period (default 24 h), so that the fresh blobs of a writer that has not committed yet are never
collected.

Order matters for safety against concurrent writers, which write blobs, then the manifest, then
commit in the registry: gc first lists the store, *then* reads the registry. Anything a writer
committed before that read is protected by the registry; anything it wrote after the listing is
not a candidate; anything in between is younger than the grace period. Manifests younger than
the grace period protect their blobs too (a writer may be about to commit one that reuses old,
orphaned blobs), and each candidate's modification time is checked again just before it is
deleted.

The one hard case is a writer that *reuses* an old orphan blob: it finds the blob present and
skips the upload. On a local store, writers refresh the modification time of every blob they are
about to reuse (:func:`refresh_reused`, called by ``Engine.upload_blobs``), which puts it inside
the grace period, and gc checks the time again just before deleting. Object stores have no cheap
"touch", so there writers hold a lease (:func:`reuse_lease`) from before they check what exists
until after their registry commit, and gc publishes each deletion batch before it reads the
leases and the registry; a writer that started after that read waits for the batch to end and
then uploads what it removed. Deletion itself is batched (S3 ``DeleteObjects``, GCS batch
requests), one request per 1,000 (S3) or 100 (GCS) keys instead of one per key.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from dagster_artifacts.errors import ArtifactNotFoundError, InvalidArgumentError, StorageError
from dagster_artifacts.manifest import Manifest
from dagster_artifacts.names import parse_artifact_path, validate_name
from dagster_artifacts.registry.lifecycle import expired_versions, live_references
from dagster_artifacts.registry.records import VersionRecord
from dagster_artifacts.storage.blobstore import BLOBS, MANIFESTS

if TYPE_CHECKING:
    from dagster_artifacts.engine import Engine

log = logging.getLogger(__name__)

DEFAULT_GRACE = timedelta(hours=24)

#: Store prefixes of the gc/writer protocol (see :func:`reuse_lease`), beside blobs/ and manifests/.
LEASES = "leases"
GC_MARKERS = "gc"
#: Keys gc deletes per batch (one marker, one lease read, one registry read, one bulk delete).
DELETE_BATCH = 1000
#: A writer's lease older than this is from a crashed writer and no longer protects anything.
LEASE_TTL = timedelta(hours=24)
#: A gc batch marker older than this is from a crashed gc; writers stop waiting for it.
MARKER_TTL = timedelta(minutes=10)
WAIT_POLL_SECONDS = 0.2

_DURATION_UNITS = {
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
_SIZE_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?)(b?)\s*$", re.IGNORECASE)


# -- parsing ----------------------------------------------------------------------------------------
def parse_duration(text: str | timedelta) -> timedelta:
    """``"30d"``, ``"12h"``, ``"1h30m"``, ``"2w"``, ``"90s"`` or ``"0"`` -> :class:`timedelta`."""
    if isinstance(text, timedelta):
        if text.total_seconds() < 0:
            raise InvalidArgumentError(f"Duration {text} is negative; give 0 or more.")
        return text
    value = str(text).strip()
    if value == "0":
        return timedelta(0)
    position = 0
    seconds = 0.0
    for match in _DURATION_PART.finditer(value):
        if value[position : match.start()].strip():
            break
        seconds += float(match.group(1)) * _DURATION_UNITS[match.group(2).lower()]
        position = match.end()
    if position == 0 or value[position:].strip():
        raise InvalidArgumentError(
            f"Cannot read duration {text!r}; write a number with a unit, e.g. 90s, 30m, 12h, "
            "7d, 2w or 1h30m."
        )
    return timedelta(seconds=seconds)


def format_duration(value: timedelta | float) -> str:
    """``timedelta(hours=24)`` -> ``"1d"``, ``5400`` seconds -> ``"1h30m"``: the form parse_duration reads."""
    seconds = int(value.total_seconds() if isinstance(value, timedelta) else value)
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def parse_size(text: str | int) -> int:
    """``"500MB"``, ``"2GiB"``, ``"10G"``, ``"1024"`` -> bytes (k/M/G are powers of 1000, Ki/Mi/Gi of 1024)."""
    if isinstance(text, int):
        if text < 0:
            raise InvalidArgumentError(f"Size {text} is negative; give 0 or more bytes.")
        return text
    match = _SIZE_PATTERN.match(str(text))
    if match is None:
        raise InvalidArgumentError(
            f"Cannot read size {text!r}; write bytes or a number with a unit, e.g. 500MB, 2GiB."
        )
    number, prefix, binary, _ = match.groups()
    exponent = " kmgtp".index(prefix.lower()) if prefix else 0
    base = 1024 if binary else 1000
    return int(float(number) * base**exponent)


def format_size(size: int | float) -> str:
    """Bytes for people: ``1.5 MB`` (decimal units, like ``du --si``)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} PB"  # pragma: no cover - unreachable


# -- retention ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PruneResult:
    """What :func:`prune` deleted (or would delete, on a dry run) and what it kept."""

    deleted: list[VersionRecord]
    kept: list[VersionRecord]
    dry_run: bool

    @property
    def freed_size(self) -> int:
        """Logical size of the deleted versions (bytes shared with kept ones stay stored)."""
        return sum(record.size for record in self.deleted)


def prune(
    engine: Engine,
    name: str,
    keep_last: int,
    *,
    keep_aliased: bool = False,
    older_than: timedelta | str | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
) -> PruneResult:
    """Delete all but the newest ``keep_last`` versions of ``name`` (``[[entity/]project/]name``).

    ``keep_aliased`` also keeps every version that has an alias (otherwise its aliases go with it);
    ``older_than`` only deletes versions created longer ago than that. The newest version, which
    carries ``latest``, is always kept because ``keep_last`` is at least 1. Deleted versions are
    soft-deleted; run :func:`gc` to reclaim their bytes.
    """
    if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1:
        raise InvalidArgumentError(
            f"keep_last must be 1 or more (got {keep_last!r}); to remove an artifact entirely, "
            "delete its versions one by one."
        )
    age = parse_duration(older_than) if older_than is not None else None
    entity, project, collection = _split_name(engine, name)
    records = engine.registry.list_versions(entity, project, collection)
    if not records:
        if engine.registry.collection_type(entity, project, collection) is not None:
            # Known, but every version is gone (deleted, or expired by a concurrent gc).
            return PruneResult(deleted=[], kept=[], dry_run=dry_run)
        # resolve() raises ArtifactNotFoundError naming what exists.
        engine.registry.resolve(entity, project, collection, "latest")
    moment = now or datetime.now(timezone.utc)
    ordered = sorted(records, key=lambda record: record.index or 0)
    newest = {record.id for record in ordered[-keep_last:]}
    deleted: list[VersionRecord] = []
    kept: list[VersionRecord] = []
    for record in ordered:
        keep = (
            record.id in newest
            or (keep_aliased and bool(record.aliases))
            or (age is not None and _aware(record.created_at) > moment - age)
        )
        (kept if keep else deleted).append(record)
    if not dry_run:
        deleted = [record for record in deleted if _delete(engine, record)]
    return PruneResult(deleted=deleted, kept=kept, dry_run=dry_run)


def expire(
    engine: Engine, *, dry_run: bool = False, now: datetime | None = None
) -> list[VersionRecord]:
    """Delete every version whose TTL has run out (with its aliases, as W&B does)."""
    expired = expired_versions(engine.registry, now)
    if not dry_run:
        expired = [record for record in expired if _delete(engine, record)]
    return expired


def _delete(engine: Engine, record: VersionRecord) -> bool:
    """Soft-delete one version with its aliases; False if someone else deleted it first."""
    try:
        engine.registry.delete_version(record.id, delete_aliases=True)
    except ArtifactNotFoundError:
        return False
    return True


def refresh_reused(
    engine: Engine,
    manifest: Manifest,
    *,
    keys: set[str] | None = None,
    manifest_key: str | None = None,
) -> set[str] | None:
    """Mark the blobs (and manifest) a writer is about to reuse as fresh, before it checks them.

    A writer skips uploading a blob that already exists. If that blob is an old orphan (its
    version was deleted), gc could collect it between the writer's check and its commit. Setting
    its modification time to now puts it inside gc's grace period, and gc checks the time again
    right before deleting. Only local stores can do this cheaply (object stores have no "touch"
    that keeps the content); a missing file is left missing, never created empty.

    Returns the keys found present (refreshed), so that the writer needs no second existence
    check: one ``utime`` per blob both protects and tests it. ``None`` on object stores.
    ``keys``/``manifest_key`` save recomputing them when the caller has them.
    """
    if not engine.blobs.can_touch:
        return None
    if keys is None:
        keys = {
            engine.blobs.blob_key(entry.digest, manifest.digest_algorithm)
            for entry in manifest.entries.values()
            if not entry.is_reference
        }
    wanted = set(keys)
    wanted.add(manifest_key or engine.blobs.manifest_key(manifest.to_bytes()))
    present: set[str] = set()
    for key in wanted:
        try:
            os.utime(engine.blobs.path(key))
        except FileNotFoundError:
            continue  # not there: the writer uploads it
        except OSError as error:  # read-only store, permissions: gc grace still applies
            log.debug("Could not refresh %s: %s", key, error)
        present.add(key)
    return present


# -- garbage collection ----------------------------------------------------------------------------------
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
        }


def gc(
    engine: Engine,
    *,
    grace: timedelta | str = DEFAULT_GRACE,
    dry_run: bool = False,
    now: datetime | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> GcResult:
    """Expire TTL'd versions, then delete blobs and manifests nothing live references.

    A blob or manifest modified less than ``grace`` ago is never deleted, whatever the registry
    says: it may belong to a writer that has not committed yet. Neither is anything a writer
    holds a lease on (object stores, see :func:`reuse_lease`). Deletion goes in batches of
    ``DELETE_BATCH`` keys, one bulk request each where the store has one. ``on_progress`` is
    called with the number of keys examined, for progress bars.
    """
    grace_period = parse_duration(grace)
    moment = now or datetime.now(timezone.utc)
    cutoff = (moment - grace_period).timestamp()
    result = GcResult(dry_run=dry_run)
    result.expired = expire(engine, dry_run=dry_run, now=moment)
    expired_manifests = {record.manifest_key for record in result.expired} if dry_run else set()

    # 1. List the store first, 2. then read what is live (see the module docstring for why).
    manifests = dict(engine.blobs.listing(MANIFESTS))
    blobs = dict(engine.blobs.listing(BLOBS))
    live = _LiveSet(engine, expired_manifests)
    live.refresh()
    young_manifests = {key for key, info in manifests.items() if not _older(info, cutoff)}
    young_blobs: set[tuple[str, str]] = set()  # referenced only by a young, uncommitted manifest
    for key in sorted(young_manifests - live.manifests):
        manifest = _read_manifest(engine, key, required=False)
        if manifest is not None:
            young_blobs.update(_blob_parts(engine, manifest))

    # 3. Candidates: unreferenced and older than the grace period.
    candidates: list[tuple[str, dict[str, Any]]] = []
    examined = 0
    for key, info in sorted(manifests.items()):
        examined += 1
        if key in live.manifests:
            continue
        if key in young_manifests:
            result.recent_kept += 1
            continue
        candidates.append((key, info))
    for key, info in sorted(blobs.items()):
        examined += 1
        if on_progress is not None and examined % 256 == 0:
            on_progress(examined)
        parts = _split_blob_key(key)
        if live.keeps(parts):
            result.blobs_kept += 1
        elif parts in young_blobs or not _older(info, cutoff):
            result.recent_kept += 1
        else:
            candidates.append((key, info))
    if on_progress is not None:
        on_progress(examined)

    # 4. Delete them batch by batch, each batch announced to writers first (object stores).
    for start in range(0, len(candidates), DELETE_BATCH):
        batch = candidates[start : start + DELETE_BATCH]
        if dry_run:
            for key, info in batch:
                _count(result, key, info)
        else:
            _delete_batch(engine, batch, cutoff, live, result)
    if not dry_run:
        _purge_stale(engine)
    return result


def _delete_batch(
    engine: Engine,
    batch: list[tuple[str, dict[str, Any]]],
    cutoff: float,
    live: _LiveSet,
    result: GcResult,
) -> None:
    """Delete one batch of candidates, sparing whatever became needed since they were chosen.

    Order (the writer's side is :func:`reuse_lease`): publish the batch as a marker, *then*
    read the writers' leases and the registry, then delete, then drop the marker. A writer whose
    lease this read missed wrote it after the marker was visible, so it finds the marker and
    waits for this batch to end before it checks which blobs exist.
    """
    marker = _publish_marker(engine, [key for key, _info in batch])
    try:
        leased = _leased_keys(engine)
        live.refresh()
        doomed: list[tuple[str, dict[str, Any]]] = []
        for key, info in batch:
            is_manifest = key.startswith(MANIFESTS + "/")
            needed = key in live.manifests if is_manifest else live.keeps(_split_blob_key(key))
            if needed:  # a version referencing it was committed meanwhile
                if not is_manifest:
                    result.blobs_kept += 1
                continue
            if key in leased or not _still_old(engine, key, cutoff):
                result.recent_kept += 1  # a writer is reusing it right now
                continue
            doomed.append((key, info))
        engine.blobs.delete_many(key for key, _info in doomed)
        for key, info in doomed:
            _count(result, key, info)
    finally:
        if marker is not None:
            _remove_quietly(engine, marker)


def _count(result: GcResult, key: str, info: dict[str, Any]) -> None:
    if key.startswith(MANIFESTS + "/"):
        result.manifests_deleted += 1
    else:
        result.blobs_deleted += 1
    result.bytes_freed += int(info.get("size") or 0)
    result.deleted_keys.append(key)


def _still_old(engine: Engine, key: str, cutoff: float) -> bool:
    """On a local store, check the modification time again: a writer may have just touched it.

    Object stores cannot be touched (leases stand in for it), so there the listing's time holds
    and no request per key is spent.
    """
    if not engine.blobs.can_touch:
        return True
    try:
        return _older(engine.blobs.fs.info(engine.blobs.path(key)), cutoff)
    except FileNotFoundError:
        return True  # someone else collected it; deleting again is harmless


class _LiveSet:
    """What live versions reference, re-read from the registry before each deletion batch.

    Each read picks up versions committed while gc runs, reading only the manifests not seen
    before, so a long collection never deletes what a writer has since committed.
    """

    def __init__(self, engine: Engine, ignored_manifests: set[str | None]) -> None:
        self.engine = engine
        self.ignored = ignored_manifests
        self.manifests: set[str] = set()
        self.blobs: set[tuple[str, str]] = set()
        self.pending_hex: set[str] = set()

    def refresh(self) -> None:
        refs = live_references(self.engine.registry)
        for key in sorted(refs.manifest_keys - self.manifests - self.ignored):
            manifest = _read_manifest(self.engine, key, required=True)
            assert manifest is not None
            self.blobs.update(_blob_parts(self.engine, manifest))
            self.manifests.add(key)
        self.pending_hex |= refs.pending_hex

    def keeps(self, parts: tuple[str, str]) -> bool:
        return parts in self.blobs or parts[1] in self.pending_hex


# -- leases: writers and gc on object stores -------------------------------------------------------------
def _lease_keys(engine: Engine, manifests: tuple[Manifest, ...]) -> list[str]:
    keys: set[str] = set()
    for manifest in manifests:
        keys.update(
            engine.blobs.blob_key(entry.digest, manifest.digest_algorithm)
            for entry in manifest.entries.values()
            if not entry.is_reference
        )
        keys.add(engine.blobs.manifest_key(manifest.to_bytes()))
    return sorted(keys)


@contextmanager
def reuse_lease(engine: Engine, *manifests: Manifest) -> Iterator[None]:
    """Hold a lease on the blobs and manifests of ``manifests`` while they are stored and committed.

    The race it closes: a writer finds an old orphan blob already stored, skips uploading it,
    and gc deletes the blob before the writer's version is committed, leaving a committed version
    with a missing blob. On a local store :func:`refresh_reused` touches such blobs; an object
    store cannot change a modification time without rewriting the object, so the writer instead
    puts one small lease object (``leases/<id>.json``, the keys it needs) *before* it checks
    which blobs exist, and removes it after the registry commit. gc never deletes a leased key.

    A gc that read the leases before this one appeared has already published its batch under
    ``gc/``: the writer finds that marker (one listing) and, if the batch names keys it needs,
    waits until the batch is done; only then does it check which blobs exist, and uploads the
    ones gc removed. Cost on the common path: one PUT, one LIST and one DELETE per commit.
    Leases older than ``LEASE_TTL`` (a crashed writer) and batch markers older than
    ``MARKER_TTL`` (a crashed gc) are ignored and purged by the next gc.
    """
    if engine.blobs.can_touch or not manifests:
        yield
        return
    keys = _lease_keys(engine, manifests)
    lease: str | None = f"{LEASES}/{uuid.uuid4().hex}.json"
    try:
        engine.blobs.put_bytes(json.dumps({"keys": keys}).encode(), lease)  # type: ignore[arg-type]
        _wait_for_gc(engine, set(keys))
    except StorageError as error:
        # A store that refuses this small write (no bucket, no access, down) refuses the blobs
        # too, and that error, naming a blob, is the one to show. Should the blobs go through
        # anyway, the commit is only as safe as gc's grace period, so say so.
        log.warning("No gc lease for this commit (%s); continuing without one.", error)
        lease = None
    try:
        yield
    finally:
        if lease is not None:
            _remove_quietly(engine, lease)


def _wait_for_gc(engine: Engine, keys: set[str]) -> None:
    """Wait while a running gc batch is deleting any of ``keys`` (see :func:`reuse_lease`)."""
    while True:
        busy = False
        for marker, info in engine.blobs.listing(GC_MARKERS):
            if _age_seconds(info) > MARKER_TTL.total_seconds():
                continue  # a crashed gc: ignore (the next gc removes it)
            doomed = _read_keys(engine, marker)
            if doomed is not None and not keys.isdisjoint(doomed):
                busy = True
                break
        if not busy:
            return
        log.info("Waiting for a running gc batch to finish before reusing stored blobs")
        _pause()


def _pause() -> None:
    """One poll interval of a writer waiting for a gc batch (a seam tests use to see the wait)."""
    time.sleep(WAIT_POLL_SECONDS)


def _publish_marker(engine: Engine, keys: list[str]) -> str | None:
    if engine.blobs.can_touch:
        return None
    marker = f"{GC_MARKERS}/{uuid.uuid4().hex}.json"
    engine.blobs.put_bytes(json.dumps({"keys": keys}).encode(), marker)
    return marker


def _leased_keys(engine: Engine) -> set[str]:
    """Every key a live writer holds a lease on."""
    leased: set[str] = set()
    for lease, info in engine.blobs.listing(LEASES):
        if _age_seconds(info) > LEASE_TTL.total_seconds():
            continue
        leased.update(_read_keys(engine, lease) or ())
    return leased


def _purge_stale(engine: Engine) -> None:
    """Remove leases and batch markers left by writers or gc runs that crashed."""
    stale = [
        key
        for prefix, ttl in ((LEASES, LEASE_TTL), (GC_MARKERS, MARKER_TTL))
        for key, info in engine.blobs.listing(prefix)
        if _age_seconds(info) > ttl.total_seconds()
    ]
    engine.blobs.delete_many(stale)


def _read_keys(engine: Engine, key: str) -> list[str] | None:
    """The ``keys`` of a lease or marker; None if it is gone (finished meanwhile) or unreadable."""
    try:
        data = json.loads(engine.blobs.read_bytes(key))
    except FileNotFoundError:
        return None
    except ValueError:
        log.warning("Ignoring unreadable %s", key)
        return None
    return [str(item) for item in data.get("keys", [])]


def _remove_quietly(engine: Engine, key: str) -> None:
    """Remove a lease or marker; a failure only delays its keys' collection until it goes stale."""
    try:
        engine.blobs.delete_many([key])
    except Exception as error:  # noqa: BLE001 - never mask the writer's own outcome
        log.warning("Could not remove %s (it expires by itself): %s", engine.blobs.url(key), error)


def _age_seconds(info: dict[str, Any]) -> float:
    """Wall-clock age of a lease or marker (not gc's ``now``: these are about live processes)."""
    mtime = _mtime(info)
    return 0.0 if mtime is None else time.time() - mtime


def _blob_parts(engine: Engine, manifest: Manifest) -> Iterator[tuple[str, str]]:
    for entry in manifest.entries.values():
        if not entry.is_reference:
            yield _split_blob_key(engine.blobs.blob_key(entry.digest, manifest.digest_algorithm))


def _read_manifest(engine: Engine, key: str, *, required: bool) -> Manifest | None:
    try:
        return Manifest.from_bytes(engine.blobs.read_bytes(key))
    except FileNotFoundError as error:
        if required:
            raise StorageError(
                f"Manifest {engine.blobs.url(key)} of a live version is missing; gc stops "
                "without deleting anything. Restore the store from a backup or delete that "
                "version."
            ) from error
        return None
    except ValueError:
        if required:
            raise
        log.warning("Skipping unreadable manifest %s", key)
        return None


def _split_blob_key(key: str) -> tuple[str, str]:
    """``blobs/md5/ab/cdef...`` -> ``("md5", "abcdef...")``; other names map to themselves."""
    parts = key.split("/")
    if len(parts) == 4 and parts[0] == BLOBS:
        return parts[1], parts[2] + parts[3]
    return "", key


def _mtime(info: dict[str, Any]) -> float | None:
    """Modification time (epoch seconds) from an fsspec info dict, whatever the backend."""
    for name in ("mtime", "LastModified", "updated", "last_modified", "created"):
        value = info.get(name)
        if value is None:
            continue
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, datetime):
            return _aware(value).timestamp()
        if isinstance(value, str):
            try:
                return _aware(datetime.fromisoformat(value.replace("Z", "+00:00"))).timestamp()
            except ValueError:
                continue
    return None


def _older(info: dict[str, Any], cutoff: float) -> bool:
    """True only if the key is known to be older than ``cutoff``; an undated key is kept."""
    mtime = _mtime(info)
    return mtime is not None and mtime < cutoff


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _split_name(engine: Engine, name: str) -> tuple[str, str, str]:
    """``[[entity/]project/]name`` (a ``:alias`` suffix is refused) -> (entity, project, name)."""
    if ":" in name:
        raise InvalidArgumentError(
            f"Expected an artifact name without a version, got {name!r}; drop the "
            f"':{name.rsplit(':', 1)[1]}'."
        )
    parsed = parse_artifact_path(name)
    entity = validate_name(parsed.entity) if parsed.entity else engine.settings.entity
    project = validate_name(parsed.project) if parsed.project else engine.settings.project
    return entity, project, parsed.name
