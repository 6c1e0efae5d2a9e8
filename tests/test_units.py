"""Sizes and durations as people write them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dagster_artifacts.errors import InvalidArgumentError
from dagster_artifacts.units import format_duration, format_size, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("1h30m", timedelta(minutes=90)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("0", timedelta(0)),
        ("1.5h", timedelta(minutes=90)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "soon", "10", "5x", "1h junk", "-1h"])
def test_parse_duration_refuses_garbage(text: str) -> None:
    with pytest.raises(InvalidArgumentError, match="e.g. 90s"):
        parse_duration(text)


def test_parse_and_format_size() -> None:
    assert parse_size("500MB") == 500_000_000
    assert parse_size("2GiB") == 2 * 1024**3
    assert parse_size("4kB") == 4000
    assert parse_size("1024") == 1024
    assert format_size(6000) == "6.0 kB"
    assert format_size(12) == "12 B"
    with pytest.raises(InvalidArgumentError):
        parse_size("lots")


def test_format_duration_round_trips() -> None:
    for text in ("1d", "1h30m", "14d", "45s", "0s"):
        assert format_duration(parse_duration(text)) == text
