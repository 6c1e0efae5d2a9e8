"""Fixtures of the fault-injection suite: a size-limited tmpfs and a read-only bind mount.

Both need root (CI runs as root); without it, or when ``mount`` refuses, the test is skipped
with the reason. Every mount is undone at teardown (``umount``, then ``umount -l`` if something
still holds it open), after the process's stores are closed so that their SQLite connections do
not keep the mount busy.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dagster_artifacts.state import reset_stores


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), capture_output=True, text=True, check=False)


def _need_root(what: str) -> None:
    if os.geteuid() != 0:
        pytest.skip(f"needs root to {what}: running as uid {os.geteuid()}")


def _unmount(target: Path) -> None:
    reset_stores()  # open SQLite connections would keep the mount busy
    if _run("umount", str(target)).returncode != 0:
        _run("umount", "-l", str(target))


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """``tmpfs(size="2m", name="tmpfs")``: a fresh tmpfs of that size mounted at
    ``tmp_path / name``, unmounted at teardown."""
    mounted: list[Path] = []

    def mount(size: str | int = "2m", name: str = "tmpfs") -> Path:
        _need_root("mount a tmpfs")
        target = tmp_path / name
        target.mkdir(parents=True, exist_ok=True)
        result = _run("mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target))
        if result.returncode != 0:
            pytest.skip(f"needs root to mount a tmpfs: {(result.stderr or result.stdout).strip()}")
        mounted.append(target)
        return target

    yield mount
    for target in reversed(mounted):
        _unmount(target)


@pytest.fixture
def read_only() -> Iterator[Callable[..., Path]]:
    """``read_only(path, onto=None)``: bind-mount the folder ``path`` read-only onto itself (or
    onto the folder ``onto``, created if missing) and return where it is read-only; undone at
    teardown. Stores open in this process are closed first, so that they reopen through the
    mount."""
    mounted: list[Path] = []

    def mount(path: Path, onto: Path | None = None) -> Path:
        _need_root("bind-mount a folder read-only")
        target = onto if onto is not None else path
        target.mkdir(parents=True, exist_ok=True)
        reset_stores()
        result = _run("mount", "--bind", str(path), str(target))
        if result.returncode != 0:
            pytest.skip(
                f"needs root to bind-mount a folder read-only: "
                f"{(result.stderr or result.stdout).strip()}"
            )
        mounted.append(target)
        result = _run("mount", "-o", "remount,bind,ro", str(target))
        if result.returncode != 0:
            pytest.skip(
                f"needs root to bind-mount a folder read-only: "
                f"{(result.stderr or result.stdout).strip()}"
            )
        return target

    yield mount
    for target in reversed(mounted):
        _unmount(target)
