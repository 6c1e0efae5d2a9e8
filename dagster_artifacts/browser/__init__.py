"""The artifact browser: a read-only web app over a store and its registry
(``dagster-artifacts ui``, ``make ui``).

Pages: projects, a project's artifacts (with search), an artifact's versions, a version (files
with verified downloads, references, metadata), its lineage graph, a diff of two versions, and
runs with links to the Dagster UI. Every page is also JSON (``?format=json`` or
``Accept: application/json``). Like the CLI it is a face over :class:`dagster_artifacts.Api`;
it needs the ``[ui]`` extra (Starlette, Jinja2, uvicorn).
"""

from __future__ import annotations

from dagster_artifacts.browser.app import create_app, serve

__all__ = ["create_app", "serve"]
