"""``ArtifactCollection`` and ``ArtifactType`` (``artifact.collection``,
``Api.artifact_collection``, ``Api.artifact_type``...), on SQLite and PostgreSQL where the
registry changed (renames, tags, deletes)."""

from __future__ import annotations

from datetime import datetime

import pytest

import dagster_artifacts as wandb
from dagster_artifacts import errors


def _log(name: str, text: str, type: str = "dataset", project: str | None = None) -> wandb.Artifact:
    with wandb.init(job_type="t", project=project) as run:
        artifact = wandb.Artifact(name, type=type)
        with artifact.new_file("f.txt") as handle:
            handle.write(text)
        return run.log_artifact(artifact).wait()


def test_collection_of_a_version_and_its_members() -> None:
    _log("data", "a")
    v1 = _log("data", "b")
    collection = v1.collection
    assert isinstance(collection, wandb.ArtifactCollection)
    assert (collection.name, collection.type) == ("data", "dataset")
    assert (collection.entity, collection.project) == ("default", "uncategorized")
    assert collection.is_sequence() and collection.version_count == 2
    assert collection.aliases == ["latest"]
    assert [a.name for a in collection.artifacts()] == ["data:v1", "data:v0"]  # newest first
    assert datetime.fromisoformat(collection.created_at).tzinfo is not None
    assert collection.updated_at is None
    assert v1.source_collection.id == collection.id


def test_collection_edits_are_saved_together(registry_url: str) -> None:
    v0 = _log("data", "a")
    collection = wandb.Api().artifact_collection("dataset", "data")
    collection.description = "raw bikes"
    collection.tags = ["raw", "bikes"]
    collection.name = "bikes"
    collection.type = "raw-data"
    assert wandb.Api().artifact_collection_exists("data", "dataset")  # nothing saved yet
    collection.save()
    api = wandb.Api()
    assert not api.artifact_collection_exists("data", "dataset")
    saved = api.artifact_collection("raw-data", "bikes")
    assert (saved.description, saved.tags) == ("raw bikes", ["raw", "bikes"])
    assert saved.updated_at is not None
    assert api.artifact("bikes:v0").digest == v0.digest
    assert api.artifact("bikes:v0").type == "raw-data"


def test_renaming_onto_an_existing_collection_is_refused(registry_url: str) -> None:
    _log("data", "a")
    _log("other", "b")
    collection = wandb.Api().artifact_collection("dataset", "data")
    collection.name = "other"
    with pytest.raises(errors.InvalidNameError, match="exists"):
        collection.save()
    assert wandb.Api().artifact_collection_exists("data", "dataset")


def test_bad_collection_edits_are_refused_when_set() -> None:
    _log("data", "a")
    collection = wandb.Api().artifact_collection("dataset", "data")
    with pytest.raises(errors.InvalidNameError):
        collection.tags = ["no/slash"]
    with pytest.raises(errors.InvalidNameError):
        collection.name = "bad name!"
    assert collection.tags == [] and collection.name == "data"


def test_a_collection_of_links_keeps_its_sources_type() -> None:
    _log("m", "w", type="model").link("registry/models")
    portfolio = wandb.Api().artifact_collection("model", "registry/models")
    assert not portfolio.is_sequence()
    with pytest.raises(errors.LinkError, match="sequence"):
        portfolio.type = "other"


def test_collection_delete_removes_every_version_and_their_links(registry_url: str) -> None:
    _log("m", "a", type="model").link("registry/models")
    _log("m", "b", type="model")
    wandb.Api().artifact_collection("model", "m").delete()
    api = wandb.Api()
    assert not api.artifact_collection_exists("m", "model")
    assert not api.artifact_exists("m:v0") and not api.artifact_exists("registry/models:v0")


def test_api_collection_lookups() -> None:
    _log("data", "a")
    _log("weights", "w", type="model")
    api = wandb.Api()
    assert api.artifact_collection_exists("data", "dataset")
    assert api.artifact_collection_exists("uncategorized/data", "dataset")
    assert not api.artifact_collection_exists("data", "model")  # exists, of another type
    assert not api.artifact_collection_exists("nope", "dataset")
    with pytest.raises(errors.ArtifactNotFoundError, match="has type 'dataset'"):
        api.artifact_collection("model", "data")
    with pytest.raises(errors.ArtifactNotFoundError, match="artifact_collections"):
        api.artifact_collection("dataset", "nope")
    assert [c.name for c in api.artifact_collections()] == ["data", "weights"]
    assert [c.name for c in api.artifact_collections(type_name="model")] == ["weights"]
    assert [c.name for c in api.artifact_collections(order="-name")] == ["weights", "data"]
    with pytest.raises(errors.InvalidArgumentError, match="Unknown order"):
        api.artifact_collections(order="size")
    with pytest.raises(errors.NotApplicableError, match="slice"):
        api.artifact_collections(start="cursor")


def test_artifact_type() -> None:
    _log("data", "a")
    _log("more", "b")
    api = wandb.Api()
    dataset = api.artifact_type("dataset")
    assert isinstance(dataset, wandb.ArtifactType)
    assert dataset.name == "dataset"
    assert [c.name for c in dataset.collections()] == ["data", "more"]
    assert dataset.collection("more").version_count == 1
    with pytest.raises(errors.ArtifactNotFoundError, match="artifact_types"):
        api.artifact_type("model")
    with pytest.raises(errors.NotApplicableError, match="filter the returned list"):
        dataset.collections(filters={"name": "data"})


def test_api_artifacts_order_and_tags() -> None:
    with wandb.init(job_type="t") as run:
        for index, tags in enumerate((["raw"], ["raw", "clean"], [])):
            artifact = wandb.Artifact("data", type="dataset")
            with artifact.new_file("f") as handle:
                handle.write(str(index))
            run.log_artifact(artifact, tags=tags).wait()
    api = wandb.Api()
    assert [a.version for a in api.artifacts("dataset", "data")] == ["v0", "v1", "v2"]
    assert [a.version for a in api.artifacts("dataset", "data", order="-versionIndex")] == [
        "v2",
        "v1",
        "v0",
    ]
    assert [a.version for a in api.artifacts("dataset", "data", tags=["raw"])] == ["v0", "v1"]
    assert [a.version for a in api.artifacts("dataset", "data", tags=["raw", "clean"])] == ["v1"]
    with pytest.raises(errors.InvalidArgumentError, match="Unknown order"):
        api.artifacts("dataset", "data", order="size")
