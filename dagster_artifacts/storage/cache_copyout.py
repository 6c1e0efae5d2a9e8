"""Taking blobs out of the download cache: every one checked on its way out.

How a cached blob is checked:

- Small files (up to :data:`.localcopy.SMALL_LIMIT`), and every blob in a segment, are hashed in
  the same pass as the copy: the bytes are in memory anyway and MD5 of 4 KiB costs about 5 us,
  far less than creating the file. A blob in a segment is read with one ``pread``.
- A large file whose stat fingerprint (inode, size, mtime and ctime in ns) is the one recorded
  when it was verified into the cache is copied in the kernel (``copy_file_range``, as ``cp``
  does) without hashing: it was hashed on the way in, and nothing can write to it since without
  moving its ctime (a write, a ``chmod`` to make a hard link writable, a replacement: all change
  ctime or the inode; no unprivileged call can set ctime back). This is the stat cache's rule for
  logging, applied to our own read-only files. Hashing 1 GiB with MD5 takes longer than copying
  it. ``DAGSTER_ARTIFACTS_CACHE_VERIFY=1`` hashes every copy anyway (for disks that can rot
  silently), and any large file whose fingerprint differs is hashed.
- Hard links: every file is hashed before it is linked.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence

from dagster_artifacts.digests import digest_file
from dagster_artifacts.errors import ChecksumMismatchError
from dagster_artifacts.storage.localcopy import CopyJob, copy_trusted, copy_verified_many
from dagster_artifacts.storage.pipeline import check_content
from dagster_artifacts.storage.scratch import temp_path_beside
from dagster_artifacts.storage.threads import parallel_map

Failures = list[tuple[int, BaseException]]


def fingerprint(path: str) -> str:
    info = os.stat(path)
    return f"{info.st_ino}:{info.st_size}:{info.st_mtime_ns}:{info.st_ctime_ns}"


def fingerprint_or_none(path: str) -> str | None:
    try:
        return fingerprint(path)
    except OSError:
        return None


def copy_out_many(
    jobs: Sequence[CopyJob],
    algorithm: str,
    atomic: bool,
    *,
    hashed: Sequence[int],
    linked: Sequence[int],
    trusted: Sequence[int],
) -> Failures:
    """Copy ``hashed`` jobs verified, link ``linked`` ones after hashing them, and copy
    ``trusted`` ones (fingerprint checked by the caller) in the kernel; return the failures
    as ``(index into jobs, error)``."""

    def each(run: Callable[[list[CopyJob]], Failures], indices: Sequence[int]) -> Failures:
        if not indices:
            return []
        return [(indices[i], error) for i, error in run([jobs[i] for i in indices])]

    failures = each(lambda chosen: link_verified_many(chosen, algorithm, atomic), linked)
    failures += each(lambda chosen: copy_verified_many(chosen, algorithm, atomic=atomic), hashed)
    for index in trusted:
        job = jobs[index]
        try:
            copy_trusted(job.source, job.dest, job.size, atomic)
        except (FileNotFoundError, ChecksumMismatchError) as error:
            failures.append((index, error))
    return failures


def link_verified_many(jobs: list[CopyJob], algorithm: str, atomic: bool) -> Failures:
    """Hash each cached file, then hard-link it (read-only) at its ``dest``; copy where links fail.

    The hash is what makes a link safe to hand out: the cache file is checked as a copy would be.
    A user can still ``chmod`` a linked file and write through it into the cache; the next use
    of that cache file hashes it again, finds the damage, and fetches it anew.
    """

    def one(job: CopyJob) -> BaseException | None:
        try:
            actual, size = digest_file(job.source, algorithm)
            check_content(
                actual, size, expected_digest=job.digest, expected_size=job.size, source=job.source
            )
            target = temp_path_beside(job.dest) if atomic else job.dest
            try:
                os.link(job.source, target)
            except OSError as error:
                if isinstance(error, FileNotFoundError):
                    raise
                failure = copy_verified_many([job], algorithm, atomic=atomic)  # another filesystem
                return failure[0][1] if failure else None
            if atomic:
                try:
                    os.replace(target, job.dest)
                except BaseException:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(target)  # never leave the temp link behind
                    raise
            return None
        except BaseException as error:
            return error

    results = parallel_map(one, jobs)
    return [(index, error) for index, error in enumerate(results) if error is not None]
