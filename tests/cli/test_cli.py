"""The ``dagster-artifacts`` command, driven by click's runner on a real local store."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import dagster_artifacts as wandb
from dagster_artifacts.cli import main
from dagster_artifacts.clock import OffsetClock
from dagster_artifacts.settings import Settings
from dagster_artifacts.state import open_store
from dagster_artifacts.storage import open_blob_store


def cli(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def cli_json(*args: str) -> Any:
    return json.loads(cli(*args, "--json").stdout)


def make_folder(base: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = base / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return base


def log_version(name: str, files: dict[str, str], aliases: list[str] | None = None) -> str:
    folder = make_folder(Path.cwd() / f"src-{time.monotonic_ns()}", files)
    with wandb.init(job_type="test") as run:
        artifact = wandb.Artifact(name, type="dataset")
        artifact.add_dir(str(folder))
        run.log_artifact(artifact, aliases=aliases)
        artifact.wait()
    return artifact.version


def test_put_with_ignore_then_ls_versions_show(tmp_path: Path) -> None:
    folder = make_folder(
        tmp_path / "data",
        {"a.csv": "1,2\n", "sub/b.csv": "3,4\n", "scratch.tmp": "x", ".git/HEAD": "ref"},
    )
    out = cli(
        "put",
        str(folder),
        "--name",
        "bikes",
        "--type",
        "dataset",
        "--alias",
        "best",
        "--ignore",
        "*.tmp",
        "--ignore",
        ".git/",
    )
    assert "bikes:v0" in out.stdout and "best" in out.stdout

    listing = cli_json("ls")
    assert listing == [
        {
            "entity": "default",
            "project": "uncategorized",
            "name": "bikes",
            "type": "dataset",
            "versions": 1,
            "size": 8,
        }
    ]
    assert "bikes" in cli("ls").stdout
    assert cli_json("ls", "--types") == ["dataset"]
    assert cli_json("ls", "--projects") == [{"entity": "default", "project": "uncategorized"}]

    shown = cli_json("show", "bikes:best")
    assert [f["path"] for f in shown["files"]] == ["a.csv", "sub/b.csv"]
    assert sorted(shown["aliases"]) == ["best", "latest"]
    assert shown["logged_by"]["job_type"] == "cli-put"

    (folder / "c.csv").write_text("5,6\n")
    cli(
        "put",
        str(folder),
        "--name",
        "bikes",
        "--type",
        "dataset",
        "--ignore",
        "*.tmp",
        "--ignore",
        ".git/",
    )
    versions = cli_json("versions", "bikes")
    assert [(v["version"], v["file_count"]) for v in versions] == [("v0", 2), ("v1", 3)]
    assert versions[1]["aliases"] == ["latest"]


def test_get_path_prefix_and_verify(tmp_path: Path) -> None:
    log_version("bikes", {"train/a.csv": "a", "train/b.csv": "b", "test/c.csv": "c"})
    target = tmp_path / "got"
    out = cli("get", "bikes:latest", "--root", str(target), "--path-prefix", "train/")
    assert out.stdout.strip() == str(target)
    assert sorted(p.name for p in target.rglob("*") if p.is_file()) == ["a.csv", "b.csv"]

    full = tmp_path / "full"
    cli("get", "bikes:v0", "--root", str(full))
    assert "3 files match" in cli("verify", "bikes:v0", "--root", str(full)).stdout
    (full / "test" / "c.csv").write_text("changed")
    failed = cli("verify", "bikes:v0", "--root", str(full), code=1)
    assert "test/c.csv: content differs" in failed.output

    nothing = cli("get", "bikes:v0", "--path-prefix", "nope/", code=2)
    assert "no entry under 'nope/'" in nothing.output


def test_alias_add_and_rm_move_aliases() -> None:
    log_version("bikes", {"a": "1"})
    log_version("bikes", {"a": "2"})
    cli("alias", "add", "bikes:v0", "best")
    assert cli_json("show", "bikes:best")["version"] == "v0"
    cli("alias", "add", "bikes:v1", "best")  # an alias points to one version: it moves
    assert cli_json("show", "bikes:best")["version"] == "v1"
    cli("alias", "rm", "bikes:v1", "best")
    assert "no version or alias 'best'" in cli("show", "bikes:best", code=1).output
    assert "has no alias 'gone'" in cli("alias", "rm", "bikes:v1", "gone", code=2).output


def test_lineage_tree_and_runs() -> None:
    log_version("raw", {"r.txt": "raw"})
    with wandb.init(job_type="train") as run:
        run.use_artifact("raw:latest")
        model = wandb.Artifact("model", type="model")
        with model.new_file("weights.bin") as handle:
            handle.write("w")
        run.log_artifact(model)
    data = cli_json("lineage", "raw:v0")
    assert data["downstream"][0]["run"]["job_type"] == "train"
    assert data["downstream"][0]["outputs"][0]["artifact"].endswith("model:v0")
    up = cli_json("lineage", "model:v0")["upstream"][0]
    assert up["inputs"][0]["artifact"].endswith("raw:v0")
    tree = cli("lineage", "model:v0").stdout
    assert "upstream" in tree and "raw:v0" in tree and "train" in tree

    runs = cli_json("runs")
    assert [(r["job_type"], r["logged"], r["used"]) for r in runs] == [
        ("test", ["raw:v0"], []),
        ("train", ["model:v0"], ["raw:v0"]),
    ]


def test_delete_needs_force_for_aliased_versions(store_snapshot: Any) -> None:
    log_version("bikes", {"a": "1"}, aliases=["best"])
    log_version("bikes", {"a": "2"})
    before = store_snapshot()
    refused = cli("delete", "bikes:v0", code=1)
    assert "has aliases best" in refused.output and "--force" in refused.output
    assert store_snapshot() == before
    cli("delete", "bikes:v0", "--force")
    assert [v["version"] for v in cli_json("versions", "bikes")] == ["v1"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["show", "nope:v0"], 1, "No artifact 'default/uncategorized/nope'"),
        (["show", "bikes:v9"], 1, "has no version or alias 'v9'"),
        (["show", "bikes:"], 2, "ends with ':'"),
        (["get", "a/b/c/bikes:v0"], 2, "Malformed artifact path"),
        (["delete", "bikes:"], 2, "ends with ':'"),
        (["versions", "nope"], 1, "No artifact"),
        (["prune", "bikes", "--keep-last", "0"], 2, "keep at least 1"),
        (["prune", "nope", "--keep-last", "1"], 1, "No artifact"),
        (["prune", "bikes:v0", "--keep-last", "1"], 2, "without a version"),
        (["prune", "bikes", "--keep-last", "1", "--older-than", "soon"], 2, "Cannot read duration"),
        (["gc", "--grace", "forever"], 2, "Cannot read duration"),
        (["alias", "add", "bikes:v0", "v7"], 2, "reserved for versions"),
        (["alias", "add", "bikes:v0", "a/b"], 2, "may not contain"),
        (["cache", "prune", "--max-size", "lots"], 2, "Cannot read size"),
        (["put", "missing-folder", "--name", "x", "--type", "t"], 2, "does not exist"),
    ],
)
def test_bad_input_exits_with_a_clear_message_and_changes_nothing(
    store_snapshot: Any, args: list[str], code: int, message: str
) -> None:
    log_version("bikes", {"a": "1"})
    log_version("bikes", {"a": "2"})
    before = store_snapshot()
    result = cli(*args, code=code)
    assert message in result.output
    assert store_snapshot() == before


def test_help_documents_exit_codes() -> None:
    assert "2 usage" in cli("--help").stdout
    assert "--keep-last 0" in cli("prune", "--help").stdout


def test_prune_keeps_aliased_versions_and_dry_run_changes_nothing(store_snapshot: Any) -> None:
    for index in range(5):
        log_version("bikes", {"a": str(index)}, aliases=["best"] if index == 1 else None)
    before = store_snapshot()
    dry = cli_json("prune", "bikes", "--keep-last", "2", "--keep-aliased", "--dry-run")
    assert [v["version"] for v in dry["deleted"]] == ["v0", "v2"]
    assert store_snapshot() == before

    out = cli("prune", "bikes", "--keep-last", "2", "--keep-aliased")
    assert "Deleted 2 versions" in out.stdout
    assert [v["version"] for v in cli_json("versions", "bikes")] == ["v1", "v3", "v4"]
    assert cli_json("show", "bikes:best")["version"] == "v1"

    # Without --keep-aliased the aliased version goes too, with its alias.
    cli("prune", "bikes", "--keep-last", "1")
    assert [v["version"] for v in cli_json("versions", "bikes")] == ["v4"]
    cli("show", "bikes:best", code=1)


def test_prune_older_than_spares_young_versions() -> None:
    for index in range(3):
        log_version("bikes", {"a": str(index)})
    out = cli_json("prune", "bikes", "--keep-last", "1", "--older-than", "1h")
    assert out["deleted"] == []
    assert len(cli_json("versions", "bikes")) == 3


def _blob_files(store: Path) -> dict[str, int]:
    return {
        str(p.relative_to(store)): p.stat().st_size
        for p in (store / "blobs").rglob("*")
        if p.is_file()
    }


def test_gc_frees_unique_blobs_and_keeps_shared_ones(isolated_store: Path, tmp_path: Path) -> None:
    log_version("bikes", {"shared.txt": "shared bytes", "old.txt": "only in v0 !!"})
    log_version("bikes", {"shared.txt": "shared bytes", "new.txt": "only in v1"})
    assert len(_blob_files(isolated_store)) == 3
    cli("delete", "bikes:v0")

    dry = cli_json("gc", "--grace", "0", "--dry-run")
    assert (dry["blobs_deleted"], dry["manifests_deleted"]) == (1, 1)
    assert len(_blob_files(isolated_store)) == 3

    report = cli("gc", "--grace", "0")
    assert "Freed" in report.stdout and "1 blob, 1 manifest." in report.stdout
    blobs = _blob_files(isolated_store)
    assert sorted(blobs.values()) == [len("only in v1"), len("shared bytes")]
    cli("get", "bikes:v1", "--root", str(tmp_path / "v1"))
    assert (tmp_path / "v1" / "shared.txt").read_text() == "shared bytes"
    assert cli_json("gc", "--grace", "0")["blobs_deleted"] == 0


def test_gc_grace_period_keeps_recent_unreferenced_blobs(isolated_store: Path) -> None:
    log_version("bikes", {"a.txt": "one"})
    log_version("bikes", {"a.txt": "two"})
    cli("delete", "bikes:v0")
    report = cli_json("gc")  # default grace 24 h: everything is younger
    assert report["blobs_deleted"] == 0 and report["recent_kept"] == 2  # blob + manifest
    assert len(_blob_files(isolated_store)) == 2


def test_gc_expires_ttl_versions(isolated_store: Path, tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "ttl", {"t.txt": "temporary"})
    cli("put", str(folder), "--name", "scratch", "--type", "tmp", "--ttl", "1s")
    log_version("keep", {"k.txt": "kept"})
    assert cli_json("show", "scratch:v0")["ttl_seconds"] == 1
    open_store(Settings.resolve()).clock = OffsetClock(2)  # the CLI's gc: two seconds later
    report = cli_json("gc", "--grace", "0")
    assert report["expired_versions"] == ["default/uncategorized/scratch:v0"]
    assert report["blobs_deleted"] == 1
    cli("show", "scratch:v0", code=1)
    cli("show", "keep:v0")


def _age(store: Path, seconds: float) -> None:
    """Make every stored blob and manifest look ``seconds`` old."""
    stamp = time.time() - seconds
    for path in store.rglob("*"):
        if path.is_file() and ("blobs" in path.parts or "manifests" in path.parts):
            os.utime(path, (stamp, stamp))


def test_gc_racing_a_concurrent_log_leaves_the_new_versions_complete(
    isolated_store: Path, tmp_path: Path
) -> None:
    # Orphans from a deleted version, two days old: gc must collect these while a writer works.
    for index in range(20):
        log_version("old", {f"f{index}.bin": f"orphan {index}" * 50})
    for index in range(20):
        cli("delete", f"old:v{index}", "--force")
    _age(isolated_store, 2 * 86400)
    orphan_blobs = set(_blob_files(isolated_store))

    settings = Settings.resolve()
    errors: list[BaseException] = []
    logged: list[str] = []
    done = threading.Event()

    def writer() -> None:
        try:
            from dagster_artifacts.runs import start_run

            run = start_run(settings, job_type="writer")
            with run:
                for index in range(15):
                    artifact = wandb.Artifact("fresh", type="dataset")
                    with artifact.new_file("data.bin", mode="w") as handle:
                        handle.write(f"fresh {index} " * 2000)
                    with artifact.new_file("common.txt", mode="w") as handle:
                        handle.write("shared by every fresh version")
                    run.log_artifact(artifact)
                    artifact.wait()
                    logged.append(artifact.version)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    freed = 0
    rounds = 0
    while not done.is_set() or rounds == 0:
        freed += cli_json("gc", "--grace", "1h")["blobs_deleted"]
        rounds += 1
    thread.join()
    assert not errors, errors
    assert len(logged) == 15
    assert rounds >= 2, "gc should have run while the writer was still logging"
    assert freed == len(orphan_blobs)  # the gc really ran against the writer
    assert not orphan_blobs & set(_blob_files(isolated_store))
    for version in logged:
        target = tmp_path / "check" / version
        cli("get", f"fresh:{version}", "--root", str(target))
        cli("verify", f"fresh:{version}", "--root", str(target))


def test_cache_info_and_prune_through_the_cli(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DAGSTER_ARTIFACTS_CACHE", "1")
    log_version("bikes", {"a.bin": "a" * 3000, "b.bin": "b" * 3000})
    log_version("cars", {"c.bin": "c" * 4000})
    cli("get", "bikes:v0", "--root", str(tmp_path / "one"))
    cli("get", "cars:v0", "--root", str(tmp_path / "two"))
    info = cli_json("cache", "info")
    assert (info["files"], info["bytes"], info["enabled"]) == (3, 10000, "on")
    assert "10.0 kB" in cli("cache", "info").stdout
    # the two downloads' small files are kept in one segment each, evicted whole: the
    # least recently used is the first download's (a.bin and b.bin)
    pruned = cli_json("cache", "prune", "--max-size", "5kB")
    assert (pruned["files_removed"], pruned["bytes_left"]) == (2, 4000)
    assert cli_json("cache", "info")["bytes"] == 4000


def test_memory_store_end_to_end(tmp_path: Path) -> None:
    root = f"memory://cli-{tmp_path.name}"
    folder = make_folder(tmp_path / "m", {"x.txt": "in memory", "y.txt": "also"})
    cli("--root", root, "put", str(folder), "--name", "mem", "--type", "dataset")
    (folder / "y.txt").write_text("changed")
    cli("--root", root, "put", str(folder), "--name", "mem", "--type", "dataset")
    assert [v["version"] for v in cli_json("--root", root, "versions", "mem")] == ["v0", "v1"]
    target = tmp_path / "out"
    cli("--root", root, "get", "mem:v1", "--root", str(target))
    assert (target / "y.txt").read_text() == "changed"
    # A memory store is not local: downloads went through the cache.
    assert cli_json("cache", "info")["files"] == 2
    cli("--root", root, "delete", "mem:v0")
    report = cli_json("--root", root, "gc", "--grace", "0")
    assert (report["blobs_deleted"], report["manifests_deleted"]) == (1, 1)
    store = open_blob_store(root)
    assert len(list(store.listing("blobs"))) == 2


def test_progress_goes_to_stderr_and_can_be_turned_off(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from dagster_artifacts.progress import progress_enabled

    monkeypatch.setenv("DAGSTER_ARTIFACTS_PROGRESS", "0")
    assert progress_enabled() is False
    monkeypatch.setenv("DAGSTER_ARTIFACTS_PROGRESS", "1")
    assert progress_enabled() is True
    folder = make_folder(tmp_path / "p", {"big.bin": "x" * 2_000_000})
    data = cli_json("put", str(folder), "--name", "big", "--type", "blob")  # stdout is pure JSON
    assert data["size"] == 2_000_000
    out = cli("get", "big:v0", "--root", str(tmp_path / "got"))
    assert out.stdout.strip() == str(tmp_path / "got")
    monkeypatch.delenv("DAGSTER_ARTIFACTS_PROGRESS")
    assert progress_enabled() is False  # the runner's stderr is not a terminal


def test_put_a_single_file_and_project_options(tmp_path: Path, store_snapshot: Any) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(b"\x00weights")
    cli("--project", "bikes", "put", str(source), "--name", "model", "--type", "model")
    assert cli_json("--project", "bikes", "show", "model:v0")["files"][0]["path"] == "model.bin"
    assert cli_json("ls") == []  # the default project is another one
    everywhere = cli_json("ls", "--all-projects")
    assert [(r["project"], r["name"]) for r in everywhere] == [("bikes", "model")]
    assert cli_json("show", "bikes/model:latest")["version"] == "v0"
    before = store_snapshot()
    refused = cli(
        "put", str(source), "--name", "model", "--type", "model", "--ignore", "*.x", code=2
    )
    assert "--ignore only applies to folders" in refused.output
    mismatch = cli(
        "--project", "bikes", "put", str(source), "--name", "model", "--type", "data", code=1
    )
    assert "has type 'model'" in mismatch.output
    assert store_snapshot() == before
