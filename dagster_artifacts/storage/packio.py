"""Moving blobs into and out of packs, on any backend (the backend-neutral half of format v2).

Writing: the small blobs of a batch are read (each checked against its digest unless it is a
staged copy, hashed when it was added), grouped into packs of about the target size, and each
pack is published as two writes: the pack, then its index. Reading one pack group is planned
as a few coalesced spans (:func:`.packs.plan_spans`) that the backend reads as it reads best
(``BlobStore.read_spans``: a local file front to back, ranged GETs on a bucket); every blob is
hashed before it is written to its destination.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import itertools
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple, Protocol

from fsspec.callbacks import Callback

from dagster_artifacts.digests import digest_bytes
from dagster_artifacts.errors import ArtifactError, ChecksumMismatchError, StorageError
from dagster_artifacts.storage.items import BlobDownload, BlobUpload
from dagster_artifacts.storage.localcopy import make_parents, write_file
from dagster_artifacts.storage.packindex import PackIndex
from dagster_artifacts.storage.packs import (
    FORMAT_KEY,
    BuiltPack,
    PackedBlob,
    PackEntry,
    PackPolicy,
    Span,
    Wanted,
    build_packs,
    format_body,
    index_key,
    pack_key,
    plan_spans,
)
from dagster_artifacts.storage.retry import storage_error
from dagster_artifacts.storage.staged import parse_slice, read_slice, staging_fd
from dagster_artifacts.storage.threads import parallel_map


class PackHost(Protocol):
    """What packing needs of a blob store (``BlobStore`` has it all)."""

    pack_policy: PackPolicy
    pack_index: PackIndex

    def url(self, key: str) -> str: ...

    def exists(self, key: str) -> bool: ...

    def put_bytes(self, data: bytes, key: str) -> None: ...

    def put_file_copy(self, local_path: str, key: str) -> None: ...

    def packed(self, keys: Iterable[str], *, refresh: bool = True) -> dict[str, Any]: ...

    def read_spans(self, spans: list[Span]) -> list[tuple[Wanted, BaseException]]: ...

    def get_loose(self, downloads: Iterable[BlobDownload], *, atomic: bool = True) -> None: ...


# -- writing --------------------------------------------------------------------------------------


def write_packs(store: PackHost, uploads: Sequence[BlobUpload], callback: Callback) -> list[str]:
    """Store ``uploads`` as packs; return the pack ids. The next pack is read while the last
    one is published (two packs in memory at most)."""
    published: list[str] = []
    pending: Future[None] | None = None
    fds: dict[str, int] = {}  # staging files holding slices, opened once each
    target = store.pack_policy.target_size
    sliced: list[Slice] = []
    others: list[BlobUpload] = []
    for upload in uploads:
        where = parse_slice(upload.local_path) if upload.staged else None
        if where is None:
            others.append(upload)
        else:
            sliced.append(Slice(*where, upload.key))

    def from_others() -> Iterator[BuiltPack]:
        for group in _groups(others, target):
            blobs = parallel_map(functools.partial(_read_upload, store, fds), group)
            yield from build_packs(blobs, target)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pack-publish") as publisher:
        try:
            for built in itertools.chain(
                packs_from_slices(store, sliced, target, fds), from_others()
            ):
                if pending is not None:
                    pending.result()
                pending = publisher.submit(publish_pack, store, built, callback)
                published.append(built.pack_id)
            if pending is not None:
                pending.result()
        except BaseException:
            if pending is not None:
                with contextlib.suppress(BaseException):
                    pending.result()
            raise
        finally:
            for fd in fds.values():
                os.close(fd)
    return published


def publish_pack(store: PackHost, built: BuiltPack, callback: Callback | None = None) -> None:
    """The pack, then its index: an index never names a pack that is not whole."""
    if built.source is not None:
        store.put_file_copy(built.source, pack_key(built.pack_id))
    else:
        store.put_bytes(built.data, pack_key(built.pack_id))
    store.put_bytes(built.index, index_key(built.pack_id))
    # Not added to this process's own index: a million blobs logged would grow it by 130 MB for
    # nothing; a later lookup in this process loads the index from the store (refresh).
    ensure_format(store)
    if callback is not None:
        callback.relative_update(built.size)


def ensure_format(store: PackHost) -> None:
    """Record format 2 in the store (once per process), after its first pack is published: a
    write that fails for want of space leaves the store as it was."""
    if getattr(store, "_format_written", False):
        return
    if not store.exists(FORMAT_KEY):
        store.put_bytes(format_body(), FORMAT_KEY)
    store._format_written = True  # type: ignore[attr-defined]  # noqa: SLF001


def packs_from_slices(
    store: PackHost, slices: Sequence[Slice], target: int, fds: dict[str, int]
) -> Iterator[BuiltPack]:
    """Packs of staged slices (:class:`.staged.SliceSink`), taken as whole files or runs.

    A staging file already is a pack's body: blobs end to end. When every blob of one is to be
    stored (the usual case: new content), the file itself is published as the pack, with no
    byte passing through Python (a hard link on a local store). Otherwise the slices are taken
    in file order and every run of adjacent ones is read with one ``pread`` into the pack's
    buffer, instead of one read (and one Python round) per blob. Slices were hashed when they
    were staged and cannot change.
    """
    by_file: dict[str, list[Slice]] = {}
    seen: set[str] = set()
    for piece in slices:
        if piece.key not in seen:
            seen.add(piece.key)
            by_file.setdefault(piece.path, []).append(piece)
    rest: list[Slice] = []
    for path in sorted(by_file):
        slices = sorted(by_file[path])
        whole = _whole_file(path, slices, target)
        if whole is not None:
            yield whole
        else:
            rest.extend(slices)
    start = 0
    while start < len(rest):
        end, size = start, 0
        while end < len(rest) and (size < target or end == start):
            size += rest[end].length
            end += 1
        try:
            built = _pack_of_slices(rest[start:end], size, fds)
        except OSError as error:
            raise storage_error(
                f"read the staging file {rest[start].path} to store it as",
                store.url(rest[start].key),
                error,
            ) from error
        yield built
        start = end


class Slice(NamedTuple):
    """``length`` bytes at ``offset`` of the staging file ``path``: the blob ``key``."""

    path: str
    offset: int
    length: int
    key: str


def _whole_file(path: str, slices: list[Slice], target: int) -> BuiltPack | None:
    """The staging file ``path`` as a pack, if ``slices`` (in offset order) cover it end to end
    and its size is about ``target``; None otherwise (smaller ones are read into a pack with
    others: a few small packs would cost a request each, on every download)."""
    end = 0
    for piece in slices:
        if piece.offset != end:
            return None  # a gap: a blob the store holds already, or a duplicate
        end += piece.length
    try:
        size = os.stat(path).st_size
    except OSError:
        return None  # the range reads raise the error, with context
    if size != end or not target // 2 <= size <= 2 * target:
        return None
    entries = [PackEntry(piece.key, piece.offset, piece.length) for piece in slices]
    return BuiltPack(uuid.uuid4().hex, b"", entries, source=path, source_size=size)


def _pack_of_slices(slices: list[Slice], size: int, fds: dict[str, int]) -> BuiltPack:
    body = bytearray(size)
    view = memoryview(body)
    entries: list[PackEntry] = []
    at = 0
    run_start = 0  # where the current run of adjacent slices starts in ``body``
    for index, (path, offset, length, key) in enumerate(slices):
        entries.append(PackEntry(key, at, length))
        at += length
        following = slices[index + 1] if index + 1 < len(slices) else None
        if following is None or following[0] != path or following[1] != offset + length:
            run_length = at - run_start
            _pread_into(staging_fd(path, fds), view[run_start:at], offset + length - run_length)
            run_start = at
    return BuiltPack(uuid.uuid4().hex, bytes(body), entries)


def _pread_into(fd: int, view: memoryview, offset: int) -> None:
    while view:
        got = os.preadv(fd, [view], offset)
        if not got:
            raise OSError(errno.EIO, "a staging file is shorter than its slices")
        view, offset = view[got:], offset + got


def _groups(uploads: Sequence[BlobUpload], target: int) -> Iterator[list[BlobUpload]]:
    """Consecutive uploads of about ``target`` bytes together: what one pack will hold."""
    group: list[BlobUpload] = []
    size = 0
    for upload in uploads:
        group.append(upload)
        size += upload.size or 0
        if size >= target:
            yield group
            group, size = [], 0
    if group:
        yield group


def _read_upload(store: PackHost, fds: dict[str, int], upload: BlobUpload) -> tuple[str, bytes]:
    """The bytes of one small upload, checked against its digest (staged copies were hashed
    when they were made and cannot change)."""
    try:
        data = read_slice(upload.local_path, fds)
    except OSError as error:
        raise storage_error(
            f"read {upload.local_path} to store it as", store.url(upload.key), error
        ) from error
    if upload.digest is not None and not upload.staged:
        actual = digest_bytes(data, upload.algorithm)
        if actual != upload.digest:
            raise ChecksumMismatchError(
                f"{upload.local_path} changed after it was added to the artifact (digest "
                f"{actual}, added as {upload.digest}); add it again and re-log."
            )
    return upload.key, data


# -- reading --------------------------------------------------------------------------------------


def get_packed_and_loose(store: PackHost, downloads: list[BlobDownload], atomic: bool) -> None:
    """``BlobStore.get_files``: packed blobs from their packs, the rest loose.

    A loose blob that has gone missing may have been packed meanwhile (``repack``): the index
    is read again and those are fetched from their pack.
    """
    if not downloads:
        return
    keys = [d.key for d in downloads]
    located = store.packed(keys, refresh=False)
    if len(located) < len(set(keys)):
        located = store.packed(keys)
    loose = [d for d in downloads if d.key not in located]
    if len(loose) < len(downloads):
        get_from_packs(store, [d for d in downloads if d.key in located], located, atomic)
    if not loose:
        return
    try:
        store.get_loose(loose, atomic=atomic)
    except (StorageError, FileNotFoundError):
        moved = store.packed([d.key for d in loose])
        if not moved:
            raise
        get_from_packs(store, [d for d in loose if d.key in moved], moved, atomic)
        rest = [d for d in loose if d.key not in moved]
        if rest:
            store.get_loose(rest, atomic=atomic)


def get_from_packs(
    store: PackHost,
    downloads: list[BlobDownload],
    located: dict[str, PackedBlob],
    atomic: bool,
) -> None:
    """Every download from its pack, verified; a pack gc replaced meanwhile is looked up
    again once. The first failure is raised after every other blob was tried."""
    make_parents(d.dest for d in downloads)
    failures = _read_all(store, downloads, located, atomic)
    gone = [d for d, error in failures if isinstance(error, FileNotFoundError)]
    if gone:
        relocated = store.packed([d.key for d in gone])
        retry = [d for d in gone if d.key in relocated]
        failures = [(d, e) for d, e in failures if not isinstance(e, FileNotFoundError)]
        failures += [
            (d, FileNotFoundError(errno.ENOENT, "missing")) for d in gone if d.key not in relocated
        ]
        if retry:
            failures += _read_all(store, retry, relocated, atomic)
    if failures:
        download, error = failures[0]
        raise _typed(store, download, located.get(download.key), error) from error


def _read_all(
    store: PackHost, downloads: list[BlobDownload], located: dict[str, PackedBlob], atomic: bool
) -> list[tuple[BlobDownload, BaseException]]:
    by_id: dict[int, BlobDownload] = {}
    wanted = []
    for download in downloads:
        item = Wanted(
            download.key,
            located[download.key],
            download.digest,
            download.algorithm,
            functools.partial(_deliver, download.dest, atomic, download.tee),
        )
        by_id[id(item)] = download
        wanted.append(item)
    return [(by_id[id(item)], error) for item, error in store.read_spans(plan_spans(wanted))]


def _deliver(dest: str, atomic: bool, tee: Callable[[bytes], None] | None, data: bytes) -> None:
    """Write one verified blob to its destination, then hand it to ``tee`` (the cache)."""
    write_file(dest, data, atomic=atomic)
    if tee is not None:
        tee(data)


def _typed(
    store: PackHost, download: BlobDownload, where: PackedBlob | None, error: BaseException
) -> BaseException:
    if isinstance(error, ArtifactError) or not isinstance(error, OSError):
        return error
    url = store.url(download.key if where is None else pack_key(where.pack))
    if isinstance(error, FileNotFoundError):
        return StorageError(
            f"The blob {store.url(download.key)} (packed in {url}) is missing from the store: "
            "it was deleted by hand or by an unsafe gc. Restore it from a backup, or delete "
            "the version and log it again.",
            url=store.url(download.key),
            errno=error.errno,
        )
    return storage_error(f"write {download.dest}, downloading", url, error)
