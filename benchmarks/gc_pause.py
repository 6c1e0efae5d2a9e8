"""What to do with Python's cyclic garbage collector while a batch builds per-file objects.

    .venv/bin/python benchmarks/gc_pause.py            # 20,000 files, 8 rounds
    .venv/bin/python benchmarks/gc_pause.py --files 2000 --rounds 2   # a quick look

``add_dir`` and ``download`` wrap their per-file work in ``state.gc_frozen()``. This compares,
in one process that has imported Dagster (a big heap, as in a real run), three choices, in
interleaved rounds so that a noisy machine hits them alike:

- ``freeze`` (what the package does): ``gc.freeze()`` for the batch, collection keeps running
  for new objects, so other threads' garbage cycles are still freed;
- ``disable``: ``gc.disable()`` for the batch (process-wide: nothing is collected meanwhile);
- ``none``: leave the collector alone.

Timed: ``add_dir`` of a folder whose files are all in the stat cache (pure Python per file) and
``download`` into a folder that already holds every file (checks only).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager


@contextlib.contextmanager
def _disabled() -> Iterator[None]:
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@contextlib.contextmanager
def _untouched() -> Iterator[None]:
    yield


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="gc-pause-")
    os.environ["DAGSTER_ARTIFACTS_ROOT"] = os.path.join(work, "store")
    os.environ["DAGSTER_ARTIFACTS_CACHE_DIR"] = os.path.join(work, "cache")
    import dagster  # noqa: F401 - the heap of a real Dagster run

    import dagster_artifacts as wandb
    from dagster_artifacts import state

    choices: dict[str, Callable[[], AbstractContextManager[None]]] = {
        "freeze": state.gc_frozen,
        "disable": _disabled,
        "none": _untouched,
    }
    try:
        source = os.path.join(work, "source")
        os.makedirs(source)
        for index in range(args.files):
            with open(os.path.join(source, f"f{index:06d}"), "wb") as handle:
                handle.write(b"%d" % index)
        with wandb.init(job_type="bench") as run:
            artifact = wandb.Artifact("files", type="dataset")
            artifact.add_dir(source)
            run.log_artifact(artifact).wait()
        target = os.path.join(work, "out")
        wandb.Api().artifact("files:v0").download(root=target)

        timings: dict[str, tuple[list[float], list[float]]] = {c: ([], []) for c in choices}
        for _ in range(args.rounds):
            for choice, spare in choices.items():
                state.gc_frozen = spare  # what add_dir and download call
                gc.collect()
                started = time.perf_counter()
                wandb.Artifact("files", type="dataset").add_dir(source)
                timings[choice][0].append(time.perf_counter() - started)
                fetched = wandb.Api().artifact("files:v0")
                started = time.perf_counter()
                fetched.download(root=target)
                timings[choice][1].append(time.perf_counter() - started)
        state.gc_frozen = choices["freeze"]
        base_add, base_get = (statistics.median(t) for t in timings["none"])
        print(f"{args.files} files, {args.rounds} rounds, medians (ratio to 'none'):")
        for choice, (adds, gets) in timings.items():
            add, get = statistics.median(adds), statistics.median(gets)
            print(
                f"  {choice:<8} add_dir {add:6.3f} s ({add / base_add:.2f}x)   "
                f"download {get:6.3f} s ({get / base_get:.2f}x)"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
