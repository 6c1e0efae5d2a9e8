"""Registry linking, W&B's way of promoting a version: ``artifact.link``, ``run.link_artifact``,
``unlink``, ``is_link``, ``linked_artifacts``, ``source_*``; on SQLite and PostgreSQL.

A link is a version of another collection (``wandb-registry-model/bike-model``,
``model-registry/...``) that resolves to its source's manifest: no byte is copied.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import dagster_artifacts as wandb
from dagster_artifacts import errors


def _log_model(text: str = "weights", name: str = "bike-model") -> wandb.Artifact:
    with wandb.init(job_type="train") as run:
        model = wandb.Artifact(name, type="model", metadata={"acc": 0.9})
        with model.new_file("model.bin") as handle:
            handle.write(text)
        return run.log_artifact(model).wait()


def _stored_files(store: Path) -> set[str]:
    return {
        str(path.relative_to(store))
        for path in store.rglob("*")
        if path.is_file() and not path.name.startswith("registry.db")
    }


def test_promote_to_production_end_to_end(registry_url: str, isolated_store: Path) -> None:
    """Train, link the best model into the registry as ``production``, then serve it by that
    name from another process's point of view (a fresh ``Api``): same bytes, none copied."""
    first = _log_model("weights v0")
    second = _log_model("weights v1")
    files_before = _stored_files(isolated_store)

    with wandb.init(job_type="evaluate") as run:
        candidate = run.use_artifact("bike-model:latest")
        link = run.link_artifact(candidate, "wandb-registry-model/bikes", aliases=["production"])
    assert link.is_link and link.name == "bikes:v0"
    assert link.qualified_name == "default/wandb-registry-model/bikes:v0"
    assert link.source_qualified_name == "default/uncategorized/bike-model:v1"
    assert _stored_files(isolated_store) - files_before == set()  # no manifest, no blob copied

    served = wandb.Api().artifact("wandb-registry-model/bikes:production")
    assert served.is_link and served.digest == second.digest
    assert served.manifest.to_bytes() == second.manifest.to_bytes()
    assert Path(served.download(), "model.bin").read_text() == "weights v1"
    assert served.aliases == ["latest", "production"]
    assert served.source_artifact.qualified_name == second.qualified_name
    assert served.source_collection.name == "bike-model"
    assert served.collection.name == "bikes" and not served.collection.is_sequence()
    assert served.type == "model" and served.metadata == {"acc": 0.9}

    # A rollback: production moves to the older model's link; the newer one keeps its link.
    first.link("wandb-registry-model/bikes", aliases=["production"])
    served = wandb.Api().artifact("wandb-registry-model/bikes:production")
    assert served.name == "bikes:v1" and served.source_version == "v0"
    assert served.digest == first.digest
    assert wandb.Api().artifact("wandb-registry-model/bikes:v0").aliases == []
    assert [a.name for a in second.linked_artifacts] == ["bikes:v0"]


def test_source_members_of_a_logged_version_are_its_own() -> None:
    model = _log_model()
    assert not model.is_link
    assert model.source_name == "bike-model:v0"
    assert model.source_entity == "default" and model.source_project == "uncategorized"
    assert model.source_version == "v0"
    assert model.source_qualified_name == model.qualified_name
    assert model.source_artifact.id == model.id
    assert model.linked_artifacts == [] and model.linked_at is None


def test_linking_twice_returns_the_same_link_and_moves_aliases(registry_url: str) -> None:
    model = _log_model()
    one = model.link("registry/bikes", aliases=["staging"])
    two = model.link("registry/bikes", aliases=["production"])
    assert one.name == two.name == "bikes:v0"
    assert two.aliases == ["latest", "production", "staging"]
    link_of_link = two.link("registry/bikes")  # linking a link links its source: same link
    assert link_of_link.name == "bikes:v0"
    assert [a.name for a in model.linked_artifacts] == ["bikes:v0"]
    assert two.linked_artifacts == []  # W&B: a link lists no links
    assert two.id == model.id  # a link has its source's id, as in W&B


def test_link_of_a_draft_logs_it_first() -> None:
    with wandb.init(job_type="train") as run:
        model = wandb.Artifact("fresh-model", type="model")
        with model.new_file("w.bin") as handle:
            handle.write("w")
        link = run.link_artifact(model, "registry/fresh", aliases=["candidate"])
    assert model.name == "fresh-model:v0"  # logged by the run, then linked
    assert link.source_qualified_name == model.qualified_name
    assert wandb.Api().artifact("registry/fresh:candidate").digest == model.digest


def test_draft_link_outside_a_run_logs_it_in_an_auto_run() -> None:
    model = wandb.Artifact("solo", type="model")
    with model.new_file("w.bin") as handle:
        handle.write("w")
    link = model.link("registry/solo-models")
    assert link.is_link and model.name == "solo:v0"
    logger = model.logged_by()
    assert logger is not None and logger.job_type == "auto"


def test_unlink_removes_only_the_link(registry_url: str) -> None:
    model = _log_model()
    link = model.link("registry/bikes", aliases=["production"])
    link.unlink()
    api = wandb.Api()
    assert not api.artifact_exists("registry/bikes:production")
    assert not api.artifact_exists("registry/bikes:v0")
    assert api.artifact("bike-model:v0").digest == model.digest  # the source stays
    assert model.linked_artifacts == []
    with pytest.raises(errors.LinkError, match="not a linked artifact"):
        model.unlink()


def test_deleting_the_source_deletes_its_links() -> None:
    model = _log_model()
    model.link("registry/bikes")
    model.delete(delete_aliases=True)
    assert not wandb.Api().artifact_exists("registry/bikes:v0")


def test_link_sees_its_sources_edits_and_keeps_its_own_aliases() -> None:
    model = _log_model()
    link = model.link("registry/bikes", aliases=["production"])
    source = wandb.Api().artifact("bike-model:v0")
    source.description = "the best"
    source.tags = ["reviewed"]
    source.save()
    link = wandb.Api().artifact("registry/bikes:production")
    assert link.description == "the best" and link.tags == ["reviewed"]
    assert "production" not in source.aliases
    with pytest.raises(errors.LinkError, match="Cannot set TTL for link artifact"):
        link.ttl = None


def test_use_of_a_link_is_recorded_on_its_source() -> None:
    model = _log_model()
    model.link("registry/bikes", aliases=["production"])
    with wandb.init(job_type="serve") as run:
        run.use_artifact("registry/bikes:production")
    used_by = {r.job_type for r in wandb.Api().artifact("bike-model:v0").used_by()}
    assert "serve" in used_by


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("registry/bikes:production", "names a version or alias"),
        ("a/b/c/d", "Malformed link target"),
        ("registry//bikes", "Malformed link target"),
        ("", "collection path"),
        ("registry/bad name!", "name"),
    ],
)
def test_bad_link_target_is_refused_before_anything_is_written(
    target: str, message: str, store_snapshot
) -> None:  # type: ignore[no-untyped-def]
    model = _log_model()
    before = store_snapshot()
    with pytest.raises(errors.InvalidNameError, match=message):
        model.link(target)
    assert store_snapshot() == before


def test_bad_alias_on_a_draft_link_writes_nothing(store_snapshot) -> None:  # type: ignore[no-untyped-def]
    _log_model(name="a-sequence")
    before = store_snapshot()
    with wandb.init(job_type="train") as run:
        model = wandb.Artifact("never", type="model")
        with model.new_file("w.bin") as handle:
            handle.write("w")
        with pytest.raises(errors.InvalidNameError):
            run.link_artifact(model, "registry/never", aliases=["bad/alias"])
        with pytest.raises(errors.LinkError):  # the target holds logged versions
            run.link_artifact(model, "uncategorized/a-sequence")
    api = wandb.Api()
    assert not api.artifact_collection_exists("never", "model")
    assert not api.artifact_collection_exists("registry/never", "model")
    assert store_snapshot()["files"] == before["files"]


def test_links_and_logged_versions_never_share_a_collection(store_snapshot) -> None:  # type: ignore[no-untyped-def]
    model = _log_model()
    other = _log_model(name="other-model")
    before = store_snapshot()
    with pytest.raises(errors.LinkError, match="holds logged versions"):
        model.link("uncategorized/other-model")
    assert store_snapshot() == before
    model.link("registry/bikes")
    before = store_snapshot()
    with wandb.init(job_type="t", project="registry") as run:
        artifact = wandb.Artifact("bikes", type="model")
        with artifact.new_file("x") as handle:
            handle.write("x")
        with pytest.raises(errors.LinkError, match="collection of links"):
            run.log_artifact(artifact)
    assert store_snapshot()["files"] == before["files"]
    dataset = wandb.Artifact("data", type="dataset")
    with dataset.new_file("d") as handle:
        handle.write("d")
    with wandb.init(job_type="t") as run:
        run.log_artifact(dataset).wait()
    with pytest.raises(errors.ArtifactTypeMismatchError, match="type 'model'"):
        dataset.link("registry/bikes")
    assert other.linked_artifacts == []
