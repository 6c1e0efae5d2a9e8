"""The example through a real ``dagster-webserver``: launch over GraphQL, read metadata back."""

import os
import subprocess
import time
from pathlib import Path

import dagster as dg
import pytest

from example_repo.materialize import materialize_example
from example_repo.train_outside_dagster import train
from tests.services.webserver import WEBSERVER, dagster_webserver, graphql

REPO = Path(__file__).resolve().parents[2]

LAUNCH = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
  }
}"""
RUN = """query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"""
NODES = """
{ assetNodes { assetKey { path } dataVersion groupName dependencyKeys { path }
  assetChecksOrError { ... on AssetChecks { checks { name } } }
  assetMaterializations(limit: 1) { metadataEntries {
    label ... on TextMetadataEntry { text } ... on IntMetadataEntry { intValue } } } } }"""


@pytest.mark.slow
@pytest.mark.xdist_group("dagster")
def test_webserver_launches_example_and_shows_artifact_metadata(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    # Launch directly (no daemon to dequeue runs) and keep telemetry off.
    (home / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\n"
        "run_coordinator:\n  module: dagster.core.run_coordinator\n"
        "  class: DefaultRunCoordinator\n"
    )
    # A training script outside Dagster, before the code location loads: its artifact is an
    # asset (ArtifactsComponent in example_repo/defs/) with its lineage to bike_features.
    with dg.instance_for_test() as instance:
        materialize_example(instance)
    train()
    log = tmp_path / "webserver.log"
    with dagster_webserver(home, REPO, log) as base:
        selector = {
            "repositoryLocationName": "example_repo.definitions",
            "repositoryName": "__repository__",
            "jobName": "bike_pipeline",
        }
        launched = graphql(base, LAUNCH, {"params": {"selector": selector, "runConfigData": {}}})
        assert launched["launchRun"]["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["launchRun"]["run"]["runId"]
        deadline = time.monotonic() + 300  # five step processes; slow on a loaded machine
        status = ""
        while status not in {"SUCCESS", "FAILURE", "CANCELED"}:
            assert time.monotonic() < deadline, f"run {run_id} still {status}"
            time.sleep(1)
            status = graphql(base, RUN, {"id": run_id})["runOrError"]["status"]
        assert status == "SUCCESS", log.read_text()[-3000:]
        nodes = {"/".join(n["assetKey"]["path"]): n for n in graphql(base, NODES)["assetNodes"]}

    model = nodes["bike_model"]
    entries = {
        e["label"]: e.get("text", e.get("intValue"))
        for e in model["assetMaterializations"][0]["metadataEntries"]
    }
    assert entries["artifact/name"] == "bike-model"
    assert entries["artifact/version"] == "v0"
    assert entries["artifact/version_index"] == 0
    assert model["dataVersion"] == entries["artifact/digest"]
    rides = nodes["bike_rides"]["assetMaterializations"][0]["metadataEntries"]
    assert {"dagster/row_count", "dagster/column_schema"} <= {e["label"] for e in rides}
    tuned = nodes["bike-model-tuned"]
    assert tuned["groupName"] == "outside_dagster"
    assert [d["path"] for d in tuned["dependencyKeys"]] == [["bike_features"]]
    for key, node in nodes.items():  # a verify check on every asset
        checks = [c["name"] for c in node["assetChecksOrError"]["checks"]]
        assert checks == ["artifact_verified"], key


def test_workspace_definitions_validate(tmp_path: Path) -> None:
    """``dagster definitions validate -w workspace.yaml`` passes, as the README promises."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_ARTIFACTS_")}
    env["DAGSTER_HOME"] = str(tmp_path)
    env["DAGSTER_ARTIFACTS_ROOT"] = str(tmp_path / "store")
    result = subprocess.run(
        [str(WEBSERVER.with_name("dagster")), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "All code locations passed validation" in output
