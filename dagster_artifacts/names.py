"""Naming rules of artifacts, types, aliases and entry paths (as W&B enforces them), and what
metadata may hold.

All validators return the normalised value or raise :class:`InvalidNameError` /
:class:`InvalidPathError` (:class:`InvalidArgumentError` for metadata and descriptions) with a
message that says how to fix the input.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import PureWindowsPath
from typing import Any

from dagster_artifacts.errors import InvalidArgumentError, InvalidNameError, InvalidPathError

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]+$")
VERSION_PATTERN = re.compile(r"^v(\d+)$")
#: The largest version number a registry holds (a 32-bit column): ``v`` + more names nothing.
MAX_VERSION_INDEX = 2**31 - 1
#: Bytes per path component that file systems accept (ext4, xfs, APFS, NTFS in UTF-16 aside).
MAX_COMPONENT_BYTES = 255
MAX_NAME_LENGTH = 128
MAX_ALIAS_LENGTH = 128
LATEST = "latest"


def validate_name(name: str) -> str:
    """Check an artifact (or entity/project) name: letters, digits, ``_``, ``-``, ``.``."""
    if not isinstance(name, str) or not name:
        raise InvalidNameError(f"Artifact name must be a non-empty string, got {name!r}.")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidNameError(
            f"Artifact name {name[:40]!r}... is {len(name)} characters long; "
            f"use at most {MAX_NAME_LENGTH}."
        )
    if not NAME_PATTERN.match(name):
        raise InvalidNameError(
            f"Invalid artifact name {name!r}: use only letters, digits, '_', '-' and '.' "
            "(to refer to a version, use run.use_artifact('name:v0') instead)."
        )
    return name


def validate_type(artifact_type: str) -> str:
    """Check an artifact type; ``job`` and ``wandb-*`` are reserved as in W&B."""
    if not isinstance(artifact_type, str) or not artifact_type:
        raise InvalidNameError(
            f"Artifact type must be a non-empty string such as 'dataset' or 'model', "
            f"got {artifact_type!r}."
        )
    if len(artifact_type) > MAX_NAME_LENGTH:
        raise InvalidNameError(f"Artifact type is longer than {MAX_NAME_LENGTH} characters.")
    if not NAME_PATTERN.match(artifact_type):
        raise InvalidNameError(
            f"Invalid artifact type {artifact_type!r}: use only letters, digits, '_', '-' and '.'."
        )
    if artifact_type == "job" or artifact_type.startswith("wandb-"):
        raise InvalidNameError(
            f"Artifact type {artifact_type!r} is reserved; choose another, such as 'dataset'."
        )
    return artifact_type


def validate_alias(alias: str) -> str:
    """Check an alias: no ``/`` or ``:``, and ``vN`` is reserved for version indices."""
    if not isinstance(alias, str) or not alias:
        raise InvalidNameError(f"Alias must be a non-empty string, got {alias!r}.")
    if len(alias) > MAX_ALIAS_LENGTH:
        raise InvalidNameError(f"Alias is longer than {MAX_ALIAS_LENGTH} characters.")
    if any(ord(character) < 32 or ord(character) == 127 for character in alias):
        raise InvalidNameError(
            f"Alias {alias!r} holds a control character (a NUL byte, a newline...); use "
            "printable characters only."
        )
    if "/" in alias or ":" in alias:
        raise InvalidNameError(f"Invalid alias {alias!r}: aliases may not contain '/' or ':'.")
    if VERSION_PATTERN.match(alias):
        raise InvalidNameError(
            f"Alias {alias!r} looks like a version index; 'vN' names are reserved for versions. "
            "Pick another alias, such as 'best' or 'prod'."
        )
    return alias


def validate_aliases(aliases: list[str] | tuple[str, ...] | None) -> list[str]:
    """Validate a list of aliases and drop duplicates, keeping order."""
    if aliases is None:
        return []
    if isinstance(aliases, str):
        aliases = [aliases]
    seen: dict[str, None] = {}
    for alias in aliases:
        seen[validate_alias(alias)] = None
    return list(seen)


#: W&B's tag rule: words of letters, digits, ``_`` and ``-``, separated by single spaces.
TAG_PATTERN = re.compile(r"^[-\w]+( +[-\w]+)*$")


def validate_tags(tags: list[str] | tuple[str, ...] | str | None) -> list[str]:
    """Validate tags (W&B's rule) and drop duplicates, keeping the first of each, in order."""
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = [tags]
    seen: dict[str, None] = {}
    for tag in tags:
        if (
            not isinstance(tag, str)
            or not TAG_PATTERN.fullmatch(tag)
            or len(tag) > MAX_ALIAS_LENGTH
        ):
            raise InvalidNameError(
                f"Invalid tag {tag!r}: tags are words of letters, digits, '-' and '_' separated "
                f"by spaces (such as 'reviewed' or 'eval set'), at most {MAX_ALIAS_LENGTH} "
                "characters."
            )
        seen[tag] = None
    return list(seen)


def validate_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """Metadata must be JSON (no NaN or Infinity: not JSON either): the registry stores it and
    every listing prints it, on every database. Checked when set and again when a log starts."""
    try:
        json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InvalidArgumentError(
            f"Artifact metadata must be JSON-serializable ({error}); convert values to plain "
            "numbers, strings, lists and dicts (NaN and Infinity are not JSON: store them as "
            "strings or None)."
        ) from error
    return metadata


def validate_description(description: str | None) -> str | None:
    """A description is text the registry stores: any string without NUL bytes, or None."""
    if description is not None and (not isinstance(description, str) or "\x00" in description):
        raise InvalidArgumentError(
            f"Artifact description must be a string without NUL bytes, got {description!r:.60}."
        )
    return description


def normalize_entry_path(path: str) -> str:
    """Return a clean POSIX entry path, refusing absolute paths and ``..`` escapes.

    W&B's rules (``validate_artifact_path``): a backslash separates folders only on Windows
    (elsewhere it is a character of the name, as in a file named ``a\\b``), and a path that
    would be absolute or climb out on Windows (``c:x``, ``\\x``, ``a\\..\\b``) is refused
    everywhere, so an artifact logged here downloads safely on every platform.
    """
    if not isinstance(path, str) or not path:
        raise InvalidPathError(f"Entry path must be a non-empty string, got {path!r}.")
    candidate = path.replace("\\", "/") if os.name == "nt" else path
    windows = PureWindowsPath(path)
    if candidate.startswith("/") or windows.anchor:
        raise InvalidPathError(
            f"Entry path {path!r} is absolute (on Windows, at least); pass a relative name such "
            "as 'data/train.csv'."
        )
    if ".." in candidate.split("/") or ".." in windows.parts:
        raise InvalidPathError(
            f"Entry path {path!r} contains '..'; entries must stay inside the artifact."
        )
    if "\x00" in candidate:
        raise InvalidPathError(
            f"Entry path {path!r} holds a NUL byte, which no file system accepts; remove it."
        )
    normalized = posixpath.normpath(candidate)
    if normalized in ("", "."):
        raise InvalidPathError(f"Entry path {path!r} names no file; give a file name.")
    for part in normalized.split("/"):
        if len(part.encode("utf-8", "surrogateescape")) > MAX_COMPONENT_BYTES:
            raise InvalidPathError(
                f"Entry path {path[:60]!r}... has a name of {len(part.encode('utf-8', 'surrogateescape'))} "
                f"bytes; file systems allow {MAX_COMPONENT_BYTES} bytes per name. Shorten it."
            )
    return normalized


def check_stored_path(path: str) -> str:
    """The cheap check of an entry path read back from a stored manifest (10,000s at a time):
    one the OS can create. Escapes (``..``, absolute paths) are refused where files are written
    (a download's ``safe_targets``)."""
    if not isinstance(path, str) or not path or "\x00" in path:
        raise InvalidPathError(f"Entry path {path!r} is empty or holds a NUL byte.")
    if len(path) * 4 > MAX_COMPONENT_BYTES and any(
        len(part.encode("utf-8", "surrogateescape")) > MAX_COMPONENT_BYTES
        for part in path.split("/")
    ):
        raise InvalidPathError(
            f"Entry path {path[:60]!r}... has a name over {MAX_COMPONENT_BYTES} bytes."
        )
    return path


@dataclass(frozen=True)
class ArtifactPath:
    """A parsed ``[[entity/]project/]name[:alias_or_version]`` reference."""

    name: str
    alias_or_version: str = LATEST
    project: str | None = None
    entity: str | None = None

    @property
    def version_index(self) -> int | None:
        match = VERSION_PATTERN.match(self.alias_or_version)
        return int(match.group(1)) if match else None


def parse_artifact_path(path: str) -> ArtifactPath:
    """Parse ``name:alias``, ``project/name:v0`` or ``entity/project/name:alias``."""
    if not isinstance(path, str) or not path:
        raise InvalidNameError(f"Artifact path must be a string like 'name:latest', got {path!r}.")
    head, sep, tag = path.rpartition(":")
    if not sep:
        head, tag = path, LATEST
    if sep and not tag:
        raise InvalidNameError(
            f"Artifact path {path!r} ends with ':'; add a version or alias, e.g. 'name:latest'."
        )
    parts = head.split("/")
    if len(parts) > 3 or any(not part for part in parts):
        raise InvalidNameError(
            f"Malformed artifact path {path!r}; expected "
            "'name:alias', 'project/name:alias' or 'entity/project/name:alias'."
        )
    entity = project = None
    if len(parts) == 3:
        entity, project, name = parts
    elif len(parts) == 2:
        project, name = parts
    else:
        (name,) = parts
    validate_name(name)
    if project is not None:
        validate_name(project)
    if entity is not None:
        validate_name(entity)
    if "/" in tag:
        raise InvalidNameError(f"Malformed artifact path {path!r}: the alias may not contain '/'.")
    return ArtifactPath(name=name, alias_or_version=tag, project=project, entity=entity)
