"""The example through a real ``dagster-webserver``: launch over GraphQL, read metadata back."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
WEBSERVER = Path(sys.executable).with_name("dagster-webserver")

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
{ assetNodes { assetKey { path } dataVersion
  assetMaterializations(limit: 1) { metadataEntries {
    label ... on TextMetadataEntry { text } ... on IntMetadataEntry { intValue } } } } }"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _graphql(url: str, query: str, variables: dict[str, Any] | None = None) -> Any:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        payload = json.loads(response.read())
    assert "errors" not in payload, payload
    return payload["data"]


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
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    log = open(tmp_path / "webserver.log", "wb")  # noqa: SIM115 (closed in finally)
    server = subprocess.Popen(
        [str(WEBSERVER), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "webserver.log").read_text()
                assert time.monotonic() < deadline, "dagster-webserver did not start"
                time.sleep(0.5)
        selector = {
            "repositoryLocationName": "example_repo.definitions",
            "repositoryName": "__repository__",
            "jobName": "bike_pipeline",
        }
        launched = _graphql(url, LAUNCH, {"params": {"selector": selector, "runConfigData": {}}})
        assert launched["launchRun"]["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["launchRun"]["run"]["runId"]
        deadline = time.monotonic() + 90
        status = ""
        while status not in {"SUCCESS", "FAILURE", "CANCELED"}:
            assert time.monotonic() < deadline, f"run {run_id} still {status}"
            time.sleep(1)
            status = _graphql(url, RUN, {"id": run_id})["runOrError"]["status"]
        assert status == "SUCCESS", (tmp_path / "webserver.log").read_text()[-3000:]

        nodes = {"/".join(n["assetKey"]["path"]): n for n in _graphql(url, NODES)["assetNodes"]}
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
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


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
