"""``Table`` and ``PartitionedTable``, stored byte for byte as W&B stores them.

``artifact.add(table, "name")`` writes ``name.table.json``; ``artifact.add(PartitionedTable(
"parts"), "name")`` writes ``name.partitioned-table.json`` pointing at a folder of tables. Both
are ``json.dump(obj, sort_keys=True)`` output, as W&B's ``Artifact.add`` writes them, so the
same table gives the same file digest here and in W&B.

A table's JSON carries W&B's ``column_types``: per column, the union of ``none`` (columns are
optional by default) and the type of its values (``number``, ``string``, ``boolean``,
``timestamp``, ``list``, ``typedDict`` or ``pythonObject``), computed with W&B's rules, so the
W&B UI and ``wandb.Table.from_json`` read our files. Timestamps are stored as milliseconds since
the epoch, as W&B does.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from dagster_artifacts.errors import ArtifactError
from dagster_artifacts.manifest import Manifest

if TYPE_CHECKING:
    import pandas as pd  # imported where used: pandas alone is ~100 MiB of RSS and ~1 s

TABLE_SUFFIX = ".table.json"
PARTITIONED_TABLE_SUFFIX = ".partitioned-table.json"
#: A pandas DataFrame added with ``artifact.add(frame, name)`` is stored as ``name.parquet``.
DATAFRAME_SUFFIX = ".parquet"
#: W&B's default columns when none are given.
DEFAULT_COLUMNS = ["Input", "Output", "Expected"]
LOG_MODE = "IMMUTABLE"


# -- W&B's column types (a small, faithful subset of wandb's _dtypes) ------------------------------
class _Type:
    """A W&B type: ``{"wb_type": name, "params": {...}}``; sorted in unions by ``repr``."""

    def __init__(self, name: str, params: dict[str, Any] | None = None) -> None:
        self.name = name
        self.params = params or {}

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {"wb_type": self.name}
        if self.params:
            result["params"] = {key: _json_param(value) for key, value in self.params.items()}
        return result

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Type) and (self.name, self.params) == (other.name, other.params)

    def __repr__(self) -> str:
        if self.name == "list":
            return f"{self.params['element_type']!r}[]"
        if self.name == "union":
            return " or ".join(repr(t) for t in self.params["allowed_types"])
        text = self.name.capitalize()
        if self.params:
            text += "(" + ", ".join(f"{k}:{v}" for k, v in self.params.items()) + ")"
        return text


def _json_param(value: Any) -> Any:
    if isinstance(value, _Type):
        return value.to_json()
    if isinstance(value, dict):
        return {key: _json_param(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_param(item) for item in value]
    return value


NONE = _Type("none")
UNKNOWN = _Type("unknown")


def _type_of(value: Any) -> _Type:
    """W&B's ``TypeRegistry.type_of`` for the values a table holds."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NONE
    if isinstance(value, bool) or _is_numpy(value, "b"):
        return _Type("boolean")
    if isinstance(value, str):
        return _Type("string")
    if isinstance(value, (int, float)) or _is_numpy(value, "iufc"):
        return _Type("number")
    if isinstance(value, (_dt.datetime, _dt.date)) or type(value).__name__ == "datetime64":
        return _Type("timestamp")
    if isinstance(value, (list, tuple)):
        element: _Type | None = _union([UNKNOWN, NONE]) if None in value else UNKNOWN
        for item in value:
            element = _assign(element, item) if element is not None else None
        return _Type("list", {"element_type": element, "length": len(value)})
    if isinstance(value, dict):
        return _Type("typedDict", {"type_map": {k: _type_of(v) for k, v in value.items()}})
    return _Type("pythonObject", {"class_name": type(value).__name__})


def _is_numpy(value: Any, kinds: str) -> bool:
    """A numpy scalar whose dtype kind is one of ``kinds`` (``b`` bool, ``iufc`` numbers)."""
    kind = getattr(getattr(value, "dtype", None), "kind", None)
    return type(value).__module__ == "numpy" and kind is not None and kind in kinds


def _union(types: list[_Type]) -> _Type:
    flat: list[_Type] = []
    for item in types:
        flat.extend(item.params["allowed_types"] if item.name == "union" else [item])
    return _Type("union", {"allowed_types": sorted(flat, key=repr)})


def _assign(current: _Type, value: Any) -> _Type | None:
    """The column type after one more value (None if W&B would refuse the value)."""
    incoming = _type_of(value)
    if current.name == "unknown":
        return None if incoming == NONE else incoming
    if current.name == "union":
        resolved: list[_Type] = []
        unknowns = 0
        placed = False
        for allowed in current.params["allowed_types"]:
            if placed:
                resolved.append(allowed)
            elif allowed.name == "unknown":
                unknowns += 1
            else:
                assigned = _assign(allowed, value)
                resolved.append(allowed if assigned is None else assigned)
                placed = assigned is not None
        if not placed:
            if unknowns == 0 or incoming == NONE:
                return None
            resolved.append(incoming)
            unknowns -= 1
        resolved.extend([UNKNOWN] * unknowns)
        return _union(resolved)
    if current.name == "list" and incoming.name == "list":
        element = current.params["element_type"]
        for item in value:
            next_element = _assign(element, item)
            if next_element is None:
                return None
            element = next_element
        return _Type("list", {"element_type": element, "length": len(value)})
    return current if current == incoming else None


def _plain(value: Any) -> Any:
    """The JSON value W&B writes for a cell (numpy scalars unwrapped, timestamps in ms)."""
    import pandas as pd

    if isinstance(value, pd.Timestamp):
        return int(value.value // 1_000_000)
    if isinstance(value, _dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=_dt.timezone.utc)
        return int(moment.timestamp() * 1000)
    if isinstance(value, _dt.date):
        return int(
            _dt.datetime(value.year, value.month, value.day, tzinfo=_dt.timezone.utc).timestamp()
            * 1000
        )
    if type(value).__name__ == "datetime64":
        return int(pd.Timestamp(value).value // 1_000_000)
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy scalars and arrays
        return _plain(value.tolist())
    if isinstance(value, float) and math.isnan(value):
        return None  # W&B writes NaN as null
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


class Table:
    """A rectangle of data: ``Table(columns, data)`` or ``Table(dataframe=df)``, as in W&B.

    Column types follow W&B's rules: a column's values must share one type (``None`` and NaN
    are allowed anywhere); a value of another type is an :class:`ArtifactError`, as W&B raises.
    """

    _log_type = "table"

    def __init__(
        self,
        columns: Sequence[Any] | None = None,
        data: Sequence[Sequence[Any]] | pd.DataFrame | Any | None = None,
        rows: Sequence[Sequence[Any]] | None = None,
        dataframe: pd.DataFrame | None = None,
    ) -> None:
        import pandas as pd

        if isinstance(data, pd.DataFrame) and dataframe is None:
            dataframe, data = data, None
        if dataframe is not None:
            if data is not None or rows is not None:
                raise ArtifactError("Pass either columns/data or dataframe= to Table, not both.")
            columns = list(dataframe.columns)
            data = [
                [dataframe[column].values[row] for column in columns]
                for row in range(len(dataframe))
            ]
        elif data is None:
            data = rows
        if hasattr(data, "tolist") and not isinstance(data, list):  # a numpy array
            data = data.tolist()  # type: ignore[union-attr,operator]
        self.columns: list[Any] = list(DEFAULT_COLUMNS if columns is None else columns)
        for column in self.columns:
            if not isinstance(column, (str, int)) or isinstance(column, bool):
                raise ArtifactError(
                    f"Table column names must be strings or ints, not {column!r}; rename it."
                )
        self.data: list[list[Any]] = []
        self._types: dict[Any, _Type] = {c: _union([UNKNOWN, NONE]) for c in self.columns}
        for row in data or []:
            self.add_data(*row)

    def add_data(self, *values: Any) -> None:
        """Append one row (as W&B's ``Table.add_data``), checking each column's type."""
        if len(values) != len(self.columns):
            raise ArtifactError(
                f"This table has {len(self.columns)} columns {self.columns}, but the row "
                f"{list(values)!r} has {len(values)} values; make them match."
            )
        updated = {}
        for column, value in zip(self.columns, values, strict=True):
            assigned = _assign(self._types[column], value)
            if assigned is None:
                raise ArtifactError(
                    f"Column {column!r} holds {self._types[column]!r} values; {value!r} is "
                    f"{_type_of(value)!r}. Keep one type per column (None is always allowed)."
                )
            updated[column] = assigned
        self._types.update(updated)
        self.data.append(list(values))

    add_row = add_data

    def get_column(self, name: Any) -> list[Any]:
        index = self.columns.index(name)
        return [row[index] for row in self.data]

    def get_dataframe(self) -> pd.DataFrame:
        """The rows as a pandas DataFrame (W&B: ``pd.DataFrame.from_records``)."""
        import pandas as pd

        return pd.DataFrame.from_records(self.data, columns=self.columns)

    @property
    def column_types(self) -> dict[str, Any]:
        return {
            "params": {"type_map": {str(c): t.to_json() for c, t in self._types.items()}},
            "wb_type": "typedDict",
        }

    def to_json(self) -> dict[str, Any]:
        data = [[_plain(value) for value in row] for row in self.data]
        return {
            "_type": self._log_type,
            "column_types": self.column_types,
            "columns": self.columns,
            "data": data,
            "log_mode": LOG_MODE,
            "ncols": len(self.columns),
            "nrows": len(data),
        }

    def to_bytes(self) -> bytes:
        """Exactly what W&B's ``json.dump(table_json, f, sort_keys=True)`` writes."""
        return json.dumps(self.to_json(), sort_keys=True).encode("utf-8")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Table:
        """Read a ``.table.json`` written here or by W&B (timestamps come back as datetimes)."""
        columns = list(data.get("columns") or [])
        rows = [list(row) for row in data.get("data") or []]
        type_map = ((data.get("column_types") or {}).get("params") or {}).get("type_map") or {}
        timestamp_columns = [
            index
            for index, column in enumerate(columns)
            if "timestamp" in json.dumps(type_map.get(str(column), {}))
        ]
        for row in rows:
            for index in timestamp_columns:
                if isinstance(row[index], (int, float)) and not isinstance(row[index], bool):
                    row[index] = _dt.datetime.fromtimestamp(row[index] / 1000, _dt.timezone.utc)
        return cls(columns=columns, data=rows)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Table) and (self.columns, self.data) == (other.columns, other.data)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"Table(columns={self.columns!r}, rows={len(self.data)})"


class PartsSource(Protocol):
    """What a :class:`PartitionedTable` reads its parts from: a logged artifact."""

    @property
    def manifest(self) -> Manifest: ...

    def get(self, name: str) -> Any: ...


class PartitionedTable:
    """A table made of the ``*.table.json`` parts under ``parts_path`` in the same artifact.

    Parallel writers each ``upsert`` one part (``parts/table_<i>``); the finisher adds this
    pointer. Read back with ``artifact.get(name)``: iterate it for the parts as :class:`Table`
    objects (in path order), or call :meth:`to_pandas` for all rows at once.
    """

    _log_type = "partitioned-table"

    def __init__(self, parts_path: str) -> None:
        if not isinstance(parts_path, str) or not parts_path.strip("/"):
            raise ArtifactError(
                f"PartitionedTable needs the folder of its parts, e.g. PartitionedTable('parts'); "
                f"got {parts_path!r}."
            )
        self.parts_path = parts_path.strip("/")
        self._artifact: PartsSource | None = None

    def to_json(self) -> dict[str, Any]:
        return {"_type": self._log_type, "parts_path": self.parts_path}

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True).encode("utf-8")

    @classmethod
    def from_json(
        cls, data: Mapping[str, Any], artifact: PartsSource | None = None
    ) -> PartitionedTable:
        table = cls(data["parts_path"])
        table._artifact = artifact
        return table

    def part_paths(self) -> list[str]:
        """Entry paths of the parts, sorted."""
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
        artifact = self._artifact
        for path in self.part_paths():
            assert artifact is not None
            part = artifact.get(path)
            assert isinstance(part, Table)
            yield part

    def iterrows(self) -> Iterator[tuple[int, list[Any]]]:
        """Every row of every part with a running index, as W&B's ``iterrows``."""
        index = 0
        for part in self:
            for row in part.data:
                yield index, row
                index += 1

    def __len__(self) -> int:
        return len(self.part_paths())

    def to_pandas(self) -> pd.DataFrame:
        """All parts' rows in one DataFrame (parts in path order)."""
        import pandas as pd

        frames = [part.get_dataframe() for part in self]
        if not frames:
            return pd.DataFrame()
        return pd.concat(frames, ignore_index=True)

    def __repr__(self) -> str:
        return f"PartitionedTable(parts_path={self.parts_path!r})"
