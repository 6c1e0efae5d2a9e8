"""What every reference handler shares: the protocol, W&B's untracked entry, the object limit,
and ETag parsing."""

from __future__ import annotations

import base64
import posixpath
import re
from typing import Any, Protocol

from dagster_artifacts.errors import (
    InvalidReferenceError,
    ReferenceLimitError,
    ReferenceNotDownloadableError,
)
from dagster_artifacts.manifest import ManifestEntry
from dagster_artifacts.names import normalize_entry_path

DEFAULT_MAX_OBJECTS = 10_000
_MD5_HEX = re.compile(r"^[0-9a-fA-F]{32}$")


class ReferenceHandler(Protocol):
    """Turns a URI into manifest entries and brings an entry's bytes back.

    ``content_addressed``: the digests it records hash the bytes (so a local copy can be checked
    by hashing it); ETags and URIs do not.
    """

    content_addressed: bool

    def store(
        self, uri: str, name: str | None, checksum: bool, max_objects: int
    ) -> list[ManifestEntry]: ...

    def load(self, entry: ManifestEntry, dest: str) -> None: ...


def join_entry_path(prefix: str | None, relative: str) -> str:
    return normalize_entry_path(posixpath.join(prefix, relative) if prefix else relative)


def check_limit(count: int, max_objects: int, uri: str) -> None:
    if count > max_objects:
        raise ReferenceLimitError(
            f"{uri!r} expands to more than max_objects={max_objects} objects; pass a larger "
            "max_objects=..., or reference a narrower prefix. Nothing was added."
        )


def md5_from_etag(etag: str | None) -> str | None:
    """The base64 MD5 (W&B digest form) an S3 single-part ETag stands for, else None."""
    if etag and _MD5_HEX.match(etag):
        return base64.b64encode(bytes.fromhex(etag)).decode("ascii")
    return None


def strip_etag(etag: Any) -> str | None:
    if not etag:
        return None
    text = str(etag)
    if text.startswith("W/"):
        text = text[2:]
    return text.strip('"')


class UntrackedReferenceHandler:
    """Any other scheme: tracked by URI, never downloaded."""

    content_addressed = False

    def store(
        self, uri: str, name: str | None, checksum: bool, max_objects: int
    ) -> list[ManifestEntry]:
        if not name:
            raise InvalidReferenceError(
                f"{uri!r} has a scheme dagster-artifacts cannot read, so it is tracked by URI "
                "only; pass name='...' to say which entry path it gets."
            )
        return [ManifestEntry(path=normalize_entry_path(name), digest=uri, ref=uri)]

    def load(self, entry: ManifestEntry, dest: str) -> None:
        raise ReferenceNotDownloadableError(
            f"Entry {entry.path!r} references {entry.ref}, whose scheme is tracked only; "
            "use entry.ref() to get the URI and fetch it yourself."
        )
