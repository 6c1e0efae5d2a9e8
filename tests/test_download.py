"""Downloads: what a user can rely on, on real stores and a real cache.

A file at its final path always has the right content: a new root appears complete or not at
all, a download killed halfway leaves nothing a later ``download()`` would trust, the cache stays
within its budget, a damaged cache file is never placed, hard links are read-only.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import dagster_artifacts as wandb
from dagster_artifacts.api import Api
from dagster_artifacts.download import safe_targets
from dagster_artifacts.errors import ChecksumMismatchError, InvalidPathError
from dagster_artifacts.storage.cache import DownloadCache
from dagster_artifacts.storage.layout import blob_key
from tests.services.s3 import S3Service
from tests.storage.test_s3_store import log_dir, make_files, s3_settings


def log_files(name: str, files: dict[str, bytes]) -> wandb.Artifact:
    with wandb.init(job_type="t") as run:
        artifact = wandb.Artifact(name, type="dataset")
        for path, data in files.items():
            with artifact.new_file(path, mode="wb") as handle:
                handle.write(data)
        run.log_artifact(artifact).wait()
    return wandb.Api().artifact(f"{name}:latest")


def numbered(count: int, size: int = 3000, folder: str = "") -> dict[str, bytes]:
    return {
        f"{folder}f{index:04d}.bin": (index.to_bytes(4, "big") * (size // 4 + 1))[:size]
        for index in range(count)
    }


def cache_files(cache_dir: Path) -> list[Path]:
    """Every file the cache keeps on disk: blobs of their own and segments."""
    return [
        p
        for folder in ("blobs", "segments")
        for p in (cache_dir / folder).rglob("*")
        if p.is_file()
    ]


def cached_count(cache_dir: Path) -> int:
    return DownloadCache(cache_dir).info().files


def damage(cache_dir: Path, digest: str, data: bytes) -> None:
    """Overwrite a cached blob in place with ``data`` (same size), wherever the cache keeps it."""
    where = DownloadCache(cache_dir).locate(digest)
    assert where is not None and where.size == len(data)
    os.chmod(where.path, 0o644)
    with open(where.path, "r+b") as handle:
        handle.seek(where.offset or 0)
        handle.write(data)
    os.chmod(where.path, 0o444)


def cached_path(cache_dir: Path, digest: str) -> Path:
    cache = DownloadCache(cache_dir)
    return Path(cache.file_path(cache.key(digest)))


def assert_holds(root: Path, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        assert (root / path).read_bytes() == data, path


# -- fresh roots, existing roots ----------------------------------------------------------------
def test_fresh_root_appears_complete_with_nested_folders(tmp_path: Path) -> None:
    files = {**numbered(30), **numbered(5, folder="a/b/"), "top.txt": b"top"}
    artifact = log_files("nested", files)
    root = Path(artifact.download(root=str(tmp_path / "out")))
    assert_holds(root, files)
    assert artifact.verify(str(root)).checked == len(files)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")]
    assert leftovers == []  # the staging folder became the root


def test_existing_root_keeps_good_files_and_replaces_wrong_ones(tmp_path: Path) -> None:
    files = numbered(20)
    artifact = log_files("mixed", files)
    root = tmp_path / "out"
    root.mkdir()
    (root / "mine.txt").write_text("a file of the user's")  # not in the artifact: left alone
    (root / "f0001.bin").write_bytes(b"\0" * 3000)  # right size, wrong bytes: replaced
    (root / "f0002.bin").write_bytes(b"short")
    artifact.download(root=str(root))
    assert_holds(root, files)
    assert (root / "mine.txt").read_text() == "a file of the user's"
    assert sorted(p.name for p in root.iterdir() if p.name.startswith(".")) == []


def test_xxh128_artifacts_download_verified(tmp_path: Path) -> None:
    files = numbered(10)
    with wandb.init(job_type="t") as run:
        artifact = wandb.Artifact("fast", type="dataset", digest_algorithm="xxh128")
        for path, data in files.items():
            with artifact.new_file(path, mode="wb") as handle:
                handle.write(data)
        run.log_artifact(artifact).wait()
    logged = wandb.Api().artifact("fast:latest")
    assert_holds(Path(logged.download(root=str(tmp_path / "out"))), files)


def test_damaged_store_blob_fails_and_leaves_no_root(isolated_store: Path, tmp_path: Path) -> None:
    files = numbered(50)
    artifact = log_files("damaged", files)
    digest = artifact.manifest.entries["f0007.bin"].digest
    blob = next(p for p in (isolated_store / "blobs").rglob("*") if p.is_file() and _is(p, digest))
    blob.write_bytes(b"\1" * 3000)
    with pytest.raises(ChecksumMismatchError, match="f0007|blobs"):
        artifact.download(root=str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def _is(path: Path, digest: str) -> bool:
    from dagster_artifacts.digests import b64_to_hex

    hex_digest = b64_to_hex(digest)
    return path.parent.name == hex_digest[:2] and path.name == hex_digest[2:]


# -- killed downloads -----------------------------------------------------------------------------
KILLED_DOWNLOAD = """
import sys
import dagster_artifacts as wandb
wandb.Api().artifact(sys.argv[1]).download(root=sys.argv[2])
"""


def _kill_midway(name: str, root: Path, watch: Path) -> None:
    """Start a download in another process and SIGKILL it once files appear under ``watch``."""
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_DOWNLOAD, name, str(root)], env=dict(os.environ)
    )
    deadline = time.monotonic() + 120
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            folders = [watch] if watch.exists() else list(watch.parent.glob(f".{watch.name}.*"))
            if any(len(os.listdir(folder)) > 20 for folder in folders if folder.is_dir()):
                break
            time.sleep(0.002)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


@pytest.mark.parametrize("existing_root", [False, True], ids=["new-root", "existing-root"])
def test_a_killed_download_leaves_no_wrong_file_and_the_next_one_completes(
    tmp_path: Path, existing_root: bool
) -> None:
    files = {**numbered(3000, size=4096), "big.bin": os.urandom(3 * 1024 * 1024)}
    log_files("killed", files)
    root = tmp_path / "out"
    if existing_root:
        root.mkdir()
    _kill_midway("killed:latest", root, root)
    if root.exists():
        for path in root.rglob("*"):
            if path.is_file() and not path.name.startswith("."):  # temp names are hidden
                assert path.read_bytes() == files[path.name], path
    if not existing_root:
        assert not root.exists() or len(os.listdir(root)) == len(files)  # all or nothing
    artifact = wandb.Api().artifact("killed:latest")
    artifact.download(root=str(root))
    assert_holds(root, files)
    # The next download swept what the killed one left: no hidden temp file in an existing
    # root (verify would count it as extra), no hidden partial folder beside a new one.
    assert {p.name for p in root.iterdir()} == set(files)
    assert artifact.verify(str(root)).checked == len(files)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.partial-")] == []


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_temp_files_of_a_dead_process_are_swept_from_an_existing_root(tmp_path: Path) -> None:
    """What a download killed while writing into an existing folder leaves (hidden temp files
    named for their process) is removed by the next download into it, so verify passes; one
    of another PID namespace (another container on the same volume) is left alone."""
    from dagster_artifacts.storage import scratch

    files = numbered(3)
    artifact = log_files("swept", files)
    root = tmp_path / "out"
    (root / "nested").mkdir(parents=True)
    own = scratch.owner_tag().rsplit("-", 2)  # host, pid, namespace
    dead = f"{own[0]}-{_dead_pid()}-{own[2]}-abcd-0"
    left = root / f".f0001.bin.tmp-{dead}"
    deeper = root / "nested" / f".x.tmp-{dead}"
    foreign = root / f".f0002.bin.tmp-{own[0]}-{_dead_pid()}-1-abcd-0"  # another namespace
    for path in (left, deeper, foreign):
        path.write_bytes(b"half a file")
    artifact.download(root=str(root))
    assert not left.exists() and not deeper.exists()
    assert foreign.exists()
    foreign.unlink()
    (root / "nested").rmdir()
    artifact.verify(root=str(root))


# -- the cache ------------------------------------------------------------------------------------
def test_cache_stays_within_its_budget_over_many_downloads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DAGSTER_ARTIFACTS_CACHE", "1")
    monkeypatch.setenv("DAGSTER_ARTIFACTS_CACHE_MAX_BYTES", "20000")
    cache_dir = tmp_path / "cache"
    for round_ in range(3):
        files = {
            f"r{round_}-{i}.bin": bytes([round_, i]) * 1500 for i in range(12)
        }  # 36,000 bytes: more than the whole budget
        artifact = log_files(f"budget-{round_}", files)
        root = Path(artifact.download(root=str(tmp_path / f"out{round_}")))
        assert_holds(root, files)
        on_disk = sum(p.stat().st_size for p in cache_files(cache_dir))
        assert 0 < on_disk <= 20000
        assert DownloadCache(cache_dir, 20000).info().bytes == on_disk


def test_a_damaged_cache_file_is_never_placed(
    monkeypatch: pytest.MonkeyPatch, isolated_store: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv("DAGSTER_ARTIFACTS_CACHE", "1")
    files = numbered(40)
    artifact = log_files("healing", files)
    artifact.download(root=str(tmp_path / "first"))
    digest = artifact.manifest.entries["f0003.bin"].digest
    damage(tmp_path / "cache", digest, b"\7" * 3000)  # same size, other bytes
    root = Path(artifact.download(root=str(tmp_path / "second")))
    assert_holds(root, files)
    assert DownloadCache(tmp_path / "cache").locate(digest) is None  # its segment dropped
    assert_holds(Path(artifact.download(root=str(tmp_path / "refill"))), files)
    assert cached_count(tmp_path / "cache") == 40  # kept again by the next download

    # damaged in the cache *and* in the store: an error, and no wrong file anywhere
    damage(tmp_path / "cache", digest, b"\7" * 3000)
    for blob in (isolated_store / "blobs").rglob("*"):
        if blob.is_file() and _is(blob, digest):
            blob.write_bytes(b"\7" * 3000)
    with pytest.raises(ChecksumMismatchError):
        artifact.download(root=str(tmp_path / "third"))
    assert not (tmp_path / "third").exists()


def test_hardlink_mode_places_read_only_links_and_heals_a_write_through(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DAGSTER_ARTIFACTS_CACHE_LINK", "hardlink")  # implies the cache
    files = numbered(25)
    artifact = log_files("linked", files)
    root = Path(artifact.download(root=str(tmp_path / "out")))
    assert_holds(root, files)
    for path in files:
        placed = root / path
        cached = cached_path(tmp_path / "cache", artifact.manifest.entries[path].digest)
        assert placed.stat().st_ino == cached.stat().st_ino
        assert not placed.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)

    # a user who makes a link writable again and edits it damages the cache file: the next
    # download hashes it before linking, refetches it, and places the right bytes
    victim = root / "f0004.bin"
    victim.chmod(0o644)
    victim.write_bytes(b"\5" * 3000)
    again = Path(artifact.download(root=str(tmp_path / "again")))
    assert_holds(again, files)
    assert not (again / "f0004.bin").stat().st_mode & stat.S_IWUSR


def test_skip_cache_bypasses_the_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DAGSTER_ARTIFACTS_CACHE", "1")
    files = numbered(5)
    artifact = log_files("skipped", files)
    assert_holds(Path(artifact.download(root=str(tmp_path / "out"), skip_cache=True)), files)
    assert cache_files(tmp_path / "cache") == []


def test_s3_downloads_fetch_only_the_misses_through_the_cache(
    s3: S3Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_ARTIFACTS_CACHE_DIR", str(tmp_path / "s3cache"))
    bucket = s3.make_bucket()
    settings = s3_settings(s3, bucket, tmp_path)
    folder = make_files(tmp_path / "data", 12, prefix="a")
    make_files(folder, 12, prefix="b")
    log_dir(settings, folder)
    fetched = Api(settings=settings).artifact("dataset:latest")
    fetched.download(str(tmp_path / "half"), path_prefix="a-")  # the cache (auto: on) gets a-*
    assert cached_count(tmp_path / "s3cache") == 12
    assert [p.parent.name for p in cache_files(tmp_path / "s3cache")] == ["segments"]
    # the store now holds wrong bytes for every a-* blob: only the cache can serve them, and
    # the b-* misses must come from the store in the same download
    for name in (p.name for p in folder.iterdir() if p.name.startswith("a-")):
        entry = fetched.manifest.entries[name]
        key = f"artifacts/{blob_key(entry.digest)}"
        s3.put(bucket, key, b"x" * (entry.size or 0))
    root = Path(fetched.download(str(tmp_path / "all")))
    for source in folder.iterdir():
        assert (root / source.name).read_bytes() == source.read_bytes()
    assert cached_count(tmp_path / "s3cache") == 24
    info = json.loads(json.dumps(DownloadCache(tmp_path / "s3cache").info().__dict__))
    assert info["files"] == 24


@pytest.mark.parametrize("verify_always", [False, True], ids=["fingerprint", "verify-always"])
def test_a_damaged_large_cache_file_is_never_placed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, verify_always: bool
) -> None:
    """Large cached files are trusted by their stat fingerprint; any write moves it."""
    monkeypatch.setenv("DAGSTER_ARTIFACTS_CACHE", "1")
    if verify_always:
        monkeypatch.setenv("DAGSTER_ARTIFACTS_CACHE_VERIFY", "1")
    files = {"large.bin": os.urandom(600_000), "small.bin": b"small"}
    artifact = log_files("large", files)
    artifact.download(root=str(tmp_path / "first"))
    assert_holds(Path(artifact.download(root=str(tmp_path / "second"))), files)  # a warm hit
    cached = cached_path(tmp_path / "cache", artifact.manifest.entries["large.bin"].digest)
    cached.chmod(0o644)
    with open(cached, "r+b") as handle:  # one byte flipped in place: same size, same inode
        handle.seek(1000)
        handle.write(bytes([files["large.bin"][1000] ^ 0xFF]))
    cached.chmod(0o444)
    root = Path(artifact.download(root=str(tmp_path / "third")))
    assert_holds(root, files)
    assert cached.read_bytes() == files["large.bin"]  # refetched


def test_download_targets_are_the_normalized_joins_and_never_escape(tmp_path: Path) -> None:
    """The short way (a plain path appended to the root) gives what ``normpath(join())`` gives,
    and every path that could resolve elsewhere still goes the long way and is checked."""
    parts = ["a", "b.c", ".h", "..", ".", "", "x..y", "é", " "]
    root = str(tmp_path / "root")
    for count in (1, 2, 3):
        for combo in itertools.product(parts, repeat=count):
            path = "/".join(combo)
            expected = os.path.normpath(os.path.join(root, path))
            if not expected.startswith(root + os.sep):
                with pytest.raises(InvalidPathError):
                    safe_targets(root, [path])
            else:
                assert safe_targets(root, [path]) == [expected], path
    for path in ("/etc/passwd", "a//b", "a/", "//x"):
        expected = os.path.normpath(os.path.join(root, path))
        if expected.startswith(root + os.sep):
            assert safe_targets(root, [path]) == [expected]
        else:
            with pytest.raises(InvalidPathError):
                safe_targets(root, [path])
