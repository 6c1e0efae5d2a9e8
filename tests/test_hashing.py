"""Behaviour of the fast paths: xxh128 artifacts end to end, md5 and xxh128 side by side in
one store, large files streamed in chunks, parallel hashing keeping order. (Benchmarks are not
timed tests: ``benchmarks/run.py`` measures speed; these prove the fast paths stay correct.)
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
import xxhash

import dagster_artifacts as wandb
from dagster_artifacts import errors
from dagster_artifacts.digests import CHUNK_SIZE, encode_digest
from dagster_artifacts.hashing import hash_files


def _xxh(data: bytes) -> str:
    return encode_digest(xxhash.xxh3_128(data).digest())


def _md5(data: bytes) -> str:
    return encode_digest(hashlib.md5(data).digest())


def _folder(root: Path, files: dict[str, bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root


FILES = {"a.txt": b"alpha", "sub/b.bin": os.urandom(3 * CHUNK_SIZE + 17), "c.txt": b"alpha"}


def _stored_blobs(store: Path, algorithm: str) -> set[str]:
    base = store / "blobs" / algorithm
    if not base.exists():
        return set()
    return {p.parent.name + p.name for p in base.rglob("*") if p.is_file()}


def test_xxh128_artifact_logs_dedupes_downloads_and_verifies(
    tmp_path: Path, isolated_store: Path
) -> None:
    data = _folder(tmp_path / "data", FILES)
    with wandb.init(job_type="fast") as run:
        artifact = wandb.Artifact("fast", type="dataset", digest_algorithm="xxh128")
        artifact.add_dir(str(data))
        run.log_artifact(artifact).wait()
    assert artifact.version == "v0"
    entries = artifact.manifest.entries
    assert entries["sub/b.bin"].digest == _xxh(FILES["sub/b.bin"])
    assert entries["a.txt"].digest == entries["c.txt"].digest == _xxh(b"alpha")
    manifest_files = list((isolated_store / "manifests").glob("*.json"))
    assert [
        json.loads(p.read_text())["storagePolicyConfig"]["digestAlgorithm"] for p in manifest_files
    ] == ["xxh128"]
    expected_hex = {xxhash.xxh3_128(content).hexdigest() for content in FILES.values()}
    assert _stored_blobs(isolated_store, "xxh128") == expected_hex  # one blob for a.txt and c.txt
    assert _stored_blobs(isolated_store, "md5") == set()

    with wandb.init(job_type="again") as run:
        again = wandb.Artifact("fast", type="dataset", digest_algorithm="xxh128")
        again.add_dir(str(data))
        run.log_artifact(again).wait()
    assert again.version == "v0" and again.deduplicated

    fetched = wandb.Api().artifact("fast:latest")
    assert fetched.digest_algorithm == "xxh128"
    folder = Path(fetched.download(root=tmp_path / "out"))
    assert (folder / "sub" / "b.bin").read_bytes() == FILES["sub/b.bin"]
    assert fetched.verify(folder).checked == 3
    (folder / "a.txt").write_bytes(b"alphA")
    with pytest.raises(errors.VerificationError, match="a.txt"):
        fetched.verify(folder)


def test_md5_and_xxh128_artifacts_share_one_store(tmp_path: Path, isolated_store: Path) -> None:
    data = _folder(tmp_path / "data", FILES)
    with wandb.init(job_type="mixed") as run:
        slow = wandb.Artifact("slow", type="dataset")
        slow.add_dir(str(data))
        fast = wandb.Artifact("fast", type="dataset", digest_algorithm="xxh128")
        fast.add_dir(str(data))
        run.log_artifact(slow).wait()
        run.log_artifact(fast).wait()
    assert slow.manifest.entries["a.txt"].digest == _md5(b"alpha")
    assert fast.manifest.entries["a.txt"].digest == _xxh(b"alpha")
    assert slow.digest != fast.digest  # the artifact digest covers the entry digests
    assert len(_stored_blobs(isolated_store, "md5")) == 2
    assert len(_stored_blobs(isolated_store, "xxh128")) == 2
    api = wandb.Api()
    for name in ("slow:v0", "fast:v0"):
        logged = api.artifact(name)
        folder = Path(logged.download(root=tmp_path / name.replace(":", "-")))
        assert logged.verify(folder).checked == 3
        assert (folder / "sub" / "b.bin").read_bytes() == FILES["sub/b.bin"]


def test_an_md5_blob_never_answers_for_an_xxh128_entry(
    tmp_path: Path, isolated_store: Path
) -> None:
    """Blobs are keyed by algorithm too: a corrupted xxh128 blob is caught, not masked by md5."""
    data = _folder(tmp_path / "data", {"a.txt": b"alpha"})
    with wandb.init(job_type="mixed") as run:
        for algorithm in ("md5", "xxh128"):
            artifact = wandb.Artifact(f"a-{algorithm}", type="dataset", digest_algorithm=algorithm)
            artifact.add_dir(str(data))
            run.log_artifact(artifact).wait()
    (blob,) = [p for p in (isolated_store / "blobs" / "xxh128").rglob("*") if p.is_file()]
    blob.chmod(0o644)
    blob.write_bytes(b"alphA")
    with pytest.raises(errors.ChecksumMismatchError):
        wandb.Api().artifact("a-xxh128:v0").download(root=tmp_path / "out")
    folder = wandb.Api().artifact("a-md5:v0").download(root=tmp_path / "md5")
    assert Path(folder, "a.txt").read_bytes() == b"alpha"


def test_unknown_digest_algorithm_is_refused_before_anything_is_written(
    store_snapshot,  # type: ignore[no-untyped-def]
) -> None:
    before = store_snapshot()
    with pytest.raises(errors.ConfigurationError, match="xxh128"):
        wandb.Artifact("data", type="dataset", digest_algorithm="sha1")
    assert store_snapshot() == before


@pytest.mark.parametrize("algorithm", ["md5", "xxh128"])
def test_parallel_hashing_keeps_order_and_streams_large_files(
    tmp_path: Path, algorithm: str
) -> None:
    contents = [
        os.urandom(n) for n in (0, 1, 2047, 2048, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1)
    ]
    contents += [os.urandom(64) for _ in range(100)]
    paths = []
    for index, content in enumerate(contents):
        path = tmp_path / f"{index:03d}.bin"
        path.write_bytes(content)
        paths.append(str(path))
    hashed = hash_files(paths, algorithm, workers=4)
    reference = _md5 if algorithm == "md5" else _xxh
    assert [h.path for h in hashed] == paths
    assert [(h.digest, h.size) for h in hashed] == [(reference(c), len(c)) for c in contents]


@pytest.mark.parametrize("algorithm", ["md5", "xxh128"])
@pytest.mark.parametrize("size", [5, 2 * CHUNK_SIZE])
def test_file_changed_after_add_is_logged_as_it_was_added(
    tmp_path: Path, algorithm: str, size: int
) -> None:
    """W&B's default policy ("mutable"): add snapshots the file, so what is logged is what was
    added, whatever happens to the file before the commit (small and streamed files alike)."""
    source = tmp_path / "data.bin"
    original = os.urandom(size)
    source.write_bytes(original)
    with wandb.init(job_type="mutating") as run:
        artifact = wandb.Artifact("mut", type="dataset", digest_algorithm=algorithm)
        artifact.add_file(str(source))
        source.write_bytes(os.urandom(size))  # same size, new content
        run.log_artifact(artifact).wait()
        again = wandb.Artifact("gone", type="dataset", digest_algorithm=algorithm)
        again.add_file(str(source))
        changed = source.read_bytes()
        source.unlink()  # even a deleted file is logged from its snapshot
        run.log_artifact(again).wait()
    reference = _md5 if algorithm == "md5" else _xxh
    logged = wandb.Api().artifact("mut:v0")
    assert logged.manifest.entries["data.bin"].digest == reference(original)
    assert Path(logged.download(root=tmp_path / "out"), "data.bin").read_bytes() == original
    gone = wandb.Api().artifact("gone:v0")
    assert Path(gone.download(root=tmp_path / "out2"), "data.bin").read_bytes() == changed


@pytest.mark.parametrize("size", [5, 2 * CHUNK_SIZE])
def test_immutable_policy_refuses_a_file_changed_before_the_commit(
    tmp_path: Path,
    size: int,
    store_snapshot,  # type: ignore[no-untyped-def]
) -> None:
    """policy="immutable" only hashes at add (no copy): the commit reads the file again,
    verified, so a file changed in between fails the log instead of becoming a wrong blob."""
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(size))
    with wandb.init(job_type="mutating") as run:
        artifact = wandb.Artifact("mut", type="dataset", digest_algorithm="xxh128")
        artifact.add_file(str(source), policy="immutable")
        before = store_snapshot()
        source.write_bytes(os.urandom(size))  # same size, new content
        run.log_artifact(artifact)
        with pytest.raises(errors.ChecksumMismatchError):
            artifact.wait()
        with pytest.raises(errors.ChecksumMismatchError):
            run.finish()
    after = store_snapshot()
    assert after["files"] == before["files"]  # no blob, no manifest written
    with pytest.raises(errors.ArtifactNotFoundError):
        wandb.Api().artifact("mut:latest")


def test_unknown_policy_is_refused_before_anything_is_written(
    tmp_path: Path,
    store_snapshot,  # type: ignore[no-untyped-def]
) -> None:
    (tmp_path / "a.txt").write_text("a")
    before = store_snapshot()
    artifact = wandb.Artifact("data", type="dataset")
    with pytest.raises(errors.ConfigurationError, match="immutable"):
        artifact.add_file(str(tmp_path / "a.txt"), policy="copy")
    with pytest.raises(errors.ConfigurationError, match="mutable"):
        artifact.add_dir(str(tmp_path), policy="link")
    assert store_snapshot() == before and artifact.file_count == 0


def test_staged_copies_are_moved_into_the_store_and_never_left_behind(
    tmp_path: Path, isolated_store: Path
) -> None:
    """Staged copies live under the cache dir, never in the store; a commit moves them in, and
    a draft that is never logged removes its copies when it is collected."""
    import gc

    data = _folder(tmp_path / "data", {f"f{i}.txt": f"content {i}".encode() for i in range(50)})
    staging = tmp_path / "cache" / "staging"
    with wandb.init(job_type="stage") as run:
        artifact = wandb.Artifact("staged", type="dataset")
        artifact.add_dir(str(data))
        assert len([p for p in staging.rglob("*") if p.is_file()]) == 50
        assert not list(isolated_store.rglob("staging"))
        run.log_artifact(artifact).wait()
        assert [p for p in staging.rglob("*") if p.is_file()] == []
        abandoned = wandb.Artifact("abandoned", type="dataset")
        abandoned.add_dir(str(data))
        assert len([p for p in staging.rglob("*") if p.is_file()]) == 50
        del abandoned
        gc.collect()
        assert [p for p in staging.rglob("*") if p.is_file()] == []
    folder = wandb.Api().artifact("staged:v0").download(root=tmp_path / "out")
    assert wandb.Api().artifact("staged:v0").verify(folder).checked == 50


def test_damaged_large_blob_is_refused_and_leaves_no_file(
    tmp_path: Path, isolated_store: Path
) -> None:
    """The pipelined (hash on one thread, write on another) download still verifies first."""
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(3 * CHUNK_SIZE + 5))
    with wandb.init(job_type="big") as run:
        artifact = wandb.Artifact("big", type="dataset")
        artifact.add_file(str(source))
        run.log_artifact(artifact).wait()
    (blob,) = [p for p in (isolated_store / "blobs" / "md5").rglob("*") if p.is_file()]
    assert blob.read_bytes() == source.read_bytes()  # stored whole through the pipeline
    blob.chmod(0o644)
    with open(blob, "r+b") as handle:
        handle.seek(2 * CHUNK_SIZE)
        handle.write(b"X")
    out = tmp_path / "out"
    with pytest.raises(errors.ChecksumMismatchError):
        wandb.Api().artifact("big:v0").download(root=out)
    assert not out.exists() or [p.name for p in out.rglob("*")] == []


def test_staging_on_another_filesystem_is_copied_into_the_store(
    tmp_path: Path, isolated_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache dir on another filesystem than the store: the rename cannot work (EXDEV), so the
    commit copies each staged file, verified. Same result, one more copy."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on a filesystem other than the store's")
    import tempfile

    from dagster_artifacts.settings import ENV_CACHE_DIR

    cache = tempfile.mkdtemp(dir=shm, prefix="da-test-cache-")
    try:
        monkeypatch.setenv(ENV_CACHE_DIR, cache)
        files = {"small.txt": b"small", "big.bin": os.urandom(2 * CHUNK_SIZE + 3)}
        data = _folder(tmp_path / "data", files)
        with wandb.init(job_type="xdev") as run:
            artifact = wandb.Artifact("xdev", type="dataset")
            artifact.add_dir(str(data))
            assert any(Path(cache, "staging").rglob("*"))  # staged on the other filesystem
            run.log_artifact(artifact).wait()
        logged = wandb.Api().artifact("xdev:v0")
        folder = Path(logged.download(root=tmp_path / "out"))
        assert logged.verify(folder).checked == 2
        assert (folder / "big.bin").read_bytes() == files["big.bin"]
        assert [p for p in Path(cache, "staging").rglob("*") if p.is_file()] == []
    finally:
        import shutil

        shutil.rmtree(cache, ignore_errors=True)


@pytest.mark.parametrize("pieces", [0, 1, 7])
def test_a_file_hashed_while_written_has_the_digest_of_the_file(
    tmp_path: Path, pieces: int
) -> None:
    """Frames are hashed by a thread following pyarrow's (append-only) writes as they land; the
    digest and size must be those of the finished file, however the writes were cut."""
    from dagster_artifacts.storage.staged import FollowingHasher

    target = tmp_path / "out.bin"
    with FollowingHasher(str(target), "md5") as hashed, open(target, "wb") as out:
        for _ in range(pieces):
            out.write(os.urandom(CHUNK_SIZE // 3))
            out.flush()
    assert (hashed.digest, hashed.size) == (_md5(target.read_bytes()), target.stat().st_size)


def test_logged_frame_round_trips_with_the_digest_of_its_parquet_file(tmp_path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame({"a": range(50_000), "b": [str(i) for i in range(50_000)]})
    with wandb.init(job_type="frames") as run:
        artifact = wandb.Artifact("frame", type="dataset")
        artifact.add(frame, "table")
        run.log_artifact(artifact).wait()
    logged = wandb.Api().artifact("frame:v0")
    path = logged.get_entry("table.parquet").download(root=str(tmp_path / "out"))
    assert logged.manifest.entries["table.parquet"].digest == _md5(Path(path).read_bytes())
    pd.testing.assert_frame_equal(logged.get("table"), frame)


# -- what add_dir and add_file read: regular files only ------------------------------------------
@pytest.mark.timeout(30)
def test_add_dir_skips_fifos_and_sockets_with_a_warning_and_never_blocks(tmp_path: Path) -> None:
    import socket

    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "data.txt").write_text("data")
    os.mkfifo(folder / "pipe")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "sock"))
    try:
        artifact = wandb.Artifact("odd", type="dataset")
        with pytest.warns(UserWarning, match="not regular files.*pipe"):
            artifact.add_dir(str(folder))
    finally:
        server.close()
    assert sorted(artifact.manifest.entries) == ["data.txt"]


@pytest.mark.timeout(30)
def test_add_file_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(errors.InvalidPathError, match="not a regular file"):
        wandb.Artifact("odd", type="dataset").add_file(str(tmp_path / "pipe"))


@pytest.mark.parametrize("kind", ["dangling", "loop"])
def test_add_dir_refuses_broken_links_before_anything_is_stored(
    tmp_path: Path, kind: str, store_snapshot: Any
) -> None:
    folder = tmp_path / "links"
    folder.mkdir()
    (folder / "data.txt").write_text("data")
    if kind == "dangling":
        (folder / "gone").symlink_to(tmp_path / "nowhere")
        expected: type[Exception] = errors.ArtifactFileNotFoundError
    else:
        (folder / "a").symlink_to(folder / "b")
        (folder / "b").symlink_to(folder / "a")
        expected = errors.InvalidPathError
    before = store_snapshot()
    artifact = wandb.Artifact("links", type="dataset")
    with pytest.raises(expected, match="link"):
        artifact.add_dir(str(folder))
    assert artifact.manifest.entries == {}
    assert store_snapshot() == before


def test_a_partial_staged_copy_is_rewritten_not_adopted(tmp_path: Path) -> None:
    """A staged copy is named by its digest; one a failed write (a full disk) cut short must be
    written again when the same bytes are staged next, not taken as it is."""
    from dagster_artifacts.storage.staged import stage_copy

    source = tmp_path / "a.bin"
    source.write_bytes(b"0123456789" * 100)
    staging = tmp_path / "staging"
    staging.mkdir()
    first = stage_copy(str(source), str(staging), lambda: str(staging / "tmp"), size_hint=1000)
    Path(first.path).write_bytes(b"0123")  # what a write that ran out of space leaves
    again = stage_copy(str(source), str(staging), lambda: str(staging / "tmp"), size_hint=1000)
    assert again.path == first.path
    assert Path(again.path).read_bytes() == source.read_bytes()


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE - 1, 2 * CHUNK_SIZE + 7, 9 * CHUNK_SIZE])
@pytest.mark.parametrize("kernel", ["copy_file_range", "sendfile", "none"])
def test_a_kernel_copy_is_hashed_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int, kernel: str
) -> None:
    """Large files are copied by the kernel on one thread while the other hashes the copy: the
    copy must be the file and the digest its digest, whichever copy the kernel offers (a
    kernel or filesystem without one is simulated: the only fault here that cannot be caused)."""
    import errno

    from dagster_artifacts.digests import new_hasher
    from dagster_artifacts.storage import pipeline

    def refuse(*_args: Any) -> int:
        raise OSError(errno.EXDEV, "simulated: no kernel copy between these files")

    if kernel != "copy_file_range":
        monkeypatch.setattr(os, "copy_file_range", refuse)
    if kernel == "none":
        monkeypatch.setattr(os, "sendfile", refuse)
    data = os.urandom(size)
    source, copy = tmp_path / "source.bin", tmp_path / "copy.bin"
    source.write_bytes(data)
    hasher = new_hasher("md5")
    fd = os.open(source, os.O_RDONLY)
    out = os.open(copy, os.O_RDWR | os.O_CREAT | os.O_EXCL)
    try:
        first = os.read(fd, 5)
        written = pipeline.copy_and_hash(fd, out, hasher, first)
    finally:
        os.close(fd)
        os.close(out)
    assert written == size
    assert copy.read_bytes() == data
    assert encode_digest(hasher.digest()) == _md5(data)


@pytest.mark.parametrize("policy", ["mutable", "immutable"])
def test_a_folder_added_in_batches_gives_the_same_version(
    tmp_path: Path, isolated_store: Path, monkeypatch: pytest.MonkeyPatch, policy: str
) -> None:
    """Large folders are hashed a batch of files at a time (memory): the entries, the version
    and what downloads must be those of one batch, unchanged files included."""
    from dagster_artifacts import hashing

    files = {f"d{i % 4}/f{i:03d}.bin": os.urandom(i % 50 + 1) for i in range(150)}
    data = _folder(tmp_path / "data", files)

    def log(name: str) -> wandb.Artifact:
        with wandb.init(job_type="batches") as run:
            artifact = wandb.Artifact(name, type="dataset")
            artifact.add_dir(str(data), policy=policy)
            run.log_artifact(artifact).wait()
        return artifact

    whole = log("whole")
    monkeypatch.setattr(hashing, "FILE_BATCH", 7)
    batched = log("batched")  # every file known to the stat cache now
    (data / "d1" / "f001.bin").write_bytes(b"changed")
    changed = log("batched")  # one changed among 150, in batches of 7
    assert batched.manifest.entries == whole.manifest.entries
    assert batched.digest == whole.digest
    out = Path(wandb.Api().artifact(f"batched:{changed.version}").download(root=tmp_path / "o"))
    assert (out / "d1" / "f001.bin").read_bytes() == b"changed"
    assert wandb.Api().artifact(f"batched:{changed.version}").verify(str(out)).checked == 150


@pytest.mark.parametrize("min_blobs", ["64", "10"])  # batches of loose blobs, of packs
def test_a_large_version_is_stored_in_batches_each_blob_once(
    tmp_path: Path,
    isolated_store: Path,
    monkeypatch: pytest.MonkeyPatch,
    min_blobs: str,
) -> None:
    """Blobs are looked up and stored a batch of entries at a time; equal files in different
    batches are still stored once, and a blob already stored is never written again."""
    from dagster_artifacts import commit, hashing

    monkeypatch.setenv("DAGSTER_ARTIFACTS_PACK_MIN_BLOBS", min_blobs)
    monkeypatch.setattr(commit, "UPLOAD_BATCH", 40)
    monkeypatch.setattr(hashing, "FILE_BATCH", 40)
    files = {f"f{i:03d}.txt": f"content {i % 90}".encode() for i in range(200)}  # 90 distinct
    data = _folder(tmp_path / "data", files)
    with wandb.init(job_type="batches") as run:
        artifact = wandb.Artifact("batched", type="dataset")
        artifact.add_dir(str(data))
        run.log_artifact(artifact).wait()
    packs = [p for p in (isolated_store / "packs").glob("*.pack")]
    loose = [p for p in (isolated_store / "blobs").rglob("*") if p.is_file()]
    stored_bytes = sum(p.stat().st_size for p in packs + loose)
    assert stored_bytes == sum(len(f"content {i}".encode()) for i in range(90))
    out = Path(wandb.Api().artifact("batched:v0").download(root=tmp_path / "out"))
    assert wandb.Api().artifact("batched:v0").verify(str(out)).checked == 200
