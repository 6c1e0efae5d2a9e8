"""The type handlers as a public extension point, through real ``dg.materialize`` runs: polars,
pyarrow and numpy outputs, the input annotation choosing how Parquet loads, ``Optional[T]`` and
``dict[str, T]`` inputs, a handler of the user's own, and bad handler config."""

from typing import Any, Optional

import dagster as dg
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import dagster_artifacts as wandb
from dagster_artifacts import ArtifactsIOManager
from dagster_artifacts.dagster import TypeHandler
from dagster_artifacts.errors import ConfigurationError

RESOURCES: dict[str, Any] = {"io_manager": ArtifactsIOManager()}


def _run(*assets: Any, **kwargs: Any) -> dg.ExecuteInProcessResult:
    result = dg.materialize(list(assets), resources=kwargs.pop("resources", RESOURCES), **kwargs)
    assert result.success
    return result


def test_polars_arrow_numpy_outputs_and_annotation_chosen_parquet_loading() -> None:
    @dg.asset
    def trips_pl() -> pl.DataFrame:
        return pl.DataFrame({"hour": [7, 8], "count": [120, 340]})

    @dg.asset
    def trips_lazy() -> pl.LazyFrame:
        return pl.LazyFrame({"hour": [9], "count": [5]})

    @dg.asset
    def trips_arrow() -> pa.Table:
        return pa.table({"hour": [1, 2, 3]})

    @dg.asset
    def weights() -> np.ndarray:
        return np.arange(6, dtype=np.float32).reshape(2, 3)

    seen: dict[str, Any] = {}

    @dg.asset
    def readers(
        trips_pl: pd.DataFrame,  # written by polars, read by pandas
        trips_lazy: pl.LazyFrame,
        trips_arrow: pl.DataFrame,  # written by pyarrow, read by polars
        weights: np.ndarray,
    ) -> int:
        seen["pandas"] = (type(trips_pl).__name__, trips_pl["count"].tolist())
        seen["lazy"] = (type(trips_lazy).__name__, trips_lazy.collect()["count"].to_list())
        seen["arrow"] = (type(trips_arrow).__name__, trips_arrow["hour"].to_list())
        seen["numpy"] = (weights.dtype.name, weights.shape, float(weights.sum()))
        return 1

    @dg.asset
    def as_arrow(trips_pl: pa.Table) -> int:
        seen["as_arrow"] = type(trips_pl).__name__
        return trips_pl.num_rows

    result = _run(trips_pl, trips_lazy, trips_arrow, weights, readers, as_arrow)
    assert seen == {
        "pandas": ("DataFrame", [120, 340]),
        "lazy": ("LazyFrame", [5]),
        "arrow": ("DataFrame", [1, 2, 3]),
        "numpy": ("float32", (2, 3), 15.0),
        "as_arrow": "Table",
    }
    api = wandb.Api()
    for name, handler in [
        ("trips_pl", "polars"),
        ("trips_lazy", "polars"),
        ("trips_arrow", "arrow"),
    ]:
        stored = api.artifact(f"{name}:latest")
        assert (stored.type, stored.metadata["dagster/handler"]) == ("dataset", handler)
        assert list(stored.manifest.entries) == ["data.parquet"]
        # Parquet any reader opens: pandas reads what polars and pyarrow wrote.
        assert len(stored.get("data")) >= 1
    assert list(api.artifact("weights:latest").manifest.entries) == ["data.npy"]
    meta = {
        e.asset_key.to_user_string(): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    assert meta["trips_pl"]["dagster/row_count"].value == 2
    assert [c.name for c in meta["trips_arrow"]["dagster/column_schema"].value.columns] == ["hour"]
    assert meta["weights"]["artifact/shape"].value == [2, 3]


DAYS = dg.StaticPartitionsDefinition(["mon", "tue"])


@dg.asset(partitions_def=DAYS)
def day_counts(context: dg.AssetExecutionContext) -> list[int]:
    return [len(context.partition_key)] * 2


def test_optional_input_gets_none_and_dict_input_always_gets_a_dict() -> None:
    seen: dict[str, Any] = {}

    @dg.asset
    def never_materialized() -> int:
        return 1

    @dg.asset(ins={"never_materialized": dg.AssetIn()})
    def tolerant(never_materialized: Optional[int]) -> str:  # noqa: UP045 (what users write)
        seen["optional"] = never_materialized
        return "ok"

    @dg.asset(ins={"never_materialized": dg.AssetIn()})
    def tolerant_pipe(never_materialized: int | None) -> str:
        seen["pipe"] = never_materialized
        return "ok"

    _run(never_materialized, tolerant, tolerant_pipe, selection=[tolerant, tolerant_pipe])
    assert seen == {"optional": None, "pipe": None}

    @dg.asset(
        partitions_def=DAYS,
        ins={"day_counts": dg.AssetIn(partition_mapping=dg.IdentityPartitionMapping())},
    )
    def per_day(day_counts: dict[str, list[int]]) -> int:
        seen["dict"] = day_counts
        return sum(sum(v) for v in day_counts.values())

    _run(day_counts, partition_key="mon")
    _run(day_counts, per_day, selection=[per_day], partition_key="mon")
    assert seen["dict"] == {"mon": [3, 3]}  # one partition, still a dict by key

    @dg.asset(ins={"never_materialized": dg.AssetIn()})
    def strict(never_materialized: int) -> int:
        return never_materialized

    failed = dg.materialize(
        [never_materialized, strict],
        selection=[strict],
        resources=RESOURCES,
        raise_on_error=False,
    )
    assert not failed.success  # without Optional, a missing upstream is still an error
    assert "materialize 'never_materialized' first" in str(
        failed.get_step_failure_events()[0].step_failure_data.error
    )


class Celsius:
    """A user type no built-in handler knows."""

    def __init__(self, degrees: float) -> None:
        self.degrees = degrees


class CelsiusHandler(TypeHandler):
    """Stores a ``Celsius`` as a one-line text file."""

    kind = "celsius"
    artifact_type = "reading"

    def handles(self, obj: Any) -> bool:
        return isinstance(obj, Celsius)

    def store(self, artifact: wandb.Artifact, obj: Any, serializer: str | None) -> dict[str, Any]:
        with artifact.new_file("reading.txt") as handle:
            handle.write(f"{obj.degrees} C\n")
        return {"celsius": dg.MetadataValue.float(obj.degrees)}

    def loads_as(self, annotation: Any) -> bool:
        return annotation is Celsius

    def load(self, artifact: wandb.Artifact, annotation: Any) -> Any:
        with open(artifact.get_entry("reading.txt").download(), encoding="utf-8") as handle:
            return Celsius(float(handle.read().split()[0]))


class CelsiusIOManager(ArtifactsIOManager):
    """The subclass hook: the same handler, without configuration."""

    @classmethod
    def default_type_handlers(cls) -> list[TypeHandler]:
        return [CelsiusHandler(), *super().default_type_handlers()]


@pytest.mark.parametrize(
    "io_manager",
    [
        ArtifactsIOManager(type_handlers=[CelsiusHandler()]),
        ArtifactsIOManager(type_handlers=["tests.dagster.test_type_handlers:CelsiusHandler"]),
        CelsiusIOManager(),
    ],
    ids=["instance", "path", "subclass"],
)
def test_a_handler_of_your_own(io_manager: ArtifactsIOManager) -> None:
    @dg.asset
    def temperature() -> Celsius:
        return Celsius(21.5)

    seen: dict[str, Any] = {}

    @dg.asset
    def warmer(temperature: Celsius) -> float:
        seen["type"] = type(temperature).__name__
        return temperature.degrees + 1

    result = _run(temperature, warmer, resources={"io_manager": io_manager})
    assert result.output_for_node("warmer") == 22.5
    assert seen == {"type": "Celsius"}
    stored = wandb.Api().artifact("temperature:latest")
    assert (stored.type, list(stored.manifest.entries)) == ("reading", ["reading.txt"])
    meta = result.asset_materializations_for_node("temperature")[0].metadata
    assert meta["celsius"].value == 21.5


def test_bad_handler_config_is_a_typed_error_naming_what_to_give() -> None:
    # At construction, pydantic wraps the message in its ValidationError (a ValueError).
    with pytest.raises(ValueError, match="TypeHandler subclasses, instances of them or 'module:"):
        ArtifactsIOManager(type_handlers=[object()])

    class Local(CelsiusHandler):
        kind = "local"

    with pytest.raises(ValueError, match="define it at module level"):
        ArtifactsIOManager(type_handlers=[Local])
    with pytest.raises(ValueError, match=r"use one of \('pickle', 'cloudpickle', 'joblib'\)"):
        ArtifactsIOManager(serializer="marshal")
    # A path that does not import fails the step that needs it, as a ConfigurationError.
    with pytest.raises(ConfigurationError, match="cannot be imported"):
        ArtifactsIOManager(type_handlers=["no_such_module:Handler"]).handlers()
