"""The W&B v1 artifact manifest: entries, JSON form and digest."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as _quote
from typing import Any

from dagster_artifacts.digests import (
    ALGORITHM_EXTRA_KEY,
    DEFAULT_ALGORITHM,
    WANDB_ALGORITHM_NAMES,
    canonical_algorithm,
    sorted_artifact_digest,
)
from dagster_artifacts.names import check_stored_path

STORAGE_POLICY = "wandb-storage-policy-v1"
MANIFEST_VERSION = 1
_ENCODE_BATCH = 10_000  # entries encoded together by to_bytes
#: From this many characters on (about 150,000 entries), manifests are parsed entry by entry.
STREAM_PARSE_FROM = 16 * 1024 * 1024


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _entry_text(path: str, entry: ManifestEntry, quote: Callable[[str], str] = _quote) -> str:
    """``"path":{entry}`` exactly as :func:`_dumps` writes it inside ``contents``.

    The usual entry (a digest and a size, perhaps a birth artifact id) is formatted directly,
    its strings quoted by the encoder's own C function: a third faster than building its dict
    and dumping it, which counts at a million entries. Any other goes through :func:`_dumps`.
    """
    size, birth = entry.size, entry.birth_artifact_id
    if entry.ref is None and not entry.extra and type(size) is int and type(entry.digest) is str:
        if birth is None:
            return f'{quote(path)}:{{"digest":{quote(entry.digest)},"size":{size}}}'
        if type(birth) is str:
            return (
                f'{quote(path)}:{{"birthArtifactID":{quote(birth)},'
                f'"digest":{quote(entry.digest)},"size":{size}}}'
            )
    return f"{quote(path)}:{_dumps(entry.to_json())}"


@dataclass(slots=True)
class ManifestEntry:
    """One path of an artifact: a stored file (``ref is None``) or a reference to a URI.

    Slotted: an artifact of a million files holds a million of these, and without a ``__dict__``
    each is about a third smaller.
    """

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
        """One entry as stored; ``ValueError`` (saying what is wrong) for any other shape."""
        if type(data) is dict and len(data) == 2:  # the usual shape, checked in fewer steps
            digest, size = data.get("digest"), data.get("size")
            if type(digest) is str and digest and type(size) is int and size >= 0:
                return cls(check_stored_path(path), digest, size)
        if not isinstance(data, dict):
            raise ValueError(f"entry {path!r} is {type(data).__name__}, not an object")
        digest, size, ref = data.get("digest"), data.get("size"), data.get("ref")
        extra = data.get("extra") or {}
        if not isinstance(digest, str) or not digest:
            raise ValueError(f"entry {path!r} has no digest")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise ValueError(f"entry {path!r} has size {size!r}")
        if ref is not None and not isinstance(ref, str):
            raise ValueError(f"entry {path!r} has ref {ref!r}")
        if not isinstance(extra, dict):
            raise ValueError(f"entry {path!r} has extra {extra!r}")
        return cls(
            path=check_stored_path(path),
            digest=digest,
            size=size,
            ref=ref,
            extra=dict(extra),
            birth_artifact_id=data.get("birthArtifactID"),
        )


@dataclass
class Manifest:
    """An ordered mapping of entry path to :class:`ManifestEntry`, plus the storage policy.

    ``digest_algorithm`` hashes the stored files and the artifact digest (as in W&B). An xxh128
    manifest also says so in ``storagePolicyConfig.digestAlgorithm``, a key of this project's
    (W&B keeps the algorithm in its server's database; a self-hosted store has only the
    manifest, and an artifact of references alone has no file entry to carry W&B's ``alg`` tag).
    W&B ignores the key when it reads the manifest.
    """

    entries: dict[str, ManifestEntry] = field(default_factory=dict)
    digest_algorithm: str = DEFAULT_ALGORITHM

    def __post_init__(self) -> None:
        self.digest_algorithm = canonical_algorithm(self.digest_algorithm)

    @property
    def storage_policy_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"storageLayout": "V2"}
        if self.digest_algorithm != DEFAULT_ALGORITHM:
            config["digestAlgorithm"] = self.digest_algorithm
        return config

    def digest(self) -> str:
        """The artifact digest, as W&B computes it (hex MD5, or hex xxh128 for xxh128)."""
        return sorted_artifact_digest(self._sorted_digests(), self.digest_algorithm)

    def accepted_digests(self) -> set[str]:
        """The digests a registry may hold for this manifest: :meth:`digest`, and for xxh128
        also the MD5 form that versions logged before xxh128 artifact digests (which matched
        W&B) were recorded with; so those still verify and still deduplicate."""
        return {self.digest(), *self.legacy_digests()}

    def legacy_digests(self) -> set[str]:
        """The digests other than :meth:`digest` that :meth:`accepted_digests` accepts: the
        MD5 form of an xxh128 manifest's digest; none for MD5 (a million entries take a
        second to digest, so a caller that holds :meth:`digest` asks only for these)."""
        if self.digest_algorithm == DEFAULT_ALGORITHM:
            return set()
        return {sorted_artifact_digest(self._sorted_digests())}

    def _sorted_digests(self) -> Iterator[tuple[str, str]]:
        """``(path, digest)`` of every entry, by path: the paths are sorted, not the pairs.

        Entries added by ``add_dir`` usually come in path order already; then they are read in
        the dict's own order, without a lookup per path (a million: 0.2 s instead of 1 s).
        """
        entries = self.entries
        paths = list(entries)
        ordered = sorted(paths)
        if ordered == paths:
            return ((path, entry.digest) for path, entry in entries.items())
        return ((path, entries[path].digest) for path in ordered)

    def algorithm_of(self, entry: ManifestEntry) -> str:
        """The algorithm of ``entry.digest``: W&B's ``alg`` tag when present, MD5 for a
        reference (a ``file://`` reference hashes its bytes with MD5 whatever the artifact's
        algorithm, as in W&B), else the manifest's."""
        tag = entry.extra.get(ALGORITHM_EXTRA_KEY) if entry.extra else None
        names = {name: algorithm for algorithm, name in WANDB_ALGORITHM_NAMES.items()}
        if tag in names:
            return names[tag]
        return DEFAULT_ALGORITHM if entry.is_reference else self.digest_algorithm

    @property
    def size(self) -> int:
        return sum(entry.size or 0 for entry in self.entries.values())

    def to_json(self) -> dict[str, Any]:
        return {
            **self.to_json_without_contents(),
            "contents": {path: self.entries[path].to_json() for path in sorted(self.entries)},
        }

    def to_manifest_json(self) -> dict[str, Any]:
        """W&B's name for :meth:`to_json` (``artifact.manifest.to_manifest_json()``)."""
        return self.to_json()

    def to_bytes(self) -> bytes:
        """The stored form: ``json.dumps(self.to_json(), sort_keys=True)``, compact, in UTF-8.

        Written a batch of entries at a time, to exactly those bytes: encoding the whole
        document at once builds every entry's dict and every piece of text before joining
        them, several times the size of the result for a million entries.
        """
        return b"".join(self.iter_bytes())

    def iter_bytes(self) -> Iterator[bytes]:
        """:meth:`to_bytes` in pieces, a batch of entries each: what a commit spools to a file
        (:class:`.storage.spool.Spool`) instead of holding a million entries' text."""
        head = self.to_json_without_contents()
        yield b'{"contents":{'
        paths = sorted(self.entries)
        entries = self.entries
        for start in range(0, len(paths), _ENCODE_BATCH):
            if start:
                yield b","
            batch = paths[start : start + _ENCODE_BATCH]
            yield ",".join([_entry_text(path, entries[path]) for path in batch]).encode("utf-8")
        yield b"},"
        yield _dumps(head)[1:].encode("utf-8")

    def to_json_without_contents(self) -> dict[str, Any]:
        return {
            "version": MANIFEST_VERSION,
            "storagePolicy": STORAGE_POLICY,
            "storagePolicyConfig": self.storage_policy_config,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        """A manifest as stored: W&B's v1 shape, every entry path one the OS can create.

        ``ValueError`` (or :class:`InvalidPathError`, also a ``ValueError``) for anything else,
        saying what is wrong; the store restates it naming the version.
        """
        if not isinstance(data, dict):
            raise ValueError(f"the manifest is {type(data).__name__}, not an object")
        _check_version(data)  # first: a newer format's entries may not parse
        config = data.get("storagePolicyConfig") or {}
        contents = data.get("contents") or {}
        if not isinstance(config, dict) or not isinstance(contents, dict):
            raise ValueError("the manifest's contents or storagePolicyConfig is not an object")
        entries = {path: ManifestEntry.from_json(path, entry) for path, entry in contents.items()}
        return cls._checked(data, entries)

    @classmethod
    def _checked(cls, top: dict[str, Any], entries: dict[str, ManifestEntry]) -> Manifest:
        """The manifest of parsed ``entries`` and the document's other keys ``top``."""
        _check_version(top)
        config = top.get("storagePolicyConfig") or {}
        if not isinstance(config, dict):
            raise ValueError("the manifest's contents or storagePolicyConfig is not an object")
        algorithm = config.get("digestAlgorithm") or _tagged_algorithm(entries.values())
        if algorithm not in WANDB_ALGORITHM_NAMES:
            raise ValueError(f"unknown digest algorithm {algorithm!r}")
        return cls(entries=entries, digest_algorithm=algorithm)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Manifest:
        """:meth:`from_json` of the stored bytes; a large manifest's ``contents`` are read one
        entry at a time.

        Each entry becomes a :class:`ManifestEntry` as soon as it is parsed, so the parsed
        document never exists whole beside the entries (for a million entries, hundreds of MB
        of dicts). Anything unexpected, including every error, goes through the one-shot
        ``json.loads`` path, which says what is wrong exactly as before.
        """
        text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
        if len(text) < STREAM_PARSE_FROM:  # small: the one-shot parse is faster (by ~40%)
            return cls.from_json(json.loads(text))
        try:
            parsed = _parse_streaming(text)
        except (ValueError, IndexError):
            parsed = None
        if parsed is None:
            return cls.from_json(json.loads(text))
        top, entries = parsed
        if entries is None:
            return cls.from_json(top)
        try:
            return cls._checked(top, entries)
        except ValueError:
            return cls.from_json(json.loads(text))  # the same error, raised in the usual order


def _check_version(top: dict[str, Any]) -> None:
    if top.get("version") != MANIFEST_VERSION:
        raise ValueError(
            f"manifest version {top.get('version')!r} is not {MANIFEST_VERSION}; a newer "
            "dagster-artifacts may have written it (upgrade this one)"
        )


#: The json module's string scanner (C), public since Python 2.6 but missing from typeshed.
_scanstring: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]
_SPACE = re.compile(r"[ \t\n\r]*")


def _skip(text: str, at: int) -> int:
    """Where the JSON whitespace from ``at`` ends."""
    found = _SPACE.match(text, at)
    return found.end() if found is not None else at


_decoder = json.JSONDecoder()


def _parse_streaming(
    text: str,
) -> tuple[dict[str, Any], dict[str, ManifestEntry] | None] | None:
    """``(the top-level keys but contents, the entries of contents)`` of a JSON document; None
    (or a ``ValueError``/``IndexError``) where it is not a plain object, for the caller's
    fallback. ``entries`` is None when ``contents`` is absent or not an object."""
    at = _skip(text, 0)
    if text[at] != "{":
        return None
    at = _skip(text, at + 1)
    top: dict[str, Any] = {}
    entries: dict[str, ManifestEntry] | None = None
    if text[at] == "}":
        return top, None
    while True:
        if text[at] != '"':
            return None
        key, at = _scanstring(text, at + 1)
        at = _skip(text, at)
        if text[at] != ":":
            return None
        at = _skip(text, at + 1)
        if key == "contents" and text[at] == "{":
            top.pop(key, None)
            entries, at = _parse_entries(text, at)
        else:
            top[key], at = _decoder.raw_decode(text, at)
            if key == "contents":
                entries = None
        at = _skip(text, at)
        if text[at] == ",":
            at = _skip(text, at + 1)
            continue
        if text[at] != "}" or _skip(text, at + 1) != len(text):
            return None
        return top, entries


def _parse_entries(text: str, at: int) -> tuple[dict[str, ManifestEntry], int]:
    """The entries of the ``contents`` object starting at ``text[at] == "{"``, and where it ends."""
    entries: dict[str, ManifestEntry] = {}
    at = _skip(text, at + 1)
    if text[at] == "}":
        return entries, at + 1
    while True:
        if text[at] != '"':
            raise ValueError("an entry path is not a string")
        path, at = _scanstring(text, at + 1)
        at = _skip(text, at)
        if text[at] != ":":
            raise ValueError("no ':' after an entry path")
        value, at = _decoder.raw_decode(text, _skip(text, at + 1))
        entries[path] = ManifestEntry.from_json(path, value)
        at = _skip(text, at)
        if text[at] == ",":
            at = _skip(text, at + 1)
            continue
        if text[at] != "}":
            raise ValueError("no ',' or '}' after an entry")
        return entries, at + 1


def _tagged_algorithm(entries: Any) -> str:
    """The algorithm W&B's ``alg`` tags name (a manifest W&B wrote), else MD5."""
    names = {name: algorithm for algorithm, name in WANDB_ALGORITHM_NAMES.items()}
    for entry in entries:
        tag = entry.extra.get(ALGORITHM_EXTRA_KEY) if entry.extra else None
        if tag is not None:
            if tag not in names:
                raise ValueError(f"entry {entry.path!r} names unknown digest algorithm {tag!r}")
            return names[tag]
    return DEFAULT_ALGORITHM
