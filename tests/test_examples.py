"""The README's first command as a user runs it: ``make run``'s script, then the Dagster UI on
the instance it recorded into shows the example's materializations and artifact metadata."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.services.webserver import dagster_webserver, graphql

REPO = Path(__file__).resolve().parents[1]
NODES = """
{ assetNodes { assetKey { path } dataVersion
  assetMaterializations(limit: 1) { metadataEntries {
    label ... on TextMetadataEntry { text } ... on IntMetadataEntry { intValue } } } } }"""


@pytest.mark.slow
@pytest.mark.xdist_group("dagster")
def test_make_run_history_is_in_the_dagster_ui(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_ARTIFACTS_")},
        "DAGSTER_ARTIFACTS_ROOT": str(tmp_path / "store"),
        "DAGSTER_ARTIFACTS_CACHE_DIR": str(tmp_path / "cache"),
        "DAGSTER_HOME": str(home),
    }
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "run_pipeline.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"dagster: runs recorded in {home}" in done.stdout

    with dagster_webserver(home, REPO, tmp_path / "webserver.log", env) as base:
        nodes = {"/".join(n["assetKey"]["path"]): n for n in graphql(base, NODES)["assetNodes"]}
    model = nodes["bike_model"]
    assert model["assetMaterializations"], "make run's materialization is not in the UI"
    entries = {
        e["label"]: e.get("text", e.get("intValue"))
        for e in model["assetMaterializations"][0]["metadataEntries"]
    }
    assert entries["artifact/name"] == "bike-model"
    assert entries["artifact/version"] == "v0"
    assert model["dataVersion"] == entries["artifact/digest"]
    assert nodes["daily_summary"]["assetMaterializations"], "the backfill is missing"
