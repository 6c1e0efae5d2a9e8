"""The W&B v1 artifact manifest: entries, JSON form and digest."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from dagster_artifacts.digests import DEFAULT_ALGORITHM, artifact_digest

STORAGE_POLICY = "wandb-storage-policy-v1"
MANIFEST_VERSION = 1


@dataclass
class ManifestEntry:
    """One path of an artifact: a stored file (``ref is None``) or a reference to a URI."""

    path: str
    digest: str
    size: int | None = None
    ref: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    birth_artifact_id: str | None = None
    #: Where the bytes are on this machine before upload; never serialized.
    local_path: str | None = field(default=None, repr=False, compare=False)
    #: ``local_path`` is the draft's own staged copy (hashed as written, moved into the store).
    staged: bool = field(default=False, repr=False, compare=False)

    @property
    def is_reference(self) -> bool:
        return self.ref is not None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"digest": self.digest}
        if self.size is not None:
            data["size"] = self.size
        if self.ref is not None:
            data["ref"] = self.ref
        if self.extra:
            data["extra"] = self.extra
        if self.birth_artifact_id is not None:
            data["birthArtifactID"] = self.birth_artifact_id
        return data

    @classmethod
    def from_json(cls, path: str, data: dict[str, Any]) -> ManifestEntry:
        return cls(
            path=path,
            digest=data["digest"],
            size=data.get("size"),
            ref=data.get("ref"),
            extra=dict(data.get("extra") or {}),
            birth_artifact_id=data.get("birthArtifactID"),
        )


@dataclass
class Manifest:
    """An ordered mapping of entry path to :class:`ManifestEntry`, plus the storage policy."""

    entries: dict[str, ManifestEntry] = field(default_factory=dict)
    digest_algorithm: str = DEFAULT_ALGORITHM

    @property
    def storage_policy_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"storageLayout": "V2"}
        if self.digest_algorithm != DEFAULT_ALGORITHM:
            config["digestAlgorithm"] = self.digest_algorithm
        return config

    def digest(self) -> str:
        return artifact_digest((path, entry.digest) for path, entry in self.entries.items())

    @property
    def size(self) -> int:
        return sum(entry.size or 0 for entry in self.entries.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "version": MANIFEST_VERSION,
            "storagePolicy": STORAGE_POLICY,
            "storagePolicyConfig": self.storage_policy_config,
            "contents": {path: self.entries[path].to_json() for path in sorted(self.entries)},
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        if data.get("version") != MANIFEST_VERSION:
            from dagster_artifacts.errors import ArtifactError

            raise ArtifactError(
                f"Unsupported manifest version {data.get('version')!r}; upgrade dagster-artifacts."
            )
        config = data.get("storagePolicyConfig") or {}
        entries = {
            path: ManifestEntry.from_json(path, entry)
            for path, entry in (data.get("contents") or {}).items()
        }
        return cls(
            entries=entries, digest_algorithm=config.get("digestAlgorithm", DEFAULT_ALGORITHM)
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> Manifest:
        return cls.from_json(json.loads(raw))
