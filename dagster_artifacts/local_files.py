"""From local files to manifest entries: the walk of ``add_dir`` and the hashing policy.

``mutable`` (W&B's default): each file is copied into the draft's staging area while it is
hashed (one read), so later changes to it do not change the artifact; unchanged files whose blob
the store already holds are neither read nor copied (stat cache). ``immutable``: files are only
hashed; the commit reads them again, verified. See :mod:`dagster_artifacts.hashing`.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pathspec

from dagster_artifacts.errors import ConfigurationError
from dagster_artifacts.hashing import hash_files, stage_files
from dagster_artifacts.manifest import ManifestEntry
from dagster_artifacts.names import normalize_entry_path
from dagster_artifacts.staging import StagingArea
from dagster_artifacts.statcache import StatCache

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

    ``ignore`` takes gitignore-style patterns matched against paths relative to ``root``.
    """
    spec = pathspec.PathSpec.from_lines("gitwildmatch", ignore) if ignore else None
    root = os.path.abspath(root)  # os.walk then yields absolute, normalized folders
    pairs: list[tuple[str, str]] = []
    for directory, dirs, files in os.walk(root):
        relative_dir = os.path.relpath(directory, root).replace(os.sep, "/")
        relative_dir = "" if relative_dir == "." else relative_dir + "/"
        if spec is not None:
            dirs[:] = [d for d in dirs if not spec.match_file(relative_dir + d + "/")]
        dirs.sort()
        # The folder part of the entry paths is normalized once per folder; a file name from
        # os.walk has no "/" and is never "." or "..", so only a backslash (which
        # normalize_entry_path turns into "/") needs the full treatment.
        entry_dir = f"{prefix}/{relative_dir}" if prefix else relative_dir
        if entry_dir:
            entry_dir = normalize_entry_path(entry_dir) + "/"
        folder = directory if directory.endswith(os.sep) else directory + os.sep
        for file_name in sorted(files):
            if spec is not None and spec.match_file(relative_dir + file_name):
                continue
            entry_path = entry_dir + file_name
            if "\\" in file_name:
                entry_path = normalize_entry_path(entry_path)
            pairs.append((folder + file_name, entry_path))
    return pairs


def file_entries(
    pairs: list[tuple[str, str]],
    policy: str,
    algorithm: str,
    *,
    staging: Callable[[], StagingArea],
    cache: StatCache | None,
    stored: Callable[[set[str]], set[str]] | None,
) -> list[ManifestEntry]:
    """Entries for ``(absolute local path, entry path)`` pairs, as cheaply as the policy allows.

    ``stored`` (digests -> those the store holds) lets unchanged files skip the copy; it is None
    when the draft does not know its store yet.
    """
    locals_ = [local for local, _ in pairs]
    if policy == IMMUTABLE:
        hashed = hash_files(locals_, algorithm, cache=cache)
    else:
        hashed = stage_files(locals_, algorithm, staging(), cache=cache, stored=stored)
    return [
        ManifestEntry(
            path=entry_path,
            digest=h.digest,
            size=h.size,
            local_path=h.staged or local,
            staged=h.staged is not None,
        )
        for (local, entry_path), h in zip(pairs, hashed, strict=True)
    ]
