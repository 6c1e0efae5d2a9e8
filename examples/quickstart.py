"""Quick start: log, version, alias, use and download an artifact, then print the lineage.

Runs on the embedded default store (or ``DAGSTER_ARTIFACTS_ROOT``) with no configuration.
"""

from __future__ import annotations

import os
import tempfile

import dagster_artifacts as wandb


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="dagster-artifacts-quickstart-") as workdir:
        quickstart(workdir)


def quickstart(workdir: str) -> None:
    """Everything happens in ``workdir`` (removed afterwards) and the store."""
    data = os.path.join(workdir, "bike-data.csv")

    with wandb.init(job_type="preprocessing", project="quickstart") as run:
        for day in range(2):
            with open(data, "w") as handle:
                handle.write("day,rides\n" + "".join(f"{d},{100 + d}\n" for d in range(day + 3)))
            artifact = wandb.Artifact("bike-dataset", type="dataset", metadata={"days": day + 3})
            artifact.add_file(data)
            # wait() before the next loop rewrites the file the artifact points at
            run.log_artifact(artifact, aliases=["best"] if day == 0 else None).wait()
        print(f"logged   {artifact.qualified_name}  digest={artifact.digest}")

    with wandb.init(job_type="train", project="quickstart") as run:
        dataset = run.use_artifact("bike-dataset:best")
        folder = dataset.download(root=os.path.join(workdir, "download"))
        print(f"used     {dataset.qualified_name} -> {folder}: {sorted(os.listdir(folder))}")
        model = wandb.Artifact("bike-model", type="model")
        with model.new_file("model.txt") as handle:
            handle.write(f"trained on {dataset.name}\n")
        run.log_artifact(model, aliases=["best-ap50"]).wait()
        print(f"logged   {model.qualified_name} aliases={model.aliases}")

    api = wandb.Api(project="quickstart")
    print("\nversions of bike-dataset:")
    for version in api.artifact_versions("dataset", "bike-dataset"):
        print(f"  {version.name:<18} aliases={version.aliases} metadata={version.metadata}")
    print("\nlineage:")
    model = api.artifact("bike-model:latest")
    producer = model.logged_by()
    assert producer is not None
    for used in producer.used_artifacts():
        print(f"  {used.name} --used by--> run {producer.name} ({producer.job_type})")
    print(f"  run {producer.name} --logged--> {model.name}")
    for consumer in api.artifact("bike-dataset:best").used_by():
        print(f"  bike-dataset:best is used by run {consumer.name}")


if __name__ == "__main__":
    main()
