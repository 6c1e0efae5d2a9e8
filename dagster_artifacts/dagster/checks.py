"""``build_artifact_checks``: what ``verify()`` proves, as Dagster asset checks.

Each check, named ``artifact_verified``, downloads the version the asset's latest
materialization points at (or, for an asset that was never materialized in Dagster, such as an
external spec, ``latest``) straight from the store, bypassing the local cache: every blob must be
present and hash to its digest, every checked reference (s3/gs/http/file) must be unchanged. The
result names the version, how many entries were checked, and each problem.
"""

import os
import tempfile
from collections.abc import Iterable, Sequence
from typing import Any

import dagster as dg

from dagster_artifacts.artifact import Artifact
from dagster_artifacts.dagster import metadata as keys
from dagster_artifacts.dagster.io_manager import artifact_name_for
from dagster_artifacts.dagster.resource import ArtifactsResource
from dagster_artifacts.errors import ArtifactError, ArtifactNotFoundError, ConfigurationError

CHECK_NAME = "artifact_verified"
#: Problems listed in a check result's metadata (all are counted).
MAX_LISTED = 20
#: Entries downloaded one by one to name each problem, once the whole download failed.
MAX_ONE_BY_ONE = 1000

CheckTarget = (
    dg.AssetsDefinition | dg.AssetSpec | dg.SourceAsset | dg.AssetKey | str | Sequence[str]
)


def verify_version(artifact: Artifact) -> tuple[int, list[str]]:
    """``(entries checked, problems)`` for one logged version, read from the store itself."""
    entries = sorted(artifact.manifest.entries)
    with tempfile.TemporaryDirectory(prefix="artifact-verify-") as scratch:
        try:
            folder = artifact.download(os.path.join(scratch, "all"), skip_cache=True)
            artifact.verify(folder)
            return len(entries), []
        except ArtifactError as error:
            whole = f"{type(error).__name__}: {error}"
        problems: list[str] = []
        one = os.path.join(scratch, "one")
        for path in entries[:MAX_ONE_BY_ONE]:
            try:
                artifact.download(one, skip_cache=True, path_prefix=path)
            except ArtifactError as error:
                problems.append(f"{path}: {type(error).__name__}: {error}")
        return len(entries), problems or [whole]


def _targets(assets: Iterable[CheckTarget]) -> list[tuple[dg.AssetKey, str | None]]:
    """``(asset key, artifact name from the definition if it names one)`` per asset."""
    found: dict[dg.AssetKey, str | None] = {}
    for item in assets:
        if isinstance(item, dg.AssetsDefinition):
            for spec in item.specs:
                found[spec.key] = _configured_name(spec.metadata)
        elif isinstance(item, (dg.AssetSpec, dg.SourceAsset)):
            found[item.key] = _configured_name(item.metadata)
        else:
            try:
                key = (
                    dg.AssetKey.from_user_string(item)
                    if isinstance(item, str)
                    else dg.AssetKey.from_coercible(item)
                )
                found[key] = None
            except Exception:
                raise ConfigurationError(
                    "build_artifact_checks takes asset definitions, AssetSpecs or asset keys "
                    f"(AssetKey, 'a/b' strings, lists of parts); got {item!r}."
                ) from None
    if not found:
        raise ConfigurationError("build_artifact_checks needs at least one asset to check.")
    return list(found.items())


def _configured_name(metadata: Any) -> str | None:
    raw = (metadata or {}).get("artifact")
    name = raw.get("name") if isinstance(raw, dict) else None
    return name if isinstance(name, str) else None


def _versions_to_check(
    context: dg.AssetCheckExecutionContext, key: dg.AssetKey, configured: str | None
) -> list[str]:
    """``name:version`` of what the latest materialization logged, else ``name:latest``."""
    record = context.instance.get_latest_materialization_event(key)
    materialization = record.asset_materialization if record else None
    if materialization is not None:
        meta = materialization.metadata
        name = getattr(meta.get(keys.NAME), "value", None)
        version = getattr(meta.get(keys.VERSION), "value", None)
        if isinstance(name, str) and isinstance(version, str):
            return [f"{name}:{version}"]
        if isinstance(name, str) and isinstance(version, dict):  # a range run, before 0.2
            return [f"{name}:{v}" for v in sorted(set(version.values()))]
    return [f"{configured or artifact_name_for(key)}:latest"]


def _build_check(
    key: dg.AssetKey, configured: str | None, store: ArtifactsResource, blocking: bool
) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=key,
        name=CHECK_NAME,
        blocking=blocking,
        description="Every blob of the asset's artifact version is in the store and matches its "
        "digest; every checked reference is unchanged (dagster-artifacts verify).",
    )
    def _verified(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        api = store.api()
        checked = 0
        problems: list[str] = []
        names = _versions_to_check(context, key, configured)
        resolved: list[str] = []  # ``name:vN`` even when asked for ``name:latest``
        for name in names:
            try:
                artifact = api.artifact(name)
            except ArtifactNotFoundError as error:
                problems.append(f"{name}: not in the registry ({error})")
                resolved.append(name)
                continue
            resolved.append(f"{artifact.collection_name}:{artifact.version}")
            count, found = verify_version(artifact)
            checked += count
            problems.extend(f"{artifact.name} {problem}" for problem in found)
        versions = ", ".join(resolved)
        return dg.AssetCheckResult(
            passed=not problems,
            description=(
                f"{versions}: {checked} entries verified"
                if not problems
                else f"{versions}: {len(problems)} problem(s) in {checked} entries"
            ),
            metadata={
                keys.VERSION: dg.MetadataValue.text(versions),
                keys.CHECKED_ENTRIES: dg.MetadataValue.int(checked),
                keys.PROBLEMS: dg.MetadataValue.json(problems[:MAX_LISTED]),
                "artifact/problem_count": dg.MetadataValue.int(len(problems)),
            },
        )

    return _verified


def build_artifact_checks(
    assets: Sequence[CheckTarget] | CheckTarget,
    *,
    store: ArtifactsResource,
    blocking: bool = False,
) -> list[dg.AssetChecksDefinition]:
    """One ``artifact_verified`` asset check per asset (definitions, specs or keys).

    With ``blocking=True``, a failed check stops downstream assets in the same run from
    materializing (Dagster's blocking checks: the check must run in the run that materializes
    the asset, which it does when both are selected).
    """
    items: Iterable[CheckTarget]
    if isinstance(assets, (dg.AssetsDefinition, dg.AssetSpec, dg.SourceAsset, dg.AssetKey, str)):
        items = [assets]
    else:
        items = assets
    return [_build_check(key, configured, store, blocking) for key, configured in _targets(items)]
