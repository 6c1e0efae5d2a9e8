"""What a logged artifact hands out about its files: entries you can download, the objects stored
in them (``artifact.get``), and the result of checking a downloaded folder against the manifest.

:class:`FileMembers` holds the members of ``Artifact`` that read a logged version's files
(``download``, ``file``, ``checkout``, ``files``, ``get_entry``, ``verify``), mixed into it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from dagster_artifacts import state
from dagster_artifacts.digests import digest_file
from dagster_artifacts.download import download
from dagster_artifacts.errors import (
    EntryNotFoundError,
    InvalidArgumentError,
    NotApplicableError,
    VerificationError,
)
from dagster_artifacts.manifest import Manifest, ManifestEntry
from dagster_artifacts.names import normalize_entry_path
from dagster_artifacts.storage.references import hashes_content
from dagster_artifacts.store import Store
from dagster_artifacts.tables import (
    DATAFRAME_SUFFIX,
    PARTITIONED_TABLE_SUFFIX,
    TABLE_SUFFIX,
    PartitionedTable,
    Table,
)

#: ``fetch(entry, root)``: download one entry under ``root`` (None: the artifact's default
#: folder), verified, and return the folder it went to.
FetchEntry = Callable[[ManifestEntry, "str | None"], str]


@dataclass
class VerifyResult:
    """What ``Artifact.verify`` checked. Truthy; a failed check raises instead."""

    root: str
    checked: int
    skipped_references: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return True


class StoredFiles:
    """The files of one logged version in ``store``, as ``Artifact`` hands them out."""

    def __init__(self, store: Store, manifest: Manifest, default_root: str, name: str) -> None:
        self.store = store
        self.manifest = manifest
        self.default_root = default_root
        self.name = name

    def _root(self, root: str | os.PathLike[str] | None) -> str:
        return os.path.abspath(os.fspath(root) if root is not None else self.default_root)

    def download(
        self,
        root: str | os.PathLike[str] | None,
        path_prefix: str | None = None,
        *,
        skip_cache: bool = False,
    ) -> str:
        """Every entry (under ``path_prefix``) not already there with its digest; the folder."""
        with state.gc_frozen():  # reading a manifest of 10,000s of entries allocates as much
            entries = [
                entry
                for entry in self.manifest.entries.values()
                if path_prefix is None or entry.path.startswith(path_prefix)
            ]
            return download(
                self.store,
                self.manifest,
                self._root(root),
                entries,
                skip_cache=skip_cache,
                label=self.name,
            )

    def _fetch(self, entry: ManifestEntry, root: str | None) -> str:
        folder = self._root(root)
        download(self.store, self.manifest, folder, [entry], label=self.name)
        return folder

    def entry(self, name: str) -> ArtifactEntry:
        path = normalize_entry_path(name)
        entry = self.manifest.entries.get(path)
        if entry is None:
            raise EntryNotFoundError(
                f"Artifact {self.name!r} has no entry {path!r}; artifact.files() lists them."
            )
        return ArtifactEntry(entry, self._fetch)

    def entries(self, names: list[str] | None = None) -> list[ArtifactEntry]:
        wanted = set(names) if names else None
        return [
            ArtifactEntry(entry, self._fetch)
            for path, entry in sorted(self.manifest.entries.items())
            if wanted is None or path in wanted
        ]

    def verify(self, root: str | os.PathLike[str] | None) -> VerifyResult:
        return verify_folder(self.manifest, self._root(root), self.name)


class FileMembers:
    """The members of ``Artifact`` that read a logged version's files (mixed in)."""

    # -- hooks Artifact provides ------------------------------------------------------------
    def _files(self) -> StoredFiles:
        raise NotImplementedError

    def _checkout_root(self) -> str:
        """``checkout()``'s default folder: ``<download dir>/<collection name>``, no version."""
        raise NotImplementedError

    # -- members ----------------------------------------------------------------------------
    def default_root(self) -> str:
        """Where :meth:`download` puts files by default: ``<download dir>/<name>:<version>``."""
        return self._files().default_root

    def download(
        self,
        root: str | os.PathLike[str] | None = None,
        allow_missing_references: bool = False,
        skip_cache: bool | None = None,
        path_prefix: str | None = None,
        multipart: bool | None = None,
    ) -> str:
        """Fetch every entry not already present with the right digest; return the folder.

        ``skip_cache=True`` bypasses the local download cache (as W&B's argument does): files
        come straight from the store and are not kept in the cache. ``multipart`` (W&B's
        choice of ranged requests for big files) is accepted and has no effect: every file
        streams from the store through fsspec.
        """
        return self._files().download(root, path_prefix, skip_cache=bool(skip_cache))

    def get_entry(self, name: str) -> ArtifactEntry:
        return self._files().entry(name)

    get_path = get_entry

    def files(
        self, names: list[str] | None = None, per_page: int = 50, start: str | None = None
    ) -> list[ArtifactEntry]:
        """Every entry (those at ``names`` only, when given), by path."""
        if start is not None:
            raise NotApplicableError(
                "start= resumes a W&B server page; files() returns the whole list here, so "
                "slice it instead."
            )
        return self._files().entries(names)

    def verify(self, root: str | os.PathLike[str] | None = None) -> VerifyResult:
        """Check a downloaded copy against the manifest; raise VerificationError on any difference."""
        return self._files().verify(root)

    def file(self, root: str | os.PathLike[str] | None = None) -> str:
        """Download the one file of a single-file artifact into ``root`` (default: the
        artifact's folder) and return its path; an artifact of several files (or none) is an
        :class:`InvalidArgumentError` (W&B's ``ValueError``): use ``download()`` for those."""
        files = self._files()
        paths = list(files.manifest.entries)
        if len(paths) != 1:
            raise InvalidArgumentError(
                f"{files.name} holds {len(paths)} files; file() is for single-file artifacts. "
                "Call .download() to get all files, or .get_entry(name).download() for one."
            )
        return files.entry(paths[0]).download(root)

    def checkout(self, root: str | None = None) -> str:
        """Make ``root`` (default ``<download dir>/<collection name>``) hold exactly this
        version: files not in it are deleted, then missing or changed ones are downloaded.

        W&B's warning applies: every file under ``root`` that is not in the artifact is
        removed. A file-system root or the home folder is refused.
        """
        target = os.path.abspath(root if root is not None else self._checkout_root())
        if target in (os.path.abspath(os.sep), os.path.abspath(os.path.expanduser("~"))):
            raise InvalidArgumentError(
                f"checkout() would delete every other file under {target}; pick a folder that "
                "holds only this artifact."
            )
        entries = self._files().manifest.entries
        for directory, _dirs, names in os.walk(target):
            for file_name in names:
                local = os.path.join(directory, file_name)
                relative = os.path.relpath(local, target).replace(os.sep, "/")
                if relative not in entries:
                    os.remove(local)
        return self.download(root=target)


class ArtifactEntry:
    """One entry of a logged artifact, as returned by ``get_entry``/``get_path``/``files``."""

    def __init__(self, entry: ManifestEntry, fetch: FetchEntry) -> None:
        self._entry = entry
        self._fetch = fetch

    @property
    def path(self) -> str:
        return self._entry.path

    @property
    def digest(self) -> str:
        return self._entry.digest

    @property
    def size(self) -> int | None:
        return self._entry.size

    @property
    def extra(self) -> dict[str, Any]:
        return self._entry.extra

    def ref(self) -> str | None:
        """The URI of a reference entry; ``None`` for a stored file."""
        return self._entry.ref

    ref_url = ref

    def download(self, root: str | os.PathLike[str] | None = None) -> str:
        """Fetch this one file (verified) and return its local path."""
        folder = self._fetch(self._entry, None if root is None else os.fspath(root))
        return os.path.join(folder, self._entry.path)

    def __repr__(self) -> str:
        return f"ArtifactEntry(path={self.path!r}, digest={self.digest!r}, size={self.size!r})"


def verify_folder(manifest: Manifest, target: str, name: str) -> VerifyResult:
    """Check the folder ``target`` against ``manifest``: every file present with its digest, and
    nothing else; raise :class:`VerificationError` listing the differences."""
    problems: list[str] = []
    checked = 0
    skipped: list[str] = []
    expected: set[str] = set()
    for path, entry in sorted(manifest.entries.items()):
        local = os.path.join(target, path)
        expected.add(os.path.normpath(local))
        if not hashes_content(entry):  # an ETag or a URI: only the size can be checked
            if not os.path.isfile(local):
                skipped.append(path)
                continue
            if entry.size is not None and os.path.getsize(local) != entry.size:
                problems.append(f"{path}: size differs from the reference's")
            checked += 1
            continue
        if not os.path.isfile(local):
            problems.append(f"{path}: missing")
            continue
        if digest_file(local, manifest.algorithm_of(entry))[0] != entry.digest:
            problems.append(f"{path}: content differs from the logged version")
        checked += 1
    if os.path.isdir(target):
        for directory, _dirs, files in os.walk(target):
            for file_name in files:
                local = os.path.normpath(os.path.join(directory, file_name))
                if local not in expected:
                    problems.append(f"{os.path.relpath(local, target)}: not in the artifact")
    if not os.path.isdir(target):
        raise VerificationError(f"Nothing to verify at {target}; download the artifact first.")
    if problems:
        shown = "; ".join(problems[:20]) + (" ..." if len(problems) > 20 else "")
        raise VerificationError(
            f"{target} does not match {name}: {shown}. Download it again into an empty "
            "folder to get a faithful copy."
        )
    return VerifyResult(root=target, checked=checked, skipped_references=skipped)


class StoredObjects(Protocol):
    """A logged artifact, as :func:`load_object` reads it."""

    @property
    def name(self) -> str: ...

    @property
    def manifest(self) -> Manifest: ...

    def get_entry(self, name: str) -> ArtifactEntry: ...

    def get(self, name: str) -> Any: ...


def load_object(artifact: StoredObjects, name: str) -> Any:
    """The object stored as ``name``: a ``Table`` (``name.table.json``), a ``PartitionedTable``
    (``name.partitioned-table.json``), a DataFrame (``name.parquet``), else the downloaded path."""
    entries = artifact.manifest.entries
    path = normalize_entry_path(name)
    for suffix in (TABLE_SUFFIX, PARTITIONED_TABLE_SUFFIX, DATAFRAME_SUFFIX):
        candidate = path if path.endswith(suffix) else path + suffix
        if candidate not in entries:
            continue
        local = artifact.get_entry(candidate).download()
        if suffix == DATAFRAME_SUFFIX:
            import pandas as pd

            return pd.read_parquet(local, engine="pyarrow")
        with open(local, "rb") as handle:
            data = json.loads(handle.read())
        if suffix == TABLE_SUFFIX:
            return Table.from_json(data)
        return PartitionedTable.from_json(data, artifact=artifact)
    if path in entries:
        return artifact.get_entry(path).download()
    raise EntryNotFoundError(
        f"Artifact {artifact.name!r} has no object {path!r}; artifact.files() lists its entries."
    )
