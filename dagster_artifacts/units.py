"""Sizes and durations as people write them (``500MB``, ``2GiB``, ``30d``, ``1h30m``).

One parser each, shared by the CLI, the download cache's budget and retention, so ``10GB`` means
the same everywhere.
"""

from __future__ import annotations

import re
from datetime import timedelta

from dagster_artifacts.errors import InvalidArgumentError

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
_SIZE_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?)(b?)\s*$", re.IGNORECASE)


def parse_duration(text: str | timedelta) -> timedelta:
    """``"30d"``, ``"12h"``, ``"1h30m"``, ``"2w"``, ``"90s"`` or ``"0"`` -> :class:`timedelta`."""
    if isinstance(text, timedelta):
        if text.total_seconds() < 0:
            raise InvalidArgumentError(f"Duration {text} is negative; give 0 or more.")
        return text
    value = str(text).strip()
    if value == "0":
        return timedelta(0)
    position = 0
    seconds = 0.0
    for match in _DURATION_PART.finditer(value):
        if value[position : match.start()].strip():
            break
        seconds += float(match.group(1)) * _DURATION_UNITS[match.group(2).lower()]
        position = match.end()
    if position == 0 or value[position:].strip():
        raise InvalidArgumentError(
            f"Cannot read duration {text!r}; write a number with a unit, e.g. 90s, 30m, 12h, "
            "7d, 2w or 1h30m."
        )
    return timedelta(seconds=seconds)


def format_duration(value: timedelta | float) -> str:
    """``timedelta(hours=24)`` -> ``"1d"``, 5400 seconds -> ``"1h30m"``: what parse_duration reads."""
    seconds = int(value.total_seconds() if isinstance(value, timedelta) else value)
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def parse_size(text: str | int) -> int:
    """``"500MB"``, ``"2GiB"``, ``"10G"``, ``"1024"`` -> bytes (k/M/G: powers of 1000, Ki/Mi/Gi: 1024)."""
    if isinstance(text, int):
        if text < 0:
            raise InvalidArgumentError(f"Size {text} is negative; give 0 or more bytes.")
        return text
    match = _SIZE_PATTERN.match(str(text))
    if match is None:
        raise InvalidArgumentError(
            f"Cannot read size {text!r}; write bytes or a number with a unit, e.g. 500MB, 2GiB."
        )
    number, prefix, binary, _ = match.groups()
    exponent = " kmgtp".index(prefix.lower()) if prefix else 0
    base = 1024 if binary else 1000
    return int(float(number) * base**exponent)


def format_size(size: float) -> str:
    """Bytes for people: ``1.5 MB`` (decimal units, like ``du --si``)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} PB"  # pragma: no cover - unreachable
