"""Time, injectable: the store, the stat cache and gc read the clock through one object.

Production code uses :data:`SYSTEM_CLOCK`. Tests hand in a clock that is ahead of the wall clock
(or whose ``sleep`` records instead of waiting), so that "an hour later" or "once the files have
aged" costs no real waiting.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone


class Clock:
    """The wall clock (seconds since the epoch) and ``sleep``."""

    def time(self) -> float:
        return time.time()

    def time_ns(self) -> int:
        return time.time_ns()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), timezone.utc)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class OffsetClock(Clock):
    """The wall clock shifted by ``offset`` seconds (tests: "this much later")."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def time(self) -> float:
        return time.time() + self.offset

    def time_ns(self) -> int:
        return time.time_ns() + int(self.offset * 1e9)

    def advance(self, seconds: float) -> None:
        self.offset += seconds


SYSTEM_CLOCK = Clock()


def iso_utc(moment: datetime | None) -> str | None:
    """``moment`` as W&B hands timestamps out: an ISO 8601 string, here always in UTC with its
    offset (``2026-12-02T10:00:00.123456+00:00``, which ``datetime.fromisoformat`` reads back).
    SQLite returns naive datetimes; the registry writes them in UTC."""
    if moment is None:
        return None
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
    return aware.astimezone(timezone.utc).isoformat()
