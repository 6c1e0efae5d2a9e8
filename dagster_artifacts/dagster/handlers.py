"""Type handlers: one small class per output type, picked by the object (store) or by what was
stored and the input annotation (load).

Each handler writes its entries into a draft ``Artifact`` and records its ``kind`` in the
artifact metadata (:data:`.metadata.HANDLER`), so loading does not have to guess.
"""

from __future__ import annotations

import importlib
import json
import pickle
from pathlib import Path
from typing import Any, ClassVar

from dagster_artifacts.artifact import Artifact
from dagster_artifacts.dagster import metadata as keys
from dagster_artifacts.errors import ConfigurationError
from dagster_artifacts.tables import PartitionedTable, Table


class TypeHandler:
    """Stores one kind of object into a draft artifact and loads it back."""

    kind: ClassVar[str]
    artifact_type: ClassVar[str] = "unspecified"

    def accepts(self, obj: Any) -> bool:
        raise NotImplementedError

    def store(self, artifact: Artifact, obj: Any, serializer: str | None) -> dict[str, Any]:
        """Add ``obj`` to ``artifact``; return extra Dagster metadata (schema, row count...)."""
        raise NotImplementedError

    def load(self, artifact: Artifact) -> Any:
        raise NotImplementedError


class DataFrameHandler(TypeHandler):
    """``pandas.DataFrame`` -> ``data.parquet`` (pyarrow); a frame is a ``dataset``."""

    kind = "dataframe"
    artifact_type = "dataset"

    def accepts(self, obj: Any) -> bool:
        import pandas as pd

        return isinstance(obj, pd.DataFrame)

    def store(self, artifact: Artifact, obj: Any, serializer: str | None) -> dict[str, Any]:
        import dagster as dg

        artifact.add(obj, "data")
        schema = dg.TableSchema(
            columns=[dg.TableColumn(str(name), str(dtype)) for name, dtype in obj.dtypes.items()]
        )
        return {
            keys.COLUMN_SCHEMA: dg.MetadataValue.table_schema(schema),
            keys.ROW_COUNT: dg.MetadataValue.int(len(obj)),
        }

    def load(self, artifact: Artifact) -> Any:
        return artifact.get("data")


class TableHandler(TypeHandler):
    """``Table`` / ``PartitionedTable`` -> ``data.table.json`` / ``data.partitioned-table.json``."""

    kind = "table"
    artifact_type = "dataset"

    def accepts(self, obj: Any) -> bool:
        return isinstance(obj, (Table, PartitionedTable))

    def store(self, artifact: Artifact, obj: Any, serializer: str | None) -> dict[str, Any]:
        artifact.add(obj, "data")
        return {}

    def load(self, artifact: Artifact) -> Any:
        return artifact.get("data")


class PathHandler(TypeHandler):
    """``pathlib.Path`` to a file (one entry) or a folder (its tree); loads a local path."""

    kind = "path"

    def accepts(self, obj: Any) -> bool:
        return isinstance(obj, Path)

    def store(self, artifact: Artifact, obj: Any, serializer: str | None) -> dict[str, Any]:
        if obj.is_dir():
            artifact.add_dir(obj)
            artifact.metadata = {**artifact.metadata, keys.PATH_KIND: "dir"}
        elif obj.is_file():
            artifact.add_file(obj, name=obj.name)
            artifact.metadata = {**artifact.metadata, keys.PATH_KIND: "file"}
        else:
            raise ConfigurationError(
                f"the returned path {str(obj)!r} does not exist; return an existing file or folder."
            )
        return {}

    def load(self, artifact: Artifact) -> Any:
        root = Path(artifact.download())
        if artifact.metadata.get(keys.PATH_KIND) == "file":
            (entry,) = artifact.manifest.entries
            return root / entry
        return root


class JsonHandler(TypeHandler):
    """JSON-able values (dict, list, str, numbers, bools) -> ``data.json``."""

    kind = "json"

    def accepts(self, obj: Any) -> bool:
        if not isinstance(obj, (dict, list, str, int, float, bool)):
            return False
        try:
            json.dumps(obj, allow_nan=False)
        except (TypeError, ValueError):
            return False
        return True

    def store(self, artifact: Artifact, obj: Any, serializer: str | None) -> dict[str, Any]:
        with artifact.new_file("data.json", mode="w", encoding="utf-8") as handle:
            json.dump(obj, handle, sort_keys=True, allow_nan=False)
        return {}

    def load(self, artifact: Artifact) -> Any:
        with open(artifact.get_entry("data.json").download(), encoding="utf-8") as handle:
            return json.load(handle)


def _serializer_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ConfigurationError(
            f"serializer {name!r} is not installed; pip install {name} or use 'pickle'."
        ) from None


class PickleHandler(TypeHandler):
    """Anything else the serializer can write (pickle by default; cloudpickle, joblib)."""

    kind = "pickle"
    artifact_type = "model"

    def __init__(self, serializer: str = "pickle") -> None:
        self.serializer = serializer

    def accepts(self, obj: Any) -> bool:
        return True  # tried at store time: an unpicklable object falls through to the error

    def store(self, artifact: Artifact, obj: Any, serializer: str | None) -> dict[str, Any]:
        name = serializer or self.serializer
        module = _serializer_module(name)
        with artifact.new_file("data.pkl", mode="wb") as handle:
            if name == "joblib":
                module.dump(obj, handle)
            else:
                module.dump(obj, handle, protocol=pickle.HIGHEST_PROTOCOL)
        artifact.metadata = {**artifact.metadata, keys.SERIALIZER: name}
        return {}

    def load(self, artifact: Artifact) -> Any:
        name = artifact.metadata.get(keys.SERIALIZER, "pickle")
        module = _serializer_module(name)
        with open(artifact.get_entry("data.pkl").download(), "rb") as handle:
            return module.load(handle)


HANDLERS: list[TypeHandler] = [
    DataFrameHandler(),
    TableHandler(),
    PathHandler(),
    JsonHandler(),
    PickleHandler(),
]
BY_KIND = {handler.kind: handler for handler in HANDLERS}


def handler_for_stored(artifact: Artifact) -> TypeHandler:
    """The handler that wrote ``artifact``, from its metadata or, failing that, its entries."""
    kind = artifact.metadata.get(keys.HANDLER)
    if kind in BY_KIND:
        return BY_KIND[kind]
    entries = set(artifact.manifest.entries)
    if "data.parquet" in entries:
        return BY_KIND["dataframe"]
    if "data.json" in entries:
        return BY_KIND["json"]
    if "data.pkl" in entries:
        return BY_KIND["pickle"]
    return BY_KIND["path"]
