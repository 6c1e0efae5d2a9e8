"""The merged index of every published pack, in memory: blob identity -> pack, offset, length.

Indexes never change, so each is read once; :meth:`PackIndex.refresh` (one listing of
``packs/``) picks up packs other writers published and drops packs gc replaced. The file formats
(pack, index) are in :mod:`.packs`.
"""

from __future__ import annotations

import binascii
import contextlib
import threading
from collections.abc import Callable, Iterable, Sequence

from dagster_artifacts.storage.packs import (
    ALGORITHM_CODES,
    FORMAT_KEY,
    IndexColumns,
    PackedBlob,
    PackEntry,
    check_format,
    decode_index,
    index_key,
    key_of_identity,
    pack_id_of,
    packed_identity,
)
from dagster_artifacts.storage.threads import parallel_map


class _PackRecords:
    """One pack's index, kept compact: its records as columns (see :class:`.IndexColumns`)."""

    __slots__ = ("identities", "lengths", "offsets", "pack_id")

    def __init__(self, pack_id: str, columns: IndexColumns) -> None:
        self.pack_id = pack_id
        self.identities = columns.identities
        self.offsets = columns.offsets
        self.lengths = columns.lengths

    def blob(self, record: int) -> PackedBlob:
        return PackedBlob(self.pack_id, self.offsets[record], self.lengths[record])


class PackIndex:
    """Every published pack's index, merged: blob identity -> where it lives.

    Indexes never change, so each is read once; :meth:`refresh` (one listing of ``packs/``)
    picks up packs published by other writers and drops packs gc replaced. Thread-safe.

    Kept compact, as a store may hold millions of packed blobs: the merged map sends an
    identity to one int (the pack's number and the record's, ``number << 32 | record``), and
    each pack keeps its offsets and lengths in arrays; about 130 bytes a blob, not 300.
    """

    def __init__(self, list_keys: Callable[[], Iterable[str]], read: Callable[[str], bytes]):
        self._list_keys = list_keys
        self._read = read
        self._lock = threading.Lock()  # the maps, for each read or change
        self._refreshing = threading.Lock()  # one refresh at a time, listing to last change
        self._where: dict[bytes, int] = {}
        self._packs: list[_PackRecords | None] = []  # by number; None once forgotten
        self._numbers: dict[str, int] = {}
        self._format_checked = False

    def refresh(self) -> None:
        """Load new indexes, forget removed ones.

        One refresh at a time, from its listing to its last change: two overlapping ones let
        the slower, holding the older listing, load back a pack the newer one had just
        forgotten because gc replaced it; a writer then took that pack's blobs for stored and
        committed a version whose blob was nowhere (the soak caught it, under load). A
        refresh that waits for another lists afterwards, so it only ever sees newer packs.
        """
        with self._refreshing:
            self._refresh()

    def _refresh(self) -> None:
        listed = {
            pack_id
            for pack_id, kind in (pack_id_of(key) for key in self._list_keys())
            if kind == "idx"
        }
        with self._lock:
            known = set(self._numbers)
        if listed and not self._format_checked:
            # (missing: its first writer has not recorded it yet; it does after the pack)
            with contextlib.suppress(FileNotFoundError):
                check_format(self._read(FORMAT_KEY), FORMAT_KEY)
            self._format_checked = True

        def fetch(pack_id: str) -> bytes | None:
            try:
                return self._read(index_key(pack_id))
            except FileNotFoundError:
                return None  # replaced by gc between the listing and the read

        new = sorted(listed - known)
        # a bucket answers each index in a round trip: ask for them on a few threads
        for pack_id, data in zip(new, parallel_map(fetch, new), strict=True):
            if data is None:
                continue
            _header, columns = decode_index(data, index_key(pack_id))
            with self._lock:
                number, _remembered = self._remember(pack_id, columns)
                first = number << 32  # record r of this pack is first | r
                self._where.update(
                    zip(
                        columns.identities,
                        range(first, first + len(columns.identities)),
                        strict=True,
                    )
                )
        with self._lock:
            for pack_id in known - listed:
                self._forget(pack_id)

    def _remember(self, pack_id: str, columns: IndexColumns) -> tuple[int, _PackRecords]:
        number = len(self._packs)
        remembered = _PackRecords(pack_id, columns)
        self._packs.append(remembered)
        self._numbers[pack_id] = number
        return number, remembered

    def _forget(self, pack_id: str) -> None:
        number = self._numbers.pop(pack_id, None)
        if number is None:
            return
        gone = self._packs[number]
        self._packs[number] = None
        assert gone is not None
        for identity in gone.identities:
            where = self._where.get(identity)
            if where is not None and where >> 32 == number:
                del self._where[identity]
                # the blob may also be in another pack still listed: find it there (rare)
                for other, records in enumerate(self._packs):
                    if records is not None and identity in records.identities:
                        self._where[identity] = other << 32 | records.identities.index(identity)
                        break

    def _blob(self, where: int) -> PackedBlob:
        records = self._packs[where >> 32]
        assert records is not None
        return records.blob(where & 0xFFFFFFFF)

    def locate(self, keys: Iterable[str]) -> dict[str, PackedBlob]:
        """Where each of ``keys`` that is packed lives (no refresh)."""
        found: dict[str, PackedBlob] = {}
        with self._lock:
            if not self._where:
                return found
            for key in keys:
                identity = packed_identity(key)
                where = None if identity is None else self._where.get(identity)
                if where is not None:
                    found[key] = self._blob(where)
        return found

    def packed_digests(self, digests: Iterable[str], algorithm: str) -> set[str]:
        """Which of the base64 ``digests`` are packed (no refresh): straight from the raw
        digest, no key built (re-logging a million unchanged files asks this of each)."""
        code = ALGORITHM_CODES.get(algorithm)
        with self._lock:
            where = self._where
            if code is None or not where:
                return set()
            prefix = bytes((code,))
            found = set()
            for digest in digests:
                try:
                    if prefix + binascii.a2b_base64(digest) in where:
                        found.add(digest)
                except (binascii.Error, ValueError):
                    continue
            return found

    def packs(self) -> dict[str, dict[str, PackedBlob]]:
        """Every known pack -> each blob key its index lists, with its place in *that* pack
        (a blob may be in several packs; :meth:`locate` gives one of them)."""
        with self._lock:
            return {
                records.pack_id: {
                    key_of_identity(identity): records.blob(record)
                    for record, identity in enumerate(records.identities)
                }
                for records in self._packs
                if records is not None
            }

    def add(self, pack_id: str, entries: Sequence[PackEntry]) -> None:
        """Record a pack this process just published (saves reading its index back)."""
        records = []
        for entry in entries:
            identity = packed_identity(entry.key)
            assert identity is not None
            records.append((identity, entry.offset, entry.length))
        with self._lock:
            number, _remembered = self._remember(pack_id, IndexColumns.of(records))
            for record, (identity, _offset, _length) in enumerate(records):
                self._where.setdefault(identity, number << 32 | record)

    def drop(self, pack_id: str) -> None:
        with self._lock:
            self._forget(pack_id)
