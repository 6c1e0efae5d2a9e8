"""Naming rules as W&B enforces them."""

from __future__ import annotations

import os

import pytest

from dagster_artifacts.errors import InvalidNameError, InvalidPathError
from dagster_artifacts.names import (
    normalize_entry_path,
    parse_artifact_path,
    validate_alias,
    validate_name,
    validate_type,
)


@pytest.mark.parametrize("name", ["bike-dataset", "run-3nq3ctyy-bike-model", "a.b_c-1", "x" * 128])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "reference model", "a/b", "a:b", "x" * 129, "ü"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(InvalidNameError) as error:
        validate_name(name)
    assert isinstance(error.value, ValueError)


@pytest.mark.parametrize("alias", ["v0", "v12", "a/b", "a:b", ""])
def test_invalid_aliases(alias: str) -> None:
    with pytest.raises(InvalidNameError):
        validate_alias(alias)


@pytest.mark.parametrize("alias", ["latest", "best-ap50", "v1beta", "prod"])
def test_valid_aliases(alias: str) -> None:
    assert validate_alias(alias) == alias


@pytest.mark.parametrize("type_", ["", "job", "wandb-history", "bad type"])
def test_invalid_types(type_: str) -> None:
    with pytest.raises(InvalidNameError):
        validate_type(type_)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("a/b.txt", "a/b.txt"),
        ("./a//b.txt", "a/b.txt"),
        # As W&B: a backslash separates folders on Windows only (tests/parity checks wandb).
        ("a\\b.txt", "a/b.txt" if os.name == "nt" else "a\\b.txt"),
        ("ab:c.txt", "ab:c.txt"),
    ],
)
def test_entry_paths_are_normalized(path: str, expected: str) -> None:
    assert normalize_entry_path(path) == expected


@pytest.mark.parametrize(
    "path",
    ["/etc/passwd", "../x", "a/../../x", "a/..", "C:/x", "", ".", "c:x", "\\x", "a\\..\\b"],
)
def test_escaping_or_absolute_entry_paths_are_refused(path: str) -> None:
    with pytest.raises(InvalidPathError):
        normalize_entry_path(path)


def test_parse_artifact_paths() -> None:
    assert parse_artifact_path("bike-dataset:v0").version_index == 0
    parsed = parse_artifact_path("my-entity/my-project/bike-model:best")
    assert (parsed.entity, parsed.project, parsed.name, parsed.alias_or_version) == (
        "my-entity",
        "my-project",
        "bike-model",
        "best",
    )
    assert parse_artifact_path("my-project/bike-model:v3").project == "my-project"
    assert parse_artifact_path("bike-model").alias_or_version == "latest"


@pytest.mark.parametrize("path", ["a/b/c/d:v0", "name:", "/name:v0", "na me:v0", ":v0"])
def test_malformed_artifact_paths(path: str) -> None:
    with pytest.raises(InvalidNameError):
        parse_artifact_path(path)
