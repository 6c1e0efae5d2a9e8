"""What a version says about itself, the W&B way: ``tags``, ``ttl``, ``created_at``,
``updated_at``, ``url``, ``use_as``, and W&B arguments with no meaning here."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

import dagster_artifacts as wandb
from dagster_artifacts import errors
from dagster_artifacts.settings import ENV_UI_URL


def _log(tags: list[str] | None = None, type: str = "dataset") -> wandb.Artifact:
    with wandb.init(job_type="t") as run:
        artifact = wandb.Artifact("bike-data", type=type)
        with artifact.new_file("f.txt") as handle:
            handle.write("f")
        return run.log_artifact(artifact, tags=tags).wait()


def test_timestamps_are_iso_strings_in_utc() -> None:
    before = datetime.now(timezone.utc)
    artifact = _log()
    created = datetime.fromisoformat(artifact.created_at)
    assert created.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=5) <= created <= datetime.now(timezone.utc)
    assert artifact.updated_at == artifact.created_at  # never changed yet
    artifact.description = "changed"
    artifact.save()
    assert datetime.fromisoformat(artifact.updated_at) >= created
    assert wandb.Api().artifact("bike-data:v0").updated_at == artifact.updated_at


def test_draft_has_no_timestamps_or_tags() -> None:
    draft = wandb.Artifact("d", type="dataset")
    with pytest.raises(errors.ArtifactNotLoggedError):
        _ = draft.created_at
    with pytest.raises(errors.ArtifactNotLoggedError):
        _ = draft.tags


def test_tags_are_logged_edited_and_saved(registry_url: str) -> None:
    artifact = _log(tags=["raw", "raw", "eval set"])
    assert artifact.tags == ["raw", "eval set"]
    artifact.tags = ["reviewed"]
    artifact.save()
    assert wandb.Api().artifact("bike-data:latest").tags == ["reviewed"]


@pytest.mark.parametrize("tag", ["a/b", "", " lead", "x" * 129, "tab\there", "newline\n"])
def test_bad_tags_are_refused_before_anything_is_written(tag: str, store_snapshot) -> None:  # type: ignore[no-untyped-def]
    artifact = _log()
    before = store_snapshot()
    with pytest.raises(errors.InvalidNameError, match="Invalid tag"):
        artifact.tags = [tag]
    with (
        pytest.raises(errors.InvalidNameError, match="Invalid tag"),
        wandb.init(job_type="t") as run,
    ):
        other = wandb.Artifact("other", type="dataset")
        with other.new_file("g.txt") as handle:
            handle.write("g")
        run.log_artifact(other, tags=[tag])
    after = store_snapshot()
    assert after["files"] == before["files"]
    assert not wandb.Api().artifact_exists("other:v0")


def test_ttl_round_trip_and_check() -> None:
    artifact = _log()
    assert artifact.ttl is None
    artifact.ttl = timedelta(days=30)
    artifact.save()
    assert wandb.Api().artifact("bike-data:v0").ttl == timedelta(days=30)
    with pytest.raises(errors.ArtifactError, match="positive"):
        artifact.ttl = timedelta(0)


def test_url_points_at_the_artifact_browser(monkeypatch: pytest.MonkeyPatch) -> None:
    artifact = _log(type="raw.data")
    assert artifact.url == ""  # no browser configured, as W&B gives "" when it has no URL
    monkeypatch.setenv(ENV_UI_URL, "https://artifacts.example.com/")
    from dagster_artifacts.state import reset_stores

    reset_stores()
    logged = wandb.Api().artifact("bike-data:v0")
    assert logged.url == (
        "https://artifacts.example.com/default/uncategorized/artifacts/raw.data/bike-data/v0"
    )
    assert (
        wandb.Api(ui_url="http://localhost:8080")
        .artifact("bike-data:v0")
        .url.startswith("http://localhost:8080/default/uncategorized/artifacts/")
    )
    with pytest.raises(errors.ConfigurationError, match="http"):
        wandb.Api(ui_url="ftp://example.com")


def test_use_as_is_deprecated_and_ignored() -> None:
    with pytest.deprecated_call(match="use_as"):
        artifact = wandb.Artifact("d", type="dataset", use_as="input")
    with pytest.deprecated_call():
        assert artifact.use_as is None


def test_storage_region_is_not_applicable() -> None:
    with pytest.raises(errors.NotApplicableError, match="DAGSTER_ARTIFACTS_ROOT"):
        wandb.Artifact("d", type="dataset", storage_region="coreweave-us")


def test_digest_algorithm_takes_wandbs_spelling() -> None:
    assert wandb.Artifact("d", type="dataset", digest_algorithm="XXH128").digest_algorithm == (
        "xxh128"
    )
