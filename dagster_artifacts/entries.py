"""What a logged artifact hands out about its files: entries you can download, and the result of
checking a downloaded folder against the manifest."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dagster_artifacts.digests import digest_file
from dagster_artifacts.errors import VerificationError
from dagster_artifacts.manifest import Manifest, ManifestEntry

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
    algorithm = manifest.digest_algorithm
    problems: list[str] = []
    checked = 0
    skipped: list[str] = []
    expected: set[str] = set()
    for path, entry in sorted(manifest.entries.items()):
        local = os.path.join(target, path)
        expected.add(os.path.normpath(local))
        if entry.is_reference and not (entry.ref or "").startswith("file://"):
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
        if digest_file(local, algorithm)[0] != entry.digest:
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
