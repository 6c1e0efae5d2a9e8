"""Segments of the download cache: blobs end to end, published whole or not at all."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

from dagster_artifacts.digests import digest_bytes
from dagster_artifacts.storage.cache_segments import Placed, SegmentWriter, add_placed


def read_back(folder: Path, name: str, position: int, size: int) -> bytes:
    with open(folder / name, "rb") as handle:
        handle.seek(position)
        return handle.read(size)


def test_blobs_fill_segments_of_about_the_target_size_each_read_back_by_position(
    tmp_path: Path,
) -> None:
    tmp_path = tmp_path / "segments"
    writer = SegmentWriter(str(tmp_path), target=10_000)
    blobs = {f"k{i}": bytes([i]) * 1000 for i in range(30)}
    for key, data in blobs.items():
        writer.add(key, data)
    writer.add("k3", b"x" * 1000)  # a key is kept once: the second copy is ignored
    segments = writer.publish()
    assert [segment.size for segment in segments] == [10_000, 10_000, 10_000]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(s.name for s in segments)
    for segment in segments:
        assert (tmp_path / segment.name).stat().st_size == segment.size
        assert not (tmp_path / segment.name).stat().st_mode & 0o222  # read-only
        for key, (position, size) in segment.positions.items():
            assert read_back(tmp_path, segment.name, position, size) == blobs[key]
    assert sum(len(s.positions) for s in segments) == 30


def test_many_threads_append_without_mixing_blobs(tmp_path: Path) -> None:
    tmp_path = tmp_path / "segments"
    writer = SegmentWriter(str(tmp_path))
    blobs = {f"k{i}": os.urandom(3000 + i) for i in range(400)}
    keys = list(blobs)
    threads = [
        threading.Thread(
            target=lambda part: [writer.add(k, blobs[k]) for k in part], args=(keys[i::4],)
        )
        for i in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (segment,) = writer.publish()
    for key, (position, size) in segment.positions.items():
        assert read_back(tmp_path, segment.name, position, size) == blobs[key]
    assert len(segment.positions) == 400


def test_discard_leaves_nothing_and_a_failed_writer_publishes_nothing(tmp_path: Path) -> None:
    writer = SegmentWriter(str(tmp_path / "a"), target=1000)
    for i in range(5):
        writer.add(f"k{i}", b"z" * 600)
    writer.discard()
    assert list((tmp_path / "a").iterdir()) == []

    folder = tmp_path / "b"
    failing = SegmentWriter(str(folder), target=1000)
    failing.add("first", b"y" * 1200)  # a whole segment, finished
    shutil.rmtree(folder)
    (tmp_path / "b").write_bytes(b"")  # the folder is gone: the next segment cannot start
    failing.add("second", b"y" * 10)
    assert failing.error is not None
    assert failing.publish() == []


def test_placed_files_are_read_back_only_when_they_still_hold_their_bytes(
    tmp_path: Path,
) -> None:
    good, changed = b"as fetched", b"as fetched"
    (tmp_path / "good").write_bytes(good)
    (tmp_path / "changed").write_bytes(b"edited!!!!")  # same size, other bytes
    writer = SegmentWriter(str(tmp_path / "segments"))
    add_placed(
        writer,
        [
            Placed("g", str(tmp_path / "good"), digest_bytes(good), len(good)),
            Placed("c", str(tmp_path / "changed"), digest_bytes(changed), len(changed)),
            Placed("m", str(tmp_path / "missing"), digest_bytes(good), len(good)),
        ],
        "md5",
    )
    (segment,) = writer.publish()
    assert list(segment.positions) == ["g"]
