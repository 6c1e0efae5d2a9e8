"""The browser's server side in-process (Starlette's test client, a real local store): what no
page may show (credentials), what a download refuses to send (bytes that fail their digest),
that browsing writes nothing, and the typed answers to bad addresses."""

from __future__ import annotations

import base64
import hashlib
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import dagster_artifacts as wandb
from dagster_artifacts.browser import create_app, links

if TYPE_CHECKING:
    from starlette.testclient import TestClient


@pytest.fixture
def logged(tmp_path: Path) -> dict[str, Any]:
    """``rides:v0`` and ``rides:v1`` (one file changed, one added, a credentialed reference)."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("day,rides\n1,10\n")
    (data / "b.csv").write_text("day,rides\n2,20\n")
    with wandb.init(project="p", job_type="ingest", name="ingest") as run:
        v0 = wandb.Artifact("rides", type="dataset")
        v0.add_dir(str(data))
        run.log_artifact(v0)
    (data / "b.csv").write_text("day,rides\n2,20\n3,30\n")
    (data / "c.csv").write_text("day,rides\n")
    with wandb.init(project="p", job_type="ingest", name="ingest") as run:
        v1 = wandb.Artifact("rides", type="dataset", metadata={"rows": 3})
        v1.add_dir(str(data))
        v1.add_reference(
            "https://reader:s3cr3t@127.0.0.1:9/export.csv?X-Amz-Signature=abc",
            name="export.csv",
            checksum=False,
        )
        run.log_artifact(v1, aliases=["prod"])
    return {"data": data}


@pytest.fixture
def client() -> TestClient:
    with warnings.catch_warnings():  # Starlette 1.x prefers httpx2; httpx works the same here
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

        return TestClient(create_app(wandb.Api(), dagster_url="http://127.0.0.1:3000"))


BASE = "/default/p/artifacts/dataset/rides"


def test_redact_uri_drops_user_info_and_query() -> None:
    assert (
        links.redact_uri("https://reader:s3cr3t@host:9/x.csv?X-Amz-Signature=abc#f")
        == "https://***@host:9/x.csv?***#f"
    )
    assert links.redact_uri("s3://bucket/key") == "s3://bucket/key"


def test_no_page_shows_a_credential(logged: dict[str, Any], client: TestClient) -> None:
    for path in [
        "/",
        "/default/p/artifacts",
        BASE,
        BASE + "/v1",
        BASE + "/v1/lineage",
        BASE + "/diff?a=v0&b=v1",
        "/default/p/runs",
    ]:
        for suffix in ("", "&format=json" if "?" in path else "?format=json"):
            response = client.get(path + suffix)
            assert response.status_code == 200, (path, response.text)
            assert "s3cr3t" not in response.text and "X-Amz-Signature" not in response.text
            assert "registry.db" not in response.text
    version = client.get(BASE + "/v1?format=json").json()
    (reference,) = version["references"]
    assert reference["ref"] == "https://***@127.0.0.1:9/export.csv?***"


def test_diff_lists_added_and_changed_files_with_sizes(
    logged: dict[str, Any], client: TestClient
) -> None:
    diff = client.get(BASE + "/diff", params={"a": "v0", "b": "v1", "format": "json"}).json()
    assert [f["path"] for f in diff["added"]] == ["c.csv", "export.csv"]
    assert [(f["path"], f["size_before"], f["size_after"]) for f in diff["changed"]] == [
        ("b.csv", 15, 20)
    ]
    assert diff["unchanged"] == 1 and diff["removed"] == []
    assert diff["metadata_changes"] == [{"key": "rows", "before": None, "after": 3}]


def test_download_streams_the_verified_file(logged: dict[str, Any], client: TestClient) -> None:
    response = client.get(BASE + "/v1/files/b.csv")
    assert response.status_code == 200
    assert response.content == b"day,rides\n2,20\n3,30\n"
    digest = base64.b64encode(hashlib.md5(response.content).digest()).decode()
    assert response.headers["X-Artifact-Digest"] == digest
    assert "attachment" in response.headers["content-disposition"]


def test_download_of_a_damaged_blob_sends_an_error_not_the_bytes(
    logged: dict[str, Any], client: TestClient, isolated_store: Path
) -> None:
    content = b"day,rides\n2,20\n3,30\n"
    blob = next(p for p in isolated_store.rglob("*") if p.is_file() and p.read_bytes() == content)
    blob.write_bytes(content.replace(b"30", b"99"))
    response = client.get(BASE + "/v1/files/b.csv")
    assert response.status_code == 500
    assert b"99" not in response.content
    assert "damaged" in client.get(BASE + "/v1/files/b.csv?format=json").json()["message"]


def test_a_reference_has_no_download(logged: dict[str, Any], client: TestClient) -> None:
    response = client.get(BASE + "/v1/files/export.csv?format=json")
    assert response.status_code == 404
    assert "is a reference" in response.json()["message"]
    assert "s3cr3t" not in response.text


def test_browsing_writes_nothing(
    logged: dict[str, Any], client: TestClient, store_snapshot: Any
) -> None:
    before = store_snapshot()
    for path in [
        "/",
        BASE,
        BASE + "/v0",
        BASE + "/v1/lineage?depth=3",
        BASE + "/diff?a=v1&b=v0",
        BASE + "/v0/files/a.csv",
        "/default/p/runs",
        "/default/p/artifacts?q=ride",
    ]:
        assert client.get(path).status_code == 200, path
    assert store_snapshot() == before


def test_search_and_empty_registry(client: TestClient) -> None:
    html = client.get("/").text
    assert "No projects yet" in html
    assert client.get("/default/p/artifacts?q=x&format=json").json()["artifacts"] == []


def test_diff_of_a_table_shows_its_schema_and_row_count_change(client: TestClient) -> None:
    for columns, data in (
        (["day", "rides"], [[1, 10], [2, 20]]),
        (["day", "rides", "rain"], [[1, 10, 0.5], [2, 20, 0.0], [3, 5, 1.0]]),
    ):
        with wandb.init(project="p", job_type="report") as run:
            artifact = wandb.Artifact("summary", type="report")
            artifact.add(wandb.Table(columns=columns, data=data), "daily")
            run.log_artifact(artifact)
    diff = client.get(
        "/default/p/artifacts/report/summary/diff?a=v0&b=v1", headers={"Accept": "application/json"}
    ).json()
    (changed,) = diff["changed"]
    assert changed["path"] == "daily.table.json"
    table = changed["table"]
    assert (table["rows_before"], table["rows_after"], table["rows_delta"]) == (2, 3, 1)
    assert [c["name"] for c in table["columns_added"]] == ["rain"]
    assert table["columns_removed"] == [] and table["columns_retyped"] == []
