"""What the parity suite compares, and how a difference is told.

Both sides are reduced to what a user of either library can check on a draft: the artifact
digest, the manifest's top level, and for every entry its path, digest, size, ref, extra and
birthArtifactID; plus which steps raised (the error types differ by design: this project raises
its own typed errors, W&B mostly ``ValueError``; that a step was refused is what must agree).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

ENTRY_FIELDS = ("digest", "size", "ref", "extra", "birthArtifactID")


class ParityDifference(AssertionError):
    """The two libraries built different artifacts from the same calls."""


def deliberate(reason: str) -> pytest.MarkDecorator:
    """A case where this project differs from W&B on purpose (``differences.reason(label)``).

    The test must still find the difference: should W&B (or this project) change so that both
    agree, the strict xfail fails and the case and the README entry go.
    """
    return pytest.mark.xfail(reason=f"deliberate: {reason}", raises=ParityDifference, strict=True)


#: ``storagePolicyConfig.digestAlgorithm``: this project's own key, on purpose (differences.py,
#: "The manifest names its digest algorithm").
OWN_CONFIG_KEY = "digestAlgorithm"


def without_own_config(result: dict[str, Any], algorithm: str) -> dict[str, Any]:
    """Our result with :data:`OWN_CONFIG_KEY` checked (present exactly for a non-MD5
    algorithm, naming it) and taken out, so the rest compares with W&B's."""
    manifest = result.get("manifest")
    if manifest is None:
        return result
    config = dict(manifest["storagePolicyConfig"])
    recorded = config.pop(OWN_CONFIG_KEY, None)
    assert recorded == (None if algorithm == "md5" else algorithm), (recorded, algorithm)
    return {**result, "manifest": {**manifest, "storagePolicyConfig": config}}


def normalize(result: dict[str, Any]) -> dict[str, Any]:
    manifest = result.get("manifest")
    if manifest is None:
        return {"digest": None, "top": None, "entries": {}, "errors": result["errors"]}
    entries = {}
    for path, entry in manifest["contents"].items():
        fields = {name: entry.get(name) for name in ENTRY_FIELDS}
        fields["extra"] = fields["extra"] or {}
        entries[path] = fields
    top = {key: manifest.get(key) for key in ("version", "storagePolicy", "storagePolicyConfig")}
    return {"digest": result["digest"], "top": top, "entries": entries, "errors": result["errors"]}


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) < 300 else text[:300] + "..."


def differences(theirs: dict[str, Any], ours: dict[str, Any]) -> list[str]:
    """Every way ``ours`` differs from wandb's ``theirs``, one line each (empty: the same)."""
    found = []
    if sorted(theirs["errors"]) != sorted(ours["errors"]):
        found.append(
            "steps that raised: wandb "
            + _short({k: f"{v['type']}: {v['message'][:150]}" for k, v in theirs["errors"].items()})
            + ", ours "
            + _short({k: f"{v['type']}: {v['message'][:150]}" for k, v in ours["errors"].items()})
        )
    if theirs["top"] != ours["top"]:
        found.append(f"manifest: wandb {_short(theirs['top'])}, ours {_short(ours['top'])}")
    only_theirs = sorted(set(theirs["entries"]) - set(ours["entries"]))
    only_ours = sorted(set(ours["entries"]) - set(theirs["entries"]))
    if only_theirs:
        found.append(f"{len(only_theirs)} entries only in wandb's: {_short(only_theirs[:8])}")
    if only_ours:
        found.append(f"{len(only_ours)} entries only in ours: {_short(only_ours[:8])}")
    for path in sorted(set(theirs["entries"]) & set(ours["entries"])):
        for name in ENTRY_FIELDS:
            mine, other = ours["entries"][path].get(name), theirs["entries"][path].get(name)
            if mine != other:
                found.append(f"{path!r} {name}: wandb {_short(other)}, ours {_short(mine)}")
    if theirs["digest"] != ours["digest"] and not found:
        found.append(f"artifact digest: wandb {theirs['digest']}, ours {ours['digest']}")
    elif theirs["digest"] != ours["digest"]:
        found.insert(0, f"artifact digest: wandb {theirs['digest']}, ours {ours['digest']}")
    return found
