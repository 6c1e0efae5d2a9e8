"""The process's state: the current run, the open stores and stat caches, and the pause of
Python's cyclic garbage collector. The only module-level mutable state of the package, in one
place; everything else is held by objects.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
from collections.abc import Iterator
from typing import Protocol

from dagster_artifacts.settings import MachineSettings, Settings
from dagster_artifacts.statcache import FILE_NAME, StatCache
from dagster_artifacts.store import Store


class ActiveRun(Protocol):
    """What this module needs of the current run (``dagster_artifacts.runs.Run``): its store."""

    @property
    def store(self) -> Store: ...


_run_lock = threading.Lock()
_stores_lock = threading.Lock()
_gc_lock = threading.Lock()
_current_run: ActiveRun | None = None
_stores: dict[tuple[object, ...], Store] = {}
_stat_caches: dict[str, StatCache] = {}
_gc_batches = 0
_gc_threshold: tuple[int, ...] = gc.get_threshold()  # the collector's, before the first batch
#: Allocations between young collections while a batch runs (see :func:`gc_frozen`).
BATCH_YOUNG_THRESHOLD = 20_000


# -- the current run (``wandb.run``) ----------------------------------------------------------
def current_run() -> ActiveRun | None:
    return _current_run


def set_current_run(run: ActiveRun | None) -> None:
    global _current_run
    with _run_lock:
        _current_run = run


def clear_current_run(run: ActiveRun) -> None:
    """Forget ``run`` if it is the current one (a finished run stops being ``wandb.run``)."""
    global _current_run
    with _run_lock:
        if _current_run is run:
            _current_run = None


def current_store() -> Store | None:
    """The store of the current run, where a draft built inside it will go."""
    run = _current_run
    return None if run is None else run.store


# -- stores -----------------------------------------------------------------------------------
def open_store(settings: Settings) -> Store:
    """The process-wide store for these settings (opened on first use)."""
    with _stores_lock:
        store = _stores.get(settings.key)
        if store is None:
            store = Store(settings)
            _stores[settings.key] = store
        return store


def reset_stores() -> None:
    """Close and forget every store (tests, and processes forked after use)."""
    with _stores_lock:
        for store in _stores.values():
            store.close()
        _stores.clear()


# -- stat caches ------------------------------------------------------------------------------
def stat_cache_for(machine: MachineSettings) -> StatCache | None:
    """The process-wide stat cache of this machine's cache dir, or None when turned off."""
    if not machine.stat_cache:
        return None
    path = os.path.join(os.path.abspath(machine.cache_dir), FILE_NAME)
    with _stores_lock:
        cache = _stat_caches.get(path)
        if cache is None:
            cache = StatCache(path)
            _stat_caches[path] = cache
        return cache


# -- the cyclic garbage collector -------------------------------------------------------------
@contextlib.contextmanager
def gc_frozen() -> Iterator[None]:
    """Spare the process's existing objects from cyclic collection while a batch allocates.

    Building or downloading 10,000 entries creates some 100,000 small objects; each 700
    allocations trigger a collection, and the full ones walk every tracked object of the process
    (hundreds of thousands under Dagster), which cost about as much as the work itself.
    ``gc.freeze`` moves what exists to a permanent generation for the batch, so collections see
    only new objects: they stay cheap, and the collector keeps running for every other thread
    (disabling it would let their garbage cycles pile up). Nested and concurrent batches count;
    the last one to end unfreezes. ``benchmarks/gc_pause.py`` measures the three choices.

    Meanwhile the youngest generation is collected every :data:`BATCH_YOUNG_THRESHOLD`
    allocations instead of every 700: what a batch builds is kept, so each young collection
    only promotes it, and each promotion brings the next full one nearer (re-logging a million
    unchanged files: 1 s of 12 in collections, none of which freed anything).
    """
    global _gc_batches, _gc_threshold
    with _gc_lock:
        if _gc_batches == 0:
            gc.freeze()
            _gc_threshold = gc.get_threshold()
            young, *older = _gc_threshold
            gc.set_threshold(max(young, BATCH_YOUNG_THRESHOLD), *older)
        _gc_batches += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_batches -= 1
            if _gc_batches == 0:
                gc.unfreeze()
                gc.set_threshold(*_gc_threshold)


def gc_freeze_built() -> None:
    """Inside :func:`gc_frozen`: spare what the batch has built so far too.

    A batch of a million entries outgrows the freeze it started with: every full collection
    walks all it built since, and with the collector's growth rule those walks cost a fifth of
    re-logging a million unchanged files. Called between the slices of such a batch (what they
    build is kept, not garbage), it keeps each collection to the slice at hand. Outside a
    frozen batch it does nothing, so no one else's objects are frozen for good.
    """
    with _gc_lock:
        if _gc_batches:
            gc.freeze()
