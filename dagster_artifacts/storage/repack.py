"""Making and remaking packs after the fact: ``repack`` (loose small blobs -> packs) and gc's
rewrite of a mostly dead pack (its live blobs -> a new pack, the old one retired).

Both publish the new pack and its index *before* removing anything, so every blob stays
readable throughout: a reader that looked for a loose blob that ``repack`` just removed, or in a
pack gc just retired, reads the index again and finds it in its new pack (:mod:`.packio`). A
retired pack keeps its bytes for gc's grace period, for readers that loaded its index before.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from dagster_artifacts.digests import digest_bytes, hex_to_b64
from dagster_artifacts.storage.base import BlobStore
from dagster_artifacts.storage.layout import BLOBS, blob_identity, is_scratch_key
from dagster_artifacts.storage.packio import publish_pack
from dagster_artifacts.storage.packs import (
    PackedBlob,
    build_packs,
    index_key,
    pack_key,
    retired_key,
)
from dagster_artifacts.storage.threads import parallel_map

log = logging.getLogger(__name__)


@dataclass
class RepackResult:
    """What :func:`repack_loose` did (or would do, on a dry run)."""

    dry_run: bool
    blobs_packed: int = 0
    bytes_packed: int = 0
    packs_written: int = 0
    loose_removed: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "blobs_packed": self.blobs_packed,
            "bytes_packed": self.bytes_packed,
            "packs_written": self.packs_written,
            "loose_removed": self.loose_removed,
        }


def repack_loose(blobs: BlobStore, *, dry_run: bool = False) -> RepackResult:
    """Pack every loose blob at or under the store's pack threshold, then remove the loose
    copies. A blob already in a pack only loses its loose copy; a loose blob whose bytes do not
    hash to its name is left alone (and logged): ``verify``/gc will meet it as it is."""
    result = RepackResult(dry_run=dry_run)
    policy = blobs.pack_policy
    small = [
        item
        for item in blobs.listing(BLOBS)
        if not is_scratch_key(item.key) and policy.packable(item.key, item.size)
    ]
    if not small:
        return result
    already = blobs.packed(item.key for item in small)
    duplicates = [item.key for item in small if item.key in already]
    todo = [item for item in small if item.key not in already]
    result.blobs_packed = len(todo)
    result.bytes_packed = sum(item.size for item in todo)
    if dry_run:
        result.packs_written = -(-result.bytes_packed // policy.target_size) if todo else 0
        result.loose_removed = len(small)
        return result
    packed_keys: list[str] = list(duplicates)
    for group in _by_size([(item.key, item.size) for item in todo], policy.target_size):
        read = [blob for blob in parallel_map(lambda key: _read_loose(blobs, key), group) if blob]
        for built in build_packs(read, policy.target_size):
            publish_pack(blobs, built)
            result.packs_written += 1
            packed_keys.extend(entry.key for entry in built.entries)
    result.blobs_packed = len(packed_keys) - len(duplicates)
    result.loose_removed = len(blobs.delete_many(packed_keys))
    return result


def _by_size(items: list[tuple[str, int]], target: int) -> Iterator[list[str]]:
    group: list[str] = []
    size = 0
    for key, length in items:
        group.append(key)
        size += length
        if size >= target:
            yield group
            group, size = [], 0
    if group:
        yield group


def _read_loose(blobs: BlobStore, key: str) -> tuple[str, bytes] | None:
    """A loose blob's bytes if they hash to its name (None: gone meanwhile, or damaged)."""
    try:
        data = blobs.read_bytes(key)
    except FileNotFoundError:
        return None  # collected by gc meanwhile
    algorithm, hex_digest = blob_identity(key)
    if digest_bytes(data, algorithm) != hex_to_b64(hex_digest):
        log.warning("Not packing %s: its bytes do not hash to its name", blobs.url(key))
        return None
    return key, data


def rewrite_pack(
    blobs: BlobStore, pack_id: str, keep: Iterable[str], where: dict[str, PackedBlob]
) -> str | None:
    """Copy the ``keep`` blobs of pack ``pack_id`` into a new pack, publish it, then retire the
    old one (a note with the time, its index removed; its bytes stay until gc's grace period
    has passed). Returns the new pack's id (None when nothing was kept)."""
    wanted = sorted(set(keep), key=lambda key: where[key].offset)
    new_id = None
    if wanted:
        data = blobs.read_bytes(pack_key(pack_id))
        chosen = []
        for key in wanted:
            spot = where[key]
            chunk = data[spot.offset : spot.offset + spot.length]
            algorithm, hex_digest = blob_identity(key)
            if len(chunk) != spot.length or digest_bytes(chunk, algorithm) != hex_to_b64(
                hex_digest
            ):
                raise_damaged(blobs, pack_id, key)
            chosen.append((key, chunk))
        for built in build_packs(chosen, max(len(data), 1)):
            publish_pack(blobs, built)
            new_id = built.pack_id
    retire_pack(blobs, pack_id)
    return new_id


def retire_pack(blobs: BlobStore, pack_id: str) -> None:
    """The note first (its time starts the grace period), then the index goes."""
    blobs.put_bytes(b"{}", retired_key(pack_id))
    blobs.delete_many([index_key(pack_id)])
    blobs.pack_index.drop(pack_id)


def raise_damaged(blobs: BlobStore, pack_id: str, key: str) -> None:
    from dagster_artifacts.errors import StorageError

    url = blobs.url(pack_key(pack_id))
    raise StorageError(
        f"gc stops without deleting anything: the live blob {key} in {url} does not match its "
        "digest, so the pack is damaged. Restore it from a backup, or log the affected "
        "versions again, then run gc.",
        url=url,
    )
