"""The example pipeline past one machine: each step on a worker process of a Dask cluster
(``dagster-dask``'s executor), the store on an object store and the registry on PostgreSQL.

Nothing in the assets changes. The workers build the resources from the environment they
inherit, as every process of a real deployment does::

    DAGSTER_ARTIFACTS_ROOT=s3://bikes/artifacts
    DAGSTER_ARTIFACTS_DATABASE=postgresql+psycopg://user@db-host/artifacts
    AWS_ENDPOINT_URL=...   # only for an S3-compatible server that is not AWS

and run it as a reconstructable job (Dask workers import it by module and function name)::

    with dg.DagsterInstance.get() as instance:
        dg.execute_job(dg.reconstructable(bike_pipeline_on_dask), instance=instance,
                       run_config=dask_run_config(workers=2))

Every step's artifact versions, lineage and data versions are the same as in-process: a step's
artifacts run is keyed by (Dagster run id, step key), whichever process runs it.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from example_repo.definitions import PIPELINE_ASSETS, daily_summary, pipeline


def dask_run_config(workers: int = 2, address: str | None = None) -> dict[str, Any]:
    """Run config for the Dask executor: a local cluster of ``workers`` worker processes (one
    thread each), or the scheduler at ``address`` of a cluster that already runs."""
    cluster: dict[str, Any] = (
        {"existing": {"address": address}}
        if address
        else {
            "local": {
                "n_workers": workers,
                "threads_per_worker": 1,
                "processes": True,
                "dashboard_address": ":0",  # any free port: runs side by side do not clash
            }
        }
    )
    return {"execution": {"config": {"cluster": cluster}}}


def bike_pipeline_on_dask() -> dg.JobDefinition:
    """``bike_pipeline`` with the Dask executor (module-level, so it is reconstructable)."""
    from dagster_dask import dask_executor

    job = dg.define_asset_job(
        "bike_pipeline_dask",
        selection=dg.AssetSelection.assets(*PIPELINE_ASSETS)
        - dg.AssetSelection.assets(daily_summary),
        executor_def=dask_executor,
    )
    defs = dg.Definitions(
        assets=PIPELINE_ASSETS, resources=dict(pipeline.resources or {}), jobs=[job]
    )
    return defs.resolve_job_def("bike_pipeline_dask")
