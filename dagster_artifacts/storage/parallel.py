"""A bounded thread pool ``map`` for transfers: I/O-bound, so threads overlap the waiting."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")
TRANSFER_WORKERS = 8
TASKS_PER_WORKER = 8  # batches per thread: enough to balance uneven items, few enough to be cheap


def parallel_map(
    func: Callable[[T], R], items: Sequence[T], workers: int = TRANSFER_WORKERS
) -> list[R]:
    """``map`` over a thread pool when there is more than one item; the first error propagates.

    Many items go to the pool in batches (about ``TASKS_PER_WORKER`` per thread): a pool task
    costs tens of microseconds, as much as storing a 4 KiB file, so 10,000 one-item tasks would
    spend a good part of their time in the pool itself.
    """
    if len(items) <= 1 or workers <= 1:
        return [func(item) for item in items]
    threads = min(workers, len(items))
    per_task = max(1, len(items) // (threads * TASKS_PER_WORKER))
    with ThreadPoolExecutor(max_workers=threads) as pool:
        if per_task == 1:
            return list(pool.map(func, items))
        batches = [items[i : i + per_task] for i in range(0, len(items), per_task)]
        results = pool.map(lambda batch: [func(item) for item in batch], batches)
        return [result for batch in results for result in batch]
