"""Chaos soak: writers, readers and gc on one store for minutes, with processes SIGKILLed.

    .venv/bin/python benchmarks/soak.py --quick                  # about 25 s, small: for CI
    .venv/bin/python benchmarks/soak.py --minutes 3 --writers 4 --readers 2
    .venv/bin/python benchmarks/soak.py --store s3 --minutes 2   # moto S3 + PostgreSQL

Not a timed test: it looks for lost data and unexpected errors, not for speed. Every process is
its own ``spawn``ed interpreter using the public API only (``init``, ``Artifact``,
``log_artifact``, ``Api``); they import and connect first, then start together on a barrier.

- **Writers** log artifacts continuously under a few names: new content, and re-logs of a
  shared pool of content (deduplicated, or a new version when the content's version was
  deleted: then its blobs are orphans that gc may be collecting at that very moment, the race
  the store must survive). Small files, empty files, a few larger ones (MiB), blobs shared
  between contents, md5 and xxh128, through ``add_dir`` (stat cache hits on re-logs),
  ``policy="immutable"`` and ``new_file``; aliases moved around (``best``, ``stable``), a few
  versions with a TTL (expired by gc), and ``Artifact.delete(delete_aliases=True)`` /
  ``Api().prune(name, keep_last=...)`` of older versions.
- **One gc** loops ``Api().gc(grace=G)`` with the documented minimum grace, 0 (``--grace``,
  seconds): gc must not delete what a committed or committing version needs, whatever the grace.
- **Readers** download random versions (from listings or aliases) into fresh folders,
  ``verify()`` and remove them. A version deleted meanwhile (``ArtifactNotFoundError``, or a
  download failing for a version that no longer exists) is expected, not an error.
- **Packs** (store format v2, on unless ``--no-packs``): every commit of two or more small
  files writes a pack, so gc rewrites and retires packs while writers reuse their blobs and
  readers read them.
- **Faults**: every ``--kill-every`` seconds (jittered) a random writer, the gc or (unless
  ``--no-kill-readers``) a reader is SIGKILLed and replaced.

A log, download or gc pass still running after ``--stall`` seconds is reported as a
``Stalled`` error with every thread's stack (once per operation), and a process that does not
stop within as long at the end as ``HungAtStop``. At the end everything is stopped, one more gc
runs with grace 0 (nothing writes any more), and EVERY committed version of every name is
downloaded straight from the store (no cache) and verified. The exit code is 1 if any version
is lost or unverifiable, or any unexpected error happened (each type is listed with its first
traceback), else 0.

Processes report through one JSON-lines file each (a SIGKILL can cut at most its last line),
never through shared locks a killed process could leave held. ``kill -USR1`` on a child dumps
its threads' stacks into ``<workdir>/stacks/`` (done automatically for a child that does not
stop at the end).
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import multiprocessing
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ.setdefault("AWS_ACCESS_KEY_ID", "soak")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "soak")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

import dagster_artifacts as wandb  # noqa: E402
from benchmarks.moto_process import moto_server  # noqa: E402
from dagster_artifacts.errors import ArtifactNotFoundError  # noqa: E402

NAMES = ("soak-alpha", "soak-beta", "soak-gamma", "soak-delta")
TYPE = "dataset"
ALIASES = ("best", "stable")
SHARED_CONTENTS = 24  # the pool re-logged by every writer (dedupe, and re-logs after deletion)
ROLES = ("writer", "reader", "gc")
KILL_WEIGHTS = {"writer": 0.5, "gc": 0.3, "reader": 0.2}


# -- content ---------------------------------------------------------------------------------


def content_files(key: str, big_bytes: int) -> dict[str, bytes]:
    """The files of content ``key``: always the same bytes for the same key, in any process.

    ``shared.txt`` is one of 6 texts, so many contents share that blob; ``own.txt`` is unique;
    extras include empty files (one blob shared by everything); a few contents hold a large
    file of up to ``big_bytes``.
    """
    rng = random.Random(key)
    part = rng.randrange(6)
    files = {
        "shared.txt": f"shared part {part}\n".encode() * 64,
        "own.txt": key.encode() + b"\n" + rng.randbytes(rng.randint(100, 8000)),
    }
    for extra in range(rng.randint(0, 3)):
        size = rng.choice((0, 300, 4096, 70_000))
        files[f"extra/{extra}.bin"] = rng.randbytes(size)
    if rng.random() < 0.08:
        files["big.bin"] = rng.randbytes(rng.randint(big_bytes // 2, big_bytes))
    return files


def digest_algorithm_for(key: str) -> str:
    return "xxh128" if random.Random(f"{key}/algorithm").random() < 0.1 else "md5"


def materialize(folder: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` under ``folder`` once; a folder that exists is complete (renamed in)."""
    if folder.exists():
        return
    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    for path, data in files.items():
        target = partial / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    os.rename(partial, folder)


# -- the child processes ---------------------------------------------------------------------


class Events:
    """One JSON line per event, appended to this process's own file (line-buffered)."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
        self._lock = threading.Lock()  # the stall watchdog writes from its own thread

    def emit(self, kind: str, **fields: Any) -> None:
        line = json.dumps({"kind": kind, "t": time.time(), **fields}) + "\n"
        with self._lock:
            self._file.write(line)

    def error(self, op: str, error: BaseException, **fields: Any) -> None:
        self.emit(
            "error",
            op=op,
            type=type(error).__name__,
            message=str(error)[:1000],
            traceback="".join(traceback.format_exception(error)),
            **fields,
        )

    def expected(self, what: str, **fields: Any) -> None:
        self.emit("expected", what=what, **fields)


@dataclass
class Child:
    """What every child process knows: who it is, the store, where to report."""

    role: str
    index: int
    generation: int
    spec: dict[str, Any]
    tag: str = field(init=False)
    work: Path = field(init=False)
    events: Events = field(init=False)
    rng: random.Random = field(init=False)
    settings: wandb.Settings = field(init=False)

    def __post_init__(self) -> None:
        self.tag = f"{self.role}-{self.index}-g{self.generation}"
        self.work = Path(self.spec["work"])
        self.events = Events(self.work / "events" / f"{self.tag}.jsonl")
        self.rng = random.Random(f"{self.spec['seed']}/{self.tag}")
        self.settings = wandb.Settings.resolve(
            root=self.spec["root"],
            database=self.spec["database"],
            storage_options=self.spec["storage_options"],
            cache_dir=self.spec["cache_dir"],
        )

    @property
    def stopping(self) -> bool:
        return (self.work / "stop").exists()

    @contextmanager
    def watch(self, op: str, **fields: Any) -> Iterator[None]:
        """Report (once, as an error with every thread's stack) an ``op`` still running after
        ``--stall`` seconds: a commit waiting for a gc that is gone, a lock never released."""
        started = time.monotonic()
        stalled = threading.Event()

        def report() -> None:
            stalled.set()
            dump = self.work / "stacks" / f"{self.tag}-stall-{int(started)}.txt"
            with open(dump, "w") as handle:
                faulthandler.dump_traceback(file=handle, all_threads=True)
            self.events.emit(
                "error",
                op=op,
                type="Stalled",
                message=f"{self.tag}: {op} still running after {self.spec['stall']:g} s "
                f"({fields}); stacks below",
                traceback=dump.read_text(),
                **fields,
            )

        timer = threading.Timer(float(self.spec["stall"]), report)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
            if stalled.is_set():
                self.events.emit("unstalled", op=op, seconds=time.monotonic() - started)

    def exists(self, api: wandb.Api, name: str, index: int) -> bool:
        """Whether ``name:v<index>`` is still a committed version (asked after a failure)."""
        try:
            api.artifact(f"{name}:v{index}")
        except ArtifactNotFoundError:
            return False
        return True


class Writer:
    def __init__(self, child: Child) -> None:
        self.child = child
        self.rng = child.rng
        self.events = child.events
        self.api = wandb.Api(settings=child.settings)
        # One run per process lifetime; a killed writer leaves its run "running", as in life.
        self.run = wandb.init(settings=child.settings, job_type="soak-writer", name=child.tag)
        self.scratch = child.work / "scratch" / f"writer-{child.index}"  # kept across restarts
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.logs = 0

    def step(self) -> None:
        draw = self.rng.random()
        if draw < 0.07:
            self.delete_one()
        elif draw < 0.11:
            self.prune()
        else:
            self.log()
        time.sleep(self.rng.uniform(0, self.child.spec["writer_pause"]))

    def close(self) -> None:
        self.run.finish()

    def log(self) -> None:
        rng = self.rng
        name = rng.choice(NAMES)
        self.logs += 1
        if rng.random() < 0.5:
            key, kind = f"fresh-{self.child.tag}-{self.logs}-{rng.getrandbits(32):08x}", "new"
        else:
            key, kind = f"shared-{rng.randrange(SHARED_CONTENTS)}", "relog"
        files = content_files(key, self.child.spec["big_bytes"])
        artifact = wandb.Artifact(
            name, type=TYPE, metadata={"content": key}, digest_algorithm=digest_algorithm_for(key)
        )
        folder: Path | None = None
        how = rng.random()
        try:
            if how < 0.3:
                method = "new_file"
                for path, data in files.items():
                    with artifact.new_file(path, mode="xb") as handle:
                        handle.write(data)
            else:
                folder = self.scratch / key
                materialize(folder, files)
                method = "add_dir"
                policy = None
                if how > 0.9:
                    method, policy = "add_dir immutable", "immutable"
                artifact.add_dir(str(folder), policy=policy)
            if rng.random() < 0.04:
                artifact.ttl = timedelta(seconds=rng.uniform(3, 30))
            aliases = None
            draw = rng.random()
            if draw < 0.3:
                aliases = [ALIASES[0]]
            elif draw < 0.4:
                aliases = [ALIASES[1]]
            started = time.monotonic()
            with self.child.watch("log", name=name, content=key):
                self.run.log_artifact(artifact, aliases=aliases)
                artifact.wait()
            self.events.emit(
                "log",
                name=name,
                content=kind,
                method=method,
                index=artifact.version_index,
                dedup=artifact.deduplicated,
                seconds=time.monotonic() - started,
                bytes=sum(len(data) for data in files.values()),
                big="big.bin" in files,
            )
        except Exception as error:  # noqa: BLE001 - every failure of a log is a finding
            self.events.error("log", error, name=name, content=key)
        finally:
            if folder is not None and kind == "new":
                shutil.rmtree(folder, ignore_errors=True)  # fresh content is never re-logged

    def delete_one(self) -> None:
        name = self.rng.choice(NAMES)
        try:
            versions = self.api.artifact_versions(TYPE, name)
            if len(versions) < 2:
                return
            victim = self.rng.choice(versions[:-1])  # an older version
            try:
                victim.delete(delete_aliases=True)
            except ArtifactNotFoundError:
                self.events.expected("delete: deleted by someone else first")
                return
            self.events.emit("delete", name=name, index=victim.version_index)
        except Exception as error:  # noqa: BLE001
            self.events.error("delete", error, name=name)

    def prune(self) -> None:
        name = self.rng.choice(NAMES)
        keep_last = self.rng.randint(2, 6)
        try:
            result = self.api.prune(name, keep_last=keep_last)
            self.events.emit("prune", name=name, deleted=len(result.deleted))
        except ArtifactNotFoundError:
            self.events.expected("prune: name not logged yet")
        except Exception as error:  # noqa: BLE001
            self.events.error("prune", error, name=name)


class Reader:
    def __init__(self, child: Child) -> None:
        self.child = child
        self.rng = child.rng
        self.events = child.events
        self.api = wandb.Api(settings=child.settings)
        self.downloads = child.work / "downloads" / child.tag
        self.downloads.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def close(self) -> None:
        pass

    def step(self) -> None:
        rng = self.rng
        name = rng.choice(NAMES)
        try:
            if rng.random() < 0.25:
                alias = rng.choice(("latest", *ALIASES))
                try:
                    artifact = self.api.artifact(f"{name}:{alias}")
                except ArtifactNotFoundError:
                    self.events.expected(f"resolve: no {name}:{alias} (yet, or deleted)")
                    time.sleep(0.1)
                    return
            else:
                versions = self.api.artifact_versions(TYPE, name)
                if not versions:
                    time.sleep(0.1)
                    return
                artifact = rng.choice(versions)
        except Exception as error:  # noqa: BLE001
            self.events.error("list", error, name=name)
            return
        self.download(artifact)
        time.sleep(rng.uniform(0, self.child.spec["reader_pause"]))

    def download(self, artifact: wandb.Artifact) -> None:
        self.count += 1
        folder = self.downloads / str(self.count)
        index = artifact.version_index
        name = artifact.collection_name
        skip_cache = self.rng.random() < 0.5
        try:
            with self.child.watch("download", name=name, index=index):
                root = artifact.download(str(folder), skip_cache=skip_cache)
                checked = artifact.verify(root).checked
            self.events.emit("download", name=name, index=index, files=checked)
        except ArtifactNotFoundError:
            self.events.expected("download: ArtifactNotFoundError")
        except Exception as error:  # noqa: BLE001
            try:
                gone = not self.child.exists(self.api, name, index)
            except Exception:  # noqa: BLE001
                gone = False
            if gone:
                self.events.expected(
                    f"download: version deleted meanwhile ({type(error).__name__})"
                )
            else:
                self.events.error("download", error, name=name, index=index, skip_cache=skip_cache)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


class Collector:
    def __init__(self, child: Child) -> None:
        self.child = child
        self.rng = child.rng
        self.events = child.events
        self.api = wandb.Api(settings=child.settings)
        self.grace = timedelta(seconds=float(child.spec["grace"]))

    def close(self) -> None:
        pass

    def step(self) -> None:
        started = time.monotonic()
        try:
            with self.child.watch("gc"):
                result = self.api.gc(grace=self.grace)
            self.events.emit(
                "gc",
                blobs=result.blobs_deleted,
                manifests=result.manifests_deleted,
                bytes=result.bytes_freed,
                expired=len(result.expired),
                seconds=time.monotonic() - started,
            )
        except Exception as error:  # noqa: BLE001
            self.events.error("gc", error)
        time.sleep(self.rng.uniform(0, self.child.spec["gc_pause"]))


WORKERS: dict[str, type[Writer | Reader | Collector]] = {
    "writer": Writer,
    "reader": Reader,
    "gc": Collector,
}


def child_main(role: str, index: int, generation: int, spec: dict[str, Any], barrier: Any) -> None:
    """Entry point of every child process (spawned: it imports this module afresh)."""
    child = Child(role, index, generation, spec)
    stacks = open(child.work / "stacks" / f"{child.tag}.txt", "w")  # noqa: SIM115
    faulthandler.register(signal.SIGUSR1, file=stacks, all_threads=True)
    try:
        worker = WORKERS[role](child)  # connects (and migrates) before the start
        if barrier is not None:
            barrier.wait(timeout=300)
        child.events.emit("started")
        while not child.stopping:
            worker.step()
        worker.close()
        child.events.emit("stopped")
    except BaseException as error:
        child.events.error("process", error)
        raise


# -- the services ----------------------------------------------------------------------------


class Services:
    """The store and registry of one soak, and whatever servers they need; ``close()`` ends all."""

    def __init__(self, store: str, registry: str, work: Path) -> None:
        self.servers = ExitStack()
        self.cluster: Any = None
        self.storage_options: dict[str, Any] = {}
        try:
            if store == "local":
                (work / "store").mkdir()
                self.root = str(work / "store")
            else:
                self.root = self._start_s3()
            self.registry, self.database = self._registry(registry, store, work)
        except BaseException:
            self.close()
            raise

    def _start_s3(self) -> str:
        import boto3

        # moto in its own process: the server does not share a GIL with this supervisor (which
        # downloads every version at the end).
        endpoint = self.servers.enter_context(moto_server())
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="soak")
        self.storage_options = {"endpoint_url": endpoint}
        return "s3://soak/artifacts"

    def _registry(self, registry: str, store: str, work: Path) -> tuple[str, str]:
        if registry == "auto":
            registry = "sqlite" if store == "local" else "postgresql"
        if registry == "postgresql":
            from tests.services.postgres import PostgresCluster, find_bin_dir

            if find_bin_dir() is not None:
                self.cluster = PostgresCluster().start()
                return "postgresql", self.cluster.create_database()
            print("PostgreSQL binaries not found: the registry is SQLite", file=sys.stderr)
        if store == "local":
            return "sqlite", f"sqlite:///{work / 'store' / 'registry.db'}"
        return "sqlite", f"sqlite:///{work / 'registry' / 'registry.db'}"

    def close(self) -> None:
        if self.cluster is not None:
            self.cluster.destroy()
            self.cluster = None
        self.servers.close()


# -- the supervisor --------------------------------------------------------------------------


@dataclass
class Slot:
    role: str
    index: int
    generation: int = 0
    process: Any = None

    @property
    def tag(self) -> str:
        return f"{self.role}-{self.index}-g{self.generation}"


@dataclass
class Tally:
    kills: Counter[str] = field(default_factory=Counter)
    restarts: int = 0
    started: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)  # the supervisor's own findings


class Supervisor:
    def __init__(self, args: argparse.Namespace, spec: dict[str, Any]) -> None:
        self.args = args
        self.spec = spec
        self.context = multiprocessing.get_context("spawn")
        self.rng = random.Random(f"{args.seed}/supervisor")
        self.slots = [Slot("writer", i) for i in range(args.writers)]
        self.slots += [Slot("reader", i) for i in range(args.readers)]
        self.slots.append(Slot("gc", 0))
        self.tally = Tally()

    def _spawn(self, slot: Slot, barrier: Any = None) -> None:
        slot.process = self.context.Process(
            target=child_main,
            args=(slot.role, slot.index, slot.generation, self.spec, barrier),
            name=slot.tag,
            daemon=False,
        )
        slot.process.start()
        self.tally.started += 1

    def _replace(self, slot: Slot) -> None:
        slot.generation += 1
        self.tally.restarts += 1
        self._spawn(slot)

    def run(self) -> float:
        """Start everyone together, inject faults until the time is up, stop; the seconds run."""
        barrier = self.context.Barrier(len(self.slots) + 1)
        for slot in self.slots:
            self._spawn(slot, barrier)
        try:
            barrier.wait(timeout=300)
        except Exception:
            dead = [s.tag for s in self.slots if not s.process.is_alive()]
            raise RuntimeError(f"children did not all start (dead: {dead}); see stderr") from None
        started = time.monotonic()
        deadline = started + self.args.seconds
        next_kill = started + self._kill_interval()
        next_progress = started + 15
        while (now := time.monotonic()) < deadline:
            time.sleep(0.1)
            for slot in self.slots:
                if not slot.process.is_alive():
                    self.tally.errors.append(
                        {
                            "type": "ProcessExited",
                            "message": f"{slot.tag} exited by itself with code "
                            f"{slot.process.exitcode} (see its error event / stderr)",
                        }
                    )
                    self._replace(slot)
            if self.args.kill_every and now >= next_kill:
                self._kill_one()
                next_kill = now + self._kill_interval()
            if now >= next_progress:
                next_progress = now + 15
                kills = sum(self.tally.kills.values())
                print(f"  ... {now - started:5.0f} s, {kills} kills", file=sys.stderr)
        elapsed = time.monotonic() - started
        self._stop()
        return elapsed

    def _kill_interval(self) -> float:
        return (
            float(self.args.kill_every) * self.rng.uniform(0.5, 1.5) if self.args.kill_every else 0
        )

    def _kill_one(self) -> None:
        weights = dict(KILL_WEIGHTS)
        if not self.args.kill_readers or not self.args.readers:
            weights.pop("reader")
        role = self.rng.choices(list(weights), list(weights.values()))[0]
        slot = self.rng.choice([s for s in self.slots if s.role == role])
        if not slot.process.is_alive():
            return
        os.kill(slot.process.pid, signal.SIGKILL)
        slot.process.join()
        self.tally.kills[role] += 1
        self._replace(slot)

    def _stop(self) -> None:
        (Path(self.spec["work"]) / "stop").touch()
        timeout = float(self.spec["stall"])
        deadline = time.monotonic() + timeout
        for slot in self.slots:
            slot.process.join(max(0.0, deadline - time.monotonic()))
        for slot in self.slots:
            process = slot.process
            if process.is_alive():
                os.kill(process.pid, signal.SIGUSR1)  # faulthandler: dump its stacks
                time.sleep(1.0)
                os.kill(process.pid, signal.SIGKILL)
                process.join()
                stacks = Path(self.spec["work"]) / "stacks" / f"{slot.tag}.txt"
                self.tally.errors.append(
                    {
                        "type": "HungAtStop",
                        "message": f"{slot.tag} did not stop within {timeout:g} s; SIGKILLed",
                        "traceback": stacks.read_text() if stacks.exists() else "",
                    }
                )
            elif process.exitcode != 0:
                self.tally.errors.append(
                    {
                        "type": "ProcessExited",
                        "message": f"{slot.tag} exited with code {process.exitcode} at stop",
                    }
                )


def read_events(work: Path) -> list[dict[str, Any]]:
    """Every event of every child; a line cut by a SIGKILL is skipped."""
    events = []
    for path in sorted((work / "events").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
    return events


def final_check(settings: wandb.Settings, work: Path) -> tuple[int, list[dict[str, Any]]]:
    """Download (from the store, no cache) and verify every committed version of every name."""
    api = wandb.Api(settings=settings)
    checked = 0
    failures: list[dict[str, Any]] = []
    target = work / "final"
    for collection in api.artifact_collections():
        for version in api.artifact_versions(None, collection.name):
            folder = target / f"{collection.name}-{version.version_index}"
            try:
                version.verify(version.download(str(folder), skip_cache=True))
            except Exception as error:  # noqa: BLE001 - every failure here is a lost version
                failures.append(
                    {
                        "version": f"{collection.name}:{version.version}",
                        "type": type(error).__name__,
                        "message": str(error)[:1000],
                        "traceback": "".join(traceback.format_exception(error)),
                    }
                )
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            checked += 1
    return checked, failures


def mib(size: float) -> str:
    return f"{size / 2**20:.1f} MiB"


def summarize(
    args: argparse.Namespace,
    services: Services,
    tally: Tally,
    elapsed: float,
    events: list[dict[str, Any]],
    final_gc: Any,
    checked: int,
    failures: list[dict[str, Any]],
) -> int:
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        by_kind[event["kind"]].append(event)
    logs = by_kind["log"]
    new_versions = [e for e in logs if not e["dedup"]]
    relogs = [e for e in logs if e["content"] == "relog"]
    relog_new = [e for e in relogs if not e["dedup"]]
    latencies = sorted(e["seconds"] for e in logs)
    gcs = by_kind["gc"]
    deleted = len(by_kind["delete"])
    pruned = sum(e["deleted"] for e in by_kind["prune"])
    expired = sum(e["expired"] for e in gcs)
    expected = Counter(e["what"] for e in by_kind["expected"])
    errors = by_kind["error"] + tally.errors
    error_types = Counter(e["type"] for e in errors)
    first_of: dict[str, dict[str, Any]] = {}
    for error in errors:
        first_of.setdefault(error["type"], error)

    def percentile(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else 0.0

    w = 24
    print()
    print(f"Soak summary (store {args.store}, registry {services.registry}, seed {args.seed})")
    print(f"{'minutes':<{w}}{elapsed / 60:.2f} ({elapsed:.0f} s of chaos)")
    print(
        f"{'processes':<{w}}{args.writers} writers, {args.readers} readers, 1 gc; "
        f"{tally.started} started in all ({tally.restarts} replacements)"
    )
    print(
        f"{'logs':<{w}}{len(logs)}: {len(new_versions)} new versions, "
        f"{len(logs) - len(new_versions)} deduplicated; re-logs of shared content: "
        f"{len(relogs)} ({len(relog_new)} made a new version: content absent or deleted)"
    )
    print(
        f"{'':<{w}}{sum(e['big'] for e in logs)} with a large file, "
        f"{mib(sum(e['bytes'] for e in logs))} logged; log latency median "
        f"{percentile(0.5):.2f} s, p99 {percentile(0.99):.2f} s, max {percentile(1.0):.2f} s"
    )
    print(f"{'versions committed':<{w}}{len(new_versions)}")
    print(
        f"{'versions deleted':<{w}}{deleted + pruned + expired} "
        f"(delete {deleted}, prune {pruned}, ttl expired by gc {expired})"
    )
    print(
        f"{'gc passes':<{w}}{len(gcs)} completed (grace {args.grace:g} s); "
        f"{sum(e['blobs'] for e in gcs)} blobs, {sum(e['manifests'] for e in gcs)} manifests"
    )
    print(
        f"{'bytes freed':<{w}}{sum(e['bytes'] for e in gcs)} ({mib(sum(e['bytes'] for e in gcs))})"
    )
    print(
        f"{'downloads verified':<{w}}{len(by_kind['download'])} "
        f"({sum(e['files'] for e in by_kind['download'])} files)"
    )
    if by_kind["unstalled"]:
        longest = max(e["seconds"] for e in by_kind["unstalled"])
        print(
            f"{'stalls that ended':<{w}}{len(by_kind['unstalled'])}, the longest after "
            f"{longest:.0f} s"
        )
    kills = sum(tally.kills.values())
    roles = ", ".join(f"{role} {tally.kills[role]}" for role in ROLES)
    print(f"{'faults injected':<{w}}{kills} SIGKILLs ({roles})")
    print(f"{'expected misses':<{w}}{sum(expected.values())}")
    for what, count in sorted(expected.items()):
        print(f"{'':<{w}}  {count:>5}  {what}")
    if error_types:
        print(f"{'errors by type':<{w}}{sum(error_types.values())} UNEXPECTED")
        for kind, count in error_types.most_common():
            print(f"{'':<{w}}  {count:>5}  {kind}")
    else:
        print(f"{'errors by type':<{w}}none")
    if final_gc is not None:
        print(
            f"{'final gc (grace 0)':<{w}}{final_gc.blobs_deleted} blobs, "
            f"{final_gc.manifests_deleted} manifests, {final_gc.bytes_freed} bytes freed"
        )
    else:
        print(f"{'final gc (grace 0)':<{w}}FAILED (see errors)")
    print(f"{'final check':<{w}}{checked} versions checked, {len(failures)} lost/unverifiable")
    for failure in failures:
        print(f"{'':<{w}}  LOST {failure['version']}: {failure['type']}: {failure['message']}")
    for kind, error in first_of.items():
        print(f"\n--- first {kind} ({error.get('op', 'supervisor')}): {error['message']}")
        if error.get("traceback"):
            print(error["traceback"].rstrip())
    if failures:
        print(f"\n--- first lost version {failures[0]['version']}")
        print(failures[0]["traceback"].rstrip())
    ok = not failures and not error_types
    print(f"\nRESULT: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=None, help="duration (default 5)")
    parser.add_argument("--writers", type=int, default=None, help="writer processes (default 3)")
    parser.add_argument("--readers", type=int, default=None, help="reader processes (default 2)")
    parser.add_argument("--grace", type=float, default=None, help="gc grace, seconds (default 0)")
    parser.add_argument(
        "--kill-every",
        type=float,
        default=None,
        metavar="SECONDS",
        help="SIGKILL a random process about this often, 0 for never (default 20)",
    )
    parser.add_argument(
        "--kill-readers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="readers may be killed too (default: yes)",
    )
    parser.add_argument(
        "--stall",
        type=float,
        default=None,
        metavar="SECONDS",
        help="a log, download or gc pass running longer is an error, and so is a process not "
        "stopping within it at the end (default 30; --quick 10)",
    )
    parser.add_argument("--store", choices=("local", "s3"), default="local")
    parser.add_argument(
        "--packs",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="store format v2 with every commit of 2+ small files packed, so that writers, "
        "readers and gc's pack rewrites race constantly (default: yes); --no-packs: loose only",
    )
    parser.add_argument(
        "--registry",
        choices=("auto", "sqlite", "postgresql"),
        default="auto",
        help="auto: SQLite for local, PostgreSQL for s3 (SQLite without PostgreSQL binaries)",
    )
    parser.add_argument("--quick", action="store_true", help="about 25 s in all, small: for CI")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument("--workdir", default=None, help="parent of the work folder (default tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (events, store)")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "minutes": 0.25 if quick else 5.0,
        "writers": 2 if quick else 3,
        "readers": 1 if quick else 2,
        "grace": 0.0,  # the documented minimum: writers are safe by their leases, not the grace
        "kill_every": 4.0 if quick else 20.0,
        "stall": 10.0 if quick else 30.0,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.writers < 1 or args.readers < 0 or args.minutes <= 0 or args.grace < 0:
        parser.error("need --writers >= 1, --readers >= 0, --minutes > 0, --grace >= 0")
    if args.seed is None:
        args.seed = random.randrange(1_000_000)
    args.seconds = args.minutes * 60
    args.big_bytes = (1 if quick else 4) * 2**20
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Children are spawned: they inherit the environment, so every process packs alike.
    if args.packs:
        os.environ["DAGSTER_ARTIFACTS_PACK_MIN_BLOBS"] = "2"
    else:
        os.environ["DAGSTER_ARTIFACTS_PACK_THRESHOLD"] = "0"
    work = Path(tempfile.mkdtemp(prefix="dagster-artifacts-soak-", dir=args.workdir))
    for folder in ("events", "stacks", "scratch", "downloads", "cache", "registry"):
        (work / folder).mkdir()
    print(
        f"soak: {args.minutes:g} min, {args.writers} writers, {args.readers} readers, 1 gc, "
        f"grace {args.grace:g} s, a kill every ~{args.kill_every:g} s, store {args.store}, "
        f"seed {args.seed}, packs {'on' if args.packs else 'off'}, work {work}",
        file=sys.stderr,
    )
    services = Services(args.store, args.registry, work)
    try:
        spec = {
            "work": str(work),
            "root": services.root,
            "database": services.database,
            "storage_options": services.storage_options,
            "cache_dir": str(work / "cache"),
            "seed": args.seed,
            "grace": args.grace,
            "stall": args.stall,
            "big_bytes": args.big_bytes,
            "writer_pause": 0.05,
            "reader_pause": 0.2,
            "gc_pause": 0.5,
        }
        settings = wandb.Settings.resolve(
            root=spec["root"],
            database=spec["database"],
            storage_options=spec["storage_options"],
            cache_dir=spec["cache_dir"],
        )
        wandb.Api(settings=settings).artifact_collections()  # migrate before anyone starts
        supervisor = Supervisor(args, spec)
        elapsed = supervisor.run()
        events = read_events(work)
        final_gc: Any = None
        try:
            final_gc = wandb.Api(settings=settings).gc(grace=timedelta(0))  # nothing writes now
        except Exception as error:  # noqa: BLE001 - a finding, reported with the rest
            supervisor.tally.errors.append(
                {
                    "type": type(error).__name__,
                    "op": "final gc",
                    "message": str(error)[:1000],
                    "traceback": "".join(traceback.format_exception(error)),
                }
            )
        checked, failures = final_check(settings, work)
        return summarize(
            args, services, supervisor.tally, elapsed, events, final_gc, checked, failures
        )
    finally:
        services.close()
        if args.keep:
            print(f"work folder kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
