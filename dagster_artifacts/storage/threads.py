"""Thread-pool ``map``s for I/O-bound work: threads overlap the waiting (and hashing of large
chunks, which releases the GIL)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")
TRANSFER_WORKERS = 8
TASKS_PER_WORKER = 8  # batches per thread: enough to balance uneven items, few enough to be cheap
MIN_PER_THREAD = 64  # below this many items a thread costs more than it saves


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


def map_in_slices(func: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """``map`` with each of ``workers`` threads taking one contiguous slice of ``items``.

    For many tiny items (hashing 4 KiB files): one task per thread keeps the pool's per-task cost
    per thread instead of per item.
    """
    threads = max(1, min(workers, len(items) // MIN_PER_THREAD))
    if threads == 1:
        return [func(item) for item in items]
    size = -(-len(items) // threads)
    slices = [items[start : start + size] for start in range(0, len(items), size)]
    results = parallel_map(lambda part: [func(item) for item in part], slices, workers=threads)
    return [result for part in results for result in part]
