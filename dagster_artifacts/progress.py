"""Progress bars for transfers and hashing, on stderr, only when someone is watching.

Bars go to stderr so ``--json`` output on stdout stays machine-readable. They are off when stderr
is not a terminal (CI logs, pipes, Dagster's captured output) and when
``DAGSTER_ARTIFACTS_PROGRESS=0``; ``DAGSTER_ARTIFACTS_PROGRESS=1`` forces them on.

Work that happens inside the engine (one ``download`` call) cannot report each byte without
hooks in the storage layer, so :func:`watch_folder` measures progress from the outside: it polls
the size of the destination folder while the work runs. That is backend-independent and costs
one ``os.scandir`` walk every few hundred milliseconds.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator

ENV_PROGRESS = "DAGSTER_ARTIFACTS_PROGRESS"


def progress_enabled() -> bool:
    """On for a terminal, off for pipes; the environment variable overrides both ways."""
    value = os.environ.get(ENV_PROGRESS, "").strip().lower()
    if value in ("0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
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
    from rich.console import Console
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
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
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
def watch_folder(description: str, path: str, total: int, interval: float = 0.2) -> Iterator[None]:
    """Show a byte bar for work that fills ``path`` up to about ``total`` bytes."""
    if not progress_enabled() or total <= 0:
        yield
        return
    start = folder_size(path)
    stop = threading.Event()
    with bar(description, total) as advance:
        shown = 0

        def poll() -> None:
            nonlocal shown
            while not stop.wait(interval):
                now = min(total, max(0, folder_size(path) - start))
                if now > shown:
                    advance(now - shown)
                    shown = now

        thread = threading.Thread(target=poll, name="dagster-artifacts-progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            if total > shown:
                advance(total - shown)


@contextlib.contextmanager
def status(message: str) -> Iterator[None]:
    """A spinner on stderr for work of unknown length (hashing and uploading, gc's listing)."""
    if not progress_enabled():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(message):
        yield
