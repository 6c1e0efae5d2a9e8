"""The diff page: what changed between two versions of one artifact.

Files are compared by manifest (path, digest, size), so nothing is downloaded for that. A changed
table (a Parquet file, a ``Table``'s ``.table.json``) also gets its schema and row-count change:
the file is fetched through the artifact (verified against its digest, via the download cache)
and, for Parquet, pyarrow reads only the footer (schema and row count), never the row groups.
"""

from __future__ import annotations

import json
import tempfile
from typing import Any

from dagster_artifacts.artifact import Artifact
from dagster_artifacts.browser import links
from dagster_artifacts.browser.pages import Scope, find_version, size_text, version_ref
from dagster_artifacts.entries import ArtifactEntry

PARQUET_SUFFIXES = (".parquet", ".pq")
TABLE_SUFFIX = ".table.json"
#: A ``.table.json`` is read whole (it is JSON); past this size its shape is not shown.
MAX_TABLE_JSON_BYTES = 50 * 1024 * 1024


def is_table(path: str) -> bool:
    return path.endswith(PARQUET_SUFFIXES) or path.endswith(TABLE_SUFFIX)


def table_shape(entry: ArtifactEntry, workdir: str) -> dict[str, Any] | None:
    """``{"columns": {name: type}, "rows": n}`` of a table entry, or None if it is not one."""
    if entry.ref() is not None:
        return None
    if entry.path.endswith(PARQUET_SUFFIXES):
        import pyarrow.parquet as pq

        local = entry.download(workdir)
        metadata = pq.read_metadata(local)  # the footer only
        schema = metadata.schema.to_arrow_schema()
        return {
            "columns": {field.name: str(field.type) for field in schema},
            "rows": metadata.num_rows,
        }
    if entry.path.endswith(TABLE_SUFFIX) and (entry.size or 0) <= MAX_TABLE_JSON_BYTES:
        local = entry.download(workdir)
        with open(local, encoding="utf-8") as handle:
            data = json.load(handle)
        type_map = ((data.get("column_types") or {}).get("params") or {}).get("type_map") or {}
        columns = [str(c) for c in data.get("columns") or []]
        return {
            "columns": {
                c: (type_map.get(c) or {}).get("wb_type", "unknown") if type_map else "unknown"
                for c in columns
            },
            "rows": len(data.get("data") or []),
        }
    return None


def table_change(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    old, new = before["columns"], after["columns"]
    return {
        "columns_added": [{"name": c, "type": new[c]} for c in new if c not in old],
        "columns_removed": [{"name": c, "type": old[c]} for c in old if c not in new],
        "columns_retyped": [
            {"name": c, "before": old[c], "after": new[c]}
            for c in new
            if c in old and old[c] != new[c]
        ],
        "rows_before": before["rows"],
        "rows_after": after["rows"],
        "rows_delta": after["rows"] - before["rows"],
    }


def _file(entry: ArtifactEntry) -> dict[str, Any]:
    reference = entry.ref()
    return {
        "path": entry.path,
        "size": entry.size,
        "size_text": size_text(entry.size),
        "digest": links.shown_digest(entry.digest),
        "ref": links.redact_uri(reference) if reference else None,
    }


def diff_versions(a: Artifact, b: Artifact) -> dict[str, Any]:
    """Files added, removed and changed from ``a`` to ``b`` (and table shape changes)."""
    before = {entry.path: entry for entry in a.files()}
    after = {entry.path: entry for entry in b.files()}
    added = [_file(after[p]) for p in sorted(after.keys() - before.keys())]
    removed = [_file(before[p]) for p in sorted(before.keys() - after.keys())]
    changed = []
    unchanged = 0
    with tempfile.TemporaryDirectory(prefix="dagster-artifacts-diff-") as workdir:
        for path in sorted(before.keys() & after.keys()):
            old, new = before[path], after[path]
            if (old.digest, old.size, old.ref()) == (new.digest, new.size, new.ref()):
                unchanged += 1
                continue
            row: dict[str, Any] = {
                "path": path,
                "size_before": old.size,
                "size_after": new.size,
                "size_before_text": size_text(old.size),
                "size_after_text": size_text(new.size),
                "digest_before": links.shown_digest(old.digest),
                "digest_after": links.shown_digest(new.digest),
                "table": None,
            }
            if is_table(path):
                shape_before = table_shape(old, f"{workdir}/a")
                shape_after = table_shape(new, f"{workdir}/b")
                if shape_before is not None and shape_after is not None:
                    row["table"] = table_change(shape_before, shape_after)
            changed.append(row)
    metadata_changes = [
        {"key": key, "before": a.metadata.get(key), "after": b.metadata.get(key)}
        for key in sorted(a.metadata.keys() | b.metadata.keys())
        if a.metadata.get(key) != b.metadata.get(key)
    ]
    return {
        "added": added,
        "removed": removed,
        "changed": changed,
        "unchanged": unchanged,
        "metadata_changes": metadata_changes,
        "size_before": a.size,
        "size_after": b.size,
    }


def diff_page(
    scope: Scope, entity: str, project: str, type_name: str, name: str, a: int, b: int
) -> dict[str, Any]:
    first = find_version(scope, entity, project, type_name, name, a)
    second = find_version(scope, entity, project, type_name, name, b)
    versions = scope.api.artifact_versions(type_name, f"{entity}/{project}/{name}")
    return {
        "title": f"{name}: v{a} → v{b}",
        "entity": entity,
        "project": project,
        "name": name,
        "type": type_name,
        "a": {**version_ref(first), "digest": first.digest, "aliases": list(first.aliases)},
        "b": {**version_ref(second), "digest": second.digest, "aliases": list(second.aliases)},
        "choices": [v.version for v in versions],
        "versions_url": links.collection_url(entity, project, type_name, name),
        "project_url": links.project_url(entity, project),
        **diff_versions(first, second),
    }
