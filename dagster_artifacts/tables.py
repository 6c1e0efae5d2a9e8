"""``Table`` and ``PartitionedTable``, stored as W&B stores them.

``artifact.add(table, "name")`` writes ``name.table.json``; ``artifact.add(PartitionedTable(
"parts"), "name")`` writes ``name.partitioned-table.json`` pointing at a folder of tables. Both
are JSON dumped with sorted keys, so identical tables give identical digests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from dagster_artifacts.errors import ArtifactError

if TYPE_CHECKING:
    from dagster_artifacts.artifact import Artifact

TABLE_SUFFIX = ".table.json"
PARTITIONED_TABLE_SUFFIX = ".partitioned-table.json"


def _plain(value: Any) -> Any:
    """JSON-able Python value of a cell (numpy and pandas scalars included)."""
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


class Table:
    """A rectangle of data: ``Table(columns, data)`` or ``Table(dataframe=df)``."""

    _log_type = "table"

    def __init__(
        self,
        columns: Sequence[str] | None = None,
        data: Sequence[Sequence[Any]] | None = None,
        dataframe: pd.DataFrame | None = None,
    ) -> None:
        if dataframe is not None:
            if columns is not None or data is not None:
                raise ArtifactError("Pass either columns/data or dataframe= to Table, not both.")
            columns = [str(c) for c in dataframe.columns]
            data = [[_plain(v) for v in row] for row in dataframe.itertuples(index=False)]
        self.columns: list[str] = list(columns or [])
        self.data: list[list[Any]] = [list(row) for row in (data or [])]
        for row in self.data:
            if len(row) != len(self.columns):
                raise ArtifactError(
                    f"Table row {row!r} has {len(row)} values but there are "
                    f"{len(self.columns)} columns {self.columns}; make them match."
                )

    def add_data(self, *values: Any) -> None:
        if len(values) != len(self.columns):
            raise ArtifactError(f"Expected {len(self.columns)} values, got {len(values)}.")
        self.data.append(list(values))

    def get_dataframe(self) -> pd.DataFrame:
        return pd.DataFrame(self.data, columns=self.columns)

    def to_json(self) -> dict[str, Any]:
        return {
            "_type": self._log_type,
            "columns": self.columns,
            "data": [[_plain(v) for v in row] for row in self.data],
            "ncols": len(self.columns),
            "nrows": len(self.data),
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True).encode("utf-8")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Table:
        return cls(columns=data.get("columns") or [], data=data.get("data") or [])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Table) and (self.columns, self.data) == (other.columns, other.data)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"Table(columns={self.columns!r}, rows={len(self.data)})"


class PartitionedTable:
    """A table made of the ``*.table.json`` parts under ``parts_path`` in the same artifact."""

    _log_type = "partitioned-table"

    def __init__(self, parts_path: str) -> None:
        self.parts_path = parts_path.strip("/")
        self._artifact: Artifact | None = None

    def to_json(self) -> dict[str, Any]:
        return {"_type": self._log_type, "parts_path": self.parts_path}

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True).encode("utf-8")

    @classmethod
    def from_json(cls, data: dict[str, Any], artifact: Artifact | None = None) -> PartitionedTable:
        table = cls(data["parts_path"])
        table._artifact = artifact
        return table

    def part_paths(self) -> list[str]:
        if self._artifact is None:
            raise ArtifactError(
                "This PartitionedTable is not bound to a logged artifact; get it with "
                "artifact.get(name) to read its parts."
            )
        prefix = self.parts_path + "/"
        return sorted(
            path
            for path in self._artifact.manifest.entries
            if path.startswith(prefix) and path.endswith(TABLE_SUFFIX)
        )

    def __iter__(self) -> Iterator[Table]:
        assert self._artifact is not None or not self.part_paths()
        for path in self.part_paths():
            assert self._artifact is not None
            yield self._artifact.get(path.removesuffix(TABLE_SUFFIX))

    def __len__(self) -> int:
        return len(self.part_paths())

    def to_pandas(self) -> pd.DataFrame:
        frames = [part.get_dataframe() for part in self]
        if not frames:
            return pd.DataFrame()
        return pd.concat(frames, ignore_index=True)

    def __repr__(self) -> str:
        return f"PartitionedTable(parts_path={self.parts_path!r})"
