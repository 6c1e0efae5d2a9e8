"""The artifact browser's addresses, in W&B's shape.

``/<entity>/<project>/artifacts/<type>/<collection>/v<N>`` is shared by ``Artifact.url``, the
Dagster ``artifact/link`` metadata and the browser's routes: one function, so a link made by a
pipeline always opens the page the browser serves.
"""

from __future__ import annotations

from urllib.parse import quote


def quote_part(part: str) -> str:
    """One path segment, ``/`` included, percent-encoded."""
    return quote(part, safe="")


def project_path(entity: str, project: str) -> str:
    return f"/{quote_part(entity)}/{quote_part(project)}/artifacts"


def collection_path(entity: str, project: str, type: str, name: str) -> str:
    return f"{project_path(entity, project)}/{quote_part(type)}/{quote_part(name)}"


def version_path(entity: str, project: str, type: str, name: str, index: int) -> str:
    return f"{collection_path(entity, project, type, name)}/v{index}"
