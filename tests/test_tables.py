"""Tables are stored byte for byte as W&B stores them, and read back as Tables/DataFrames.

The golden digests below were produced by wandb 0.31.0 itself (``wandb.Artifact(...).add(table,
name)`` in offline mode, then the manifest entry's digest), so they prove that the same table
gives the same file, and the same artifact digest, here and in W&B.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

import dagster_artifacts as wandb
from dagster_artifacts.digests import digest_bytes
from dagster_artifacts.errors import ArtifactError
from dagster_artifacts.tables import PartitionedTable, Table

UTC = datetime.timezone.utc
GOLDEN: dict[str, tuple[Callable[[], Table], str]] = {
    "ints": (
        lambda: Table(columns=["a", "b", "c"], data=[[0, 0, 1], [1, 2, 2]]),
        "WKrNtdU8WN1PSDMg76IJTw==",
    ),
    "mixed": (
        lambda: Table(
            columns=["s", "f", "b", "n"],
            data=[["x", 1.5, True, None], [None, float("nan"), False, None], ["y", 2, True, None]],
        ),
        "O/MVS4I6/geUZHIHIlqCag==",
    ),
    "empty": (lambda: Table(columns=["a"]), "bdtGWt8hc2doiqV/V9N/EA=="),
    "default_columns": (lambda: Table(data=[[1, "two", 3.0]]), "QHyIGXyRAGHb9R6AVNeYSA=="),
    "dataframe": (
        lambda: Table(
            dataframe=pd.DataFrame(
                {"i": [1, 2], "f": [0.5, np.nan], "s": ["a", "b"], "b": [True, False]}
            )
        ),
        "Dnw7CdtNlpaYsaWnenGPOQ==",
    ),
    "lists": (
        lambda: Table(columns=["l"], data=[[[1, 2]], [[3, 4]], [[5]]]),
        "2eAUU85k+4pwxXqDqXRfAw==",
    ),
    "dicts": (
        lambda: Table(columns=["d"], data=[[{"k": 1}], [{"k": 2}]]),
        "oNX59SpVKQWPJKsXZfb2jA==",
    ),
    "timestamps": (
        lambda: Table(columns=["t"], data=[[datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)]]),
        "wYLyIibrAxqr+9iUE1NfPg==",
    ),
    "unicode": (lambda: Table(columns=["ü"], data=[["héllo"]]), "iB6lpcBEVdrqr+9PNOqHHg=="),
}
INTS_JSON = (
    '{"_type": "table", "column_types": {"params": {"type_map": {"a": {"params": '
    '{"allowed_types": [{"wb_type": "none"}, {"wb_type": "number"}]}, "wb_type": "union"}, '
    '"b": {"params": {"allowed_types": [{"wb_type": "none"}, {"wb_type": "number"}]}, '
    '"wb_type": "union"}, "c": {"params": {"allowed_types": [{"wb_type": "none"}, '
    '{"wb_type": "number"}]}, "wb_type": "union"}}}, "wb_type": "typedDict"}, "columns": '
    '["a", "b", "c"], "data": [[0, 0, 1], [1, 2, 2]], "log_mode": "IMMUTABLE", "ncols": 3, '
    '"nrows": 2}'
)


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_table_file_digest_matches_wandb(case: str) -> None:
    make, digest = GOLDEN[case]
    assert digest_bytes(make().to_bytes()) == digest


def test_table_json_is_wandbs_exact_bytes() -> None:
    assert GOLDEN["ints"][0]().to_bytes().decode() == INTS_JSON


def test_partitioned_table_pointer_matches_wandb() -> None:
    data = PartitionedTable("parts").to_bytes()
    assert data == b'{"_type": "partitioned-table", "parts_path": "parts"}'
    assert digest_bytes(data) == "3FsVTLRmcx4P1kvNdgj1Qw=="


def test_seed_parallel_artifact_digest_matches_wandb() -> None:
    """The seed's 5 parts + PartitionedTable, built in one process: W&B's artifact digest."""
    artifact = wandb.Artifact("parallel-artifact", type="dataset")
    for i in range(5):
        table = wandb.Table(columns=["a", "b", "c"], data=[[i, i * 2, 2**i]])
        artifact.add(table, f"parts/table_{i}")
    artifact.add(wandb.data_types.PartitionedTable("parts"), "distributed_table")
    assert artifact.digest == "b6e8c8f8246492c850c56029a0c8c923"


def test_table_and_dataframe_round_trip_through_an_artifact() -> None:
    frame = pd.DataFrame(
        {"city": ["Oslo", "Lima", None], "riders": [12, 7, 3], "share": [0.5, np.nan, 0.25]}
    )
    with wandb.init() as run:
        artifact = wandb.Artifact("bikes", type="dataset")
        artifact.add(wandb.Table(dataframe=frame), "summary")
        artifact.add(
            wandb.Table(columns=["at"], data=[[datetime.datetime(2025, 5, 1, tzinfo=UTC)]]),
            "times",
        )
        run.log_artifact(artifact).wait()
    logged = wandb.Api().artifact("bikes:latest")
    assert sorted(logged.manifest.entries) == ["summary.table.json", "times.table.json"]
    table = logged.get("summary")
    assert isinstance(table, wandb.Table) and table.columns == ["city", "riders", "share"]
    pd.testing.assert_frame_equal(table.get_dataframe(), frame, check_dtype=False)
    assert logged.get("summary.table.json") == table
    assert logged.get("times").data == [[datetime.datetime(2025, 5, 1, tzinfo=UTC)]]


def test_partitioned_table_in_a_single_run_artifact() -> None:
    with wandb.init() as run:
        artifact = wandb.Artifact("parted", type="dataset")
        for i in (2, 0, 1):
            artifact.add(wandb.Table(columns=["i"], data=[[i], [i + 10]]), f"parts/p{i}")
        artifact.add(wandb.Table(columns=["i"], data=[[99]]), "partsextra/not-a-part")
        artifact.add(wandb.data_types.PartitionedTable("parts/"), "all")
        run.log_artifact(artifact).wait()
    table = wandb.Api().artifact("parted:v0").get("all")
    assert isinstance(table, PartitionedTable) and len(table) == 3
    assert [part.data for part in table] == [[[0], [10]], [[1], [11]], [[2], [12]]]
    assert table.to_pandas()["i"].tolist() == [0, 10, 1, 11, 2, 12]
    assert [index for index, _row in table.iterrows()] == list(range(6))


def test_wandb_written_file_reads_back() -> None:
    """A ``.table.json`` as W&B wrote it (golden bytes) loads with its column types."""
    table = Table.from_json(json.loads(INTS_JSON))
    assert table.columns == ["a", "b", "c"] and table.data == [[0, 0, 1], [1, 2, 2]]
    assert table.to_bytes().decode() == INTS_JSON


def test_bad_tables_are_refused() -> None:
    with pytest.raises(ArtifactError, match="3 columns"):
        Table(columns=["a", "b", "c"], data=[[1, 2]])
    with pytest.raises(ArtifactError, match="Column 'a'"):
        Table(columns=["a"], data=[[1], ["one"]])
    with pytest.raises(ArtifactError, match="not both"):
        Table(data=[[1]], dataframe=pd.DataFrame({"a": [1]}))
    with pytest.raises(ArtifactError, match="column names"):
        Table(columns=[1.5], data=[[1]])
    with pytest.raises(ArtifactError, match="folder of its parts"):
        PartitionedTable("/")
    with pytest.raises(ArtifactError, match="artifact.get"):
        list(PartitionedTable("parts"))


def test_table_helpers() -> None:
    table = Table(columns=["a", "b"])
    table.add_data(1, "x")
    table.add_data(None, "y")
    assert table.get_column("a") == [1, None] and len(table) == 2
    assert Table(columns=["n"], data=np.array([[1], [2]])).data == [[1], [2]]
    assert Table(data=pd.DataFrame({"q": [1]})).columns == ["q"]
