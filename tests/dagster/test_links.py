"""``artifact/link``: with the artifact browser's URL configured (``ui_url`` or
``DAGSTER_ARTIFACTS_UI_URL``), every materialization links to its version's page."""

from collections.abc import Callable

import dagster as dg
import pandas as pd
import pytest

import dagster_artifacts as wandb
from dagster_artifacts import ArtifactsIOManager, ArtifactsResource
from dagster_artifacts.errors import ConfigurationError

DAYS = dg.StaticPartitionsDefinition(["2026-05-01", "2026-05-02"])


@dg.asset(metadata={"artifact": {"name": "bike-rides", "type": "dataset"}})
def rides() -> pd.DataFrame:
    return pd.DataFrame({"hour": [0, 1], "count": [3, 5]})


@dg.asset(partitions_def=DAYS)
def daily(context: dg.AssetExecutionContext) -> dict[str, list[int]]:
    return {key: [len(key), i] for i, key in enumerate(context.partition_keys)}


def _meta(result: dg.ExecuteInProcessResult, node: str) -> list[dict[str, object]]:
    return [
        {k: getattr(v, "value", v) for k, v in event.metadata.items()}
        for event in result.asset_materializations_for_node(node)
    ]


def test_link_from_ui_url_field_points_at_the_version_page() -> None:
    store = ArtifactsResource(ui_url="http://127.0.0.1:8765/")
    result = dg.materialize([rides], resources={"io_manager": ArtifactsIOManager(store=store)})
    assert result.success
    event = result.asset_materializations_for_node("rides")[0]
    link = event.metadata["artifact/link"]
    assert isinstance(link, dg.UrlMetadataValue)  # clickable in the Dagster UI
    logged = wandb.Api().artifact("bike-rides:latest")
    assert link.value == (
        f"http://127.0.0.1:8765/{logged.entity}/{logged.project}/artifacts/dataset/bike-rides/v0"
    )


def test_link_from_environment_for_each_partition_of_a_range_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DAGSTER_ARTIFACTS_UI_URL", "https://artifacts.example.org/ui")
    result = dg.materialize(
        [daily],
        resources={"io_manager": ArtifactsIOManager()},
        tags={
            "dagster/asset_partition_range_start": "2026-05-01",
            "dagster/asset_partition_range_end": "2026-05-02",
        },
    )
    assert result.success
    api = wandb.Api()
    links = {}
    for event in result.asset_materializations_for_node("daily"):
        version = api.artifact(f"daily:{event.metadata['artifact/version'].value}")
        assert version.partition_key == event.partition
        links[event.partition] = event.metadata["artifact/link"].value
        assert links[event.partition].endswith(
            f"/artifacts/{version.type}/daily/v{version.version_index}"
        )
    assert set(links) == {"2026-05-01", "2026-05-02"}
    assert len(set(links.values())) == 2  # each partition links to its own version
    assert all(link.startswith("https://artifacts.example.org/ui/") for link in links.values())


def test_no_link_without_a_configured_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAGSTER_ARTIFACTS_UI_URL", raising=False)
    result = dg.materialize([rides], resources={"io_manager": ArtifactsIOManager()})
    assert "artifact/link" not in _meta(result, "rides")[0]


def test_bad_ui_url_fails_before_anything_is_stored(
    store_snapshot: Callable[[], dict[str, object]],
) -> None:
    before = store_snapshot()
    store = ArtifactsResource(ui_url="artifacts.example.org")
    with pytest.raises(ConfigurationError, match="http"):
        dg.materialize([rides], resources={"io_manager": ArtifactsIOManager(store=store)})
    assert store_snapshot() == before
