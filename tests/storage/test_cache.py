"""The local download cache: fetch once, stay under budget, never let a user write into it."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

import dagster_artifacts as wandb
from dagster_artifacts.digests import digest_bytes
from dagster_artifacts.errors import StorageError
from dagster_artifacts.storage.cache import CacheItem, DownloadCache


class Source:
    """Bytes by digest, counting how often each is fetched (the blob store's stand-in)."""

    def __init__(self) -> None:
        self.fetches: dict[str, int] = {}
        self.data: dict[str, bytes] = {}

    def add(self, data: bytes) -> str:
        digest = digest_bytes(data)
        self.data[digest] = data
        return digest

    def fetcher(self, digest: str):  # type: ignore[no-untyped-def]
        def fetch(tmp: str) -> None:
            self.fetches[digest] = self.fetches.get(digest, 0) + 1
            Path(tmp).write_bytes(self.data[digest])

        return fetch


def cache_bytes(path: Path) -> int:
    """What the cache holds on disk: its files and its segments."""
    return sum(
        p.stat().st_size
        for folder in ("blobs", "segments")
        for p in (path / folder).rglob("*")
        if p.is_file()
    )


def damage(cache: DownloadCache, digest: str) -> None:
    """Flip the first byte of a cached blob in place (same size), as rot or a user would."""
    where = cache.locate(digest)
    assert where is not None
    os.chmod(where.path, 0o644)
    with open(where.path, "r+b") as handle:
        handle.seek(where.offset or 0)
        first = handle.read(1)
        handle.seek(where.offset or 0)
        handle.write(bytes([first[0] ^ 0xFF]))
    os.chmod(where.path, 0o444)


def test_fetches_once_and_copies_out(tmp_path: Path) -> None:
    source = Source()
    digest = source.add(b"hello")
    cache = DownloadCache(tmp_path / "c", max_bytes=1000)
    for name in ("one", "two"):
        dest = tmp_path / name / "f.txt"
        cache.place(digest, "md5", 5, str(dest), source.fetcher(digest))
        assert dest.read_bytes() == b"hello"
    assert source.fetches == {digest: 1}
    info = cache.info()
    assert (info.files, info.bytes) == (1, 5)


def test_user_cannot_write_through_a_copy_or_a_hardlink(tmp_path: Path) -> None:
    source = Source()
    digest = source.add(b"original")
    cache = DownloadCache(tmp_path / "c", max_bytes=1000)
    copied = tmp_path / "copy.txt"
    cache.place(digest, "md5", 8, str(copied), source.fetcher(digest))
    copied.write_bytes(b"user edit")  # a copy: editing it leaves the cache alone
    where = cache.locate(digest)
    assert where is not None and where.offset is not None  # a small blob: in a segment
    kept = Path(where.path)
    assert not kept.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    again = tmp_path / "again.txt"
    cache.place(digest, "md5", 8, str(again), source.fetcher(digest))
    assert again.read_bytes() == b"original" and source.fetches[digest] == 1

    linked_digest = source.add(b"to be linked")
    linked = tmp_path / "link.txt"
    cache.place(linked_digest, "md5", 12, str(linked), source.fetcher(linked_digest), hardlink=True)
    cached = cache.locate(linked_digest)
    assert cached is not None and cached.offset is None  # fetched to be linked: a file
    assert linked.stat().st_ino == Path(cached.path).stat().st_ino
    assert not linked.stat().st_mode & stat.S_IWUSR
    assert copied.stat().st_ino != kept.stat().st_ino


def test_a_blob_in_a_segment_is_copied_even_in_hardlink_mode(tmp_path: Path) -> None:
    """A slice of a segment cannot be hard-linked: it is copied, hashed on the way."""
    source = Source()
    digest = source.add(b"in a segment")
    cache = DownloadCache(tmp_path / "c", max_bytes=1000)
    cache.place(digest, "md5", 12, str(tmp_path / "first"), source.fetcher(digest))
    placed = tmp_path / "linked"
    cache.place(digest, "md5", 12, str(placed), source.fetcher(digest), hardlink=True)
    assert placed.read_bytes() == b"in a segment" and source.fetches[digest] == 1
    where = cache.locate(digest)
    assert where is not None and placed.stat().st_ino != Path(where.path).stat().st_ino


def test_stays_under_its_budget_and_evicts_least_recently_used(tmp_path: Path) -> None:
    source = Source()
    digests = [source.add(bytes([i]) * 3000) for i in range(20)]
    root = tmp_path / "c"
    cache = DownloadCache(root, max_bytes=10_000)
    first = digests[0]
    for index, digest in enumerate(digests):
        cache.place(digest, "md5", 3000, str(tmp_path / "d" / str(index)), source.fetcher(digest))
        # keep the first one hot: it is used again before every insertion
        cache.place(first, "md5", 3000, str(tmp_path / "hot"), source.fetcher(first))
        assert cache_bytes(root) <= 10_000
        assert cache.info().bytes <= 10_000
    assert source.fetches[first] == 1  # never evicted
    assert cache.locate(first) is not None
    assert cache.locate(digests[1]) is None  # long evicted
    for index, digest in enumerate(digests):
        assert (tmp_path / "d" / str(index)).read_bytes() == source.data[digest]


def test_a_file_bigger_than_the_budget_is_delivered_but_not_kept(tmp_path: Path) -> None:
    source = Source()
    digest = source.add(b"x" * 5000)
    root = tmp_path / "c"
    cache = DownloadCache(root, max_bytes=1000)
    cache.place(digest, "md5", 5000, str(tmp_path / "big"), source.fetcher(digest))
    assert (tmp_path / "big").stat().st_size == 5000
    assert cache_bytes(root) == 0 and cache.info().files == 0


def test_a_damaged_segment_is_detected_dropped_and_filled_again(tmp_path: Path) -> None:
    source = Source()
    digest = source.add(b"good bytes")
    cache = DownloadCache(tmp_path / "c", max_bytes=1000)
    cache.place(digest, "md5", 10, str(tmp_path / "a"), source.fetcher(digest))
    damage(cache, digest)
    cache.place(digest, "md5", 10, str(tmp_path / "b"), source.fetcher(digest))
    assert (tmp_path / "b").read_bytes() == b"good bytes"
    assert source.fetches[digest] == 2
    assert cache.locate(digest) is None and cache_bytes(tmp_path / "c") == 0  # dropped whole
    cache.place(digest, "md5", 10, str(tmp_path / "c1"), source.fetcher(digest))  # kept again
    cache.place(digest, "md5", 10, str(tmp_path / "c2"), source.fetcher(digest))
    assert (tmp_path / "c2").read_bytes() == b"good bytes" and source.fetches[digest] == 3


def test_a_damaged_large_cache_file_is_detected_and_refetched(tmp_path: Path) -> None:
    source = Source()
    data = os.urandom(300_000)  # over SMALL_LIMIT: a file of its own
    digest = source.add(data)
    cache = DownloadCache(tmp_path / "c", max_bytes=1_000_000, verify_always=True)
    cache.place(digest, "md5", len(data), str(tmp_path / "a"), source.fetcher(digest))
    damage(cache, digest)
    cache.place(digest, "md5", len(data), str(tmp_path / "b"), source.fetcher(digest))
    assert (tmp_path / "b").read_bytes() == data
    assert source.fetches[digest] == 2
    where = cache.locate(digest)
    assert where is not None and Path(where.path).read_bytes() == data  # refetched into it


def test_prune_shrinks_to_the_given_size(tmp_path: Path) -> None:
    source = Source()
    cache = DownloadCache(tmp_path / "c", max_bytes=100_000)
    for i in range(5):
        digest = source.add(bytes([i]) * 1000)
        cache.place(digest, "md5", 1000, str(tmp_path / str(i)), source.fetcher(digest))
    result = cache.prune(2500)
    assert (result.files_removed, result.bytes_left) == (3, 2000)
    assert cache_bytes(tmp_path / "c") == 2000
    assert cache.prune(0).bytes_left == 0
    assert cache_bytes(tmp_path / "c") == 0


def test_concurrent_placements_of_one_digest(tmp_path: Path) -> None:
    source = Source()
    digest = source.add(b"z" * 100_000)
    cache = DownloadCache(tmp_path / "c", max_bytes=1_000_000)
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            cache.place(digest, "md5", 100_000, str(tmp_path / f"t{index}"), source.fetcher(digest))
        except BaseException as error:  # pragma: no cover
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert all((tmp_path / f"t{i}").read_bytes() == b"z" * 100_000 for i in range(8))
    assert cache.info().files == 1


def _log(files: dict[str, str]) -> wandb.Artifact:
    with wandb.init(job_type="t") as run:
        artifact = wandb.Artifact("cached", type="dataset")
        for name, text in files.items():
            with artifact.new_file(name) as handle:
                handle.write(text)
        run.log_artifact(artifact).wait()
    return artifact


def test_engine_downloads_are_served_by_the_cache(
    monkeypatch: pytest.MonkeyPatch, isolated_store: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv("DAGSTER_ARTIFACTS_CACHE", "1")
    _log({"a.txt": "alpha", "b.txt": "beta"})
    artifact = wandb.Api().artifact("cached:v0")
    artifact.download(root=str(tmp_path / "first"))
    for blob in (isolated_store / "blobs").rglob("*"):
        if blob.is_file():
            blob.unlink()  # the store lost its bytes; only the cache has them now
    second = artifact.download(root=str(tmp_path / "second"))
    assert Path(second, "a.txt").read_text() == "alpha"
    assert Path(second, "b.txt").read_text() == "beta"
    Path(second, "a.txt").write_text("edited")  # the user owns the copy...
    third = artifact.download(root=str(tmp_path / "third"))
    assert Path(third, "a.txt").read_text() == "alpha"  # ...and the cache is untouched


def test_cache_opt_out(
    monkeypatch: pytest.MonkeyPatch, isolated_store: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv("DAGSTER_ARTIFACTS_CACHE", "0")
    _log({"a.txt": "alpha"})
    artifact = wandb.Api().artifact("cached:v0")
    artifact.download(root=str(tmp_path / "first"))
    assert not (tmp_path / "cache" / "blobs").exists()
    for blob in (isolated_store / "blobs").rglob("*"):
        if blob.is_file():
            blob.unlink()
    with pytest.raises((FileNotFoundError, StorageError)):
        artifact.download(root=str(tmp_path / "second"))


def test_a_file_evicted_right_after_its_fetch_is_fetched_again(tmp_path: Path) -> None:
    """Another process may evict a file between its fetch into the cache and its chmod: the
    download still places the right bytes (fetched again), never a raw FileNotFoundError."""
    source = Source()
    data = b"evicted meanwhile" * 20_000  # a large blob: fetched into a file of its own
    digest = source.add(data)
    cache = DownloadCache(tmp_path / "c", max_bytes=1_000_000)
    calls: list[int] = []

    def fetch_many(items: list[CacheItem], atomic: bool) -> None:
        calls.append(len(items))
        for item in items:
            Path(item.dest).parent.mkdir(parents=True, exist_ok=True)
            Path(item.dest).write_bytes(source.data[item.digest])
            if len(calls) == 1 and item.dest.startswith(cache.path):
                os.unlink(item.dest)  # what a concurrent eviction does

    dest = tmp_path / "out" / "file.txt"
    cache.place_many([CacheItem(digest, len(data), str(dest))], "md5", fetch_many)
    assert dest.read_bytes() == data


def test_a_failed_link_leaves_no_temp_link_behind(tmp_path: Path) -> None:
    """With hard links, a destination that cannot be replaced (here: a folder) fails the
    placement; the temporary link made for it must not stay beside it."""
    source = Source()
    digest = source.add(b"linked")
    cache = DownloadCache(tmp_path / "c", max_bytes=1000)
    target = tmp_path / "out" / "taken"
    (target / "inside").mkdir(parents=True)  # a non-empty folder where the file should go
    with pytest.raises(OSError):
        cache.place(digest, "md5", 6, str(target), source.fetcher(digest), hardlink=True)
    assert [p.name for p in target.parent.iterdir()] == ["taken"]


def _fetch_to_dests(source: Source):  # type: ignore[no-untyped-def]
    """A batched fetch as ``BlobStore.get_files`` does it, counting each digest's fetches."""

    def fetch_many(items: list[CacheItem], atomic: bool) -> None:
        for item in items:
            source.fetches[item.digest] = source.fetches.get(item.digest, 0) + 1
            Path(item.dest).parent.mkdir(parents=True, exist_ok=True)
            Path(item.dest).write_bytes(source.data[item.digest])

    return fetch_many


def test_a_first_download_of_small_files_keeps_them_in_one_segment(tmp_path: Path) -> None:
    """No cache file per blob: the files placed, plus one segment; then served from it."""
    source = Source()
    blobs = [source.add(f"record {i}".encode() * 10) for i in range(300)]
    cache = DownloadCache(tmp_path / "c", max_bytes=1_000_000)
    fetch_many = _fetch_to_dests(source)
    first = [
        CacheItem(d, len(source.data[d]), str(tmp_path / "one" / f"{i}"))
        for i, d in enumerate(blobs)
    ]
    cache.place_many(first, "md5", fetch_many, atomic=False)
    assert not [p for p in (tmp_path / "c" / "blobs").rglob("*") if p.is_file()]
    assert len(list((tmp_path / "c" / "segments").iterdir())) == 1
    assert cache.info().files == 300 and cache.info().bytes == cache_bytes(tmp_path / "c")
    second = [
        CacheItem(d, len(source.data[d]), str(tmp_path / "two" / f"{i}"))
        for i, d in enumerate(blobs)
    ]
    cache.place_many(second, "md5", fetch_many)
    assert all(count == 1 for count in source.fetches.values())
    for i, digest in enumerate(blobs):
        assert (tmp_path / "two" / str(i)).read_bytes() == source.data[digest]


def test_bytes_handed_over_by_the_fetch_are_kept_without_reading_the_file_back(
    tmp_path: Path,
) -> None:
    """A fetch that holds the verified bytes (a pack read) hands them to ``tee``: what the
    cache keeps is those bytes, whatever happens to the placed file afterwards."""
    source = Source()
    digest = source.add(b"from a pack")
    cache = DownloadCache(tmp_path / "c", max_bytes=1000)

    def fetch_many(items: list[CacheItem], atomic: bool) -> None:
        for item in items:
            assert item.tee is not None
            Path(item.dest).write_bytes(source.data[item.digest])
            item.tee(source.data[item.digest])
            Path(item.dest).write_bytes(b"user edit")  # the user is quick

    cache.place_many([CacheItem(digest, 11, str(tmp_path / "a"))], "md5", fetch_many)
    cache.place(digest, "md5", 11, str(tmp_path / "b"), Source().fetcher(digest))
    assert (tmp_path / "b").read_bytes() == b"from a pack"


def test_a_file_changed_before_it_was_read_back_is_not_cached(tmp_path: Path) -> None:
    source = Source()
    digest = source.add(b"placed bytes")

    def fetch_many(items: list[CacheItem], atomic: bool) -> None:
        for item in items:
            Path(item.dest).write_bytes(b"other bytes!")  # changed before the cache reads it

    cache = DownloadCache(tmp_path / "c", max_bytes=1000)
    cache.place_many([CacheItem(digest, 12, str(tmp_path / "a"))], "md5", fetch_many)
    assert cache.locate(digest) is None and cache.info().files == 0


def test_a_cache_folder_that_cannot_take_segments_warns_and_the_download_completes(
    tmp_path: Path,
) -> None:
    source = Source()
    digest = source.add(b"still delivered")
    cache = DownloadCache(tmp_path / "c", max_bytes=1000)
    Path(cache.segments_path).write_bytes(b"")  # a file where the segments folder goes
    with pytest.warns(RuntimeWarning, match="complete but not cached"):
        cache.place(digest, "md5", 15, str(tmp_path / "a"), source.fetcher(digest))
    assert (tmp_path / "a").read_bytes() == b"still delivered"
    assert cache.info().files == 0 and cache.locate(digest) is None


def test_an_index_of_the_previous_version_keeps_serving_its_files(tmp_path: Path) -> None:
    """Caches written before segments: one file per blob, an index without segment columns."""
    import sqlite3

    source = Source()
    digest = source.add(b"cached by an older version")
    root = tmp_path / "c"
    key = DownloadCache.key(digest)
    old_file = root / "blobs" / key
    old_file.parent.mkdir(parents=True)
    old_file.write_bytes(source.data[digest])
    old_file.chmod(0o444)
    with sqlite3.connect(root / "index.db") as db:
        db.execute(
            "CREATE TABLE entries (key TEXT PRIMARY KEY, size INTEGER NOT NULL,"
            " accessed REAL NOT NULL, fingerprint TEXT)"
        )
        db.execute("INSERT INTO entries VALUES (?, ?, 1.0, NULL)", (key, 26))
    cache = DownloadCache(root, max_bytes=1000)
    cache.place(digest, "md5", 26, str(tmp_path / "a"), source.fetcher(digest))
    assert (tmp_path / "a").read_bytes() == source.data[digest]
    assert source.fetches == {}  # served from the old file
    assert (cache.info().files, cache.info().bytes) == (1, 26)
    assert cache.prune(0).files_removed == 1 and not old_file.exists()


def test_prune_removes_old_stray_segments_and_keeps_young_ones(tmp_path: Path) -> None:
    source = Source()
    digest = source.add(b"kept")
    cache = DownloadCache(tmp_path / "c", max_bytes=1000)
    cache.place(digest, "md5", 4, str(tmp_path / "a"), source.fetcher(digest))
    segments = Path(cache.segments_path)
    old, young = segments / ".deadbeef.tmp", segments / "0123abcd"
    for stray in (old, young):
        stray.write_bytes(b"left by a crash")
    os.utime(old, (1, 1))
    kept = {p.name for p in segments.iterdir()} - {old.name, young.name}
    cache.prune(1000)
    assert {p.name for p in segments.iterdir()} == kept | {young.name}


PLACER = """
import sys
from pathlib import Path
from dagster_artifacts.digests import digest_bytes
from dagster_artifacts.storage.cache import CacheItem, DownloadCache

cache_dir, out, budget = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
blobs = {digest_bytes(data): data for data in (f"blob {i} ".encode() * 40 for i in range(400))}

def fetch_many(items, atomic):
    for item in items:
        Path(item.dest).parent.mkdir(parents=True, exist_ok=True)
        Path(item.dest).write_bytes(blobs[item.digest])

cache = DownloadCache(cache_dir, max_bytes=budget)
for round_ in range(3):
    items = [CacheItem(d, len(b), str(out / str(round_) / d.replace("/", "_")))
             for d, b in blobs.items()]
    cache.place_many(items, "md5", fetch_many)
    for d, b in blobs.items():
        assert (out / str(round_) / d.replace("/", "_")).read_bytes() == b
"""


@pytest.mark.parametrize("budget", [1_000_000, 40_000], ids=["roomy", "tight"])
def test_processes_sharing_the_cache_keep_its_size_exact(tmp_path: Path, budget: int) -> None:
    """Four processes download the same blobs at once, three times: every file right, and
    the index's size is what is on disk, within the budget (segments evicted whole)."""
    import subprocess
    import sys

    script = tmp_path / "placer.py"
    script.write_text(PLACER)
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / "c"), str(tmp_path / f"o{i}"), str(budget)]
        )
        for i in range(4)
    ]
    assert [worker.wait(timeout=120) for worker in workers] == [0, 0, 0, 0]
    cache = DownloadCache(tmp_path / "c", max_bytes=budget)
    cache.prune(budget)  # drops strays an hour old: there must be no younger ones either
    info = cache.info()
    on_disk = cache_bytes(tmp_path / "c")
    assert 0 < info.bytes <= budget
    # files of their own that no entry names (a blob another process put in a segment first)
    # are the only bytes on disk the index may not count; none are expected for small blobs
    assert on_disk == info.bytes


CRASHER = """
import os, sys
from pathlib import Path
from dagster_artifacts.storage.cache import CacheItem, DownloadCache

def fetch_many(items, atomic):
    os._exit(3)  # killed in the middle of its download, after the cache reserved the blob

DownloadCache(sys.argv[1], max_bytes=1000).place_many(
    [CacheItem(sys.argv[2], int(sys.argv[3]), sys.argv[4])], "md5", fetch_many
)
"""


def test_a_download_killed_after_its_reservation_leaves_a_cache_that_heals(
    tmp_path: Path,
) -> None:
    """The killed process's entry names a blob that never arrived: the next download fetches
    it straight and drops the entry, the one after keeps it in a segment, then it is served."""
    import subprocess
    import sys

    source = Source()
    digest = source.add(b"never arrived")
    script = tmp_path / "crasher.py"
    script.write_text(CRASHER)
    killed = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "c"), digest, "13", str(tmp_path / "x")]
    )
    assert killed.returncode == 3
    cache = DownloadCache(tmp_path / "c", max_bytes=1000)
    assert cache.info().files == 1  # the reservation it left
    for name in ("first", "second", "third"):
        cache.place(digest, "md5", 13, str(tmp_path / name), source.fetcher(digest))
        assert (tmp_path / name).read_bytes() == b"never arrived"
    assert source.fetches[digest] == 2
    where = cache.locate(digest)
    assert where is not None and where.offset is not None
    assert cache.info().bytes == cache_bytes(tmp_path / "c") == 13
