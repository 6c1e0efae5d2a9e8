"""The browser's URLs, in W&B's shape, built in one place so pages, JSON and tests agree.

``/<entity>/<project>/artifacts/<type>/<collection>/v<N>`` is a contract: ``Artifact.url``
builds it from ``DAGSTER_ARTIFACTS_UI_URL``. The rest follow the same pattern.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit, urlunsplit

from dagster_artifacts.urls import collection_path as collection_url
from dagster_artifacts.urls import project_path as project_url
from dagster_artifacts.urls import quote_part as _q
from dagster_artifacts.urls import version_path as version_url

__all__ = ["collection_url", "project_url", "version_url"]


def file_url(entity: str, project: str, type: str, name: str, index: int, path: str) -> str:
    return f"{version_url(entity, project, type, name, index)}/files/{quote(path)}"


def lineage_url(entity: str, project: str, type: str, name: str, index: int) -> str:
    return f"{version_url(entity, project, type, name, index)}/lineage"


def diff_url(entity: str, project: str, type: str, name: str, a: int, b: int) -> str:
    return f"{collection_url(entity, project, type, name)}/diff?a=v{a}&b=v{b}"


def runs_url(entity: str, project: str) -> str:
    return f"/{_q(entity)}/{_q(project)}/runs"


def run_url(entity: str, project: str, run_id: str) -> str:
    return f"{runs_url(entity, project)}/{_q(run_id)}"


def dagster_run_url(dagster_url: str | None, run_id: str, group: str | None) -> str | None:
    """The Dagster UI's page of the Dagster run behind an artifacts run, if there is one.

    A Dagster step's artifacts run has the Dagster run id as its group and an id made from it
    (``dg-<first 8 characters>-<hash>``, see ``dagster_artifacts.dagster.resource.step_run_id``);
    a plain ``init(group=...)`` run is not a Dagster run and gets no link.
    """
    if not dagster_url or not group or not run_id.startswith(f"dg-{group[:8]}-"):
        return None
    return f"{dagster_url.rstrip('/')}/runs/{_q(group)}"


def redact_uri(uri: str) -> str:
    """``uri`` without a user name, password or query string (signed URLs carry tokens there):
    a page never shows a credential, even one somebody put into a reference's URI."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = "***" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def shown_digest(digest: str) -> str:
    """A digest as a page shows it: a reference logged without a checksum has its URI as its
    digest (W&B's convention), which is redacted like the URI."""
    return redact_uri(digest) if "://" in digest else digest
