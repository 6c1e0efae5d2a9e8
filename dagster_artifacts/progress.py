"""Progress bars for transfers and hashing, on stderr, only when someone is watching.

Bars go to stderr so ``--json`` output on stdout stays machine-readable. They are off when stderr
is not a terminal (CI logs, pipes, Dagster's captured output) and when
``DAGSTER_ARTIFACTS_PROGRESS=0``; ``DAGSTER_ARTIFACTS_PROGRESS=1`` forces them on.

Storing and hashing report each file through an fsspec ``Callback`` (:func:`byte_callback`), so
the storage layer never imports this module. A download is measured from the outside instead
(:func:`watch_folder` polls the size of the destination folder while the work runs): that is
backend-independent and costs one ``os.scandir`` walk every few hundred milliseconds.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from fsspec.callbacks import DEFAULT_CALLBACK, Callback

ENV_PROGRESS = "DAGSTER_ARTIFACTS_PROGRESS"
#: Seconds of work before a bar appears ("over a few seconds": quick transfers print nothing).
DEFAULT_DELAY = 1.0


def _forced() -> bool:
    return os.environ.get(ENV_PROGRESS, "").strip().lower() in ("1", "true", "yes", "on")


def _stderr_console() -> Any:
    """Rich console on stderr; drawn as on a terminal when progress was forced on."""
    from rich.console import Console

    return Console(stderr=True, force_terminal=True if _forced() else None)


def progress_enabled() -> bool:
    """On for a terminal, off for pipes; the environment variable overrides both ways."""
    value = os.environ.get(ENV_PROGRESS, "").strip().lower()
    if value in ("0", "false", "no", "off"):
        return False
    if _forced():
        return True
    return sys.stderr.isatty()


@contextlib.contextmanager
def bar(
    description: str, total: int | None, unit: str = "bytes"
) -> Iterator[Callable[[int], None]]:
    """A progress bar; yields ``advance(n)``. A no-op when progress is off.

    ``unit="bytes"`` shows sizes and transfer speed; anything else shows a count.
    """
    if not progress_enabled():
        yield lambda _n: None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = [TextColumn("{task.description}"), BarColumn()]
    if unit == "bytes":
        columns += [DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn()]
    else:
        columns += [MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=_stderr_console(), transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


def folder_size(path: str) -> int:
    """Bytes of regular files under ``path`` (0 if it does not exist)."""
    total = 0
    stack = [path]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue
        except OSError:
            continue
    return total


@contextlib.contextmanager
def watch_folder(
    description: str, path: str, total: int, interval: float = 0.2, delay: float | None = None
) -> Iterator[None]:
    """Show a byte bar for work that fills ``path`` up to about ``total`` bytes.

    The bar appears only once the work has taken ``delay`` seconds, so quick downloads print
    nothing at all; it is drawn from a polling thread and removed when the work ends.
    """
    if not progress_enabled() or total <= 0:
        yield
        return
    start = folder_size(path)
    with _polled_bar(description, total, lambda: folder_size(path) - start, interval, delay):
        yield


class _Counter(Callback):
    """An fsspec callback that only counts: ``relative_update`` may come from many threads
    (hashing and upload workers) and costs well under a microsecond; the bar reads the count
    from its own thread."""

    def __init__(self, size: int) -> None:
        super().__init__(size=size)
        self._lock = threading.Lock()

    def relative_update(self, inc: int = 1) -> None:
        with self._lock:
            self.value += inc


@contextlib.contextmanager
def byte_callback(
    description: str, total: int, interval: float = 0.2, delay: float | None = None
) -> Iterator[Callback]:
    """A byte bar for work that reports its own progress, as an fsspec ``Callback``.

    Storage reports each stored or fetched file through the callback (fsspec's pattern), so it
    never imports anything of the user interface. The bar appears once the work has taken
    ``delay`` seconds; when progress is off the callback is fsspec's no-op.
    """
    if not progress_enabled() or total <= 0:
        yield DEFAULT_CALLBACK
        return
    counter = _Counter(total)
    with _polled_bar(description, total, lambda: int(counter.value), interval, delay):
        yield counter


@contextlib.contextmanager
def _polled_bar(
    description: str,
    total: int,
    measure: Callable[[], int],
    interval: float,
    delay: float | None,
) -> Iterator[None]:
    """Draw a bar of ``measure()`` out of ``total`` from a thread, after ``delay`` seconds."""
    stop = threading.Event()
    wait_first = DEFAULT_DELAY if delay is None else delay

    def poll() -> None:
        if stop.wait(wait_first):
            return
        with bar(description, total) as advance:
            shown = 0
            while True:
                now = min(total, max(0, measure()))
                if now > shown:
                    advance(now - shown)
                    shown = now
                if stop.wait(interval):
                    advance(total - shown)
                    return

    thread = threading.Thread(target=poll, name="dagster-artifacts-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextlib.contextmanager
def status(message: str) -> Iterator[None]:
    """A spinner on stderr for work of unknown length (hashing and uploading, gc's listing)."""
    if not progress_enabled():
        yield
        return
    with _stderr_console().status(message):
        yield
