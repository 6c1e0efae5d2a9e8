"""Materialize the whole example outside the UI: the main graph, then every day of the
partitioned summary as one backfill run (Dagster's partition range tags), as ``make run`` does.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from example_repo.definitions import DAYS, daily_summary, pipeline

#: Dagster's console logs at WARNING: the example prints its own summary.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def materialize_example(
    instance: dg.DagsterInstance, resources: dict[str, Any] | None = None
) -> list[dg.ExecuteInProcessResult]:
    """Both runs' results; ``resources`` default to the example's own (the default store)."""
    assets = list(pipeline.assets or [])
    resources = dict(pipeline.resources or {}) if resources is None else resources
    main = dg.materialize(
        [a for a in assets if a is not daily_summary],
        resources=resources,
        instance=instance,
        run_config=QUIET,
    )
    keys = DAYS.get_partition_keys()
    backfill = dg.materialize(
        assets,
        selection=[daily_summary],
        resources=resources,
        instance=instance,
        run_config=QUIET,
        tags={
            "dagster/asset_partition_range_start": keys[0],
            "dagster/asset_partition_range_end": keys[-1],
        },
    )
    if not (main.success and backfill.success):
        raise RuntimeError("the example pipeline failed; see the Dagster logs above")
    return [main, backfill]
