"""Type handlers: the public extension point of ``ArtifactsIOManager`` (one class per type, in the
manner of dagster-deltalake's ``DbTypeHandler``).

Storing: the first handler whose :meth:`TypeHandler.handles` accepts the value writes it into a
draft ``Artifact`` and records its :attr:`~TypeHandler.kind` in the version's metadata
(:data:`.metadata.HANDLER`), so loading does not have to guess.

Loading: the input annotation chooses first (a handler whose :meth:`TypeHandler.loads_as` accepts
it and that :meth:`TypeHandler.can_load` the stored files: a Parquet file loads as pandas, polars
or pyarrow, whichever the input asks for); without a telling annotation, the handler that wrote
the version loads it.

A handler of your own::

    class GeoJsonHandler(TypeHandler):
        kind = "geojson"
        def handles(self, obj): return isinstance(obj, FeatureCollection)
        def store(self, artifact, obj, serializer):
            with artifact.new_file("data.geojson", mode="w") as f: f.write(obj.to_json())
            return {}
        def loads_as(self, annotation): return annotation is FeatureCollection
        def load(self, artifact, annotation):
            return FeatureCollection.from_file(artifact.get_entry("data.geojson").download())

    ArtifactsIOManager(type_handlers=[GeoJsonHandler()])  # tried before the built-in ones

Handlers are rebuilt from their class in every step process (the IO manager's config holds
``module:Class`` paths), so a handler takes no constructor arguments.
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

PARQUET = "data.parquet"


def _module_of(value: Any) -> str:
    """The top-level package a class (or an instance's class) comes from: ``polars``, ``numpy``."""
    cls = value if isinstance(value, type) else type(value)
    return (getattr(cls, "__module__", "") or "").split(".", 1)[0]


class TypeHandler:
    """Stores one kind of object into a draft artifact and loads it back.

    Subclass it and pass instances (or classes, or ``"module:Class"`` paths) as
    ``ArtifactsIOManager(type_handlers=[...])``; they are tried before the built-in handlers.
    """

    #: Recorded in the version's metadata (``dagster/handler``): which handler wrote it.
    kind: ClassVar[str]
    #: The artifact type of versions it writes, unless the output config names one.
    artifact_type: ClassVar[str] = "unspecified"

    def handles(self, obj: Any) -> bool:
        """Whether this handler can store ``obj``."""
        raise NotImplementedError

    def store(self, artifact: Artifact, obj: Any, serializer: str | None) -> dict[str, Any]:
        """Add ``obj`` to ``artifact``; return extra Dagster metadata (schema, row count...)."""
        raise NotImplementedError

    def loads_as(self, annotation: Any) -> bool:
        """Whether an input annotated ``annotation`` should be loaded by this handler."""
        return False

    def can_load(self, artifact: Artifact) -> bool:
        """Whether the stored files of ``artifact`` are something this handler reads."""
        return artifact.metadata.get(keys.HANDLER) == self.kind

    def load(self, artifact: Artifact, annotation: Any) -> Any:
        """The value stored in ``artifact``, as ``annotation`` asks where the handler can."""
        raise NotImplementedError


# -- tables: pandas, polars, pyarrow (all as data.parquet) --------------------------------------
def _column_metadata(columns: list[tuple[str, str]], rows: int | None) -> dict[str, Any]:
    import dagster as dg

    schema = dg.TableSchema(columns=[dg.TableColumn(name, dtype) for name, dtype in columns])
    extra: dict[str, Any] = {keys.COLUMN_SCHEMA: dg.MetadataValue.table_schema(schema)}
    if rows is not None:
        extra[keys.ROW_COUNT] = dg.MetadataValue.int(rows)
    return extra


class _ParquetHandler(TypeHandler):
    """Any Parquet-writing handler reads any stored ``data.parquet``: the annotation decides."""

    artifact_type = "dataset"

    def can_load(self, artifact: Artifact) -> bool:
        return PARQUET in artifact.manifest.entries

    def _local(self, artifact: Artifact) -> str:
        return artifact.get_entry(PARQUET).download()

    @staticmethod
    def _write_arrow(artifact: Artifact, table: Any) -> None:
        import pyarrow.parquet as pq

        with artifact.new_file(PARQUET, mode="wb") as handle:
            pq.write_table(table, handle)


class PandasHandler(_ParquetHandler):
    """``pandas.DataFrame`` -> ``data.parquet`` (pyarrow, hashed while written)."""

    kind = "dataframe"

    def handles(self, obj: Any) -> bool:
        if _module_of(obj) != "pandas":
            return False
        import pandas as pd

        return isinstance(obj, pd.DataFrame)

    def store(self, artifact: Artifact, obj: Any, serializer: str | None) -> dict[str, Any]:
        artifact.add(obj, "data")
        columns = [(str(name), str(dtype)) for name, dtype in obj.dtypes.items()]
        return _column_metadata(columns, len(obj))

    def loads_as(self, annotation: Any) -> bool:
        return _module_of(annotation) == "pandas" and getattr(annotation, "__name__", "") == (
            "DataFrame"
        )

    def load(self, artifact: Artifact, annotation: Any) -> Any:
        import pandas as pd

        return pd.read_parquet(self._local(artifact), engine="pyarrow")


#: Kept for code that imported the old name.
DataFrameHandler = PandasHandler


class PolarsHandler(_ParquetHandler):
    """``polars.DataFrame`` and ``polars.LazyFrame`` -> ``data.parquet``; an input annotated
    ``pl.LazyFrame`` gets a lazy scan of the downloaded file, ``pl.DataFrame`` the frame."""

    kind = "polars"

    def handles(self, obj: Any) -> bool:
        if _module_of(obj) != "polars":
            return False
        import polars as pl

        return isinstance(obj, (pl.DataFrame, pl.LazyFrame))

    def store(self, artifact: Artifact, obj: Any, serializer: str | None) -> dict[str, Any]:
        import polars as pl

        frame = obj.collect() if isinstance(obj, pl.LazyFrame) else obj
        self._write_arrow(artifact, frame.to_arrow())
        columns = [(name, str(dtype)) for name, dtype in frame.schema.items()]
        return _column_metadata(columns, frame.height)

    def loads_as(self, annotation: Any) -> bool:
        return _module_of(annotation) == "polars" and getattr(annotation, "__name__", "") in {
            "DataFrame",
            "LazyFrame",
        }

    def load(self, artifact: Artifact, annotation: Any) -> Any:
        import polars as pl

        if getattr(annotation, "__name__", "") == "LazyFrame":
            return pl.scan_parquet(self._local(artifact))
        return pl.read_parquet(self._local(artifact))


class ArrowHandler(_ParquetHandler):
    """``pyarrow.Table`` -> ``data.parquet``; loads as a ``pyarrow.Table``."""

    kind = "arrow"

    def handles(self, obj: Any) -> bool:
        if _module_of(obj) != "pyarrow":
            return False
        import pyarrow as pa

        return isinstance(obj, pa.Table)

    def store(self, artifact: Artifact, obj: Any, serializer: str | None) -> dict[str, Any]:
        self._write_arrow(artifact, obj)
        columns = [(field.name, str(field.type)) for field in obj.schema]
        return _column_metadata(columns, obj.num_rows)

    def loads_as(self, annotation: Any) -> bool:
        return _module_of(annotation) == "pyarrow" and getattr(annotation, "__name__", "") == (
            "Table"
        )

    def load(self, artifact: Artifact, annotation: Any) -> Any:
        import pyarrow.parquet as pq

        return pq.read_table(self._local(artifact))


class TableHandler(TypeHandler):
    """``Table`` / ``PartitionedTable`` -> ``data.table.json`` / ``data.partitioned-table.json``."""

    kind = "table"
    artifact_type = "dataset"

    def handles(self, obj: Any) -> bool:
        return isinstance(obj, (Table, PartitionedTable))

    def store(self, artifact: Artifact, obj: Any, serializer: str | None) -> dict[str, Any]:
        artifact.add(obj, "data")
        return {}

    def loads_as(self, annotation: Any) -> bool:
        return annotation in (Table, PartitionedTable)

    def load(self, artifact: Artifact, annotation: Any) -> Any:
        return artifact.get("data")


class NumpyHandler(TypeHandler):
    """``numpy.ndarray`` -> ``data.npy`` (no pickle inside: object arrays go to the fallback)."""

    kind = "numpy"

    def handles(self, obj: Any) -> bool:
        if _module_of(obj) != "numpy":
            return False
        import numpy as np

        return isinstance(obj, np.ndarray) and not obj.dtype.hasobject

    def store(self, artifact: Artifact, obj: Any, serializer: str | None) -> dict[str, Any]:
        import dagster as dg
        import numpy as np

        with artifact.new_file("data.npy", mode="wb") as handle:
            np.save(handle, obj, allow_pickle=False)
        return {
            keys.ARRAY_SHAPE: dg.MetadataValue.json(list(obj.shape)),
            keys.ARRAY_DTYPE: dg.MetadataValue.text(str(obj.dtype)),
        }

    def loads_as(self, annotation: Any) -> bool:
        return _module_of(annotation) == "numpy" and getattr(annotation, "__name__", "") == (
            "ndarray"
        )

    def can_load(self, artifact: Artifact) -> bool:
        return "data.npy" in artifact.manifest.entries

    def load(self, artifact: Artifact, annotation: Any) -> Any:
        import numpy as np

        return np.load(artifact.get_entry("data.npy").download(), allow_pickle=False)


class PathHandler(TypeHandler):
    """``pathlib.Path`` to a file (one entry) or a folder (its tree); loads a local path.

    An input annotated ``Path`` gets a downloaded local path whatever wrote the version."""

    kind = "path"

    def handles(self, obj: Any) -> bool:
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

    def loads_as(self, annotation: Any) -> bool:
        return isinstance(annotation, type) and issubclass(annotation, Path)

    def can_load(self, artifact: Artifact) -> bool:
        return True  # any version downloads to a folder

    def load(self, artifact: Artifact, annotation: Any) -> Any:
        root = Path(artifact.download())
        if artifact.metadata.get(keys.PATH_KIND) == "file":
            (entry,) = artifact.manifest.entries
            return root / entry
        return root


class JsonHandler(TypeHandler):
    """JSON-able values (dict, list, str, numbers, bools) -> ``data.json``."""

    kind = "json"

    def handles(self, obj: Any) -> bool:
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

    def can_load(self, artifact: Artifact) -> bool:
        return "data.json" in artifact.manifest.entries

    def load(self, artifact: Artifact, annotation: Any) -> Any:
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

    def handles(self, obj: Any) -> bool:
        return True  # tried at store time: an unpicklable object falls through to the error

    def store(self, artifact: Artifact, obj: Any, serializer: str | None) -> dict[str, Any]:
        name = serializer or "pickle"
        module = _serializer_module(name)
        with artifact.new_file("data.pkl", mode="wb") as handle:
            if name == "joblib":
                module.dump(obj, handle)
            else:
                module.dump(obj, handle, protocol=pickle.HIGHEST_PROTOCOL)
        artifact.metadata = {**artifact.metadata, keys.SERIALIZER: name}
        return {}

    def can_load(self, artifact: Artifact) -> bool:
        return "data.pkl" in artifact.manifest.entries

    def load(self, artifact: Artifact, annotation: Any) -> Any:
        name = artifact.metadata.get(keys.SERIALIZER, "pickle")
        module = _serializer_module(name)
        with open(artifact.get_entry("data.pkl").download(), "rb") as handle:
            return module.load(handle)


#: The built-in handlers, in the order they are tried (the fallback last).
BUILT_IN: tuple[type[TypeHandler], ...] = (
    PandasHandler,
    PolarsHandler,
    ArrowHandler,
    NumpyHandler,
    TableHandler,
    PathHandler,
    JsonHandler,
    PickleHandler,
)


def handler_path(handler: Any) -> str:
    """``module:QualName`` of a handler given as an instance, a class or already a path."""
    if isinstance(handler, str):
        return handler
    cls = handler if isinstance(handler, type) else type(handler)
    if not (isinstance(cls, type) and issubclass(cls, TypeHandler)):
        raise ConfigurationError(
            f"type_handlers takes TypeHandler subclasses, instances of them or 'module:Class' "
            f"paths; got {handler!r}."
        )
    if "<locals>" in cls.__qualname__:
        raise ConfigurationError(
            f"type handler {cls.__qualname__} is defined inside a function: step processes "
            "rebuild handlers from 'module:Class', so define it at module level."
        )
    return f"{cls.__module__}:{cls.__qualname__}"


def load_handler(path: str) -> TypeHandler:
    """The handler named ``module:Class`` (or ``module.Class``), built with no arguments."""
    module_name, _, qualname = path.partition(":") if ":" in path else path.rpartition(".")
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError, ValueError) as error:
        raise ConfigurationError(
            f"type handler {path!r} cannot be imported ({error}); give 'module:Class' of a "
            "TypeHandler subclass defined at module level."
        ) from None
    if not (isinstance(target, type) and issubclass(target, TypeHandler)):
        raise ConfigurationError(f"type handler {path!r} is not a TypeHandler subclass.")
    return target()


def stored_kind_handler(artifact: Artifact, handlers: list[TypeHandler]) -> TypeHandler | None:
    """The handler that wrote ``artifact`` (its recorded kind), else the first that reads it."""
    kind = artifact.metadata.get(keys.HANDLER)
    for handler in handlers:
        if handler.kind == kind:
            return handler
    for handler in handlers:
        if not isinstance(handler, PathHandler) and handler.can_load(artifact):
            return handler
    return None
