"""The Starlette application: routes, HTML or JSON for every page, verified file downloads.

Read-only: no route writes to the store or the registry. Handlers are plain functions, so
Starlette runs them on its thread pool (the API is synchronous and thread-safe).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from dagster_artifacts.api import Api
from dagster_artifacts.browser import links, pages
from dagster_artifacts.browser.diff import diff_page
from dagster_artifacts.browser.graph import DEFAULT_BREADTH, lineage_page
from dagster_artifacts.browser.pages import Scope, find_version, parse_version
from dagster_artifacts.errors import (
    ArtifactError,
    ArtifactNotFoundError,
    EntryNotFoundError,
    InvalidArgumentError,
    InvalidNameError,
    RunNotFoundError,
)
from dagster_artifacts.units import format_size

#: Limits of the lineage page's ``depth``/``breadth`` query parameters (a page stays drawable).
MAX_DEPTH = 6
MAX_BREADTH = 50


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def format_when(value: datetime | str | None) -> str:
    """A timestamp to the second; the API gives W&B's ISO strings, the registry datetimes."""
    if not value:
        return ""
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.strftime("%Y-%m-%d %H:%M:%S")


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=_json_default)


def wants_json(request: Request) -> bool:
    """``?format=json``, or an ``Accept`` header that asks for JSON rather than HTML."""
    if request.query_params.get("format") == "json":
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("dagster_artifacts.browser", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = format_when
    env.filters["size"] = lambda v: "" if v is None else format_size(v)
    env.filters["tojson_pretty"] = to_json
    env.filters["short"] = lambda v, n=12: "" if v is None else str(v)[:n]
    return env


def create_app(api: Api | None = None, dagster_url: str | None = None) -> Starlette:
    """The browser over ``api`` (default: ``Api()`` from the environment). ``dagster_url``
    (default ``DAGSTER_ARTIFACTS_DAGSTER_URL``) is the Dagster UI that run pages link to."""
    scope = Scope(
        api=api if api is not None else Api(),
        dagster_url=dagster_url or os.environ.get("DAGSTER_ARTIFACTS_DAGSTER_URL") or None,
    )
    env = _environment()

    def page(template: str, build: Callable[[Request], dict[str, Any]]) -> Callable[..., Response]:
        def endpoint(request: Request) -> Response:
            try:
                data = build(request)
            except (ArtifactNotFoundError, RunNotFoundError, EntryNotFoundError) as error:
                return _error(request, env, 404, error)
            except (InvalidArgumentError, InvalidNameError) as error:
                return _error(request, env, 400, error)
            except ArtifactError as error:
                return _error(request, env, 500, error)
            if wants_json(request):
                return Response(to_json(data), media_type="application/json")
            html = env.get_template(template).render(
                **data, data=data, json_url=_json_url(request), request_path=request.url.path
            )
            return HTMLResponse(html)

        return endpoint

    def p(request: Request, key: str) -> str:
        return str(request.path_params[key])

    def download(request: Request) -> Response:
        """One file, fetched through the artifact (checked against its digest on the way into
        a temporary folder), then streamed; the folder goes once the response is sent."""
        try:
            artifact = find_version(
                scope,
                p(request, "entity"),
                p(request, "project"),
                p(request, "type"),
                p(request, "name"),
                int(request.path_params["index"]),
            )
            entry = artifact.get_entry(p(request, "path"))
        except (ArtifactNotFoundError, EntryNotFoundError) as error:
            return _error(request, env, 404, error)
        if entry.ref() is not None:
            return _error(
                request,
                env,
                404,
                EntryNotFoundError(
                    f"{entry.path} is a reference to {links.redact_uri(entry.ref() or '')}: "
                    "fetch it from there, or download the artifact with the CLI."
                ),
            )
        workdir = tempfile.mkdtemp(prefix="dagster-artifacts-ui-")
        try:
            local = entry.download(workdir)
        except ArtifactError as error:  # a damaged or missing blob: say so, send nothing
            shutil.rmtree(workdir, ignore_errors=True)
            return _error(request, env, 500, error)
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        return FileResponse(
            local,
            filename=os.path.basename(entry.path),
            headers={"X-Artifact-Digest": entry.digest, "Cache-Control": "no-store"},
            background=BackgroundTask(shutil.rmtree, workdir, ignore_errors=True),
        )

    def project_home(request: Request) -> Response:
        return RedirectResponse(links.project_url(p(request, "entity"), p(request, "project")))

    def depth_and_breadth(request: Request) -> tuple[int, int]:
        try:
            depth = int(request.query_params.get("depth", 2))
            breadth = int(request.query_params.get("breadth", DEFAULT_BREADTH))
        except ValueError:
            raise InvalidArgumentError(
                "depth and breadth must be whole numbers, e.g. ?depth=2&breadth=10."
            ) from None
        if not (1 <= depth <= MAX_DEPTH and 1 <= breadth <= MAX_BREADTH):
            raise InvalidArgumentError(
                f"depth must be 1..{MAX_DEPTH} and breadth 1..{MAX_BREADTH} "
                f"(got depth={depth}, breadth={breadth})."
            )
        return depth, breadth

    def version_args(request: Request) -> tuple[str, str, str, str]:
        return (p(request, "entity"), p(request, "project"), p(request, "type"), p(request, "name"))

    routes = [
        Route("/", page("projects.html", lambda r: pages.projects_page(scope))),
        Mount(
            "/static",
            app=StaticFiles(packages=[("dagster_artifacts.browser", "static")]),
            name="static",
        ),
        Route("/{entity}/{project}", project_home),
        Route(
            "/{entity}/{project}/artifacts",
            page(
                "artifacts.html",
                lambda r: pages.artifacts_page(
                    scope,
                    p(r, "entity"),
                    p(r, "project"),
                    r.query_params.get("q", ""),
                    r.query_params.get("type") or None,
                ),
            ),
        ),
        Route(
            "/{entity}/{project}/artifacts/{type}/{name}",
            page("versions.html", lambda r: pages.versions_page(scope, *version_args(r))),
        ),
        Route(
            "/{entity}/{project}/artifacts/{type}/{name}/diff",
            page(
                "diff.html",
                lambda r: diff_page(
                    scope,
                    *version_args(r),
                    parse_version(r.query_params.get("a"), "a"),
                    parse_version(r.query_params.get("b"), "b"),
                ),
            ),
        ),
        Route(
            "/{entity}/{project}/artifacts/{type}/{name}/v{index:int}",
            page(
                "version.html",
                lambda r: pages.version_page(scope, *version_args(r), r.path_params["index"]),
            ),
        ),
        Route(
            "/{entity}/{project}/artifacts/{type}/{name}/v{index:int}/lineage",
            page(
                "lineage.html",
                lambda r: lineage_page(
                    scope, *version_args(r), r.path_params["index"], *depth_and_breadth(r)
                ),
            ),
        ),
        Route(
            "/{entity}/{project}/artifacts/{type}/{name}/v{index:int}/files/{path:path}", download
        ),
        Route(
            "/{entity}/{project}/runs",
            page("runs.html", lambda r: pages.runs_page(scope, p(r, "entity"), p(r, "project"))),
        ),
        Route(
            "/{entity}/{project}/runs/{run_id}",
            page(
                "run.html",
                lambda r: pages.run_page(scope, p(r, "entity"), p(r, "project"), p(r, "run_id")),
            ),
        ),
    ]
    app = Starlette(routes=routes)
    app.state.scope = scope
    return app


def _json_url(request: Request) -> str:
    query = dict(request.query_params)
    query["format"] = "json"
    return f"{request.url.path}?{urlencode(query)}"


def _error(request: Request, env: Environment, status: int, error: Exception) -> Response:
    message = str(error.args[0]) if error.args else str(error)
    if wants_json(request):
        return Response(
            to_json({"error": type(error).__name__, "message": message}),
            status_code=status,
            media_type="application/json",
        )
    html = env.get_template("error.html").render(
        title="Not found" if status == 404 else "Error",
        status=status,
        message=message,
        json_url=None,
        request_path=request.url.path,
    )
    return HTMLResponse(html, status_code=status)


def serve(
    api: Api, host: str = "127.0.0.1", port: int = 3001, dagster_url: str | None = None
) -> None:
    """Run the browser with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(create_app(api, dagster_url), host=host, port=port, log_level="warning")
