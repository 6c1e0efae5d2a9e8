"""The artifact browser on a store the example made, driven in Debian's headless chromium.

One store for the whole module group (making it is the slow part): the example pipeline runs
twice (the second run's outputs are deduplicated re-logs, which the lineage graph folds), then a
"data fix" run logs ``bike-rides:v1`` from ``v0`` with a column dropped, one added and fewer rows,
so the diff has a schema and a row-count change. The browser runs as a user starts it,
``dagster-artifacts ui``, in its own process. Screenshots go to ``test-output/browser/``
(gitignored); ``UPDATE_SCREENSHOTS=1`` also copies the README's three into ``docs/``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.services.webserver import free_port, http_service

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-output" / "browser"
DOCS = REPO / "docs"
CLI = Path(sys.executable).with_name("dagster-artifacts")
#: The Dagster UI the runs link to (not started by these tests: the links are checked as text).
DAGSTER_URL = "http://127.0.0.1:3000"

FIX_RIDES = """
import dagster_artifacts as wandb

api = wandb.Api(project="bike-sharing")
rides = api.artifact("bike-rides:v0").get("data")
fixed = rides.drop(columns=["rain"]).tail(1200).assign(humidity=0.55)
with wandb.init(project="bike-sharing", job_type="data-fix", name="fix_rides") as run:
    run.use_artifact("bike-rides:v0")
    artifact = wandb.Artifact(
        "bike-rides", type="dataset", description="last 50 days; rain replaced by humidity"
    )
    artifact.add(fixed, "data")
    run.log_artifact(artifact, aliases=["cleaned"])
"""


@dataclass(frozen=True)
class Example:
    """The folders and environment of the example's store and Dagster instance."""

    root: Path
    store: Path
    home: Path
    env: dict[str, str]
    #: The port ``browser_url`` serves on, chosen first so that the example's materializations
    #: link to it (``DAGSTER_ARTIFACTS_UI_URL``).
    ui_port: int


def _run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        args, env=env, cwd=REPO, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


@pytest.fixture(scope="session")
def example(tmp_path_factory: pytest.TempPathFactory) -> Example:
    root = tmp_path_factory.mktemp("browser-example")
    ui_port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_ARTIFACTS_")},
        "DAGSTER_ARTIFACTS_ROOT": str(root / "store"),
        "DAGSTER_ARTIFACTS_CACHE_DIR": str(root / "cache"),
        "DAGSTER_ARTIFACTS_DOWNLOAD_DIR": str(root / "downloads"),
        "DAGSTER_HOME": str(root / "dagster_home"),
        "DAGSTER_ARTIFACTS_UI_URL": f"http://127.0.0.1:{ui_port}",
    }
    script = str(REPO / "examples" / "run_pipeline.py")
    _run([sys.executable, script], env)
    _run([sys.executable, script], env)  # unchanged: every output a deduplicated re-log
    _run([sys.executable, "-c", FIX_RIDES], env)
    return Example(root, root / "store", root / "dagster_home", env, ui_port)


@pytest.fixture(scope="session")
def browser_url(example: Example) -> Iterator[str]:
    """``dagster-artifacts ui`` on the example's store, on a free loopback port."""
    port = example.ui_port
    env = {**example.env, "DAGSTER_ARTIFACTS_DAGSTER_URL": DAGSTER_URL}
    base = f"http://127.0.0.1:{port}"
    with http_service(
        [str(CLI), "--project", "bike-sharing", "ui", "--port", str(port)],
        cwd=REPO,
        env=env,
        log_path=example.root / "ui.log",
        probe_url=f"{base}/?format=json",
        startup_seconds=60,
    ):
        yield base


def chromium_path() -> str:
    """Debian's chromium (``.ci/run`` installs it); skipped on a machine without it, except in
    CI, where a missing browser is a failure."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run installs Debian's chromium package")
        pytest.skip("no chromium on this machine: apt-get install chromium")
    return path


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    """Headless chromium through Playwright's Python API (the system browser, no download)."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: object) -> Iterator[object]:
    """A fresh tab, 1400 x 900, that fails the test on any JavaScript error."""
    context = chromium.new_context(  # type: ignore[attr-defined]
        viewport={"width": 1400, "height": 900}, accept_downloads=True
    )
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield tab
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def screenshot(page: object, name: str, *, docs: bool = False, full_page: bool = True) -> Path:
    """Save ``name``.png under test-output/browser/ (and docs/ when UPDATE_SCREENSHOTS=1)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    if full_page:  # the page's content, not the empty viewport below it
        page.locator("body").screenshot(path=str(path))  # type: ignore[attr-defined]
    else:
        page.screenshot(path=str(path))  # type: ignore[attr-defined]
    if docs and os.environ.get("UPDATE_SCREENSHOTS"):
        DOCS.mkdir(exist_ok=True)
        shutil.copyfile(path, DOCS / f"browser-{name}.png")
    return path
