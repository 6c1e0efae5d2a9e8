"""Artifacts logged outside Dagster (a training script, a notebook) as assets in the graph.

``external_artifact_specs(store)`` turns each such artifact into a ``dg.AssetSpec`` whose deps
come from the registry's lineage: the versions that the run logging the artifact used, mapped to
the Dagster asset that produced them when one did. So the asset graph shows lineage across the
boundary between Dagster and plain scripts, and downstream assets load these artifacts through
``ArtifactsIOManager`` (the spec carries the artifact's name in its ``"artifact"`` metadata).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import dagster as dg

from dagster_artifacts.artifact import Artifact
from dagster_artifacts.collection import ArtifactCollection
from dagster_artifacts.dagster import metadata as keys
from dagster_artifacts.dagster.resource import ArtifactsResource
from dagster_artifacts.errors import ArtifactNotFoundError, ConfigurationError

#: The kind shown on every spec (a badge in the Dagster UI, a filter in ``dg list defs``).
KIND = "artifacts"


def logged_by_dagster(artifact: Artifact) -> bool:
    """Whether the IO manager logged this version (it records its handler or asset key)."""
    metadata = artifact.metadata
    return any(key in metadata for key in (keys.HANDLER, keys.ASSET_KEY, keys.OP_OUTPUT))


def made_by_dagster(latest: Artifact, collection: ArtifactCollection[Artifact] | None) -> bool:
    """Whether a Dagster asset or op produces this artifact: the IO manager logged any of its
    versions. Such an artifact is that asset, even when a script logged its latest version (a
    hand-made data fix): a second, external asset for it would clash with the real one."""
    if logged_by_dagster(latest):
        return True
    return collection is not None and any(logged_by_dagster(v) for v in collection.artifacts())


def external_asset_key(name: str, key_prefix: str | Sequence[str] | None = None) -> dg.AssetKey:
    """The asset key of an external artifact: its name (``a.b`` -> ``a/b``, as the IO manager
    names ``a/b`` -> ``a.b``), under ``key_prefix``."""
    prefix = [key_prefix] if isinstance(key_prefix, str) else list(key_prefix or [])
    parts = [part for part in name.split(".") if part]
    return dg.AssetKey([*prefix, *parts])


def _asset_key_of(artifact: Artifact, key_prefix: str | Sequence[str] | None) -> dg.AssetKey:
    """The Dagster asset a version belongs to: the one that produced it, else its external key."""
    recorded = artifact.metadata.get(keys.ASSET_KEY)
    if isinstance(recorded, list) and recorded and all(isinstance(p, str) for p in recorded):
        return dg.AssetKey(recorded)
    return external_asset_key(artifact.collection_name, key_prefix)


def _upstream_keys(artifact: Artifact, key_prefix: str | Sequence[str] | None) -> list[dg.AssetKey]:
    producer = artifact.logged_by()
    if producer is None:
        return []
    upstream: dict[dg.AssetKey, None] = {}
    for used in producer.used_artifacts():
        if used.collection_name == artifact.collection_name:
            continue  # a run that read an older version of what it writes: no self-edge
        if not logged_by_dagster(used) or keys.ASSET_KEY in used.metadata:
            upstream[_asset_key_of(used, key_prefix)] = None
    return list(upstream)


def external_artifact_specs(
    store: ArtifactsResource,
    names: Iterable[str] | None = None,
    *,
    key_prefix: str | Sequence[str] | None = None,
    group_name: str | None = None,
) -> list[dg.AssetSpec]:
    """One ``dg.AssetSpec`` per artifact logged outside Dagster (all of them when ``names`` is
    None: every artifact of which the IO manager wrote no version).

    Each spec is keyed by the artifact name (under ``key_prefix``), has ``kinds={"artifacts"}``,
    the collection's description, and ``deps`` from the lineage of the artifact's latest version.
    Read at definition load time: a new external artifact appears when the code location reloads.
    """
    if isinstance(names, str):
        raise ConfigurationError(
            f"external_artifact_specs(names=...) takes a list of artifact names, not the string "
            f"{names!r}; write names=[{names!r}]."
        )
    api = store.api()
    collections = {c.name: c for c in api.artifact_collections()}
    wanted = list(names) if names is not None else sorted(collections)
    specs: list[dg.AssetSpec] = []
    for name in wanted:
        try:
            latest = api.artifact(f"{name}:latest")
        except ArtifactNotFoundError:
            if names is None:
                continue  # no version carries ``latest`` any more
            raise ArtifactNotFoundError(
                f"external_artifact_specs: artifact {name!r} has no version yet; log it first "
                f"(the artifacts here are {sorted(collections)[:10]})."
            ) from None
        collection = collections.get(name)
        if names is None and made_by_dagster(latest, collection):
            continue
        description = (collection.description if collection else None) or latest.description
        specs.append(
            dg.AssetSpec(
                key=external_asset_key(name, key_prefix),
                deps=_upstream_keys(latest, key_prefix),
                description=description,
                group_name=group_name,
                kinds={KIND},
                metadata=_spec_metadata(latest),
            )
        )
    return specs


def _spec_metadata(latest: Artifact) -> dict[str, Any]:
    return {
        # What the IO manager reads to load this asset as an input, and the checks to verify it.
        "artifact": {"name": latest.collection_name},
        keys.NAME: dg.MetadataValue.text(latest.collection_name),
        "artifact/type": dg.MetadataValue.text(latest.type),
        "artifact/project": dg.MetadataValue.text(f"{latest.entity}/{latest.project}"),
    }
