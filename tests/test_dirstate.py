"""The dirstate: big folders re-added without reading unchanged files, and every change seen.

As in ``test_statcache.py``, a hit is proven without mocks: a digest no hash would produce is
planted in the folder's dirstate; getting it back from ``add_dir`` proves the file was not read.
Folders here are small: ``MIN_FILES`` is lowered so that they get a dirstate.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from array import array
from pathlib import Path

import pytest

import dagster_artifacts as wandb
from dagster_artifacts import dirstate
from dagster_artifacts.clock import OffsetClock
from dagster_artifacts.digests import encode_digest
from dagster_artifacts.settings import ENV_STAT_CACHE, MachineSettings
from dagster_artifacts.statcache import FILE_NAME, RACY_WINDOW_NS, FileStats, StatCache
from dagster_artifacts.state import stat_cache_for

FILES = 12


def _md5(data: bytes) -> str:
    return encode_digest(hashlib.md5(data).digest())


@pytest.fixture(autouse=True)
def small_folders_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dirstate, "MIN_FILES", 3)


def _folder(tmp_path: Path, files: int = FILES) -> Path:
    folder = tmp_path / "data"
    folder.mkdir(parents=True)
    for index in range(files):
        (folder / f"{index:02d}.txt").write_bytes(f"file {index}".encode())
    return folder


def _cache(aged: bool = True) -> StatCache:
    """This machine's stat cache; ``aged``: on a clock past the racy window, so files the test
    wrote a moment ago count as aged when hashed (instead of sleeping two seconds)."""
    cache = stat_cache_for(MachineSettings.resolve())
    assert cache is not None
    if aged:
        cache.clock = OffsetClock(RACY_WINDOW_NS / 1e9 + 1)
    return cache


def _add(folder: Path, policy: str = "immutable") -> dict[str, str]:
    artifact = wandb.Artifact("data", type="dataset")
    artifact.add_dir(str(folder), policy=policy)
    return {path: entry.digest for path, entry in artifact.manifest.entries.items()}


def _state_file(cache: StatCache, folder: Path) -> str:
    return dirstate.dirstate_file(cache, str(folder), "md5")


def _plant(cache: StatCache, folder: Path, name: str, digest: str = "planted") -> None:
    """Give ``name`` in the folder's dirstate a digest its bytes do not have."""
    path = _state_file(cache, folder)
    state = dirstate.load(path)
    assert state is not None, "the first add_dir writes the folder's dirstate"
    state.digests[state.paths.index(str(folder / name))] = digest
    dirstate.save(path, state)


def _forget_sqlite(cache: StatCache) -> None:
    """Empty the SQLite tier, so that only the dirstate can answer."""
    sqlite3.connect(cache.path).execute("DELETE FROM stat_cache").connection.commit()


def test_an_unchanged_folder_is_answered_by_its_dirstate_without_reading(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    cache = _cache()
    first = _add(folder)
    assert first["03.txt"] == _md5(b"file 3")
    _plant(cache, folder, "03.txt")
    _forget_sqlite(cache)
    again = _add(folder)
    assert again["03.txt"] == "planted"  # not read
    assert {p: d for p, d in again.items() if p != "03.txt"} == {
        p: d for p, d in first.items() if p != "03.txt"
    }


def test_an_unchanged_relog_leaves_the_dirstate_file_as_it_is(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    cache = _cache()
    _add(folder)
    before = os.stat(_state_file(cache, folder)).st_ino
    _add(folder)
    assert os.stat(_state_file(cache, folder)).st_ino == before  # not rewritten


def test_same_size_change_with_mtime_forced_back_is_seen_through_ctime(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    cache = _cache()
    _add(folder)
    target = folder / "05.txt"
    before = os.stat(target)
    _plant(cache, folder, "05.txt")
    target.write_bytes(b"file X")  # same size
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(target).st_ctime_ns != before.st_ctime_ns
    assert _add(folder)["05.txt"] == _md5(b"file X")


def test_a_file_replaced_by_rename_or_grown_is_read_again(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    cache = _cache()
    _add(folder)
    _plant(cache, folder, "01.txt")
    _plant(cache, folder, "02.txt")
    replacement = tmp_path / "other.txt"
    replacement.write_bytes(b"file Y")
    os.utime(replacement, ns=(1, os.stat(folder / "01.txt").st_mtime_ns))
    os.replace(replacement, folder / "01.txt")  # a new inode, the same path, size and mtime
    with open(folder / "02.txt", "ab") as handle:
        handle.write(b"!")
    digests = _add(folder)
    assert digests["01.txt"] == _md5(b"file Y")
    assert digests["02.txt"] == _md5(b"file 2!")


def test_files_added_and_removed_keep_the_others_answered(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    cache = _cache()
    _add(folder)
    _plant(cache, folder, "07.txt")
    _forget_sqlite(cache)
    (folder / "00.txt").unlink()
    (folder / "new.txt").write_bytes(b"new")
    digests = _add(folder)
    assert "00.txt" not in digests and digests["new.txt"] == _md5(b"new")
    assert digests["07.txt"] == "planted"
    # the new state holds the folder as it is now, in its order
    state = dirstate.load(_state_file(cache, folder))
    assert state is not None
    assert state.paths == sorted(str(p) for p in folder.iterdir())
    assert state.digests[state.paths.index(str(folder / "new.txt"))] == _md5(b"new")


def test_files_written_within_the_racy_window_are_not_vouched_for(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    cache = _cache(aged=False)  # the real clock: the files were written a moment ago
    _add(folder)
    state = dirstate.load(_state_file(cache, folder))
    assert state is not None and set(state.settled) == {0}
    _plant(cache, folder, "04.txt")
    assert _add(folder)["04.txt"] == _md5(b"file 4")  # hashed again


def test_the_mutable_policy_still_copies_what_the_store_lacks(tmp_path: Path) -> None:
    """A dirstate hit skips the copy only for blobs the store holds, as a stat cache hit does."""
    folder = _folder(tmp_path)
    cache = _cache()
    with wandb.init(job_type="dirstate") as run:
        first = wandb.Artifact("data", type="dataset")
        first.add_dir(str(folder))
        run.log_artifact(first).wait()
        _plant(cache, folder, "03.txt", _md5(b"file 5"))  # stored (as 05.txt's blob)
        _plant(cache, folder, "04.txt", _md5(b"not stored"))
        second = wandb.Artifact("data", type="dataset")
        second.add_dir(str(folder))
    entries = second.manifest.entries
    assert entries["03.txt"].digest == _md5(b"file 5") and not entries["03.txt"].staged
    assert entries["04.txt"].digest == _md5(b"file 4") and entries["04.txt"].staged


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:-9],  # truncated
        lambda data: data[:40] + bytes([data[40] ^ 1]) + data[41:],  # a flipped bit
        lambda data: b"not a dirstate",
        lambda data: b"",
    ],
    ids=["truncated", "bit-flip", "other-file", "empty"],
)
def test_a_damaged_dirstate_is_ignored_and_replaced(tmp_path: Path, damage) -> None:  # type: ignore[no-untyped-def]
    folder = _folder(tmp_path)
    cache = _cache()
    _add(folder)
    _plant(cache, folder, "06.txt")
    path = Path(_state_file(cache, folder))
    path.write_bytes(damage(path.read_bytes()))
    assert dirstate.load(str(path)) is None
    _forget_sqlite(cache)
    digests = _add(folder)
    assert digests["06.txt"] == _md5(b"file 6")  # read: the damaged state vouched for nothing
    assert dirstate.load(str(path)) is not None  # and a sound one replaced it


def test_small_folders_and_a_turned_off_stat_cache_keep_no_dirstate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dirstate, "MIN_FILES", FILES + 1)
    folder = _folder(tmp_path)
    cache = _cache()
    _add(folder)
    assert not os.path.exists(_state_file(cache, folder))
    monkeypatch.setattr(dirstate, "MIN_FILES", 3)
    monkeypatch.setenv(ENV_STAT_CACHE, "0")
    _add(folder)
    assert not os.path.exists(os.path.dirname(_state_file(cache, folder)))


def test_only_the_most_recently_used_dirstates_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dirstate, "KEEP", 2)
    cache = _cache()
    folders = []
    for index in range(3):
        folders.append(_folder(tmp_path / str(index)))
        _add(folders[-1])
        seconds = (index + 1) * 10**9  # each older than the next
        os.utime(_state_file(cache, folders[-1]), ns=(seconds, seconds))
    kept = {Path(p).name for p in os.listdir(os.path.dirname(_state_file(cache, folders[0])))}
    assert kept == {Path(_state_file(cache, f)).name for f in folders[1:]}


def test_a_state_round_trips_through_its_file(tmp_path: Path) -> None:
    folder = _folder(tmp_path, 4)
    paths = sorted(str(p) for p in folder.iterdir())
    state = dirstate.DirState(
        paths, FileStats.of_paths(paths), [_md5(p.encode()) for p in paths], bytes([1, 0, 1, 1])
    )
    target = str(tmp_path / "state")
    dirstate.save(target, state)
    assert dirstate.load(target) == state
    assert not (tmp_path / FILE_NAME).exists()


def _synthetic(count: int) -> tuple[list[str], FileStats]:
    rows = [(1, 100 + i, 10 + i, 1_000 + i, 2_000 + i) for i in range(count)]
    columns = tuple(
        array(template.typecode, column)
        for template, column in zip(FileStats().columns, zip(*rows, strict=True), strict=True)
    )
    return [f"/data/{i:02d}" for i in range(count)], FileStats(columns)


@pytest.mark.parametrize("block", [4, 5, 4096])
def test_changed_and_racy_files_are_found_in_any_block(
    monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    monkeypatch.setattr(dirstate, "_BLOCK", block)
    paths, stats = _synthetic(12)
    settled = bytes(0 if i == 7 else 1 for i in range(12))
    state = dirstate.DirState(paths, stats, [f"d{i}" for i in range(12)], settled)
    _, now = _synthetic(12)
    now.columns[2][2] += 1  # grown
    now.columns[3][10] += 1  # written
    found, complete = state.trusted(paths, now)
    assert not complete
    assert found == [None if i in (2, 7, 10) else f"d{i}" for i in range(12)]
    assert state.trusted(paths, _synthetic(12)[1]) == (
        [None if i == 7 else f"d{i}" for i in range(12)],
        False,
    )
    everything = dirstate.DirState(paths, stats, state.digests, bytes([1] * 12))
    assert everything.trusted(paths, _synthetic(12)[1]) == (state.digests, True)


def test_a_few_changed_files_are_left_to_the_stat_cache_many_rewrite_the_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dirstate, "REWRITE_RATIO", 4)  # 12 files: up to 3 left as they are
    folder = _folder(tmp_path)
    cache = _cache()
    _add(folder)
    state_file = _state_file(cache, folder)
    before = os.stat(state_file).st_ino
    (folder / "08.txt").write_bytes(b"edited")
    assert _add(folder)["08.txt"] == _md5(b"edited")
    assert os.stat(state_file).st_ino == before  # one in twelve: kept as it was
    sqlite3.connect(cache.path).execute(
        "UPDATE stat_cache SET digest = 'planted' WHERE path = ?", (str(folder / "08.txt"),)
    ).connection.commit()
    assert _add(folder)["08.txt"] == "planted"  # answered by the SQLite tier, not read
    for name in ("00.txt", "01.txt", "02.txt", "03.txt"):
        (folder / name).write_bytes(b"edited too")
    _add(folder)
    assert os.stat(state_file).st_ino != before  # five in twelve: rewritten
    state = dirstate.load(state_file)
    assert state is not None
    assert state.digests[state.paths.index(str(folder / "01.txt"))] == _md5(b"edited too")
