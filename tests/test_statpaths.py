"""Many paths' stats, half of them taken by a helper process: the same answers as ``os.stat``
in this process, for every kind of path, and when the helper dies."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

import dagster_artifacts as wandb
from dagster_artifacts import statpaths
from dagster_artifacts.errors import ArtifactFileNotFoundError
from dagster_artifacts.statcache import FileStat
from dagster_artifacts.statpaths import OTHER, REGULAR, stat_paths


@pytest.fixture(autouse=True)
def helper_for_few_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statpaths, "HELPER_MIN", 2)


def _tree(tmp_path: Path) -> dict[str, int]:
    """Paths of every kind -> the kind ``stat_paths`` must give."""
    tree = tmp_path / "tree"
    tree.mkdir()
    expected: dict[str, int] = {}
    for index in range(40):
        path = tree / f"{index:02d}.bin"
        path.write_bytes(os.urandom(index))
        expected[str(path)] = REGULAR
    odd = os.fsdecode(bytes(tree) + b"/caf\xe9.bin")  # not UTF-8: a surrogate-escaped name
    Path(odd).write_bytes(b"latin-1")
    expected[odd] = REGULAR
    (tree / "link").symlink_to(tree / "01.bin")
    expected[str(tree / "link")] = REGULAR  # links are followed
    (tree / "sub").mkdir()
    expected[str(tree / "sub")] = OTHER
    os.mkfifo(tree / "fifo")
    expected[str(tree / "fifo")] = OTHER
    (tree / "dangling").symlink_to(tree / "nowhere")
    expected[str(tree / "dangling")] = errno.ENOENT
    (tree / "loop").symlink_to(tree / "loop")
    expected[str(tree / "loop")] = errno.ELOOP
    expected[str(tree / "gone")] = errno.ENOENT
    return expected


def _expected_stats(paths: list[str], kinds: dict[str, int]) -> list[tuple[int, ...]]:
    return [
        tuple(FileStat.of(os.stat(path))) if kinds[path] in (REGULAR, OTHER) else (0,) * 5
        for path in paths
    ]


def _answers_as_os_stat(tmp_path: Path) -> None:
    expected = _tree(tmp_path)
    paths = list(expected)
    kinds, stats = stat_paths(paths)
    assert list(kinds) == [expected[path] for path in paths]
    assert list(stats.rows()) == _expected_stats(paths, expected)


def test_the_helper_answers_as_os_stat_does_for_every_kind_of_path(tmp_path: Path) -> None:
    _answers_as_os_stat(tmp_path)


def test_a_helper_that_dies_leaves_its_half_to_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dying = [sys.executable, "-c", "import os; os._exit(3)"]
    monkeypatch.setattr(statpaths, "helper_command", lambda: dying)
    _answers_as_os_stat(tmp_path)


def test_the_helper_runs_as_a_bare_script(tmp_path: Path) -> None:
    """Its interpreter has no site-packages: the script must need nothing but the stdlib."""
    paths = [str(p) for p in _tree(tmp_path)]
    payload = "\0".join(paths).encode("utf-8", "surrogateescape")
    out = subprocess.run(
        statpaths.helper_command(),
        input=len(paths).to_bytes(8, "little") + len(payload).to_bytes(8, "little") + payload,
        capture_output=True,
        check=True,
    ).stdout
    assert len(out) == 6 * 8 * len(paths)


def test_add_dir_through_the_helper_skips_fifos_and_names_a_dangling_link(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    for index in range(10):
        (folder / f"{index}.txt").write_text(f"file {index}")
    os.mkfifo(folder / "pipe")
    artifact = wandb.Artifact("data", type="dataset")
    with pytest.warns(UserWarning, match="not regular files"):
        artifact.add_dir(str(folder))
    assert sorted(artifact.manifest.entries) == [f"{index}.txt" for index in range(10)]
    (folder / "broken").symlink_to(folder / "nowhere")
    again = wandb.Artifact("data", type="dataset")
    with pytest.raises(ArtifactFileNotFoundError, match="broken is a symbolic link to"):
        again.add_dir(str(folder))
    assert again.manifest.entries == {}
