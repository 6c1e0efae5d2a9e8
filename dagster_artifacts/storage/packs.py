"""Store format v2: small blobs packed into immutable pack files with an index.

One object per small file costs a file creation on a local disk and a PUT/GET on a bucket, each a
round trip and money; backup tools (restic, kopia, git's packfiles) pack small blobs instead.
Here a batch of at least :attr:`PackPolicy.min_blobs` blobs of at most
:attr:`PackPolicy.threshold` bytes each is written as packs of about
:attr:`PackPolicy.target_size` bytes; larger blobs, and small batches, stay one object each
(the v1 "loose" layout, which every reader still reads)::

    packs/<random id>.pack      the blobs' bytes, back to back; never changed
    packs/<same>.idx                          "DAIDX1\\n", a JSON header line, then one fixed
                                              record per blob: algorithm code, raw digest,
                                              offset, length
    packs/<same>.retired                      written by gc when it replaced the pack: the
                                              index is gone, the pack stays for the grace period
    format.json                               {"format": 2} once a store holds a pack

Order: the pack first, then its index; an index is only ever published for a complete pack,
and a blob counts as stored once its index is listed. Both happen before the manifest and the
registry commit (invariant 2). Every blob read from a pack is hashed against the manifest's
digest before it is written anywhere (invariant 6).
"""

from __future__ import annotations

import json
import os
import struct
import uuid
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from dagster_artifacts.digests import digest_bytes
from dagster_artifacts.errors import ArtifactError, ChecksumMismatchError, StorageError
from dagster_artifacts.storage.layout import BLOBS, PACKS

INDEX_MAGIC = b"DAIDX1\n"
_RECORD = struct.Struct("<B16sQI")  # algorithm code, raw digest, offset, length
_IDENTITY_SIZE = struct.calcsize("<B16s")  # the record's first bytes: code and raw digest
_RECORD_TAIL = struct.Struct(f"<{_IDENTITY_SIZE}xQI")  # what follows: offset, length
ALGORITHM_CODES = {"md5": 0, "xxh128": 1}
_ALGORITHMS = {code: name for name, code in ALGORITHM_CODES.items()}
_ALGORITHM_BYTES = bytes(_ALGORITHMS)
FORMAT_KEY = "format.json"
STORE_FORMAT = 2

#: Ranges of one pack closer than this are fetched as one request (the gap is read and dropped).
COALESCE_GAP = 256 * 1024
#: A coalesced range never spans more than this: bounds memory per request in flight.
MAX_SPAN = 8 * 1024 * 1024


@dataclass(frozen=True)
class PackPolicy:
    """When blobs go into packs. Defaults measured on a 2-core machine (README, "Packs"):

    ``threshold``: blobs up to 1 MiB. A local loose write costs about 40 us of system calls and
    a bucket PUT a round trip (milliseconds); 1 MiB takes about 2 ms to hash, so above that the
    per-object cost is noise and a blob is better read without a pack around it.
    ``min_blobs``: a batch with fewer small blobs than this writes them loose. A pack costs two
    objects (pack, index) and one more index for every reader to load; for a handful of files
    that gains nothing, and ``repack`` packs them later.
    ``target_size``: packs of about 16 MiB: a few requests per 10,000 small files, a rewrite by
    gc copies at most that much, and a bucket download reads it in a couple of ranged GETs.
    """

    threshold: int = 1024 * 1024
    min_blobs: int = 64
    target_size: int = 16 * 1024 * 1024

    @classmethod
    def from_env(cls) -> PackPolicy:
        """``DAGSTER_ARTIFACTS_PACK_THRESHOLD`` (bytes; 0 turns packing off),
        ``DAGSTER_ARTIFACTS_PACK_MIN_BLOBS``, ``DAGSTER_ARTIFACTS_PACK_SIZE`` (bytes)."""
        default = cls()

        def number(name: str, fallback: int) -> int:
            value = os.environ.get(name, "").strip()
            if not value:
                return fallback
            try:
                parsed = int(value)
            except ValueError:
                raise StorageError(
                    f"{name}={value!r} is not a whole number of bytes; unset it or give one."
                ) from None
            if parsed < 0:
                raise StorageError(f"{name}={value!r} is negative; give 0 or more.")
            return parsed

        return cls(
            threshold=number("DAGSTER_ARTIFACTS_PACK_THRESHOLD", default.threshold),
            min_blobs=max(1, number("DAGSTER_ARTIFACTS_PACK_MIN_BLOBS", default.min_blobs)),
            target_size=max(1, number("DAGSTER_ARTIFACTS_PACK_SIZE", default.target_size)),
        )

    def packable(self, key: str, size: int | None) -> bool:
        return (
            size is not None
            and 0 < size <= self.threshold  # an empty blob: no bytes to pack, no range to read
            and self.threshold > 0
            and packed_identity(key) is not None
        )


def pack_key(pack_id: str) -> str:
    return f"{PACKS}/{pack_id}.pack"


def index_key(pack_id: str) -> str:
    return f"{PACKS}/{pack_id}.idx"


def retired_key(pack_id: str) -> str:
    return f"{PACKS}/{pack_id}.retired"


def pack_id_of(key: str) -> tuple[str, str]:
    """``packs/<id>.<kind>`` -> ``(id, kind)``; ``("", "")`` for anything else."""
    folder, _, name = key.rpartition("/")
    if folder != PACKS or "." not in name or name.startswith("."):
        return "", ""
    pack_id, _, kind = name.partition(".")
    return pack_id, kind


def packed_identity(key: str) -> bytes | None:
    """``blobs/md5/ab/cdef..`` -> one algorithm byte + the raw digest; None if not packable."""
    parts = key.split("/")
    if len(parts) != 4 or parts[0] != BLOBS:
        return None
    code = ALGORITHM_CODES.get(parts[1])
    if code is None:
        return None
    try:
        raw = bytes.fromhex(parts[2] + parts[3])
    except ValueError:
        return None
    if len(raw) != 16:
        return None
    return bytes((code,)) + raw


def key_of_identity(identity: bytes) -> str:
    hex_digest = identity[1:].hex()
    return f"{BLOBS}/{_ALGORITHMS[identity[0]]}/{hex_digest[:2]}/{hex_digest[2:]}"


@dataclass(frozen=True)
class PackedBlob:
    """Where a blob lives in a pack."""

    pack: str
    offset: int
    length: int


@dataclass(frozen=True)
class PackEntry:
    """One record of an index: the blob ``key`` at ``offset`` for ``length`` bytes."""

    key: str
    offset: int
    length: int


def encode_index(pack_id: str, pack_size: int, entries: Sequence[PackEntry]) -> bytes:
    header = json.dumps({"pack": pack_id, "size": pack_size, "count": len(entries)}).encode()
    records = bytearray()
    for entry in entries:
        identity = packed_identity(entry.key)
        assert identity is not None, entry.key
        records += _RECORD.pack(identity[0], identity[1:], entry.offset, entry.length)
    return INDEX_MAGIC + header + b"\n" + bytes(records)


@dataclass(frozen=True)
class IndexColumns:
    """One index's records as columns: the blobs' identities (algorithm code + raw digest), and
    their offsets and lengths in two 64-bit arrays, by record number. Columns because a store
    may hold millions of packed blobs: decoded with a few C-level passes over the bytes, not a
    tuple per record."""

    identities: list[bytes]
    offsets: array[int]
    lengths: array[int]

    @classmethod
    def of(cls, records: Iterable[tuple[bytes, int, int]]) -> IndexColumns:
        columns = cls([], array("Q"), array("Q"))
        for identity, offset, length in records:
            columns.identities.append(identity)
            columns.offsets.append(offset)
            columns.lengths.append(length)
        return columns


def decode_index(data: bytes, url: str) -> tuple[dict[str, object], IndexColumns]:
    """The header and the records of an index; a damaged one is a :class:`StorageError` naming
    it (never guessed at: a wrong offset would be a wrong file)."""
    damaged = (
        f"The pack index {url} is damaged; restore it from a backup, or run "
        "`dagster-artifacts repack` after logging the affected versions again."
    )
    if not data.startswith(INDEX_MAGIC):
        raise StorageError(damaged, url=url)
    end = data.find(b"\n", len(INDEX_MAGIC))
    try:
        header = json.loads(data[len(INDEX_MAGIC) : end])
        count = int(header["count"])
    except (ValueError, KeyError, TypeError):
        raise StorageError(damaged, url=url) from None
    body = bytes(data[end + 1 :])
    size = _RECORD.size
    if end < 0 or len(body) != count * size:
        raise StorageError(damaged, url=url)
    if body[0::size].translate(None, _ALGORITHM_BYTES):  # a code byte that names no algorithm
        raise StorageError(damaged, url=url)
    tails = list(_RECORD_TAIL.iter_unpack(body))
    columns = IndexColumns(
        [body[start : start + _IDENTITY_SIZE] for start in range(0, len(body), size)],
        array("Q", [offset for offset, _length in tails]),
        array("Q", [length for _offset, length in tails]),
    )
    return header, columns


# -- building packs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuiltPack:
    """A pack ready to publish: its body in memory (``data``), or, when a whole local file
    already is the body (a full staging file), that file (``source``, ``data`` empty)."""

    pack_id: str
    data: bytes
    entries: list[PackEntry]
    source: str | None = None
    source_size: int = 0

    @property
    def size(self) -> int:
        return self.source_size if self.source is not None else len(self.data)

    @property
    def index(self) -> bytes:
        return encode_index(self.pack_id, self.size, self.entries)


def build_packs(blobs: Iterable[tuple[str, bytes]], target_size: int) -> Iterator[BuiltPack]:
    """Group ``(key, bytes)`` into packs of about ``target_size`` bytes, in order; memory holds
    at most one pack. Each pack gets a random name, never its content's hash: two writers (or a
    writer and gc's rewrite) that pack the same blobs must not share a name, or gc deleting one
    retired pack would delete the other's bytes under its live index (found by the soak)."""
    parts: list[bytes] = []
    entries: list[PackEntry] = []
    seen: set[str] = set()
    size = 0
    for key, data in blobs:
        if key in seen:
            continue
        seen.add(key)
        entries.append(PackEntry(key, size, len(data)))
        parts.append(data)
        size += len(data)
        if size >= target_size:
            yield _finish(parts, entries)
            parts, entries, size = [], [], 0
    if entries:
        yield _finish(parts, entries)


def _finish(parts: list[bytes], entries: list[PackEntry]) -> BuiltPack:
    return BuiltPack(uuid.uuid4().hex, b"".join(parts), entries)


# -- reading packs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wanted:
    """A blob wanted from a pack, and what to do with its verified bytes."""

    key: str
    where: PackedBlob
    digest: str
    algorithm: str
    deliver: Callable[[bytes], None]


@dataclass(frozen=True)
class Span:
    """One read of a pack: bytes ``start`` to ``end`` serve every one of ``wanted``."""

    pack: str
    start: int
    end: int
    wanted: list[Wanted]


def plan_spans(
    wanted: Iterable[Wanted], gap: int = COALESCE_GAP, span: int = MAX_SPAN
) -> list[Span]:
    """Coalesce the wanted blobs of each pack into few ranged reads, in pack order (a local
    pack is read front to back; a bucket answers a few large ranged GETs instead of one per
    blob). A read never exceeds ``span`` bytes unless one blob alone does."""
    by_pack: dict[str, list[Wanted]] = {}
    for item in wanted:
        by_pack.setdefault(item.where.pack, []).append(item)
    spans: list[Span] = []
    for pack, items in sorted(by_pack.items()):
        items.sort(key=lambda w: w.where.offset)
        current: list[Wanted] = []
        start = end = 0
        for item in items:
            offset, stop = item.where.offset, item.where.offset + item.where.length
            if current and (offset - end > gap or stop - start > span):
                spans.append(Span(pack, start, end, current))
                current = []
            if not current:
                start = offset
                end = stop
            current.append(item)
            end = max(end, stop)
        if current:
            spans.append(Span(pack, start, end, current))
    return spans


def split_spans(spans: list[Span], threads: int, least: int = 64) -> list[Span]:
    """``spans`` cut into pieces of at most about a ``2 * threads``-th of all their blobs (and
    no fewer than ``least``), in the same order: work that a few threads can share."""
    total = sum(len(span.wanted) for span in spans)
    most = max(least, -(-total // (2 * threads)))
    pieces: list[Span] = []
    for span in spans:
        if len(span.wanted) <= most:
            pieces.append(span)
            continue
        for begin in range(0, len(span.wanted), most):
            part = span.wanted[begin : begin + most]
            start = part[0].where.offset
            end = max(item.where.offset + item.where.length for item in part)
            pieces.append(Span(span.pack, start, end, part))
    return pieces


def serve_span(span: Span, data: bytes, url: str) -> list[tuple[Wanted, BaseException]]:
    """Hand each blob of ``span`` (read as ``data``) to its ``deliver``, verified first.

    Returns the failures, each with its blob, after trying every one (a damaged blob does not
    stop its neighbours)."""
    failures: list[tuple[Wanted, BaseException]] = []
    view = memoryview(data)
    for item in span.wanted:
        begin = item.where.offset - span.start
        chunk = bytes(view[begin : begin + item.where.length])
        try:
            if len(chunk) != item.where.length:
                raise ChecksumMismatchError(
                    f"{url}: the pack is shorter than its index says (blob {item.key} at "
                    f"offset {item.where.offset}); it is damaged. Log the affected versions "
                    "again, then run gc."
                )
            actual = digest_bytes(chunk, item.algorithm)
            if actual != item.digest:
                raise ChecksumMismatchError(
                    f"{url} (offset {item.where.offset}): digest {actual} does not match the "
                    f"manifest's {item.digest}; the stored object changed or is damaged. "
                    "Re-log the artifact from a good copy."
                )
            item.deliver(chunk)
        except (OSError, ArtifactError) as error:
            failures.append((item, error))
    return failures


def format_body() -> bytes:
    return json.dumps({"format": STORE_FORMAT}).encode()


def check_format(data: bytes, url: str) -> None:
    """Refuse a store written by a newer format than this version reads."""
    try:
        version = int(json.loads(data).get("format", 0))
    except (ValueError, AttributeError, TypeError):
        raise StorageError(
            f"{url} is damaged; it should read {format_body().decode()}.", url=url
        ) from None
    if version > STORE_FORMAT:
        raise StorageError(
            f"This store was written in format {version} (by a newer dagster-artifacts); this "
            f"version reads format {STORE_FORMAT} and older. Upgrade dagster-artifacts.",
            url=url,
        )
