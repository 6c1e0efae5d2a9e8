"""``file://`` references: a file, or a folder expanded into its files, as W&B records them.

W&B's rules (``LocalFileHandler``), which the parity suite checks against wandb itself:

- The URI names a local path after percent-decoding (``Path.as_uri()`` works, and so does a raw
  ``file:///a b/c``). ``file:/x`` and ``file://localhost/x`` are the same place.
- A file gives one entry named after it (or ``name``); a folder gives one entry per file
  (symbolic links to files followed, links to folders not), under ``name`` if given.
- ``ref`` is the URI as given, for a folder joined with each file's relative path as it is on
  disk (so a percent-encoded folder URI keeps its encoded prefix, and the rest is raw).
- ``digest`` is the base64 MD5 of the bytes, whatever the artifact's digest algorithm; with
  ``checksum=False`` it is the base64 MD5 of the file's own ``file://`` URI
  (``Path.resolve().as_uri()``), so the entry changes when the path does, not the bytes. The
  size is recorded either way.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from dagster_artifacts.digests import digest_bytes, digest_file
from dagster_artifacts.errors import ArtifactFileNotFoundError
from dagster_artifacts.manifest import ManifestEntry
from dagster_artifacts.names import normalize_entry_path
from dagster_artifacts.storage.pipeline import copy_verified
from dagster_artifacts.storage.references.handler import check_limit, join_entry_path


def local_path(uri: str) -> str:
    """The local path a ``file:`` URI names (W&B: ``url2pathname(urlparse(uri).path)``)."""
    return str(url2pathname(urlparse(uri).path))


def uri_digest(path: str) -> str:
    """The digest of a ``checksum=False`` file reference: base64 MD5 of its resolved URI."""
    return digest_bytes(Path(path).resolve().as_uri().encode("utf-8"))


def _candidates(ref: str) -> list[str]:
    """The local paths a recorded ref may mean, most likely first.

    A folder reference joins an encoded URI prefix with raw relative paths, so a file name with
    ``%`` or ``#`` in it is ambiguous once recorded: each split of the path between an encoded
    head and a raw tail is a candidate, and the digest decides which one holds the bytes.
    """
    rest = ref.split(":", 1)[1]
    if rest.startswith("//"):
        rest = rest[2:]
        rest = rest[rest.find("/") :] if "/" in rest else "/"  # drop the host (localhost)
    parts = rest.split("/")
    found = [local_path(ref)]
    for cut in range(len(parts), 0, -1):
        found.append(unquote("/".join(parts[:cut])) + "".join("/" + p for p in parts[cut:]))
    found.append(rest)
    return list(dict.fromkeys(found))


class FileReferenceHandler:
    """``file://`` URIs: a file, or a folder expanded into its files (digests: MD5 of the bytes)."""

    content_addressed = True

    def store(
        self, uri: str, name: str | None, checksum: bool, max_objects: int
    ) -> list[ManifestEntry]:
        local = local_path(uri)
        digest = _content_digest if checksum else uri_digest
        if os.path.isdir(local):
            files = _walk(local)
            check_limit(len(files), max_objects, uri)  # before a single file is read
            return [
                ManifestEntry(
                    path=join_entry_path(name, relative),
                    digest=digest(full),
                    size=os.path.getsize(full),
                    ref=os.path.join(uri, relative),
                )
                for full, relative in files
            ]
        if os.path.isfile(local):
            path = normalize_entry_path(name or os.path.basename(local))
            size = os.path.getsize(local)
            return [ManifestEntry(path=path, digest=digest(local), size=size, ref=uri)]
        raise ArtifactFileNotFoundError(
            f"Reference {uri!r} points at nothing on this machine ({local}); check the path."
        )

    def load(self, entry: ManifestEntry, dest: str) -> None:
        assert entry.ref is not None
        candidates = [path for path in _candidates(entry.ref) if os.path.isfile(path)]
        if not candidates:
            raise ArtifactFileNotFoundError(
                f"Referenced file {entry.ref} no longer exists; restore it or re-log the artifact."
            )
        if is_untracked(entry, candidates[0]):  # checksum=False: nothing to verify against
            shutil.copyfile(candidates[0], dest)
            return
        for candidate in candidates[1:]:  # an ambiguous ref: the one with the recorded bytes
            if digest_file(candidate)[0] == entry.digest:
                candidates = [candidate]
                break
        copy_verified(
            candidates[0],
            dest,
            expected_digest=entry.digest,
            expected_size=entry.size,
            label=entry.ref,
        )


def is_untracked(entry: ManifestEntry, local: str | None = None) -> bool:
    """Whether a ``file://`` entry was recorded with ``checksum=False``: its digest is the ref
    itself (written before this project matched W&B) or the MD5 of the file's URI."""
    assert entry.ref is not None
    if entry.digest == entry.ref:
        return True
    local = local or local_path(entry.ref)
    return os.path.exists(local) and entry.digest == uri_digest(local)


def _content_digest(path: str) -> str:
    return digest_file(path)[0]


def _walk(folder: str) -> list[tuple[str, str]]:
    """``(absolute path, path relative to folder)`` of every file below it, sorted; links to
    folders are not followed (W&B's ``os.walk``), links to files are."""
    found = []
    for directory, _dirs, names in os.walk(folder):
        for file_name in names:
            full = os.path.join(directory, file_name)
            found.append((full, os.path.relpath(full, folder)))
    return sorted(found, key=lambda pair: pair[1])
