"""A bounded thread pool ``map`` for transfers: I/O-bound, so threads overlap the waiting."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")
TRANSFER_WORKERS = 8


def parallel_map(
    func: Callable[[T], R], items: Sequence[T], workers: int = TRANSFER_WORKERS
) -> list[R]:
    """``map`` over a thread pool when there is more than one item; the first error propagates."""
    if len(items) <= 1 or workers <= 1:
        return [func(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(func, items))
