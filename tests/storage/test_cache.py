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
    return sum(p.stat().st_size for p in (path / "blobs").rglob("*") if p.is_file())


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
    cached = Path(cache.file_path(cache.key(digest)))
    assert cached.read_bytes() == b"original"
    assert not cached.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)

    linked = tmp_path / "link.txt"
    cache.place(digest, "md5", 8, str(linked), source.fetcher(digest), hardlink=True)
    assert linked.stat().st_ino == cached.stat().st_ino
    assert not linked.stat().st_mode & stat.S_IWUSR
    assert copied.stat().st_ino != cached.stat().st_ino


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
    assert os.path.exists(cache.file_path(cache.key(first)))
    assert not os.path.exists(cache.file_path(cache.key(digests[1])))
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


def test_a_damaged_cache_file_is_detected_and_refetched(tmp_path: Path) -> None:
    source = Source()
    digest = source.add(b"good bytes")
    cache = DownloadCache(tmp_path / "c", max_bytes=1000)
    cache.place(digest, "md5", 10, str(tmp_path / "a"), source.fetcher(digest))
    cached = Path(cache.file_path(cache.key(digest)))
    cached.chmod(0o644)
    cached.write_bytes(b"bad bytes!")  # same size, other content
    cache.place(digest, "md5", 10, str(tmp_path / "b"), source.fetcher(digest))
    assert (tmp_path / "b").read_bytes() == b"good bytes"
    assert source.fetches[digest] == 2


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
    digest = source.add(b"evicted meanwhile")
    cache = DownloadCache(tmp_path / "c", max_bytes=1000)
    calls: list[int] = []

    def fetch_many(items: list[CacheItem], atomic: bool) -> None:
        calls.append(len(items))
        for item in items:
            Path(item.dest).parent.mkdir(parents=True, exist_ok=True)
            Path(item.dest).write_bytes(source.data[item.digest])
            if len(calls) == 1 and item.dest.startswith(cache.path):
                os.unlink(item.dest)  # what a concurrent eviction does

    dest = tmp_path / "out" / "file.txt"
    cache.place_many([CacheItem(digest, 17, str(dest))], "md5", fetch_many)
    assert dest.read_bytes() == b"evicted meanwhile"


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
