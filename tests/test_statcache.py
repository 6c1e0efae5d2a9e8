"""The stat cache: unchanged files are not hashed twice; every change we can see is seen.

A hit is proven without mocks: a cache entry is planted with a digest no hash would produce
(``"planted"``); getting it back from ``hash_files`` proves the file was not read.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import dagster_artifacts as wandb
from dagster_artifacts.clock import OffsetClock
from dagster_artifacts.digests import encode_digest
from dagster_artifacts.hashing import hash_files
from dagster_artifacts.settings import ENV_STAT_CACHE, MachineSettings
from dagster_artifacts.statcache import FILE_NAME, RACY_WINDOW_NS, FileStat, StatCache
from dagster_artifacts.state import stat_cache_for

OLD = 1_000_000_000  # ns: 1 s after the epoch, far outside any racy window


def _md5(data: bytes) -> str:
    return encode_digest(hashlib.md5(data).digest())


def _plant(cache: StatCache, path: Path, algorithm: str = "md5", digest: str = "planted") -> None:
    """Record a digest ``path`` does not have, as if it had been hashed long after it was written."""
    cache.record_many([(str(path), FileStat.of(os.stat(path)), digest, cache.now_ns())], algorithm)


def _aged_cache() -> StatCache:
    """This machine's stat cache, on a clock past the racy window: files the test writes now
    count as aged when they are hashed (instead of sleeping two seconds)."""
    cache = stat_cache_for(MachineSettings.resolve())
    assert cache is not None
    cache.clock = OffsetClock(RACY_WINDOW_NS / 1e9 + 1)
    return cache


@pytest.fixture
def cache(tmp_path: Path) -> StatCache:
    # window 0: files written by the test a moment ago count as aged; racy tests use the default
    return StatCache(str(tmp_path / "stat" / FILE_NAME), window_ns=0)


def test_unchanged_file_is_answered_without_reading_it(tmp_path: Path, cache: StatCache) -> None:
    data = tmp_path / "a.bin"
    data.write_bytes(b"alpha")
    time.sleep(0.02)  # past the filesystem clock's tick
    _plant(cache, data)
    assert [h.digest for h in hash_files([str(data)], "md5", cache=cache)] == ["planted"]


def test_first_hash_is_recorded_and_reused(tmp_path: Path, cache: StatCache) -> None:
    data = tmp_path / "a.bin"
    data.write_bytes(b"alpha")
    time.sleep(0.02)
    first = hash_files([str(data)], "md5", cache=cache)
    assert first[0].digest == _md5(b"alpha") and first[0].size == 5
    assert cache.lookup(str(data), FileStat.of(os.stat(data)), "md5") == _md5(b"alpha")


def test_same_size_change_with_mtime_forced_back_is_seen_through_ctime(
    tmp_path: Path, cache: StatCache
) -> None:
    data = tmp_path / "a.bin"
    data.write_bytes(b"alpha")
    before = os.stat(data)
    time.sleep(0.02)
    _plant(cache, data)
    time.sleep(0.02)
    data.write_bytes(b"omega")  # same size
    os.utime(data, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime forced back
    after = os.stat(data)
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert after.st_ctime_ns != before.st_ctime_ns  # the kernel moved ctime; nobody can undo it
    assert hash_files([str(data)], "md5", cache=cache)[0].digest == _md5(b"omega")


def test_file_replaced_by_rename_is_a_miss(tmp_path: Path, cache: StatCache) -> None:
    data = tmp_path / "a.bin"
    data.write_bytes(b"alpha")
    time.sleep(0.02)
    _plant(cache, data)
    other = tmp_path / "b.bin"
    other.write_bytes(b"omega")
    os.utime(other, ns=(OLD, os.stat(data).st_mtime_ns))
    os.replace(other, data)  # new inode at the same path
    assert hash_files([str(data)], "md5", cache=cache)[0].digest == _md5(b"omega")


def test_size_change_is_a_miss(tmp_path: Path, cache: StatCache) -> None:
    data = tmp_path / "a.bin"
    data.write_bytes(b"alpha")
    time.sleep(0.02)
    _plant(cache, data)
    with open(data, "ab") as handle:
        handle.write(b"!")
    assert hash_files([str(data)], "md5", cache=cache)[0].digest == _md5(b"alpha!")


def test_racy_entry_is_not_trusted_and_is_rehashed(tmp_path: Path) -> None:
    cache = StatCache(str(tmp_path / FILE_NAME))  # the real 2 s window
    data = tmp_path / "a.bin"
    data.write_bytes(b"alpha")
    _plant(cache, data)  # hashed within the window of the write: could be stale unnoticed
    assert cache.lookup(str(data), FileStat.of(os.stat(data)), "md5") is None
    assert hash_files([str(data)], "md5", cache=cache)[0].digest == _md5(b"alpha")
    # the same entry, recorded as hashed well after the write, is trusted
    stat = FileStat.of(os.stat(data))
    later = max(stat.mtime_ns, stat.ctime_ns) + RACY_WINDOW_NS + 1
    cache.record_many([(str(data), stat, "planted", later)], "md5")
    assert cache.lookup(str(data), stat, "md5") == "planted"


def test_entries_are_per_algorithm(tmp_path: Path, cache: StatCache) -> None:
    data = tmp_path / "a.bin"
    data.write_bytes(b"alpha")
    time.sleep(0.02)
    _plant(cache, data, "md5")
    hashed = hash_files([str(data)], "xxh128", cache=cache)[0]
    assert hashed.digest not in ("planted", _md5(b"alpha"))
    assert len(hashed.digest) == 24  # base64 of 16 bytes


def test_corrupt_cache_file_warns_and_hashing_still_works(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    path.write_bytes(b"this is not a database" * 100)
    data = tmp_path / "a.bin"
    data.write_bytes(b"alpha")
    with pytest.warns(RuntimeWarning, match="stat cache"):
        cache = StatCache(str(path))
    assert hash_files([str(data)], "md5", cache=cache)[0].digest == _md5(b"alpha")


def test_opt_out(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_STAT_CACHE, "0")
    assert stat_cache_for(MachineSettings.resolve(tmp_path)) is None
    data = tmp_path / "a.bin"
    data.write_bytes(b"alpha")
    artifact = wandb.Artifact("data", type="dataset")
    artifact.add_file(str(data))
    assert artifact.manifest.entries["a.bin"].digest == _md5(b"alpha")
    assert not (tmp_path / FILE_NAME).exists()


def test_add_dir_fills_the_cache_and_a_second_add_trusts_it(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    for index in range(20):
        (folder / f"{index}.txt").write_bytes(f"file {index}".encode())
    cache = _aged_cache()
    with wandb.init(job_type="stat") as run:
        first = wandb.Artifact("data", type="dataset")
        first.add_dir(str(folder))
        run.log_artifact(first).wait()
        assert stat_cache_for(run.store.settings.machine) is cache and len(cache) == 20
        target = folder / "3.txt"
        _plant(cache, target)
        second = wandb.Artifact("data", type="dataset")
        second.add_dir(str(folder), policy="immutable")
    assert second.manifest.entries["3.txt"].digest == "planted"
    assert second.manifest.entries["4.txt"].digest == _md5(b"file 4")


def test_mutable_add_trusts_the_cache_only_for_blobs_the_store_holds(tmp_path: Path) -> None:
    """The default policy snapshots files: a cache hit may skip the copy only when the store
    already has those bytes. A hit whose blob is stored is neither read nor copied (proven by a
    planted digest of another stored file coming back); a hit whose blob is missing is read."""
    folder = tmp_path / "data"
    folder.mkdir()
    for index in range(20):
        (folder / f"{index}.txt").write_bytes(f"file {index}".encode())
    cache = _aged_cache()
    with wandb.init(job_type="stat") as run:
        first = wandb.Artifact("data", type="dataset")
        first.add_dir(str(folder))
        run.log_artifact(first).wait()
        assert stat_cache_for(run.store.settings.machine) is cache
        stored_elsewhere = _md5(b"file 5")  # a blob the store holds
        _plant(cache, folder / "3.txt", digest=stored_elsewhere)
        _plant(cache, folder / "4.txt", digest=_md5(b"no such blob"))
        second = wandb.Artifact("data", type="dataset")
        second.add_dir(str(folder))
        entries = second.manifest.entries
        assert entries["3.txt"].digest == stored_elsewhere  # trusted: not read
        assert entries["4.txt"].digest == _md5(b"file 4")  # blob missing: read and copied
        assert not entries["3.txt"].staged and entries["4.txt"].staged
        assert all(not e.staged for p, e in entries.items() if p not in ("4.txt",))


CONCURRENT = textwrap.dedent(
    """
    import sys
    from dagster_artifacts.hashing import hash_files
    from dagster_artifacts.statcache import StatCache
    cache = StatCache(sys.argv[1], window_ns=0)
    paths = sys.argv[2:]
    for _ in range(5):
        digests = [h.digest for h in hash_files(paths, "md5", cache=cache)]
    print("\\n".join(digests))
    """
)


def test_concurrent_processes_share_one_cache_safely(tmp_path: Path) -> None:
    paths = []
    for index in range(200):
        path = tmp_path / f"{index}.bin"
        path.write_bytes(os.urandom(100))
        paths.append(str(path))
    db = str(tmp_path / FILE_NAME)
    procs = [
        subprocess.Popen(
            [sys.executable, "-W", "error", "-c", CONCURRENT, db, *paths],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    expected = [_md5(Path(p).read_bytes()) for p in paths]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert out.split() == expected
    rows = sqlite3.connect(db).execute("SELECT COUNT(*) FROM stat_cache").fetchone()[0]
    assert rows == 200
