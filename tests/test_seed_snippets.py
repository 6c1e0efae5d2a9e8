"""Every snippet of ../shared/reference/artifacts-api.md, run with ``import ... as wandb``.

The contents tables of the reference are checked entry by entry. (The S3 reference table runs
against moto in tests/storage; the parallel-runs snippet in tests/test_distributed.py.)
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import dagster_artifacts as wandb
from dagster_artifacts.errors import ArtifactNotFoundError, InvalidNameError


@pytest.fixture
def project_directory(tmp_path: Path) -> Path:
    """The reference's example project: images/{cat,dog}.png, checkpoints/model.h5, model.h5."""
    root = tmp_path / "project-directory"
    (root / "images").mkdir(parents=True)
    (root / "checkpoints").mkdir()
    (root / "images" / "cat.png").write_bytes(b"cat-pixels")
    (root / "images" / "dog.png").write_bytes(b"dog-pixels")
    (root / "checkpoints" / "model.h5").write_bytes(b"checkpoint-weights")
    (root / "model.h5").write_bytes(b"final-weights")
    os.chdir(root)
    return root


def logged_paths(artifact: wandb.Artifact) -> list[str]:
    with wandb.init(job_type="table") as run:
        run.log_artifact(artifact).wait()
    return sorted(artifact.manifest.entries)


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda a: a.add_file("model.h5"), ["model.h5"]),
        (lambda a: a.add_file("checkpoints/model.h5"), ["model.h5"]),
        (lambda a: a.add_file("model.h5", name="models/mymodel.h5"), ["models/mymodel.h5"]),
        (lambda a: a.add_dir("images"), ["cat.png", "dog.png"]),
        (lambda a: a.add_dir("images", name="images"), ["images/cat.png", "images/dog.png"]),
    ],
    ids=["file", "nested-file", "renamed-file", "dir", "named-dir"],
)
def test_adding_files_and_directories_table(project_directory: Path, call, expected) -> None:  # type: ignore[no-untyped-def]
    artifact = wandb.Artifact("table-case", type="dataset")
    call(artifact)
    assert logged_paths(artifact) == expected


def test_new_file_table_row(project_directory: Path) -> None:
    artifact = wandb.Artifact("new-file", type="dataset")
    with artifact.new_file("hello.txt") as f:
        f.write("hello")
    assert logged_paths(artifact) == ["hello.txt"]
    assert artifact.manifest.entries["hello.txt"].digest == "XUFAKrxLKna5cZ2REBfFkg=="


def test_entry_contents_match_the_added_files(project_directory: Path) -> None:
    artifact = wandb.Artifact("images", type="dataset")
    artifact.add_dir("images", name="images")
    logged_paths(artifact)
    folder = Path(artifact.download())
    assert (folder / "images" / "cat.png").read_bytes() == b"cat-pixels"
    assert (folder / "images" / "dog.png").read_bytes() == b"dog-pixels"


def test_initialize_create_log_use_download(project_directory: Path) -> None:
    # 1. Initialize a run / 2. Create an artifact
    run = wandb.init(job_type="train")
    artifact = wandb.Artifact("bike-dataset", type="dataset")
    artifact.add_file("model.h5")
    run.log_artifact(artifact)
    run.finish()
    # 3. Use an artifact
    run = wandb.init(job_type="evaluate")
    artifact = run.use_artifact("bike-dataset:v0")
    artifact_dir = artifact.download()
    assert Path(artifact_dir, "model.h5").read_bytes() == b"final-weights"
    assert Path(artifact_dir).name == "bike-dataset:v0"
    run.finish()


def test_use_artifact_from_other_project_and_entity(project_directory: Path) -> None:
    with wandb.init(job_type="train", project="my-project", entity="my-entity") as run:
        model = wandb.Artifact("bike-model", type="model")
        model.add_file("model.h5")
        run.log_artifact(model)
    with wandb.init(job_type="use", entity="my-entity") as run:
        by_project = run.use_artifact("my-project/bike-model:v0")
        by_entity = run.use_artifact("my-entity/my-project/bike-model:v0")
        assert (
            by_project.qualified_name
            == by_entity.qualified_name
            == ("my-entity/my-project/bike-model:v0")
        )
    with wandb.init(job_type="use") as run, pytest.raises(ArtifactNotFoundError):
        run.use_artifact("bike-model:v0")  # other project: not found in the default one


def test_use_unlogged_artifact_is_idempotent(project_directory: Path) -> None:
    with wandb.init(job_type="use") as run:
        for _ in range(3):
            artifact = wandb.Artifact("bike-model", type="model")
            artifact.add_file("model.h5")
            used = run.use_artifact(artifact)
            assert used.name == "bike-model:v0"
    versions = wandb.Api().artifact_versions("model", "bike-model")
    assert [v.name for v in versions] == ["bike-model:v0"]
    assert [r.id for r in versions[0].used_by()] == [run.id]


def test_reference_model_snippet_with_default_type(project_directory: Path) -> None:
    # The reference writes wandb.Artifact('reference model'): a space is not a valid name (W&B
    # itself rejects it), so the name is the one thing that changes; the default type works.
    with pytest.raises(InvalidNameError, match="letters, digits"):
        wandb.Artifact("reference model")
    with wandb.init(job_type="use") as run:
        artifact = wandb.Artifact("reference-model")
        artifact.add_file("model.h5")
        run.use_artifact(artifact)
    assert wandb.Api().artifact("reference-model:latest").type == "unspecified"


def test_versions_and_aliases(project_directory: Path) -> None:
    with wandb.init(job_type="train") as run:
        first = wandb.Artifact("bike-dataset", type="dataset")
        first.add_file("model.h5")
        run.log_artifact(first)
        second = wandb.Artifact("bike-dataset", type="dataset")
        second.add_file("checkpoints/model.h5")
        run.log_artifact(second)
        unchanged = wandb.Artifact("bike-dataset", type="dataset")
        unchanged.add_file("checkpoints/model.h5")
        run.log_artifact(unchanged)
    assert (first.name, second.name, unchanged.name) == (
        "bike-dataset:v0",
        "bike-dataset:v1",
        "bike-dataset:v1",
    )
    assert unchanged.deduplicated
    with wandb.init(job_type="train") as run:
        latest = run.use_artifact("bike-dataset:latest")
        assert latest.version == "v1"
        artifact = wandb.Artifact("run-3nq3ctyy-bike-model", type="model")
        artifact.add_file("model.h5")
        run.log_artifact(artifact, aliases=["latest", "best-ap50"])
    best = wandb.Api().artifact("run-3nq3ctyy-bike-model:best-ap50")
    assert sorted(best.aliases) == ["best-ap50", "latest"]


def test_versions_logged_in_a_loop_keep_call_order(project_directory: Path) -> None:
    with wandb.init(job_type="loop") as run:
        for i in range(10):
            a = wandb.Artifact("race", type="dataset", metadata={"index": i})
            with a.new_file("i.txt") as f:
                f.write(str(i))
            run.log_artifact(a)
    for version in wandb.Api().artifact_versions("dataset", "race"):
        assert version.metadata["index"] == version.version_index


def test_get_path_download_and_ref(project_directory: Path, httpserver) -> None:  # type: ignore[no-untyped-def]
    httpserver.expect_request("/data.csv").respond_with_data(
        "a,b\n1,2\n", headers={"ETag": '"abc123"'}
    )
    url = httpserver.url_for("/data.csv")
    with wandb.init(job_type="refs") as run:
        artifact = wandb.Artifact("refs", type="dataset")
        artifact.add_file("model.h5")
        artifact.add_reference(url)
        artifact.add_reference(f"file://{project_directory / 'images'}", name="imgs")
        run.log_artifact(artifact)
    with wandb.init(job_type="read") as run:
        artifact = run.use_artifact("refs:latest")
        entry = artifact.get_path("data.csv")
        assert entry.ref() == url
        assert Path(entry.download()).read_text() == "a,b\n1,2\n"
        assert artifact.manifest.entries["data.csv"].digest == "abc123"
        assert artifact.manifest.entries["data.csv"].extra == {
            "etag": '"abc123"'
        }  # as sent, as W&B
        assert artifact.manifest.entries["data.csv"].size == 8
        assert artifact.get_entry("model.h5").ref() is None
        assert artifact.get_entry("imgs/cat.png").ref() == (
            f"file://{project_directory / 'images' / 'cat.png'}"
        )
        datadir = Path(artifact.download(root="somewhere"))
        assert sorted(
            p.relative_to(datadir).as_posix() for p in datadir.rglob("*") if p.is_file()
        ) == [
            "data.csv",
            "imgs/cat.png",
            "imgs/dog.png",
            "model.h5",
        ]
        assert artifact.verify(root="somewhere").checked == 4


def test_download_outside_of_a_run(project_directory: Path) -> None:
    with wandb.init(job_type="train", entity="entity", project="project") as run:
        artifact = wandb.Artifact("artifact", type="dataset")
        artifact.add_file("model.h5")
        run.log_artifact(artifact, aliases=["alias"])
    api = wandb.Api()
    artifact = api.artifact("entity/project/artifact:alias")
    assert Path(artifact.download(), "model.h5").read_bytes() == b"final-weights"


def test_updating_artifacts(project_directory: Path) -> None:
    with wandb.init(job_type="train") as run:
        artifact = wandb.Artifact("bike-dataset", type="dataset", metadata={"oldKey": 1})
        artifact.add_file("model.h5")
        run.log_artifact(artifact)
    api = wandb.Api()
    artifact = api.artifact("bike-dataset:latest")
    artifact.description = "My new description"
    artifact.metadata["oldKey"] = "new value"
    artifact.save()
    again = api.artifact("bike-dataset:latest")
    assert (again.description, again.metadata) == ("My new description", {"oldKey": "new value"})
    artifact.metadata = {"newKey": "new value"}
    artifact.aliases.append("best")
    artifact.save()
    assert sorted(api.artifact("bike-dataset:best").aliases) == ["best", "latest"]
    artifact.aliases.remove("latest")
    artifact.save()
    with pytest.raises(ArtifactNotFoundError):
        api.artifact("bike-dataset:latest")
    artifact.aliases = ["replaced"]
    artifact.save()
    final = api.artifact("bike-dataset:v0")
    assert final.aliases == ["replaced"]
    assert final.metadata == {"newKey": "new value"}
    assert final.description == "My new description"


def test_traversing_the_artifact_graph(project_directory: Path) -> None:
    with wandb.init(job_type="preprocess") as producer:
        data = wandb.Artifact("data", type="dataset")
        data.add_file("model.h5")
        producer.log_artifact(data)
    with wandb.init(job_type="train") as run:
        run.use_artifact("data:v0")
        model = wandb.Artifact("model", type="model")
        model.add_file("checkpoints/model.h5")
        run.log_artifact(model)
    api = wandb.Api()
    artifact = api.artifact("data:v0")
    producer_run = artifact.logged_by()
    consumer_runs = artifact.used_by()
    assert producer_run is not None and producer_run.id == producer.id
    assert [r.id for r in consumer_runs] == [run.id]
    logged_artifacts = run.logged_artifacts()
    used_artifacts = run.used_artifacts()
    assert [a.name for a in logged_artifacts] == ["model:v0"]
    assert [a.name for a in used_artifacts] == ["data:v0"]
    assert api.run(f"{run.entity}/{run.project}/{run.id}").job_type == "train"
    assert [r.job_type for r in api.runs()] == ["preprocess", "train"]


def test_relogging_unchanged_content_records_lineage_for_the_new_run(
    project_directory: Path,
) -> None:
    runs = []
    for _ in range(2):
        with wandb.init(job_type="preprocess") as run:
            artifact = wandb.Artifact("data", type="dataset")
            artifact.add_file("model.h5")
            run.log_artifact(artifact, aliases=["fresh"])
        runs.append(run)
    assert [a.name for a in runs[1].logged_artifacts()] == ["data:v0"]
    version = wandb.Api().artifact("data:fresh")
    assert version.logged_by().id == runs[0].id  # type: ignore[union-attr]


def test_cleaning_up_unused_versions(project_directory: Path) -> None:
    with wandb.init(job_type="checkpoints") as run:
        for i in range(4):
            a = wandb.Artifact("ckpt", type="model")
            with a.new_file("step.txt") as f:
                f.write(str(i))
            run.log_artifact(a, aliases=["best"] if i == 1 else None)
    api = wandb.Api()
    artifact_type, artifact_name = "model", "ckpt"
    for version in api.artifact_versions(artifact_type, artifact_name):
        if len(version.aliases) == 0:
            version.delete()
    left = api.artifact_versions(artifact_type, artifact_name)
    assert [(v.name, sorted(v.aliases)) for v in left] == [
        ("ckpt:v1", ["best"]),
        ("ckpt:v3", ["latest"]),
    ]
    with pytest.raises(ArtifactNotFoundError):
        api.artifact("ckpt:v0")
    # Version numbers are never reused after a delete.
    with wandb.init(job_type="checkpoints") as run:
        a = wandb.Artifact("ckpt", type="model")
        with a.new_file("step.txt") as f:
            f.write("new")
        run.log_artifact(a)
    assert a.name == "ckpt:v4"


def test_artifact_types_and_collections(project_directory: Path) -> None:
    with wandb.init(job_type="t") as run:
        for name, type_ in [("d", "dataset"), ("m", "model")]:
            a = wandb.Artifact(name, type=type_)
            a.add_file("model.h5")
            run.log_artifact(a)
    api = wandb.Api()
    assert api.artifact_types() == ["dataset", "model"]
    assert [(c.name, c.type, c.version_count) for c in api.artifact_collections()] == [
        ("d", "dataset", 1),
        ("m", "model", 1),
    ]
    assert [a.name for a in api.artifacts("model", "m")] == ["m:v0"]
