"""The Dagster UI in headless chromium, on the instance the example recorded into: an asset's
page shows the ``artifact/version`` its materialization logged, and its ``artifact/link`` to the
version's page in the artifact browser opens that page."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import REPO, Example, screenshot
from tests.services.webserver import dagster_webserver

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser")]


def test_dagster_ui_shows_the_artifact_version_of_an_asset(
    page: Any, example: Example, browser_url: str
) -> None:
    with dagster_webserver(example.home, REPO, example.root / "webserver.log", example.env) as base:
        page.set_default_timeout(60_000)
        page.goto(f"{base}/assets/bike_model")
        label = page.get_by_text("artifact/version", exact=True).first
        label.wait_for()
        skip = page.get_by_role("button", name="Skip")  # Dagster's first-visit newsletter box
        if skip.count():
            skip.first.click()
        # The asset's metadata table: key, timestamp, value.
        cells = label.locator("xpath=ancestor::tr[1]/td").all_inner_texts()
        assert (cells[0].strip(), cells[-1].strip()) == ("artifact/version", "v0")
        name = page.get_by_text("artifact/name", exact=True).first
        assert name.locator("xpath=ancestor::tr[1]/td").all_inner_texts()[-1].strip() == (
            "bike-model"
        )
        label.scroll_into_view_if_needed()
        screenshot(page, "dagster-asset", full_page=False)

        # The materialization's link to the browser (MetadataValue.url, written by the IO
        # manager when DAGSTER_ARTIFACTS_UI_URL is set; an IO manager without it has no row).
        link = page.get_by_text("artifact/link", exact=True)
        if link.count():
            href = link.first.locator("xpath=ancestor::tr[1]//a").first.get_attribute("href")
            assert href == f"{browser_url}/default/bike-sharing/artifacts/model/bike-model/v0"
            page.goto(href)
            assert page.inner_text("h1").startswith("bike-model:v0")
