"""From local files to manifest entries: walk a folder, then hash (and stage) each file, as
cheaply as the machine allows.

Three things make ``add_file``/``add_dir`` cheap:

1. The stat cache (:mod:`dagster_artifacts.statcache`): a file whose path, inode, size, mtime and
   ctime are unchanged since it was last hashed is not opened at all, and when the store already
   holds its blob nothing is copied either.
2. One read per byte: with the default ``policy="mutable"`` (:func:`stage_files`) each file is
   copied into the draft's staging area while it is hashed; the commit moves the copy into the
   store. With ``policy="immutable"`` (:func:`hash_files`) files are only hashed, and the commit
   reads them again (verified: a file changed in between fails the log).
3. Many files are handled on a few threads: ``open``/``read``/``write`` and hashing of chunks
   over 2 KiB release the GIL, so on two cores the waits of one file overlap the work of another.

Large files stream through :data:`~dagster_artifacts.digests.CHUNK_SIZE` chunks; none is read
whole. See the README's "Speed" section.
"""

from __future__ import annotations

import contextlib
import errno
import os
import warnings
from array import array
from collections.abc import Callable, Sequence
from typing import NamedTuple

import pathspec
from fsspec.callbacks import Callback

from dagster_artifacts import dirstate, state
from dagster_artifacts.digests import algorithm_extra, digest_file
from dagster_artifacts.errors import (
    ArtifactFileNotFoundError,
    ConfigurationError,
    InvalidPathError,
)
from dagster_artifacts.manifest import ManifestEntry
from dagster_artifacts.names import normalize_entry_path
from dagster_artifacts.progress import byte_callback
from dagster_artifacts.staging import StagingArea
from dagster_artifacts.statcache import FileStats, StatCache
from dagster_artifacts.statpaths import OTHER, REGULAR, stat_paths
from dagster_artifacts.storage.localcopy import SMALL_LIMIT
from dagster_artifacts.storage.packs import PackPolicy
from dagster_artifacts.storage.staged import SliceSink, stage_copy
from dagster_artifacts.storage.threads import map_in_slices

HASH_WORKERS = 2  # the machines this is tuned for have 2 cores; more threads only contend
FILE_BATCH = 50_000  # files hashed (and staged) together by file_entries


class Hashed(NamedTuple):
    """One file's digest and size (the size of the bytes actually hashed).

    ``staged`` is the path of the staged copy holding exactly those bytes, when one was made.
    A named tuple: one is built per file, and tuple construction runs in C.
    """

    path: str
    digest: str
    size: int
    staged: str | None = None


def hash_files(
    paths: Sequence[str],
    algorithm: str,
    *,
    cache: StatCache | None = None,
    workers: int = HASH_WORKERS,
    stats: FileStats | None = None,
    callback: Callback | None = None,
    trusted: Sequence[str | None] | None = None,
) -> list[Hashed]:
    """Digest and size of each absolute path, in order.

    ``cache`` answers unchanged files; the others are hashed on ``workers`` threads and recorded
    in the cache afterwards, with the stat taken *before* their read (so a write during the read
    makes the entry stale, never wrong). ``stats``: the paths' stats, when already taken.
    ``trusted``: digests a dirstate vouches for (None where it does not), asked before ``cache``.
    """
    stats = stats if stats is not None else FileStats.of_paths(paths)
    known = _known_digests(paths, stats, algorithm, cache, trusted)
    missing = [i for i, path in enumerate(paths) if path not in known]

    def read(index: int) -> tuple[str, int, str | None]:
        digest, size = digest_file(paths[index], algorithm)
        return digest, size, None

    return _read_missing(paths, stats, known, missing, read, algorithm, cache, workers, callback)


def stage_files(
    paths: Sequence[str],
    algorithm: str,
    staging: StagingArea,
    *,
    cache: StatCache | None = None,
    stored: Callable[[set[str]], set[str]] | None = None,
    workers: int = HASH_WORKERS,
    stats: FileStats | None = None,
    callback: Callback | None = None,
    trusted: Sequence[str | None] | None = None,
) -> list[Hashed]:
    """Snapshot each absolute path into ``staging`` while hashing it; digests in order.

    A file the stat cache knows whose blob ``stored`` (digests -> those the store holds) reports
    present is neither read nor copied: the store already has exactly its bytes. Every other
    file is copied once, hashed on the way (:func:`.storage.localcopy.stage_copy`), on
    ``workers`` threads; the digest is the copy's, so a file changed meanwhile is logged as it
    was read. Fresh digests go to the stat cache with the stat taken before the read.
    ``trusted``: as for :func:`hash_files`.
    """
    stats = stats if stats is not None else FileStats.of_paths(paths)
    known = _known_digests(paths, stats, algorithm, cache, trusted)
    present = stored(set(known.values())) if known and stored is not None else set()
    todo = [i for i, path in enumerate(paths) if known.get(path) not in present]
    # Many small files: appended to a few staging files (no file created per file); the commit
    # packs them (store format v2). Few files, or packing turned off: one staged file each.
    policy = PackPolicy.from_env()
    sizes = stats.sizes
    small = sum(1 for i in todo if sizes[i] <= SMALL_LIMIT)
    slices = (
        SliceSink(staging.path, policy.target_size)
        if policy.threshold > 0 and small >= policy.min_blobs
        else None
    )

    def read(index: int) -> tuple[str, int, str | None]:
        return stage_copy(
            paths[index],
            staging.path,
            staging.new_path,
            algorithm=algorithm,
            size_hint=sizes[index],
            slices=slices,
        )

    try:
        return _read_missing(paths, stats, known, todo, read, algorithm, cache, workers, callback)
    finally:
        if slices is not None:
            slices.close()


def _known_digests(
    paths: Sequence[str],
    stats: FileStats,
    algorithm: str,
    cache: StatCache | None,
    trusted: Sequence[str | None] | None,
) -> dict[str, str]:
    """path -> digest of the files known unchanged: what the dirstate vouches for (``trusted``),
    then what the stat cache knows of the rest."""
    if trusted is None:
        rows = zip(paths, stats.rows(), strict=True)
        return cache.lookup_many(rows, algorithm) if cache is not None else {}
    known = {path: digest for path, digest in zip(paths, trusted, strict=True) if digest}
    if cache is not None and len(known) < len(paths):
        rest = zip(paths, stats.rows(), trusted, strict=True)
        known.update(cache.lookup_many(((p, row) for p, row, d in rest if not d), algorithm))
    return known


def _read_missing(
    paths: Sequence[str],
    stats: FileStats,
    known: dict[str, str],
    todo: Sequence[int],
    read: Callable[[int], tuple[str, int, str | None]],
    algorithm: str,
    cache: StatCache | None,
    workers: int,
    bar: Callback | None = None,
) -> list[Hashed]:
    """Read the ``todo`` files (``read(index)`` -> digest, size, staged copy) on ``workers``
    threads under a byte bar (``bar``, or one of their own), remember their digests, and return
    every path's ``Hashed`` in order, the ``known`` ones from the stat cache."""
    sizes = stats.sizes
    total = sum(sizes[i] for i in todo)
    clock_ns = cache.now_ns if cache is not None else _no_clock
    if bar is not None:  # a bar over more files than these: the known ones are done already
        bar.relative_update(stats.total_size() - total)
    progress = (
        contextlib.nullcontext(bar)
        if bar is not None
        else byte_callback(f"Hashing {len(todo)} files", total)
    )
    with progress as callback:

        def one(index: int) -> tuple[Hashed, int]:
            started = clock_ns()
            digest, size, staged = read(index)
            callback.relative_update(size)
            return Hashed(paths[index], digest, size, staged), started

        fresh = map_in_slices(one, todo, workers)
    if cache is not None and fresh:
        cache.record_many(
            (
                (hashed.path, stats[i], hashed.digest, started)
                for i, (hashed, started) in zip(todo, fresh, strict=True)
                if hashed.size == sizes[i]  # changed while we read: do not remember
            ),
            algorithm,
        )
    by_index = dict(zip(todo, (hashed for hashed, _ in fresh), strict=True))
    return [
        by_index[i] if i in by_index else Hashed(path, known[path], sizes[i])
        for i, path in enumerate(paths)
    ]


def _no_clock() -> int:
    return 0  # without a stat cache nothing is recorded, so no moment is needed


# -- from local files to manifest entries (add_file, add_dir) ------------------------------
MUTABLE = "mutable"
IMMUTABLE = "immutable"
POLICIES = (MUTABLE, IMMUTABLE)


def check_policy(policy: str | None) -> str:
    if policy is None:
        return MUTABLE
    if policy not in POLICIES:
        raise ConfigurationError(
            f"Unknown policy {policy!r}; use 'mutable' (default: the file is copied when added, "
            "so later changes do not matter) or 'immutable' (no copy; the file must not change "
            "until the log is committed)."
        )
    return policy


def walk_folder(root: str, prefix: str | None, ignore: list[str] | None) -> list[tuple[str, str]]:
    """``(absolute path, entry path)`` of every file under ``root``, in sorted order.

    Links to folders are followed, as W&B's ``add_dir`` does (``os.walk(followlinks=True)``),
    except a link back into a folder it is inside of: that loop is left out with a warning,
    where W&B would go round it until the kernel refuses the path. ``ignore`` takes
    gitignore-style patterns matched against paths relative to ``root``.
    """
    spec = pathspec.GitIgnoreSpec.from_lines(ignore) if ignore else None
    root = os.path.abspath(root)  # os.walk then yields absolute, normalized folders
    pairs: list[tuple[str, str]] = []
    # The folders (device, inode) each walked folder is inside of, itself included.
    inside: dict[str, frozenset[tuple[int, int]]] = {root: frozenset([_folder_id(root)])}
    loops: list[str] = []
    for directory, dirs, files in os.walk(root, followlinks=True):
        relative_dir = os.path.relpath(directory, root).replace(os.sep, "/")
        relative_dir = "" if relative_dir == "." else relative_dir + "/"
        if spec is not None:
            dirs[:] = [d for d in dirs if not spec.match_file(relative_dir + d + "/")]
        dirs[:] = _without_loops(directory, sorted(dirs), inside, loops)
        # The folder part of the entry paths is normalized once per folder; a file name from
        # os.walk has no "/" and is never "." or "..", so only a name that the full check may
        # refuse or change (a backslash: a Windows separator; a drive letter at the root) needs
        # the full treatment.
        entry_dir = f"{prefix}/{relative_dir}" if prefix else relative_dir
        if entry_dir:
            entry_dir = normalize_entry_path(entry_dir) + "/"
        folder = directory if directory.endswith(os.sep) else directory + os.sep
        names = sorted(files)
        if spec is not None:
            names = [name for name in names if not spec.match_file(relative_dir + name)]
        found = [(folder + name, entry_dir + name) for name in names]
        for i, name in enumerate(names):
            if "\\" in name or (not entry_dir and name[1:2] == ":"):
                found[i] = (found[i][0], normalize_entry_path(found[i][1]))
        pairs.extend(found)
    if loops:
        shown = ", ".join(loops[:5]) + (" ..." if len(loops) > 5 else "")
        warnings.warn(
            f"Skipped {len(loops)} links to a folder they are inside of (loops): {shown}",
            UserWarning,
            stacklevel=5,  # the add_dir call in user code
        )
    return pairs


def _folder_id(path: str) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_dev, info.st_ino


def _without_loops(
    directory: str,
    names: list[str],
    inside: dict[str, frozenset[tuple[int, int]]],
    loops: list[str],
) -> list[str]:
    """The subfolders of ``directory`` to walk: all but links back to a folder they are in.

    ``inside`` maps each folder walked so far to the folders it is inside of, followed links
    included, so a loop through several links (``a/to-b -> b``, ``b/to-a -> a``) ends too.
    """
    ancestors = inside.pop(directory, frozenset())  # each folder is walked once: free it
    kept = []
    for name in names:
        path = os.path.join(directory, name)
        try:
            folder = _folder_id(path)
        except OSError:  # vanished, or a link loop the kernel already refuses
            continue
        if folder in ancestors:
            loops.append(path)
            continue
        inside[path] = ancestors | {folder}
        kept.append(name)
    return kept


def regular_files(
    pairs: list[tuple[str, str]], *, skip_others: bool
) -> tuple[list[tuple[str, str]], FileStats]:
    """The pairs whose path is a regular file (symbolic links followed), with their stats.

    Nothing else is ever opened: a FIFO would block the read forever, a device would never end.
    A link to nothing or a link loop is an error, before anything is copied or stored: the user
    expects data there. FIFOs, sockets and devices are refused, or with ``skip_others`` left
    out with one warning naming them (they are not data, e.g. a socket of a running program).
    """
    kinds, stats = stat_paths([local for local, _ in pairs])
    if kinds.count(REGULAR) == len(kinds):
        return pairs, stats  # the common case: every one a regular file
    kept_at: list[int] = []
    others: list[str] = []
    for index, ((local, _entry_path), kind) in enumerate(zip(pairs, kinds, strict=True)):
        if kind == REGULAR:
            kept_at.append(index)
        elif kind == OTHER:
            others.append(local)
        else:
            raise _stat_failure(local, kind)
    kept = [pairs[index] for index in kept_at]
    stats = FileStats(
        tuple(array(column.typecode, (column[i] for i in kept_at)) for column in stats.columns)
    )
    if others and not skip_others:
        raise InvalidPathError(
            f"{others[0]} is not a regular file (a FIFO, socket or device): only files can "
            "be added."
        )
    if others:
        shown = ", ".join(others[:5]) + (" ..." if len(others) > 5 else "")
        warnings.warn(
            f"Skipped {len(others)} entries that are not regular files (FIFOs, sockets, "
            f"devices): {shown}",
            UserWarning,
            stacklevel=7,  # the add_dir call in user code
        )
    return kept, stats


def _stat_failure(local: str, code: int) -> Exception:
    """The error a failed ``stat`` of ``local`` (``errno`` ``code``) means to the user."""
    if code == errno.ENOENT:
        if os.path.islink(local):
            return ArtifactFileNotFoundError(
                f"{local} is a symbolic link to {os.readlink(local)!r}, which does not "
                "exist; fix or remove the link, then add again."
            )
        return ArtifactFileNotFoundError(
            f"{local} disappeared while it was being added; add it again."
        )
    if code == errno.ELOOP:
        return InvalidPathError(f"{local} is a loop of symbolic links; remove it, then add again.")
    return OSError(code, os.strerror(code), local)  # PermissionError and so on, by errno


def file_entries(
    pairs: list[tuple[str, str]],
    policy: str,
    algorithm: str,
    *,
    staging: Callable[[], StagingArea],
    cache: StatCache | None,
    stored: Callable[[set[str]], set[str]] | None,
    skip_others: bool = False,
    folder: str | None = None,
) -> list[ManifestEntry]:
    """Entries for ``(absolute local path, entry path)`` pairs, as cheaply as the policy allows.

    ``stored`` (digests -> those the store holds) lets unchanged files skip the copy; it is None
    when the draft does not know its store yet. Only regular files are read (see
    :func:`regular_files`); ``skip_others`` skips FIFOs, sockets and devices with a warning
    (``add_dir``) instead of refusing them (``add_file``). ``folder``: the absolute folder the
    pairs were walked from (``add_dir``), whose dirstate answers first when it is big.
    """
    pairs, stats = regular_files(pairs, skip_others=skip_others)  # every refusal comes first
    state.gc_freeze_built()
    locals_all = [local for local, _ in pairs]
    snapshot = _FolderSnapshot.of(folder, cache, algorithm, len(pairs))
    trusted = snapshot.trusted(locals_all, stats) if snapshot is not None else None
    extra = algorithm_extra(algorithm)
    entries: list[ManifestEntry] = []
    total = stats.total_size()
    bar = byte_callback(f"Hashing {len(pairs)} files", total) if len(pairs) > FILE_BATCH else None
    with bar or contextlib.nullcontext() as callback:
        # In batches: what hashing builds per file (cache lookups and records, digests, staged
        # places) then exists for one batch at a time beside the entries, not for a million.
        for start in range(0, len(pairs), FILE_BATCH):
            part = pairs[start : start + FILE_BATCH]
            part_stats = stats[start : start + FILE_BATCH]
            locals_ = locals_all[start : start + FILE_BATCH]
            part_trusted = trusted[start : start + FILE_BATCH] if trusted is not None else None
            if policy == IMMUTABLE:
                hashed = hash_files(
                    locals_,
                    algorithm,
                    cache=cache,
                    stats=part_stats,
                    callback=callback,
                    trusted=part_trusted,
                )
            else:
                hashed = stage_files(
                    locals_,
                    algorithm,
                    staging(),
                    cache=cache,
                    stored=stored,
                    stats=part_stats,
                    callback=callback,
                    trusted=part_trusted,
                )
            if snapshot is not None:
                snapshot.note(hashed)
            entries.extend(
                ManifestEntry(
                    path=entry_path,
                    digest=h.digest,
                    size=h.size,
                    extra=dict(extra),
                    local_path=h.staged or local,
                    staged=h.staged is not None,
                )
                for (local, entry_path), h in zip(part, hashed, strict=True)
            )
            state.gc_freeze_built()
    if snapshot is not None:
        snapshot.save(locals_all, stats)
    return entries


class _FolderSnapshot:
    """What one ``add_dir`` of a big folder asks of its dirstate and tells it afterwards."""

    def __init__(self, path: str, cache: StatCache) -> None:
        self.path = path
        self.cache = cache
        self.begun_ns = cache.now_ns()  # before any file of this add is hashed
        self.previous = dirstate.load(path)
        self.current = False  # the previous state is worth keeping as it is (see save)
        self.digests: list[str] = []
        self.sizes_read = array("Q")

    @classmethod
    def of(
        cls, folder: str | None, cache: StatCache | None, algorithm: str, files: int
    ) -> _FolderSnapshot | None:
        if folder is None or cache is None or files < dirstate.MIN_FILES:
            return None
        return cls(dirstate.dirstate_file(cache, folder, algorithm), cache)

    def trusted(self, paths: list[str], stats: FileStats) -> list[str | None] | None:
        if self.previous is None:
            return None
        previous, self.previous = self.previous, None  # its memory, for the hashing
        digests, complete = previous.trusted(paths, stats)
        # A few changed files are not worth rewriting a million-file state for (0.8 s): they
        # are in the SQLite stat cache now, which answers them next time. (Checked only when
        # not complete: a complete answer already compared the million paths once.)
        self.current = complete or (
            digests.count(None) * dirstate.REWRITE_RATIO <= len(paths) and paths == previous.paths
        )
        return digests

    def note(self, hashed: list[Hashed]) -> None:
        self.digests.extend(h.digest for h in hashed)
        self.sizes_read.extend(h.size for h in hashed)

    def save(self, paths: list[str], stats: FileStats) -> None:
        if self.current:
            return
        settled = dirstate.settled_flags(
            stats, self.sizes_read, self.begun_ns, self.cache.window_ns
        )
        dirstate.save(self.path, dirstate.DirState(paths, stats, self.digests, settled))
