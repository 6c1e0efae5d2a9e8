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
the grace period. Object stores have no cheap "touch", so there gc re-reads the registry (at
most once a second) while it deletes, and skips anything a version committed meanwhile needs;
what remains is a writer that checked before gc deleted and commits after it, a window as long
as that writer's upload (see the issue notes).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator
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
    if not getattr(engine.blobs, "_renames_atomically", False):
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
    says: it may belong to a writer that has not committed yet. ``on_progress`` is called with the
    number of keys examined, for progress bars.
    """
    grace_period = parse_duration(grace)
    moment = now or datetime.now(timezone.utc)
    cutoff = (moment - grace_period).timestamp()
    result = GcResult(dry_run=dry_run)
    result.expired = expire(engine, dry_run=dry_run, now=moment)
    expired_manifests = {record.manifest_key for record in result.expired} if dry_run else set()

    # 1. List the store first, 2. then read what is live (see the module docstring for why).
    manifests = dict(_listing(engine, MANIFESTS))
    blobs = dict(_listing(engine, BLOBS))
    live = _LiveSet(engine, expired_manifests)
    live.refresh()
    young_manifests = {key for key, info in manifests.items() if not _older(info, cutoff)}
    young_blobs: set[tuple[str, str]] = set()  # referenced only by a young, uncommitted manifest
    for key in sorted(young_manifests - live.manifests):
        manifest = _read_manifest(engine, key, required=False)
        if manifest is not None:
            young_blobs.update(_blob_parts(engine, manifest))

    examined = 0
    for key, info in sorted(manifests.items()):
        examined += 1
        if key in live.manifests:
            continue
        if key in young_manifests:
            result.recent_kept += 1
            continue
        if not dry_run and live.refresh_due() and key in live.manifests:
            continue  # committed since the first read
        _collect(engine, key, info, cutoff, result, is_manifest=True)
    for key, info in sorted(blobs.items()):
        examined += 1
        if on_progress is not None and examined % 256 == 0:
            on_progress(examined)
        parts = _split_blob_key(key)
        if live.keeps(parts):
            result.blobs_kept += 1
            continue
        if parts in young_blobs:
            result.recent_kept += 1
            continue
        if not dry_run and live.refresh_due() and live.keeps(parts):
            result.blobs_kept += 1  # a version referencing it was committed meanwhile
            continue
        _collect(engine, key, info, cutoff, result, is_manifest=False)
    if on_progress is not None:
        on_progress(examined)
    return result


class _LiveSet:
    """What live versions reference, re-read from the registry while gc deletes.

    The first read happens after the store listing; later reads (at most every
    ``REFRESH_SECONDS``) pick up versions committed while gc runs, reading only the manifests
    not seen before, so a long collection never deletes what a writer has since committed.
    """

    REFRESH_SECONDS = 1.0

    def __init__(self, engine: Engine, ignored_manifests: set[str | None]) -> None:
        self.engine = engine
        self.ignored = ignored_manifests
        self.manifests: set[str] = set()
        self.blobs: set[tuple[str, str]] = set()
        self.pending_hex: set[str] = set()
        self._last = 0.0

    def refresh(self) -> None:
        import time

        refs = live_references(self.engine.registry)
        for key in sorted(refs.manifest_keys - self.manifests - self.ignored):
            manifest = _read_manifest(self.engine, key, required=True)
            assert manifest is not None
            self.blobs.update(_blob_parts(self.engine, manifest))
            self.manifests.add(key)
        self.pending_hex |= refs.pending_hex
        self._last = time.monotonic()

    def refresh_due(self) -> bool:
        """Re-read the registry if the last read is old; True if it did."""
        import time

        if time.monotonic() - self._last < self.REFRESH_SECONDS:
            return False
        self.refresh()
        return True

    def keeps(self, parts: tuple[str, str]) -> bool:
        return parts in self.blobs or parts[1] in self.pending_hex


def _blob_parts(engine: Engine, manifest: Manifest) -> Iterator[tuple[str, str]]:
    for entry in manifest.entries.values():
        if not entry.is_reference:
            yield _split_blob_key(engine.blobs.blob_key(entry.digest, manifest.digest_algorithm))


def _collect(
    engine: Engine,
    key: str,
    info: dict[str, Any],
    cutoff: float,
    result: GcResult,
    *,
    is_manifest: bool,
) -> None:
    """Delete one unreferenced key if it is older than the grace period (checked again now)."""
    if not _older(info, cutoff):
        result.recent_kept += 1
        return
    size = int(info.get("size") or 0)
    if not result.dry_run:
        try:
            fresh = engine.blobs.fs.info(engine.blobs.path(key))
        except FileNotFoundError:
            return  # someone else collected it
        if not _older(fresh, cutoff):  # touched since the listing: a writer is reusing it
            result.recent_kept += 1
            return
        try:
            engine.blobs.delete(key)
        except FileNotFoundError:
            return
    if is_manifest:
        result.manifests_deleted += 1
    else:
        result.blobs_deleted += 1
    result.bytes_freed += size
    result.deleted_keys.append(key)


def _listing(engine: Engine, prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(key, info)`` for every file under ``prefix`` in the store, in one listing."""
    fs = engine.blobs.fs
    base = engine.blobs.path(prefix)
    invalidate = getattr(fs, "invalidate_cache", None)
    if invalidate is not None:
        invalidate(base)
    try:
        found = fs.find(base, detail=True)
    except FileNotFoundError:
        return
    root = engine.blobs.root
    for full, info in found.items():
        if info.get("type", "file") != "file":
            continue
        key = full[len(root) + 1 :] if full.startswith(root + "/") else full
        yield key, info


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
