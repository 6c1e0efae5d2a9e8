"""Things in a folder that are not regular files: FIFOs, Unix sockets, dangling symlinks and
symlink loops.

Desired: ``add_dir`` never blocks (a FIFO opened for reading waits for a writer forever); FIFOs
and sockets are skipped with a ``UserWarning`` naming them while the regular files are added; a
dangling symlink (``ArtifactFileNotFoundError``) or a symlink loop (``InvalidPathError``) fails
the add before anything is stored; ``add_file`` of a FIFO or socket is an ``InvalidPathError``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import dagster_artifacts as wandb
from dagster_artifacts.errors import (
    ArtifactError,
    ArtifactFileNotFoundError,
    InvalidPathError,
)
from tests.faults.helpers import Snapshot, make_files

pytestmark = pytest.mark.timeout(30)

REGULAR = {"a.txt": "alpha", "sub/b.txt": "beta"}


@pytest.fixture
def odd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Path]]:
    """A folder with REGULAR files, a FIFO ``pipe`` and a listening Unix socket
    ``sub/sock``. At teardown the FIFO is opened for writing once (non-blocking), which releases
    any reader stuck on it, so a test that blocked does not leave a thread hanging forever."""
    folder = make_files(tmp_path / "odd", REGULAR)
    fifo = folder / "pipe"
    os.mkfifo(fifo)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with monkeypatch.context() as m:
        m.chdir(folder / "sub")  # a relative bind: tmp_path may exceed the 108-byte sun_path
        server.bind("sock")
    server.listen(1)
    try:
        yield {"folder": folder, "fifo": fifo, "socket": folder / "sub" / "sock"}
    finally:
        server.close()
        with contextlib.suppress(OSError):  # ENXIO: nobody is reading, nothing to release
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


@pytest.mark.parametrize("policy", ["mutable", "immutable"])
def test_add_dir_skips_fifos_and_sockets_with_a_warning_and_adds_the_regular_files(
    odd: dict[str, Path], tmp_path: Path, policy: str
) -> None:
    artifact = wandb.Artifact("odd", type="dataset")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        artifact.add_dir(str(odd["folder"]), policy=policy)
    assert sorted(artifact.manifest.entries) == ["a.txt", "sub/b.txt"]
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert any("pipe" in m for m in messages), f"no warning names the FIFO: {messages}"
    assert any("sock" in m for m in messages), f"no warning names the socket: {messages}"

    with wandb.init(job_type="writer") as run:
        run.log_artifact(artifact).wait()
    folder = artifact.download(root=tmp_path / "out")
    assert artifact.verify(folder).checked == 2


@pytest.mark.parametrize("what", ["fifo", "socket"])
@pytest.mark.parametrize("policy", ["mutable", "immutable"])
def test_add_file_of_a_fifo_or_socket_is_an_invalid_path_error(
    odd: dict[str, Path], what: str, policy: str
) -> None:
    artifact = wandb.Artifact("odd", type="dataset")
    with pytest.raises(InvalidPathError) as caught:
        artifact.add_file(str(odd[what]), policy=policy)
    assert odd[what].name in str(caught.value), str(caught.value)
    assert artifact.manifest.entries == {}


def _dangling(folder: Path) -> None:
    (folder / "dangling").symlink_to(folder / "does-not-exist")


def _loop(folder: Path) -> None:
    (folder / "loop-a").symlink_to(folder / "loop-b")
    (folder / "loop-b").symlink_to(folder / "loop-a")


@pytest.mark.parametrize(
    ("make", "error", "named"),
    [
        (_dangling, ArtifactFileNotFoundError, "dangling"),
        (_loop, InvalidPathError, "loop-"),
    ],
    ids=["dangling symlink", "symlink loop"],
)
@pytest.mark.parametrize("policy", ["mutable", "immutable"])
def test_add_dir_with_a_broken_symlink_fails_typed_before_anything_is_stored(
    tmp_path: Path,
    store_snapshot: Snapshot,
    make: Callable[[Path], None],
    error: type[ArtifactError],
    named: str,
    policy: str,
) -> None:
    folder = make_files(tmp_path / "links", REGULAR)
    make(folder)
    before = store_snapshot()
    with wandb.init(job_type="writer"):
        artifact = wandb.Artifact("links", type="dataset")
        with pytest.raises(error) as caught:
            artifact.add_dir(str(folder), policy=policy)
    assert named in str(caught.value), str(caught.value)
    assert artifact.manifest.entries == {}, "the add must be all or nothing"
    assert store_snapshot()["files"] == before["files"]
    assert wandb.Api().artifact_versions("dataset", "links") == []
