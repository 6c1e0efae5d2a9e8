"""A store in a local folder (or any mounted filesystem): renames are atomic, files can be touched.

Small blobs take the fast paths of :mod:`.localcopy` (a handful of system calls each, no fsspec
per file); staged copies move in by ``rename`` (:func:`.staged.adopt_staged`).
"""

from __future__ import annotations

import binascii
import contextlib
import errno
import os
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from fsspec.callbacks import DEFAULT_CALLBACK, Callback
from fsspec.implementations.local import LocalFileSystem

from dagster_artifacts.storage.base import (
    BlobDownload,
    BlobStore,
    BlobUpload,
    StoredObject,
    get_error,
    put_error,
)
from dagster_artifacts.storage.layout import BLOBS
from dagster_artifacts.storage.localcopy import (
    COPY_WORKERS,
    CopyJob,
    copy_small_verified,
    copy_verified_many,
    make_parents,
)
from dagster_artifacts.storage.packs import Span, Wanted, pack_key, serve_span, split_spans
from dagster_artifacts.storage.pipeline import copy_verified
from dagster_artifacts.storage.retry import storage_error
from dagster_artifacts.storage.scratch import in_flight, temp_file_tag, temp_path_beside
from dagster_artifacts.storage.staged import adopt_staged
from dagster_artifacts.storage.threads import parallel_map

#: ``link`` failures that mean "copy instead": another filesystem, no hard links there, too many.
_NO_LINK = (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP)


class LocalBlobStore(BlobStore):
    is_local = True

    def __init__(
        self, root_url: str, storage_options: Mapping[str, Any] | None, fs: Any, root: str
    ) -> None:
        assert isinstance(fs, LocalFileSystem)
        super().__init__(root_url, storage_options, fs, root)
        os.makedirs(self.root, exist_ok=True)

    # -- queries ----------------------------------------------------------------------------
    def exists(self, key: str) -> bool:
        return os.path.exists(self.path(key))

    def loose_existing(self, keys: Iterable[str]) -> set[str]:
        """Per fan-out folder, one listing or a ``stat`` per key (whichever is cheaper)."""
        by_folder: dict[str, list[str]] = {}
        for key in set(keys):
            folder, _, name = key.rpartition("/")
            by_folder.setdefault(folder, []).append(name)
        present: set[str] = set()
        for folder, names in by_folder.items():
            listed = self._listing_or_none(folder, len(names))
            if listed is None:
                base = self.path(folder)
                listed = {name for name in names if os.path.exists(f"{base}/{name}")}
            present.update(f"{folder}/{name}" for name in names if name in listed)
        return present

    def stored_digests(self, digests: Iterable[str], algorithm: str = "md5") -> set[str]:
        """Asked at ``add`` time for every stat-cache hit: works on hex digests one folder at a
        time, without building 10,000 keys twice."""
        wanted = digests if isinstance(digests, set) else set(digests)
        present = self._packed_digests(wanted, algorithm)  # a set of its own: added to below
        by_folder: dict[str, list[tuple[str, str]]] = {}
        for digest in wanted - present:
            try:
                hex_digest = binascii.a2b_base64(digest).hex()
            except ValueError:
                continue
            by_folder.setdefault(hex_digest[:2], []).append((hex_digest[2:], digest))
        for folder, names in by_folder.items():
            listed = self._listing_or_none(f"{BLOBS}/{algorithm}/{folder}", len(names))
            if listed is None:
                base = self.path(f"{BLOBS}/{algorithm}/{folder}")
                present.update(d for n, d in names if os.path.exists(f"{base}/{n}"))
            else:
                present.update(d for n, d in names if n in listed)
        return present

    def _packed_digests(self, digests: Iterable[str], algorithm: str) -> set[str]:
        self.pack_index.refresh()
        return self.pack_index.packed_digests(digests, algorithm)

    def _listing_or_none(self, folder: str, wanted: int) -> set[str] | None:
        """The names in a fan-out folder when listing it is cheaper than ``wanted`` stats.

        Asking about 10,000 blobs of a store that holds about as many, one ``listdir`` of each
        of the 256 small folders costs a fifth of 10,000 ``stat`` calls; in a store with
        millions of blobs a listing is long and a few ``stat`` calls are cheaper. The folder's
        size on disk tells which (about 32 bytes per entry on ext4/xfs; a guess, only for
        speed). A missing folder lists as empty.
        """
        if wanted < 4:
            return None
        try:
            if os.stat(self.path(folder)).st_size // 32 > 8 * wanted:
                return None
            return set(os.listdir(self.path(folder)))
        except FileNotFoundError:
            return set()

    def listing(self, prefix: str) -> Iterator[StoredObject]:
        """Every stored file under ``prefix``; temp files that a live writer is still filling are
        not stored yet and are left out (those of dead writers are listed: gc removes them)."""
        base = self.path(prefix)
        now = time.time()
        cut = len(self.root) + 1
        stack = [base]
        while stack:
            folder = stack.pop()
            try:
                entries = list(os.scandir(folder))
            except FileNotFoundError:
                continue
            except OSError as error:
                raise storage_error("list", self.url(prefix), error) from error
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                    continue
                try:
                    info = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # removed while we listed
                tag = temp_file_tag(entry.name)
                if tag is not None and in_flight(tag, info.st_mtime, now):
                    continue
                yield StoredObject(entry.path[cut:], info.st_size, info.st_mtime)

    # -- writes -----------------------------------------------------------------------------
    def put_loose(self, uploads: list[BlobUpload], callback: Callback = DEFAULT_CALLBACK) -> None:
        def put(upload: BlobUpload) -> None:
            try:
                self._put_one(upload)
            except OSError as error:
                raise put_error(self, upload, error) from error
            callback.relative_update(upload.size or 0)

        parallel_map(put, uploads)

    def _put_one(self, upload: BlobUpload) -> None:
        target = self.path(upload.key)
        if upload.staged and adopt_staged(upload.local_path, target):
            return
        if copy_small_verified(
            upload.local_path, target, expected_digest=upload.digest, algorithm=upload.algorithm
        ):
            return
        copy_verified(
            upload.local_path,
            target,
            expected_digest=upload.digest,
            algorithm=upload.algorithm,
        )

    def put_bytes(self, data: bytes, key: str) -> None:
        target = self.path(key)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        tmp = temp_path_beside(target)
        try:
            with open(tmp, "wb") as out:
                out.write(data)
            os.replace(tmp, target)
        except OSError as error:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise storage_error("upload", self.url(key), error) from error

    def put_file_copy(self, local_path: str, key: str) -> None:
        """A hard link when ``local_path`` is on the store's filesystem (no byte copied: both
        names are immutable from here on), else a kernel copy; published by an atomic rename."""
        target = self.path(key)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        tmp = temp_path_beside(target)
        try:
            try:
                os.link(local_path, tmp)
            except OSError as error:
                if error.errno not in _NO_LINK:
                    raise
                shutil.copyfile(local_path, tmp)
            os.replace(tmp, target)
        except OSError as error:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise storage_error("upload", self.url(key), error) from error

    def delete_many(self, keys: Iterable[str]) -> list[str]:
        unique = sorted(set(keys))
        for key in unique:
            try:
                os.unlink(self.path(key))
            except FileNotFoundError:
                continue
            except OSError as error:  # read-only store, permissions: name the key
                raise storage_error("delete", self.url(key), error) from error
        return unique

    # -- reads ------------------------------------------------------------------------------
    def read_range(self, key: str, start: int, end: int) -> bytes:
        fd = os.open(self.path(key), os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            return os.pread(fd, end - start, start)
        finally:
            os.close(fd)

    def read_spans(self, spans: list[Span]) -> list[tuple[Wanted, BaseException]]:
        """Each thread takes a contiguous slice of the spans (in pack order) and reads its pack
        front to back: sequential reads, one ``pread`` per span. Spans of many blobs are cut
        first, so that every thread has blobs to write even when they all lie in one pack:
        creating the files is most of a download's time, and it overlaps on two cores."""
        spans = split_spans(spans, COPY_WORKERS)

        def one(span: Span) -> list[tuple[Wanted, BaseException]]:
            key = pack_key(span.pack)
            try:
                data = self.read_range(key, span.start, span.end) if span.end > span.start else b""
            except OSError as error:
                return [(item, error) for item in span.wanted]
            return serve_span(span, data, self.url(key))

        # One task per span (not map_in_slices: a span is thousands of files, never "too few
        # to share"; its per-thread minimum counts items, and kept 4 spans on one thread).
        results = parallel_map(one, spans, min(COPY_WORKERS, len(spans)))
        return [failure for failures in results for failure in failures]

    def get_loose(self, downloads: Iterable[BlobDownload], *, atomic: bool = True) -> None:
        """The whole batch is one call of :func:`.localcopy.copy_verified_many`: folders made
        once, a few threads, a handful of system calls per small file, no fsspec per file."""
        items = list(downloads)
        if not items:
            return
        prefix = self.path("")
        jobs = [
            CopyJob(prefix + d.key, d.dest, d.digest, d.size, "file://" + prefix + d.key)
            for d in items
        ]
        make_parents(job.dest for job in jobs)
        for algorithm in sorted({d.algorithm for d in items}):
            chosen = [i for i, d in enumerate(items) if d.algorithm == algorithm]
            batch = jobs if len(chosen) == len(items) else [jobs[i] for i in chosen]
            failures = copy_verified_many(batch, algorithm, atomic=atomic)
            if failures:
                index, error = failures[0]
                raise get_error(self, items[chosen[index]], error) from error
