"""Bad input: a typed error that says what to do, raised before anything is written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import dagster_artifacts as wandb
from dagster_artifacts import errors


@pytest.fixture
def logged(tmp_path: Path) -> wandb.Artifact:
    """A store holding data:v0 (aliases latest, best) logged by one run."""
    (tmp_path / "a.txt").write_text("alpha")
    (tmp_path / "b.txt").write_text("beta")
    with wandb.init(job_type="setup") as run:
        artifact = wandb.Artifact("data", type="dataset")
        artifact.add_file(str(tmp_path / "a.txt"))
        run.log_artifact(artifact, aliases=["best"])
    return wandb.Api().artifact("data:v0")


def _draft(tmp_path: Path) -> wandb.Artifact:
    artifact = wandb.Artifact("data", type="dataset")
    artifact.add_file(str(tmp_path / "a.txt"))
    return artifact


def _with_metadata(artifact: wandb.Artifact, changes: dict[str, object]) -> wandb.Artifact:
    """Change metadata in place, as users do, past the setter's check."""
    artifact.metadata.update(changes)
    return artifact


def _log(run: wandb.Run, artifact: wandb.Artifact, **kwargs: object) -> None:
    run.log_artifact(artifact, **kwargs).wait()  # type: ignore[arg-type]


CASES: dict[
    str, tuple[type[Exception], str, Callable[[wandb.Run, Path, wandb.Artifact], object]]
] = {
    "invalid name": (
        errors.InvalidNameError,
        "letters, digits",
        lambda r, t, a: wandb.Artifact("bad name", "dataset"),
    ),
    "name too long": (
        errors.InvalidNameError,
        "at most 128",
        lambda r, t, a: wandb.Artifact("x" * 129, "dataset"),
    ),
    "invalid type": (
        errors.InvalidNameError,
        "type",
        lambda r, t, a: wandb.Artifact("data", "bad/type"),
    ),
    "reserved type": (
        errors.InvalidNameError,
        "reserved",
        lambda r, t, a: wandb.Artifact("data", "job"),
    ),
    "alias with colon": (
        errors.InvalidNameError,
        "may not contain",
        lambda r, t, a: _log(r, _draft(t), aliases=["a:b"]),
    ),
    "alias like a version": (
        errors.InvalidNameError,
        "reserved for versions",
        lambda r, t, a: _log(r, _draft(t), aliases=["v3"]),
    ),
    "absolute entry path": (
        errors.InvalidPathError,
        "absolute",
        lambda r, t, a: wandb.Artifact("data", "dataset").add_file(
            str(t / "a.txt"), name="/etc/a.txt"
        ),
    ),
    "escaping entry path": (
        errors.InvalidPathError,
        "'..'",
        lambda r, t, a: wandb.Artifact("data", "dataset").add_file(
            str(t / "a.txt"), name="../a.txt"
        ),
    ),
    "missing local file": (
        errors.ArtifactFileNotFoundError,
        "No such file",
        lambda r, t, a: wandb.Artifact("data", "dataset").add_file(str(t / "missing.txt")),
    ),
    "missing local folder": (
        errors.ArtifactFileNotFoundError,
        "No such folder",
        lambda r, t, a: wandb.Artifact("data", "dataset").add_dir(str(t / "missing")),
    ),
    "same path, other content": (
        errors.DuplicateEntryError,
        "other content",
        lambda r, t, a: _draft(t).add_file(str(t / "b.txt"), name="a.txt"),
    ),
    "unknown version": (
        errors.ArtifactNotFoundError,
        "v0",
        lambda r, t, a: r.use_artifact("data:v99"),
    ),
    "unknown alias": (
        errors.ArtifactNotFoundError,
        "best",
        lambda r, t, a: r.use_artifact("data:nope"),
    ),
    "unknown artifact": (
        errors.ArtifactNotFoundError,
        "log it first",
        lambda r, t, a: r.use_artifact("ghost:latest"),
    ),
    "unlogged attribute": (
        errors.ArtifactNotLoggedError,
        "log_artifact",
        lambda r, t, a: _draft(t).version,
    ),
    "change a logged artifact": (
        errors.ArtifactFinalizedError,
        "immutable",
        lambda r, t, a: a.add_file(str(t / "b.txt")),
    ),
    "new_file on a logged artifact": (
        errors.ArtifactFinalizedError,
        "immutable",
        lambda r, t, a: a.new_file("x.txt").__enter__(),
    ),
    "delete an aliased version": (
        errors.ArtifactHasAliasesError,
        "delete_aliases=True",
        lambda r, t, a: a.delete(),
    ),
    "second type for a name": (
        errors.ArtifactTypeMismatchError,
        "type='dataset'",
        lambda r, t, a: _log(r, wandb.Artifact("data", "model")),
    ),
    "untracked scheme without name": (
        errors.InvalidReferenceError,
        "name=",
        lambda r, t, a: wandb.Artifact("data", "dataset").add_reference("ftp://host/file"),
    ),
    "reference without scheme": (
        errors.InvalidReferenceError,
        "no scheme",
        lambda r, t, a: wandb.Artifact("data", "dataset").add_reference("relative/path"),
    ),
    "save an invalid alias": (
        errors.InvalidNameError,
        "may not contain",
        lambda r, t, a: (a.aliases.append("x/y"), a.save()),
    ),
    "non-JSON metadata": (
        errors.ArtifactError,
        "JSON-serializable",
        lambda r, t, a: wandb.Artifact("data", "dataset", metadata={"f": object()}),
    ),
    "NUL byte in an entry path": (
        errors.InvalidPathError,
        "NUL byte",
        lambda r, t, a: wandb.Artifact("data", "dataset").new_file("a\x00b").__enter__(),
    ),
    "entry name over 255 bytes": (
        errors.InvalidPathError,
        "255 bytes",
        lambda r, t, a: wandb.Artifact("data", "dataset").add_file(
            str(t / "a.txt"), name="dir/" + "é" * 130
        ),
    ),
    "metadata changed in place to a set, then logged": (
        errors.InvalidArgumentError,
        "JSON-serializable",
        lambda r, t, a: _log(r, _with_metadata(_draft(t), {"k": {1, 2}})),
    ),
    "metadata changed in place to bytes, then logged": (
        errors.InvalidArgumentError,
        "JSON-serializable",
        lambda r, t, a: _log(r, _with_metadata(_draft(t), {"k": b"raw"})),
    ),
    "NaN in metadata": (
        errors.InvalidArgumentError,
        "NaN and Infinity",
        lambda r, t, a: wandb.Artifact("data", "dataset", metadata={"loss": float("nan")}),
    ),
    "Infinity set in place, then logged": (
        errors.InvalidArgumentError,
        "NaN and Infinity",
        lambda r, t, a: _log(r, _with_metadata(_draft(t), {"loss": float("inf")})),
    ),
    "NUL byte in an alias": (
        errors.InvalidNameError,
        "control character",
        lambda r, t, a: _log(r, _draft(t), aliases=["best\x00"]),
    ),
    "NUL byte in a description": (
        errors.InvalidArgumentError,
        "NUL",
        lambda r, t, a: wandb.Artifact("data", "dataset", description="a\x00b"),
    ),
    "version number past any registry": (
        errors.ArtifactNotFoundError,
        "v99999999999999999999",
        lambda r, t, a: wandb.Api().artifact("data:v99999999999999999999"),
    ),
    "malformed artifact path": (
        errors.InvalidNameError,
        "Malformed",
        lambda r, t, a: wandb.Api().artifact("a/b/c/d:v0"),
    ),
    "unknown digest algorithm": (
        errors.ConfigurationError,
        "xxh128",
        lambda r, t, a: wandb.Artifact("data", "dataset", digest_algorithm="sha1"),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_raises_typed_error_and_changes_nothing(
    case: str, tmp_path: Path, logged: wandb.Artifact, store_snapshot
) -> None:  # type: ignore[no-untyped-def]
    error_type, message, action = CASES[case]
    run = wandb.init(job_type="bad-input")
    before = store_snapshot()
    with pytest.raises(error_type, match=message) as raised:
        action(run, tmp_path, logged)
    assert isinstance(raised.value, errors.ArtifactError)
    assert store_snapshot() == before
    run.finish()
    after = wandb.Api().artifact("data:v0")
    assert sorted(after.aliases) == ["best", "latest"]
    assert Path(after.download(), "a.txt").read_text() == "alpha"


def test_error_hierarchy_is_documented_and_catchable() -> None:
    assert issubclass(errors.InvalidNameError, ValueError)
    assert issubclass(errors.ArtifactNotFoundError, LookupError)
    assert issubclass(errors.EntryNotFoundError, KeyError)
    assert issubclass(errors.ArtifactFileNotFoundError, FileNotFoundError)
    assert str(errors.EntryNotFoundError("no entry 'x'")) == "no entry 'x'"


def test_failed_async_log_raises_on_wait_and_on_finish(tmp_path: Path) -> None:
    source = tmp_path / "data.txt"
    source.write_text("one")
    run = wandb.init(job_type="mutating")
    artifact = wandb.Artifact("mut", type="dataset")
    artifact.add_file(str(source), policy="immutable")  # a promise the file will not change
    source.write_text("two, and longer")  # broken: changed after add_file, before the upload
    run.log_artifact(artifact)
    with pytest.raises(errors.ChecksumMismatchError):
        artifact.wait()
    with pytest.raises(errors.ChecksumMismatchError):
        run.finish()  # a run never finishes quietly over a failed log
    with pytest.raises(errors.ArtifactNotFoundError):
        wandb.Api().artifact("mut:latest")
    assert wandb.Api().run(run.id).state == "failed"
