"""What each page shows, as plain data: the HTML templates render it and ``?format=json``
returns it as is, so a script (or a test) reads exactly what a person sees.

Everything goes through :class:`dagster_artifacts.Api` (the browser is a face, like the CLI).
Nothing here returns settings: the store's credentials (``storage_options``, a database URL
with a password) never reach a page, and reference URIs lose their user info and query.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dagster_artifacts.api import Api
from dagster_artifacts.artifact import Artifact
from dagster_artifacts.browser import links
from dagster_artifacts.errors import ArtifactNotFoundError, InvalidArgumentError
from dagster_artifacts.units import format_size

if TYPE_CHECKING:
    from dagster_artifacts.lineage import LineageRun


@dataclass(frozen=True)
class Scope:
    """What the browser was started with: the API and where the Dagster UI is (if known)."""

    api: Api
    dagster_url: str | None = None


def size_text(value: int | None) -> str:
    return "" if value is None else format_size(value)


def version_ref(artifact: Artifact) -> dict[str, Any]:
    """A version as other pages link to it."""
    return {
        "name": artifact.collection_name,
        "version": artifact.version,
        "qualified_name": artifact.qualified_name,
        "type": artifact.type,
        "url": links.version_url(
            artifact.entity,
            artifact.project,
            artifact.type,
            artifact.collection_name,
            artifact.version_index,
        ),
    }


def run_ref(scope: Scope, run: LineageRun[Artifact], entity: str, project: str) -> dict[str, Any]:
    """A run as other pages link to it: its step name, job type and Dagster run."""
    return {
        "id": run.id,
        "name": run.name,
        "job_type": run.job_type,
        "group": run.group,
        "state": run.state,
        "created_at": run.created_at,
        "url": links.run_url(entity, project, run.id),
        "dagster_url": links.dagster_run_url(scope.dagster_url, run.id, run.group),
    }


# -- projects and artifacts -------------------------------------------------------------------
def projects_page(scope: Scope) -> dict[str, Any]:
    rows = []
    for entity, project in scope.api.projects():
        collections = scope.api.artifact_collections(f"{entity}/{project}")
        rows.append(
            {
                "entity": entity,
                "project": project,
                "artifacts": len(collections),
                "versions": sum(c.version_count for c in collections),
                "size": sum(c.size for c in collections),
                "size_text": size_text(sum(c.size for c in collections)),
                "url": links.project_url(entity, project),
                "runs_url": links.runs_url(entity, project),
            }
        )
    return {"title": "Projects", "projects": rows}


def artifacts_page(
    scope: Scope, entity: str, project: str, query: str = "", type_name: str | None = None
) -> dict[str, Any]:
    """Every artifact of the project with its latest version and aliases; ``query`` keeps those
    whose name, type or an alias contains it (case-insensitive)."""
    api = scope.api
    needle = query.strip().lower()
    rows = []
    types = api.artifact_types(f"{entity}/{project}")
    for collection in api.artifact_collections(f"{entity}/{project}", type_name or None):
        versions = api.artifact_versions(collection.type, f"{entity}/{project}/{collection.name}")
        aliases = sorted(
            ({"alias": alias, "version": v.version} for v in versions for alias in v.aliases),
            key=lambda item: (item["alias"] != "latest", item["alias"]),
        )
        haystack = [collection.name, collection.type, *(a["alias"] for a in aliases)]
        if needle and not any(needle in text.lower() for text in haystack):
            continue
        latest = next((v for v in versions if "latest" in v.aliases), None) or (
            versions[-1] if versions else None
        )
        rows.append(
            {
                "name": collection.name,
                "type": collection.type,
                "description": collection.description,
                "versions": collection.version_count,
                "latest": latest.version if latest else None,
                "latest_url": version_ref(latest)["url"] if latest else None,
                "aliases": aliases,
                "size": collection.size,
                "size_text": size_text(collection.size),
                "url": links.collection_url(entity, project, collection.type, collection.name),
            }
        )
    return {
        "title": f"{entity}/{project}",
        "entity": entity,
        "project": project,
        "query": query,
        "type": type_name,
        "types": types,
        "artifacts": rows,
        "runs_url": links.runs_url(entity, project),
    }


def versions_page(
    scope: Scope, entity: str, project: str, type_name: str, name: str
) -> dict[str, Any]:
    versions = scope.api.artifact_versions(type_name, f"{entity}/{project}/{name}")
    if not versions:
        raise ArtifactNotFoundError(
            f"No artifact {name!r} of type {type_name!r} in {entity}/{project}; "
            f"{links.project_url(entity, project)} lists the project's artifacts."
        )
    rows = []
    for version in versions:
        producer = version.logged_by()
        rows.append(
            {
                **version_ref(version),
                "index": version.version_index,
                "aliases": list(version.aliases),
                "partition_key": version.partition_key,
                "digest": version.digest,
                "size": version.size,
                "size_text": size_text(version.size),
                "file_count": version.file_count,
                "created_at": version.created_at,
                "logged_by": run_ref(scope, producer, entity, project) if producer else None,
            }
        )
    newest = rows[-1]["index"]
    return {
        "title": f"{name} ({type_name})",
        "entity": entity,
        "project": project,
        "name": name,
        "type": type_name,
        "project_url": links.project_url(entity, project),
        "versions": rows,
        "diff_url": links.collection_url(entity, project, type_name, name) + "/diff",
        "default_diff": {
            "a": f"v{rows[-2]['index']}" if len(rows) > 1 else None,
            "b": f"v{newest}",
        },
    }


def find_version(
    scope: Scope, entity: str, project: str, type_name: str, name: str, index: int
) -> Artifact:
    """Version ``index`` of ``entity/project/name``, which must have type ``type_name``."""
    artifact = scope.api.artifact(f"{entity}/{project}/{name}:v{index}")
    if artifact.type != type_name:
        raise ArtifactNotFoundError(
            f"{entity}/{project}/{name}:v{index} has type {artifact.type!r}, not {type_name!r}; "
            f"open {version_ref(artifact)['url']}."
        )
    return artifact


def file_tree(artifact: Artifact) -> list[dict[str, Any]]:
    """The entries as rows of a tree: a row per folder (with the size of what it holds), then
    its files, depth-first in path order; references carry their (redacted) URI."""
    rows: list[dict[str, Any]] = []
    folder_sizes: dict[str, int] = {}
    files = artifact.files()
    for entry in files:
        parts = entry.path.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            folder_sizes[folder] = folder_sizes.get(folder, 0) + (entry.size or 0)
    shown: set[str] = set()
    for entry in files:
        parts = entry.path.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if folder not in shown:
                shown.add(folder)
                rows.append(
                    {
                        "kind": "folder",
                        "path": folder + "/",
                        "name": parts[depth - 1] + "/",
                        "depth": depth - 1,
                        "size": folder_sizes[folder],
                        "size_text": size_text(folder_sizes[folder]),
                    }
                )
        reference = entry.ref()
        rows.append(
            {
                "kind": "reference" if reference else "file",
                "path": entry.path,
                "name": parts[-1],
                "depth": len(parts) - 1,
                "size": entry.size,
                "size_text": size_text(entry.size),
                "digest": links.shown_digest(entry.digest),
                "ref": links.redact_uri(reference) if reference else None,
                "download_url": None
                if reference
                else links.file_url(
                    artifact.entity,
                    artifact.project,
                    artifact.type,
                    artifact.collection_name,
                    artifact.version_index,
                    entry.path,
                ),
            }
        )
    return rows


def version_page(
    scope: Scope, entity: str, project: str, type_name: str, name: str, index: int
) -> dict[str, Any]:
    artifact = find_version(scope, entity, project, type_name, name, index)
    producer = artifact.logged_by()
    consumers = artifact.used_by()
    tree = file_tree(artifact)
    previous = index - 1 if index > 0 else None
    return {
        "title": artifact.name,
        **version_ref(artifact),
        "entity": entity,
        "project": project,
        "index": index,
        "aliases": list(artifact.aliases),
        "partition_key": artifact.partition_key,
        "digest": artifact.digest,
        "digest_algorithm": artifact.digest_algorithm,
        "size": artifact.size,
        "size_text": size_text(artifact.size),
        "file_count": artifact.file_count,
        "created_at": artifact.created_at,
        "ttl_seconds": int(artifact.ttl.total_seconds()) if artifact.ttl else None,
        "description": artifact.description,
        "metadata": artifact.metadata,
        "tags": sorted(getattr(artifact, "tags", None) or []),
        "files": [row for row in tree if row["kind"] == "file"],
        "references": [row for row in tree if row["kind"] == "reference"],
        "tree": tree,
        "logged_by": run_ref(scope, producer, entity, project) if producer else None,
        "used_by": [run_ref(scope, run, entity, project) for run in consumers],
        "project_url": links.project_url(entity, project),
        "versions_url": links.collection_url(entity, project, type_name, name),
        "lineage_url": links.lineage_url(entity, project, type_name, name, index),
        "diff_previous_url": None
        if previous is None
        else links.diff_url(entity, project, type_name, name, previous, index),
    }


# -- runs ---------------------------------------------------------------------------------------
def _refs(artifacts: Iterable[Artifact]) -> list[dict[str, Any]]:
    return [version_ref(a) for a in artifacts]


def runs_page(scope: Scope, entity: str, project: str) -> dict[str, Any]:
    rows = []
    for run in scope.api.runs(f"{entity}/{project}"):
        rows.append(
            {
                **run_ref(scope, run, entity, project),
                "inputs": _refs(run.used_artifacts()),
                "outputs": _refs(run.logged_artifacts()),
            }
        )
    rows.sort(key=lambda row: (row["created_at"] is None, row["created_at"]), reverse=True)
    return {
        "title": f"Runs of {entity}/{project}",
        "entity": entity,
        "project": project,
        "project_url": links.project_url(entity, project),
        "dagster_ui": scope.dagster_url is not None,
        "runs": rows,
    }


def run_page(scope: Scope, entity: str, project: str, run_id: str) -> dict[str, Any]:
    run = scope.api.run(f"{entity}/{project}/{run_id}")
    return {
        "title": f"Run {run.name}",
        **run_ref(scope, run, entity, project),
        "entity": entity,
        "project": project,
        "config": run.config,
        "inputs": _refs(run.used_artifacts()),
        "outputs": _refs(run.logged_artifacts()),
        "project_url": links.project_url(entity, project),
        "runs_url": links.runs_url(entity, project),
    }


def parse_version(text: str | None, what: str) -> int:
    """``"v3"`` or ``"3"`` -> 3; anything else is a typed error saying what to pass."""
    value = (text or "").strip()
    digits = value[1:] if value[:1] in ("v", "V") else value
    if not digits.isdigit():
        raise InvalidArgumentError(
            f"{what} must be a version like 'v0' (got {text!r}); e.g. ?a=v0&b=v1."
        )
    return int(digits)
