"""What a user checks in the artifact browser, clicked through in headless chromium on a store
the example pipeline made (see conftest): the artifacts list and its search, the versions table,
a version's files and a verified download, the lineage graph (read from cytoscape's own model),
the diff of two versions, the runs and their Dagster links, and every page as JSON."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import DAGSTER_URL, Example, screenshot
from tests.conftest import snapshot_store

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser")]

PROJECT = "/default/bike-sharing"
RIDES = f"{PROJECT}/artifacts/dataset/bike-rides"
FEATURES = f"{PROJECT}/artifacts/dataset/bike-features"
STATIONS = f"{PROJECT}/artifacts/map/station-map"


def get_json(url: str, *, accept: bool = False) -> Any:
    """A page as JSON: ``Accept: application/json`` or ``?format=json``."""
    if accept:
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
    else:
        request = urllib.request.Request(url + ("&" if "?" in url else "?") + "format=json")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["Content-Type"].startswith("application/json")
        return json.loads(response.read())


def rows(page: Any, table: str) -> list[list[str]]:
    """The text of each body row's cells of table ``#table``."""
    return page.eval_on_selector_all(  # type: ignore[no-any-return]
        f"#{table} tbody tr",
        "rows => rows.map(r => Array.from(r.cells).map(c => c.innerText.trim()))",
    )


def test_projects_lead_to_artifacts_and_search_filters_them(page: Any, browser_url: str) -> None:
    page.goto(browser_url + "/")
    page.click("text=bike-sharing")
    page.wait_for_url(f"**{PROJECT}/artifacts")
    names = [row[0].splitlines()[0] for row in rows(page, "artifacts")]
    assert {"bike-rides", "bike-features", "bike-model", "daily_summary", "station-map"} <= set(
        names
    )
    by_name = {row[0].splitlines()[0]: row for row in rows(page, "artifacts")}
    name, type_, count, latest, aliases, size = by_name["bike-rides"]
    assert (type_, count, latest) == ("dataset", "2", "v1")
    assert "latest v1" in aliases and "cleaned v1" in aliases
    assert size.endswith("kB")
    screenshot(page, "artifacts")

    page.fill("input[name=q]", "best-mae")  # an alias finds its artifact
    page.press("input[name=q]", "Enter")
    page.wait_for_url("**q=best-mae**")
    assert [row[0].splitlines()[0] for row in rows(page, "artifacts")] == ["bike-model"]


def test_versions_table_lists_every_version_with_aliases_and_partitions(
    page: Any, browser_url: str
) -> None:
    page.goto(browser_url + RIDES)
    table = rows(page, "versions")
    assert [r[0] for r in table] == ["v1", "v0"]
    assert table[0][1].split() == ["cleaned", "latest"]
    assert table[1][1] == ""
    assert "fix_rides" in table[0][7] and "bike_rides" in table[1][7]  # logged by

    page.goto(f"{browser_url}{PROJECT}/artifacts/dataset/daily_summary")
    table = rows(page, "versions")
    assert [r[0] for r in table] == ["v2", "v1", "v0"]
    assert [r[2] for r in table] == ["2026-05-03", "2026-05-02", "2026-05-01"]
    assert table[0][1] == "latest"
    screenshot(page, "versions")


def test_version_page_shows_files_references_and_a_verified_download(
    page: Any, browser_url: str, tmp_path: Path
) -> None:
    page.goto(browser_url + STATIONS + "/v0")
    assert page.inner_text("h1").startswith("station-map:v0")
    assert "stations and city zones" in page.inner_text(".description")
    tree = {r[0].lstrip("▸·↗ ").strip(): r for r in rows(page, "files")}
    assert set(tree) == {
        "stations/",
        "station_0.csv",
        "station_1.csv",
        "station_2.csv",
        "zones.geojson",
    }
    assert tree["stations/"][1] == "69 B"  # a folder shows what it holds
    assert tree["zones.geojson"][2].startswith("file:///")  # a reference shows its URI
    digest = tree["station_1.csv"][2]

    with page.expect_download() as download_info:
        page.click("tr[data-path='stations/station_1.csv'] a.download")
    saved = tmp_path / "station_1.csv"
    download_info.value.save_as(saved)
    content = saved.read_bytes()
    assert content.startswith(b"id,lat,lon\n1,")
    assert base64.b64encode(hashlib.md5(content).digest()).decode() == digest
    screenshot(page, "version", docs=True)


def test_lineage_graph_has_the_runs_and_versions_and_folds_re_runs(
    page: Any, browser_url: str
) -> None:
    page.goto(browser_url + FEATURES + "/v0")
    page.click("#lineage-link")
    page.wait_for_url("**/bike-features/v0/lineage")
    page.wait_for_function("window.lineageGraph && window.lineageGraph.nodes().length > 0")
    nodes = page.evaluate("window.lineageGraph.nodes().map(n => n.data())")
    edges = page.evaluate("window.lineageGraph.edges().map(e => e.data())")
    label = {n["id"]: n.get("name") or n["label"] for n in nodes}
    versions = {n["label"] for n in nodes if n["kind"] == "artifact"}
    assert {"bike-rides:v0", "bike-features:v0", "bike-model:v0", "bike_evaluation:v0"} <= versions
    assert [n["label"] for n in nodes if n["root"]] == ["bike-features:v0"]
    links = {(label[e["source"]], label[e["target"]]): e for e in edges}
    # The example ran twice: each step's second run was a deduplicated re-log, folded into
    # one edge that says so, not a second branch.
    assert links[("bike_features", "bike-features:v0")]["label"] == "logged ×2"
    assert links[("bike-rides:v0", "bike_features")]["kind"] == "used"
    assert links[("bike-features:v0", "bike_model")]["label"] == "used ×2"
    assert links[("bike_model", "bike-model:v0")]["kind"] == "logged"
    assert len([n for n in nodes if n.get("name") == "bike_features"]) == 1
    assert all(n["count"] == 2 for n in nodes if n["kind"] == "run")
    # Drawn by the dagre layout: upstream to the left of the version, downstream to the right.
    x = page.evaluate(
        "Object.fromEntries(window.lineageGraph.nodes().map(n => [n.data('label'), n.position('x')]))"
    )
    assert x["bike-rides:v0"] < x["bike-features:v0"] < x["bike-model:v0"]
    screenshot(page, "lineage")

    # Clicking a node opens it.
    box = page.locator("#graph").bounding_box()
    point = page.evaluate(
        "(() => { const p = window.lineageGraph.nodes().filter("
        "n => n.data('label') === 'bike-model:v0')[0].renderedPosition(); return [p.x, p.y]; })()"
    )
    page.mouse.click(box["x"] + point[0], box["y"] + point[1])
    page.wait_for_url("**/artifacts/model/bike-model/v0")
    assert page.inner_text("h1").startswith("bike-model:v0")

    # The README's picture: everything bike-rides:v0 fed, two hops down.
    page.goto(browser_url + RIDES + "/v0/lineage?depth=2")
    page.wait_for_function("window.lineageGraph && window.lineageGraph.nodes().length > 0")
    labels = page.evaluate("window.lineageGraph.nodes().map(n => n.data('label'))")
    assert "bike-rides:v1" in labels and "daily_summary:v2" in labels
    screenshot(page, "lineage-bike-rides", docs=True)


def test_diff_names_the_changed_file_with_schema_and_row_counts(
    page: Any, browser_url: str
) -> None:
    page.goto(browser_url + RIDES)
    page.select_option("form.compare select[name=a]", "v0")
    page.select_option("form.compare select[name=b]", "v1")
    page.click("form.compare button")
    page.wait_for_url("**/bike-rides/diff?a=v0&b=v1")
    changed = page.locator("#diff tr.changed")
    assert changed.count() == 1
    assert changed.get_attribute("data-path") == "data.parquet"
    text = changed.inner_text()
    assert "rows 1440 → 1200 (-240)" in text
    assert "+ humidity: double" in text and "− rain: int64" in text
    assert "1 changed" in page.inner_text(".summary")
    screenshot(page, "diff", docs=True)

    data = get_json(f"{browser_url}{RIDES}/diff?a=v0&b=v1")
    table = data["changed"][0]["table"]
    assert (table["rows_before"], table["rows_after"]) == (1440, 1200)
    assert [c["name"] for c in table["columns_removed"]] == ["rain"]
    assert data["added"] == data["removed"] == []


def test_runs_show_step_job_type_dagster_link_inputs_and_outputs(
    page: Any, browser_url: str
) -> None:
    page.goto(browser_url + PROJECT + "/runs")
    table = {r[1]: r for r in rows(page, "runs") if r[1] == "bike_model"}
    run_id, step, job_type, dagster, state, _created, inputs, outputs = table["bike_model"]
    assert (step, job_type, state) == ("bike_model", "training", "finished")
    assert inputs == "bike-features:v0" and outputs == "bike-model:v0"
    link = page.locator(f"tr[data-run='{run_id}'] a.ext")
    href = link.get_attribute("href")
    assert href.startswith(f"{DAGSTER_URL}/runs/") and dagster.startswith("Dagster run")
    screenshot(page, "runs")

    page.click(f"tr[data-run='{run_id}'] td a >> text={run_id}")
    page.wait_for_url(f"**/runs/{run_id}")
    assert page.inner_text("#inputs") == "bike-features:v0"
    page.click("#outputs a")
    page.wait_for_url("**/artifacts/model/bike-model/v0")


def test_every_page_is_json_too_without_credentials(browser_url: str, example: Example) -> None:
    pages = [
        "/",
        f"{PROJECT}/artifacts",
        f"{PROJECT}/artifacts?q=bike",
        RIDES,
        RIDES + "/v1",
        RIDES + "/v1/lineage",
        RIDES + "/diff?a=v0&b=v1",
        f"{PROJECT}/runs",
    ]
    for path in pages:
        by_query = get_json(browser_url + path)
        by_header = get_json(browser_url + path, accept=True)
        assert by_query == by_header, path
        text = json.dumps(by_query)
        assert "registry.db" not in text and "sqlite" not in text, path
    version = get_json(browser_url + RIDES + "/v1")
    assert (version["version"], version["aliases"]) == ("v1", ["cleaned", "latest"])
    assert version["files"][0]["path"] == "data.parquet"
    run = get_json(browser_url + version["logged_by"]["url"])
    assert run["inputs"][0]["qualified_name"] == "default/bike-sharing/bike-rides:v0"


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        (RIDES + "/v7", 404, "v7"),
        (f"{PROJECT}/artifacts/model/bike-rides/v0", 404, "has type 'dataset'"),
        (RIDES + "/diff?a=v0&b=latest", 400, "a version like 'v0'"),
        (RIDES + "/v0/lineage?depth=99", 400, "depth must be 1..6"),
        (RIDES + "/v0/files/nope.csv", 404, "no entry"),
        (f"{PROJECT}/runs/nope", 404, "nope"),
    ],
)
def test_bad_addresses_answer_with_what_to_do_and_change_nothing(
    browser_url: str, example: Example, path: str, status: int, says: str
) -> None:
    before = snapshot_store(example.store)
    with pytest.raises(urllib.error.HTTPError) as raised:
        get_json(browser_url + path)
    assert raised.value.code == status
    body = json.loads(raised.value.read())
    assert says in body["message"], body
    assert snapshot_store(example.store) == before
