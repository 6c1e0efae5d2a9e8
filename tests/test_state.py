"""Process-wide state: the cyclic garbage collector during a batch of per-file objects."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from dagster_artifacts import state


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


@pytest.fixture
def collections() -> Iterator[list[str]]:
    """The collector's runs ("start" events) while the test runs."""
    seen: list[str] = []

    def record(phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            seen.append(phase)

    gc.callbacks.append(record)
    try:
        yield seen
    finally:
        gc.callbacks.remove(record)


def test_other_threads_garbage_cycles_are_collected_during_a_batch(
    collections: list[str],
) -> None:
    """A download or add_dir in one thread must not stop collection for the whole process."""
    inside = threading.Event()
    done = threading.Event()
    freed: list[weakref.ref[Node]] = []

    def batch() -> None:
        with state.gc_frozen():
            inside.set()
            done.wait(30)

    worker = threading.Thread(target=batch)
    worker.start()
    assert inside.wait(10)
    try:
        assert gc.isenabled()
        for _ in range(20_000):  # another thread's work, making garbage cycles
            freed.append(weakref.ref(Node()))
        assert collections, "no automatic collection ran during the batch"
        assert sum(ref() is None for ref in freed) > 10_000
    finally:
        done.set()
        worker.join()


def test_batches_nest_and_overlap_and_the_last_one_unfreezes() -> None:
    kept = Node()  # exists before: frozen during the batches
    with state.gc_frozen():
        assert gc.get_freeze_count() > 0
        with state.gc_frozen():
            pass
        assert gc.get_freeze_count() > 0, "an inner batch must not unfreeze the outer one's"
    assert gc.get_freeze_count() == 0
    assert gc.isenabled()
    ref = weakref.ref(kept)
    del kept
    gc.collect()
    assert ref() is None, "objects that existed during a batch are collectable again after it"
