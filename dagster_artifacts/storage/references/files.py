"""``file://`` references: a file, or a folder expanded into its files."""

from __future__ import annotations

import os
import shutil
from urllib.parse import unquote, urlparse

from dagster_artifacts.digests import digest_file
from dagster_artifacts.errors import ArtifactFileNotFoundError
from dagster_artifacts.manifest import ManifestEntry
from dagster_artifacts.names import normalize_entry_path
from dagster_artifacts.storage.pipeline import copy_verified
from dagster_artifacts.storage.references.handler import (
    check_limit,
    join_entry_path,
    untracked_entry,
)


class FileReferenceHandler:
    """``file://`` URIs: a file, or a folder expanded into its files (digests: MD5 of the bytes)."""

    content_addressed = True

    @staticmethod
    def _local(uri: str) -> str:
        return unquote(urlparse(uri).path)

    def store(
        self, uri: str, name: str | None, checksum: bool, max_objects: int
    ) -> list[ManifestEntry]:
        local = self._local(uri)
        if not checksum:
            return [untracked_entry(uri, name)]
        if os.path.isfile(local):
            digest, size = digest_file(local)
            path = normalize_entry_path(name or os.path.basename(local))
            return [ManifestEntry(path=path, digest=digest, size=size, ref=f"file://{local}")]
        if not os.path.isdir(local):
            raise ArtifactFileNotFoundError(
                f"Reference {uri!r} points at nothing on this machine; check the path."
            )
        files: list[str] = []
        for directory, _dirs, names in os.walk(local):
            for file_name in names:
                files.append(os.path.join(directory, file_name))
                check_limit(len(files), max_objects, uri)
        entries = []
        for full in sorted(files):
            digest, size = digest_file(full)
            relative = os.path.relpath(full, local).replace(os.sep, "/")
            entries.append(
                ManifestEntry(
                    path=join_entry_path(name, relative),
                    digest=digest,
                    size=size,
                    ref=f"file://{full}",
                )
            )
        return entries

    def load(self, entry: ManifestEntry, dest: str) -> None:
        assert entry.ref is not None
        if entry.digest == entry.ref:  # checksum=False: nothing to verify against
            shutil.copyfile(self._local(entry.ref), dest)
            return
        local = self._local(entry.ref)
        if not os.path.exists(local):
            raise ArtifactFileNotFoundError(
                f"Referenced file {entry.ref} no longer exists; restore it or re-log the artifact."
            )
        copy_verified(
            local, dest, expected_digest=entry.digest, expected_size=entry.size, label=entry.ref
        )
