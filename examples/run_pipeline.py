"""Materialize the example bike-sharing pipeline on the embedded default store, then print the
artifact versions, aliases and lineage it produced.

    .venv/bin/python examples/run_pipeline.py

No configuration: the store is ``DAGSTER_ARTIFACTS_ROOT`` if set, else the default local store.
Run it twice: unchanged outputs are deduplicated (no new version). Dagster records the runs in
the instance at ``DAGSTER_HOME`` (default ``.dagster_home/`` in the project), so ``make ui``
shows them: materializations, their artifact metadata and data versions.
"""

import os
import sys
from pathlib import Path

import dagster as dg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dagster_artifacts as wandb  # noqa: E402
from example_repo.materialize import materialize_example  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def dagster_home() -> Path:
    """Where Dagster keeps its runs and materializations for the UI (created if missing)."""
    home = Path(os.environ.get("DAGSTER_HOME") or REPO / ".dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    settings = home / "dagster.yaml"
    if not settings.exists():
        settings.write_text("telemetry:\n  enabled: false\n")
    return home


def main() -> None:
    home = dagster_home()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        main_run, _backfill = materialize_example(instance)
        evaluation = main_run.output_for_node("bike_evaluation")

    api = wandb.Api(project="bike-sharing")
    print(f"store: {wandb.Settings.resolve().root}")
    print(f"dagster: runs recorded in {home} (`make ui` shows them)")
    print(f"evaluation: {evaluation}")
    for name in ["bike-rides", "bike-features", "bike-model", "daily_summary", "station-map"]:
        for version in api.artifact_versions(None, name):
            partition = f" partition={version.partition_key}" if version.partition_key else ""
            print(
                f"  {name}:{version.version:<4} {version.digest}  aliases={version.aliases}"
                f"{partition}"
            )
    model = api.artifact("bike-model:latest")
    run = model.logged_by()
    assert run is not None
    print(f"lineage: {run.path} (job_type={run.job_type}, group={run.group})")
    print(f"  used   {[f'{a.name}' for a in run.used_artifacts()]}")
    print(f"  logged {[f'{a.name}' for a in run.logged_artifacts()]}")
    print(f"  bike-model:latest used by {[f'{r.name} ({r.job_type})' for r in model.used_by()]}")


if __name__ == "__main__":
    main()
