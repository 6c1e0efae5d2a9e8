"""Run every speed case of the project side by side with its peer, and print one table.

    .venv/bin/python -m benchmarks.run            # full run (several minutes; makes the peers venv)
    .venv/bin/python -m benchmarks.run --quick    # smoke mode: small sizes, a few seconds each

Every comparison is measured in the same run, A/B interleaved (ours, peer, peer, ours, ...), so
that noise from a shared machine hits both sides alike; the table shows medians. Each measurement
is its own process (ours: ``benchmarks/ours.py``; peers: ``benchmarks/peers.py`` under the peers'
interpreter), timing only the operation, never imports or setup.

Peers ``wandb`` and ``dvc`` live in their own virtualenv, ``benchmarks/.venv-peers`` (gitignored),
which a full run creates with ``python -m venv`` and ``pip install wandb dvc`` when it is missing
(``--no-install`` to skip). A quick run never installs; a peer that is missing leaves its row
saying so.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.prefault import ENV as PREFAULT_ENV
from benchmarks.prefault import settle

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PEERS_VENV = HERE / ".venv-peers"
PEERS_PYTHON = PEERS_VENV / "bin" / "python"
MIB = 1024 * 1024


@dataclass(frozen=True)
class Sizes:
    files: int
    file_size: int
    big: int
    many_files: int
    registry_versions: int
    frame_rows: int
    reps: int
    big_reps: int
    s3_files: int = 10_000
    million: int = 100_000  # case 10 (--million for 1,000,000)
    s3_reps: int = 1  # case 9: 10,000 objects one by one take minutes on moto


FULL = Sizes(10_000, 4096, 1024 * MIB, 100_000, 10_000, 1_000_000, 3, 3)
QUICK = Sizes(300, 4096, 8 * MIB, 1_000, 100, 10_000, 1, 1, 300, 2_000)  # each case once


@dataclass
class Row:
    case: str
    ours: float | None
    peer_name: str
    peer: float | None
    target: str
    check: Callable[[float], bool] | None = None
    ratio_of: Callable[[float, float], float] | None = None
    unit: str = "s"
    note: str = ""
    ratio: float | None = field(default=None, init=False)
    passed: bool | None = field(default=None, init=False)

    def settle(self) -> None:
        if self.ours is None:
            return
        if self.peer is not None and self.ratio_of is not None:
            self.ratio = self.ratio_of(self.ours, self.peer)
            value = self.ratio
        else:
            value = self.ours
        if self.check is not None:
            self.passed = self.check(value)


def faster(ours: float, peer: float) -> float:
    """How many times faster we are than the peer (peer time / our time)."""
    return peer / ours


def slower(ours: float, peer: float) -> float:
    """Our time as a multiple of the peer's (our time / peer time)."""
    return ours / peer


# -- running one measurement ------------------------------------------------------------------
def ours(op: str, **args: Any) -> dict[str, Any]:
    """Run ``benchmarks/ours.py OP`` in a fresh process; return its RESULT JSON."""
    settle()
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.ours", op, json.dumps(args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])  # type: ignore[no-any-return]
    raise RuntimeError(
        f"benchmarks.ours {op} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    )


def peer(*args: str) -> dict[str, Any]:
    settle()
    proc = subprocess.run(
        [str(PEERS_PYTHON), str(HERE / "peers.py"), *args],
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)  # type: ignore[no-any-return]
    raise RuntimeError(f"peers.py {args[0]} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")


def timed_command(*command: str) -> float:
    settle()
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


# -- peers --------------------------------------------------------------------------------------
def peers_available(install: bool) -> dict[str, bool]:
    """Which peers import in the peers' venv; when asked, create it and install what is
    missing first (a venv left empty by an interrupted install is filled, not trusted)."""
    found = _importable_peers()
    if install and not all(found.values()):
        print(f"Installing into {PEERS_VENV}: pip install wandb dvc dvc-s3 ...", flush=True)
        if not PEERS_PYTHON.exists():
            subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
        subprocess.run(
            [str(PEERS_PYTHON), "-m", "pip", "install", "-q", "wandb", "dvc", "dvc-s3"],
            check=False,
        )
        found = _importable_peers()
    return found


def _importable_peers() -> dict[str, bool]:
    return {
        name: PEERS_PYTHON.exists()
        and subprocess.run(
            [str(PEERS_PYTHON), "-c", f"import {name}"], capture_output=True
        ).returncode
        == 0
        for name in ("wandb", "dvc", "dvc_s3")
    }


# -- data -----------------------------------------------------------------------------------
def make_files(folder: Path, count: int, size: int) -> Path:
    folder.mkdir(parents=True)
    for index in range(count):
        (folder / f"file-{index:06d}.bin").write_bytes(os.urandom(size))
    return folder


def make_big(path: Path, size: int) -> Path:
    with open(path, "wb") as out:
        remaining = size
        while remaining:
            chunk = os.urandom(min(remaining, 16 * MIB))
            out.write(chunk)
            remaining -= len(chunk)
    return path


def write_rate(folder: Path, size: int) -> float:
    """MB/s of writing ``size`` bytes into a new file, into the page cache (no sync: what an
    unsynced ``dd`` measures). On this project's VM it is GB/s at times and 110 MB/s at others,
    and every row that writes bytes moves with it: each run says which it had."""
    os.sync()
    chunk = bytes(MIB)
    target = folder / f"probe-{time.time_ns()}.bin"
    started = time.perf_counter()
    with open(target, "wb") as out:
        for _ in range(size // MIB):
            out.write(chunk)
    elapsed = time.perf_counter() - started
    target.unlink()
    return size / elapsed / 1e6


def age(*paths: Path) -> None:
    """Let freshly written data age past the stat cache's racy window (2 s), as real data has."""
    time.sleep(2.2)
    del paths


# -- the cases --------------------------------------------------------------------------------
class Bench:
    def __init__(self, sizes: Sizes, work: Path, peers: dict[str, bool], quick: bool) -> None:
        self.sizes = sizes
        self.work = work
        self.peers = peers
        self.quick = quick
        self.rows: list[Row] = []
        self.rss: dict[str, list[float]] = {}
        self._counter = 0

    def fresh(self, label: str) -> str:
        self._counter += 1
        path = self.work / f"{label}-{self._counter}"
        return str(path)

    def probe_disk(self, data: Path, when: str) -> None:
        """Two rows saying what the disk took at ``when``: writes of bytes (cases 1, 3 and 4
        move with them) and the creation of ``data``'s files on two threads (the floor of a
        download of many small files)."""
        size = 16 * MIB if self.quick else 256 * MIB
        self.rows.append(
            Row(
                f"0 disk {when}: write {_size_label(size)} into the page cache",
                write_rate(self.work, size),
                "-",
                None,
                "report",
                unit="MB/s",
            )
        )
        created = ours("write-floor", data=str(data), dest=self.fresh("probe"))["seconds"][0]
        self.rows.append(
            Row(
                f"0 disk {when}: create {self.sizes.files:,} files (2 threads)",
                created,
                "-",
                None,
                "report",
            )
        )

    def note_rss(self, key: str, result: dict[str, Any]) -> None:
        self.rss.setdefault(key, []).append(result["maxrss_kib"] / 1024)

    def log_dir_once(self, data: Path) -> float:
        result = ours("log-dir", data=str(data), store=self.fresh("store"), cache=self.fresh("c"))
        return float(result["seconds"][0])

    # 1 and 2 ------------------------------------------------------------------------------------
    def case_log_folder(self, data: Path) -> None:
        s = self.sizes
        mine: list[float] = []
        others: dict[str, list[float]] = {
            "wandb": [],
            "dvc-copy": [],
            "dvc-hardlink": [],
            "floor": [],
            "loose": [],
        }
        for rep in range(s.reps):
            steps: list[tuple[str, Callable[[], float]]] = [
                ("ours", lambda: self.log_dir_once(data))
            ]
            if self.peers["wandb"]:
                steps.append(
                    (
                        "wandb",
                        lambda: peer("wandb-add-dir", str(data), self.fresh("w"))["seconds"][0],
                    )
                )
            if self.peers["dvc"]:
                for link in ("copy", "hardlink"):
                    steps.append(
                        (
                            f"dvc-{link}",
                            lambda link=link: peer(
                                "dvc-add", str(data), self.fresh("dvc"), link, "1"
                            )["seconds"][0],
                        )
                    )
            steps.append(
                (
                    "floor",
                    lambda: ours("floor", data=str(data), dest=self.fresh("floor"))["seconds"][0],
                )
            )
            steps.append(
                (
                    "loose",
                    lambda: ours(
                        "log-dir",
                        data=str(data),
                        store=self.fresh("store"),
                        cache=self.fresh("c"),
                        packs=False,
                    )["seconds"][0],
                )
            )
            if rep % 2:
                steps.reverse()
            for label, step in steps:
                value = step()
                (mine if label == "ours" else others[label]).append(value)
        n = f"{s.files:,} x {s.file_size // 1024} KiB"
        ours_median = median(mine)
        for label, name, target, check in (
            ("wandb", "wandb add_dir (default policy)", ">= 8x faster", lambda r: r >= 8),
            ("dvc-copy", "dvc add (cache.type copy)", ">= 5x faster", lambda r: r >= 5),
            ("dvc-hardlink", "dvc add (cache.type hardlink)", "report", None),
        ):
            peer_name = name if others[label] else f"{name}: not installed"
            self.rows.append(
                Row(
                    f"1 log {n}",
                    ours_median,
                    peer_name,
                    median(others[label]),
                    target,
                    check,
                    faster,
                )
            )
        self.rows.append(
            Row(
                f"1 log {n}",
                ours_median,
                "ours, packs off (one file per blob, as before v2)",
                median(others["loose"]),
                "report",
                None,
                faster,
            )
        )
        self.rows.append(
            Row(
                f"1 log {n}",
                ours_median,
                "bare Python hash+copy loop (floor)",
                median(others["floor"]),
                "report (x of floor)",
                None,
                slower,
            )
        )

    def case_relog(self, data: Path) -> None:
        s = self.sizes
        repeats = s.reps
        mine = ours(
            "relog-dir",
            data=str(data),
            store=self.fresh("store"),
            cache=self.fresh("c"),
            repeats=repeats,
        )["seconds"]
        theirs: list[float] = []
        if self.peers["dvc"]:
            theirs = peer("dvc-add", str(data), self.fresh("dvc"), "copy", str(repeats + 1))[
                "seconds"
            ][1:]
        self.rows.append(
            Row(
                f"2 log {s.files:,} files again, unchanged",
                median(mine),
                "dvc add, unchanged" if theirs else "dvc add: not installed",
                median(theirs),
                ">= 5x faster",
                lambda r: r >= 5,
                faster,
            )
        )

    # 3 ----------------------------------------------------------------------------------------
    def case_log_big(self, big: Path) -> None:
        mine: list[float] = []
        fast: list[float] = []
        copies: list[float] = []
        hashes: list[float] = []
        for rep in range(self.sizes.big_reps):

            def log_big(algorithm: str) -> dict[str, Any]:
                store, cache = self.fresh("store"), self.fresh("c")
                result = ours(
                    "log-file", data=str(big), store=store, cache=cache, algorithm=algorithm
                )
                # As cp's copy is deleted right after it is timed, so is ours: both sides then
                # start from the same memory state (on this VM, writing into pages the kernel
                # has not recycled yet costs several times more than into just-freed ones).
                shutil.rmtree(store, ignore_errors=True)
                shutil.rmtree(cache, ignore_errors=True)
                return result

            def run_ours() -> None:
                result = log_big("md5")
                mine.append(result["seconds"][0])
                self.note_rss("log-big", result)

            def run_xxh() -> None:
                fast.append(log_big("xxh128")["seconds"][0])

            def run_cp() -> None:
                dest = self.fresh("cp")
                copies.append(timed_command("cp", str(big), dest))
                os.unlink(dest)

            def run_hash() -> None:
                hashes.append(ours("hash-file", data=str(big))["seconds"][0])

            steps = [run_ours, run_cp, run_xxh, run_hash]
            for step in reversed(steps) if rep % 2 else steps:
                step()
        size = _size_label(self.sizes.big)
        self.rows.append(
            Row(
                f"3 log one {size} file (md5)",
                median(mine),
                "md5 of the file alone (no write)",
                median(hashes),
                "<= 1.2x md5 alone",
                lambda r: r <= 1.2,
                slower,
            )
        )
        self.rows.append(
            Row(
                f"3 log one {size} file (md5)",
                median(mine),
                "cp",
                median(copies),
                ">= 0.8x cp speed",
                lambda r: r >= 0.8,
                faster,
            )
        )
        self.rows.append(
            Row(
                f"3 log one {size} file (xxh128)",
                median(fast),
                "cp",
                median(copies),
                ">= 0.8x cp speed",
                lambda r: r >= 0.8,
                faster,
            )
        )

    # 4 ----------------------------------------------------------------------------------------
    def case_download(self, data: Path, big: Path) -> None:
        store, cache = self.fresh("dlstore"), self.fresh("dlcache")
        ours("log-dir", data=str(data), store=store, cache=cache, name="bench-dl-dir")
        ours("log-file", data=str(big), store=store, cache=cache)
        for label, source, name in (
            (f"{self.sizes.files:,} files", data, "bench-dl-dir:latest"),
            (_size_label(self.sizes.big) + " file", big, "bench-file:latest"),
        ):
            for warm in (False, True):
                mine: list[float] = []
                copies: list[float] = []
                hashes: list[float] = []
                floors: list[float] = []  # warm, small files: the bare file-creation loops
                with_md5 = source is big and not warm
                with_floor = warm and source is data
                # small-file rows are quick and noisy (kernel-bound): more repetitions
                reps = self.sizes.big_reps if source is big or self.quick else 7
                for rep in range(reps):
                    if rep % 2:
                        copies.append(timed_command("cp", "-r", str(source), self.fresh("cpr")))
                        if with_md5:
                            hashes.append(ours("hash-file", data=str(big))["seconds"][0])
                    self._download_ours(store, cache, name, warm, mine, source is big)
                    if with_floor:
                        floors.append(
                            ours("write-floor", data=str(data), dest=self.fresh("wfloor"))[
                                "seconds"
                            ][0]
                        )
                    if not rep % 2:
                        if with_md5:
                            hashes.append(ours("hash-file", data=str(big))["seconds"][0])
                        copies.append(timed_command("cp", "-r", str(source), self.fresh("cpr")))
                warm_files = warm and source is data
                self.rows.append(
                    Row(
                        f"4 download {label}" + (" (cache warm)" if warm else ""),
                        median(mine),
                        "cp -r",
                        median(copies),
                        "<= 1.0x cp time" if warm_files else "<= 1.3x cp time",
                        (lambda r: r <= 1.0) if warm_files else (lambda r: r <= 1.3),
                        slower,
                    )
                )
                if with_floor:
                    self.rows.append(
                        Row(
                            f"4 download {label} (cache warm)",
                            median(mine),
                            "creating the files from memory, 2 threads (floor)",
                            median(floors),
                            "report (x of floor)",
                            None,
                            slower,
                        )
                    )
                    self.rows.append(
                        Row(
                            f"4 floor: create {label} from memory (2 threads)",
                            median(floors),
                            "cp -r",
                            median(copies),
                            "report (the limit)",
                            None,
                            slower,
                        )
                    )
                if with_md5:
                    self.rows.append(
                        Row(
                            f"4 download {label} (verified, no cache)",
                            median(mine),
                            "md5 of the file alone (no write)",
                            median(hashes),
                            "<= 1.2x md5 alone",
                            lambda r: r <= 1.2,
                            slower,
                        )
                    )
                    # A verified download must both hash and write every byte: it cannot beat
                    # the slower of the two. Taken round by round, as the disk's speed drifts.
                    self.rows.append(
                        Row(
                            f"4 download {label} (verified, no cache)",
                            median(mine),
                            "slower of md5 alone and cp -r, per round (floor)",
                            median([max(pair) for pair in zip(hashes, copies, strict=True)]),
                            "report (x of floor)",
                            None,
                            slower,
                        )
                    )

    def _download_ours(
        self, store: str, cache: str, name: str, warm: bool, into: list[float], big: bool
    ) -> None:
        result = ours(
            "download", store=store, cache=cache, name=name, dest=self.fresh("dl"), warm=warm
        )
        into.append(result["seconds"][0])
        if big and not warm:
            self.note_rss("download-big", result)

    # 5 ----------------------------------------------------------------------------------------
    def case_dagster(self) -> None:
        from benchmarks.ours import io_manager_kind

        kind = io_manager_kind()
        mine: list[float] = []
        base: list[float] = []
        repeats = 2 if self.quick else 3
        for rep in range(self.sizes.big_reps):

            def run(mode: str, into: list[float]) -> None:
                into.extend(
                    ours(
                        "dagster",
                        mode=mode,
                        rows=self.sizes.frame_rows,
                        repeats=repeats,
                        store=self.fresh("store"),
                        cache=self.fresh("c"),
                        dagster_home=self.fresh("dh"),
                        parquet_dir=self.fresh("pq"),
                    )["seconds"]
                )

            pair = [("ours", mine), ("parquet", base)]
            for mode, into in reversed(pair) if rep % 2 else pair:
                run(mode, into)
        self.rows.append(
            Row(
                f"5 materialize {self.sizes.frame_rows:,} x 10 frame",
                median(mine),
                "hand-written Parquet IO manager",
                median(base),
                "<= 1.25x",
                lambda r: r <= 1.25,
                slower,
                note=f"ours = {kind}",
            )
        )

    # 6 ----------------------------------------------------------------------------------------
    def case_registry(self) -> None:
        versions = self.sizes.registry_versions
        result = ours(
            "registry",
            store=self.fresh("store"),
            cache=self.fresh("c"),
            versions=versions,
            lookups=50 if self.quick else 200,
        )
        label = f"6 registry of {versions:,} versions (SQLite)"
        for what, key in (
            ("resolve name:alias", "alias"),
            ("resolve name:latest", "latest"),
            ("resolve name:vN", "index"),
            ("list versions", "list"),
        ):
            self.rows.append(
                Row(f"{label}: {what}", result[key], "-", None, "report (median)", None, None)
            )

    # 7 ----------------------------------------------------------------------------------------
    def case_memory(self, many: Path) -> None:
        size = _size_label(self.sizes.big)
        result = ours("log-dir", data=str(many), store=self.fresh("store"), cache=self.fresh("c"))
        self.rss["log-many"] = [result["maxrss_kib"] / 1024]
        baseline = ours("idle", store=self.fresh("store"), cache=self.fresh("c"))
        self.rows.append(
            Row(
                "7 peak RSS of `import dagster_artifacts` + init (floor of the rows below)",
                baseline["maxrss_kib"] / 1024,
                "-",
                None,
                "report",
                None,
                None,
                unit="MiB",
            )
        )
        for label, key, limit in (
            (f"7 peak RSS logging one {size} file", "log-big", 150),
            (f"7 peak RSS downloading one {size} file", "download-big", 150),
            (f"7 peak RSS logging {self.sizes.many_files:,} small files", "log-many", 600),
        ):
            values = self.rss.get(key, [])
            self.rows.append(
                Row(
                    label,
                    max(values) if values else None,
                    "-",
                    None,
                    f"< {limit} MiB",
                    lambda v, limit=limit: v < limit,
                    None,
                    unit="MiB",
                )
            )

    # 8 ----------------------------------------------------------------------------------------
    def case_incremental(self) -> None:
        """A version that gains 10 files costs time in proportion to the change, not to the
        artifact (W&B's ``new_draft()`` and ``incremental=True``)."""
        count = self.sizes.many_files
        data = make_files(self.work / "incremental-data", count, 1024)
        extra = make_files(self.work / "incremental-extra", 10, 1024)
        age(data, extra)
        first, drafted, patched, again = ours(
            "incremental",
            data=str(data),
            extra=str(extra),
            store=self.fresh("store"),
            cache=self.fresh("c"),
        )["seconds"]
        label = f"8 +10 files on a {count:,}-file version"
        for how, value in (("new_draft()", drafted), ("incremental=True", patched)):
            self.rows.append(
                Row(
                    f"{label}: {how}",
                    value,
                    f"first log of the {count:,} files",
                    first,
                    ">= 10x faster",
                    lambda r: r >= 10,
                    faster,
                )
            )
        self.rows.append(
            Row(
                f"{label}: new_draft()",
                drafted,
                f"log all {count + 10:,} files again (stat cache warm)",
                again,
                "report",
                None,
                faster,
            )
        )

    def case_s3(self, data: Path) -> None:
        """Log and download the same folder on a moto S3 server: packs (v2) against one object
        per file (packs off, the layout before v2) and ``dvc push``; requests counted in the
        server's own log."""
        import boto3

        from benchmarks.moto_process import count_requests, moto_server

        access_log = str(self.work / "moto-access.log")
        times: dict[str, list[float]] = {"packs": [], "loose": [], "dvc": []}
        downloads: dict[str, list[float]] = {"packs": [], "loose": [], "cached": []}
        requests: dict[str, dict[str, dict[str, int]]] = {}
        with moto_server(access_log) as endpoint:
            client = boto3.client(
                "s3",
                endpoint_url=endpoint,
                aws_access_key_id="benchmark",
                aws_secret_access_key="benchmark",
                region_name="us-east-1",
            )

            def bucket() -> str:
                self._counter += 1
                name = f"bench-{self._counter}"
                client.create_bucket(Bucket=name)
                return name

            def offset() -> int:
                time.sleep(0.3)  # the server logs a request just after answering it
                return count_requests(access_log)[1]

            def run_ours(mode: str) -> None:
                where = bucket()
                common = {
                    "data": str(data),
                    "endpoint": endpoint,
                    "bucket": where,
                    "db": self.fresh("db") + ".db",
                    "cache": self.fresh("c"),
                    "packs": mode == "packs",
                }
                start = offset()
                times[mode].append(ours("s3-log", **common)["seconds"][0])
                middle = offset()
                downloads[mode].append(
                    ours("s3-download", dest=self.fresh("dl"), **common)["seconds"][0]
                )
                offset()  # let the last requests reach the log
                logged = count_requests(access_log, start)[0]
                fetched = count_requests(access_log, middle)[0]
                requests[mode] = {
                    "log": {k: logged[k] - fetched.get(k, 0) for k in logged},
                    "download": fetched,
                }
                if mode == "packs":  # the same download with the default for buckets: cache on
                    cold = {**common, "cache": self.fresh("c"), "download_cache": True}
                    downloads["cached"].append(
                        ours("s3-download", dest=self.fresh("dl"), **cold)["seconds"][0]
                    )

            def run_dvc() -> None:
                where = bucket()
                start = offset()
                times["dvc"].append(
                    peer("dvc-push", str(data), self.fresh("dvc"), endpoint, where)["seconds"][0]
                )
                offset()  # let the last requests reach the log
                requests["dvc"] = {"log": count_requests(access_log, start)[0]}

            for rep in range(self.sizes.s3_reps):
                steps = [lambda: run_ours("packs"), lambda: run_ours("loose")]
                if self.peers.get("dvc_s3"):
                    steps.append(run_dvc)
                for step in reversed(steps) if rep % 2 else steps:
                    step()
        n = f"{self.sizes.s3_files:,} x {self.sizes.file_size // 1024} KiB"
        self.rows.append(
            Row(
                f"9 S3 log {n}",
                median(times["packs"]),
                "ours, one object per file (packs off, as before v2)",
                median(times["loose"]),
                ">= 10x faster",
                lambda r: r >= 10,
                faster,
            )
        )
        self.rows.append(
            Row(
                f"9 S3 log {n}",
                median(times["packs"]),
                "dvc push (dvc-s3)" if times["dvc"] else "dvc push: dvc-s3 not installed",
                median(times["dvc"]),
                ">= 5x faster",
                lambda r: r >= 5,
                faster,
            )
        )
        self.rows.append(
            Row(
                f"9 S3 download {n}",
                median(downloads["packs"]),
                "ours, one object per file (packs off)",
                median(downloads["loose"]),
                ">= 5x faster",
                lambda r: r >= 5,
                faster,
            )
        )
        self.rows.append(
            Row(
                f"9 S3 download {n}, download cache on (the default), cold",
                median(downloads["cached"]),
                "the same, cache off",
                median(downloads["packs"]),
                "report",
                None,
                slower,
            )
        )
        for mode, label in (("packs", "packs"), ("loose", "packs off"), ("dvc", "dvc push")):
            for phase in ("log", "download"):
                counted = requests.get(mode, {}).get(phase)
                if counted is None:
                    continue
                shown = ", ".join(f"{k} {v}" for k, v in counted.items() if v)
                self.rows.append(
                    Row(
                        f"9 S3 requests per {'logged' if phase == 'log' else 'downloaded'} version ({label})",
                        float(sum(counted.values())),
                        shown,
                        None,
                        "report",
                        None,
                        None,
                        unit="requests",
                    )
                )

    # 10 ---------------------------------------------------------------------------------------
    def case_million(self, many: Path) -> None:
        """Log, download and log again unchanged, each in its own process: each operation's
        peak RSS is its own (a process that logged a million files still holds that draft)."""
        count = sum(1 for _ in many.iterdir())
        store, cache = self.fresh("store"), self.fresh("c")
        places = {"data": str(many), "store": store, "cache": cache}
        logged = ours("log-many", **places)
        fetched = ours("download-many", **places, dest=self.fresh("dl"))
        # The re-log three times (a million: 8-11 s each), the median reported, as other rows
        # report medians: one re-log right after a million files were written is a coin toss.
        agains = [ours("log-many", **places) for _ in range(3)]
        again = {
            "seconds": [median([result["seconds"][0] for result in agains])],
            "maxrss_kib": max(result["maxrss_kib"] for result in agains),
        }
        label = f"10 {count:,} x 1 KiB, local"
        for what, result in (("log", logged), ("download", fetched)):
            self.rows.append(
                Row(
                    f"{label}: {what}",
                    count / result["seconds"][0],
                    "-",
                    None,
                    "report",
                    None,
                    None,
                    "files/s",
                )
            )
        self.rows.append(
            Row(
                f"{label}: log again, unchanged (median of 3)",
                again["seconds"][0],
                "-",
                None,
                "< 10 s",
                lambda v: v < 10,
                None,
            )
        )
        for what, result in (("log", logged), ("download", fetched), ("log again", again)):
            self.rows.append(
                Row(
                    f"{label}: peak RSS, {what}",
                    result["maxrss_kib"] / 1024,
                    "-",
                    None,
                    "< 1024 MiB",
                    lambda v: v < 1024,
                    None,
                    "MiB",
                )
            )

    def case_cli_startup(self) -> None:
        """``dagster-artifacts --help`` and ``ls`` on a one-artifact local store: the whole
        process, start-up included (what a user waits for at a shell), beside an interpreter
        that does nothing (the floor no CLI in Python goes under)."""
        store = self.fresh("cli-store")
        env = {
            **os.environ,
            "DAGSTER_ARTIFACTS_ROOT": store,
            "DAGSTER_ARTIFACTS_CACHE_DIR": self.fresh("cli-cache"),
            "DAGSTER_ARTIFACTS_PROJECT": "p",
        }
        env.pop("DAGSTER_ARTIFACTS_DATABASE", None)
        script = Path(sys.executable).with_name("dagster-artifacts")
        cli = (
            [str(script)]
            if script.exists()
            else [sys.executable, "-c", "from dagster_artifacts.cli import main; main()"]
        )
        data = make_files(self.work / "cli-data", 3, 100)
        subprocess.run(
            [*cli, "put", str(data), "-n", "rides", "-t", "dataset"],
            env=env,
            check=True,
            capture_output=True,
        )
        reps = 5 if self.quick else 21

        def wall(command: list[str]) -> float | None:
            subprocess.run(command, env=env, check=True, capture_output=True)  # warm-up
            times = []
            for _ in range(reps):
                started = time.perf_counter()
                subprocess.run(command, env=env, check=True, capture_output=True)
                times.append(time.perf_counter() - started)
            return median(times)

        floor = wall([sys.executable, "-c", "pass"])
        for what, args in (("--help", ["--help"]), ("ls (1 artifact)", ["ls"])):
            self.rows.append(
                Row(
                    f"11 CLI start-up: dagster-artifacts {what}",
                    wall([*cli, *args]),
                    "python -c pass",
                    floor,
                    "< 0.3 s",
                    lambda seconds: seconds < 0.3,
                    None,
                )
            )


def _size_label(size: int) -> str:
    return f"{size // (1024 * MIB)} GiB" if size >= 1024 * MIB else f"{size // MIB} MiB"


# -- output -----------------------------------------------------------------------------------
def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "MiB":
        return f"{value:.0f} MiB"
    if unit == "MB/s":
        return f"{value:,.0f} MB/s"
    if unit in ("files/s", "requests"):
        return f"{value:,.0f} {unit}"
    return f"{value * 1000:.2f} ms" if value < 0.1 else f"{value:.3f} s"


def table(rows: list[Row]) -> str:
    header = (
        "case",
        "ours (median)",
        "peer / baseline",
        "peer (median)",
        "ratio",
        "target",
        "result",
    )
    lines = [header]
    for row in rows:
        row.settle()
        ratio = "-" if row.ratio is None else f"{row.ratio:.2f}x"
        result = {True: "PASS", False: "FAIL", None: "-"}[row.passed]
        if row.ours is not None and row.peer is None and row.ratio_of is not None:
            result = "no peer"
        lines.append(
            (
                row.case + (f" [{row.note}]" if row.note else ""),
                fmt(row.ours, row.unit),
                row.peer_name,
                fmt(row.peer, row.unit),
                ratio,
                row.target,
                result,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = ["| " + " | ".join(c.ljust(w) for c, w in zip(lines[0], widths, strict=True)) + " |"]
    out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for line in lines[1:]:
        out.append("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |")
    return "\n".join(out)


CASES = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11")


def _prefault_mib(case: str, sizes: Sizes) -> int:
    """What a measurement of ``case`` writes, plus 384 MiB for a process's imports and data."""
    written = {"3": sizes.big, "4": sizes.big, "10": sizes.million * 1024}.get(
        case, sizes.files * sizes.file_size
    )
    return (written + 384 * MIB) // MIB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--no-install", action="store_true", help="never create the peers venv")
    parser.add_argument("--cases", default=",".join(CASES), help="e.g. 1,2,3 (default: all)")
    parser.add_argument("--workdir", default=None, help="scratch folder (default: a temp dir)")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    parser.add_argument(
        "--prefault",
        action="store_true",
        help="before each measurement, write and delete a scratch file as large as what it "
        "writes plus room for its imports, so that it runs on memory the VM's host has not "
        "taken back (benchmarks/prefault.py)",
    )
    parser.add_argument(
        "--million",
        action="store_true",
        help="case 10 with 1,000,000 files (about ten minutes; default 100,000)",
    )
    options = parser.parse_args(argv)
    sizes = QUICK if options.quick else FULL
    if options.million:
        sizes = Sizes(**{**sizes.__dict__, "million": 1_000_000})
    cases = set(options.cases.split(","))
    peers = peers_available(install=not (options.quick or options.no_install))
    work = Path(tempfile.mkdtemp(prefix="da-bench-", dir=options.workdir))
    bench = Bench(sizes, work, peers, options.quick)
    started = time.perf_counter()
    try:
        print(f"Generating data in {work} ...", flush=True)
        data = make_files(work / "data", sizes.files, sizes.file_size)
        big = make_big(work / "big.bin", sizes.big)
        many = make_files(work / "many", sizes.many_files, 1024) if "7" in cases else None
        million = many if many is not None and sizes.million == sizes.many_files else None
        if "10" in cases and million is None:
            million = make_files(work / "million", sizes.million, 1024)
        s3_data = data
        if "9" in cases and sizes.s3_files != sizes.files:
            s3_data = make_files(work / "s3-data", sizes.s3_files, sizes.file_size)
        age(data, big)
        steps: list[tuple[str, Callable[[], None]]] = [
            ("1", lambda: bench.case_log_folder(data)),
            ("2", lambda: bench.case_relog(data)),
            ("3", lambda: bench.case_log_big(big)),
            ("4", lambda: bench.case_download(data, big)),
            ("5", bench.case_dagster),
            ("6", bench.case_registry),
            ("7", lambda: bench.case_memory(many) if many is not None else None),
            ("8", bench.case_incremental),
            ("9", lambda: bench.case_s3(s3_data)),
            ("10", lambda: bench.case_million(million) if million is not None else None),
            ("11", bench.case_cli_startup),
        ]
        bench.probe_disk(data, "before the cases")
        for number, step in steps:
            if number in cases:
                if options.prefault:
                    os.environ[PREFAULT_ENV] = f"{work}:{_prefault_mib(number, sizes)}"
                print(f"case {number} ...", flush=True)
                case_started = time.perf_counter()
                step()
                print(
                    f"case {number} done in {time.perf_counter() - case_started:.1f} s", flush=True
                )
        os.environ.pop(PREFAULT_ENV, None)  # the probes measure the memory as it comes
        bench.probe_disk(data, "after the cases")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(table(bench.rows))
    print(
        f"\n{os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"{'quick' if options.quick else 'full'} run in {time.perf_counter() - started:.0f} s"
    )
    if options.json:
        Path(options.json).write_text(
            json.dumps(
                [
                    {
                        "case": r.case,
                        "ours": r.ours,
                        "peer": r.peer_name,
                        "peer_value": r.peer,
                        "ratio": r.ratio,
                        "target": r.target,
                        "passed": r.passed,
                        "unit": r.unit,
                    }
                    for r in bench.rows
                ],
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
