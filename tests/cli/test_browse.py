"""Looking around with the CLI as a new user does: options where they type them, hints that
name the flag, partitions, folded lineage, step names, plurals and one alias order."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster_artifacts as wandb
from tests.cli.test_cli import cli, cli_json

REPO = Path(__file__).resolve().parents[2]


def log(
    name: str,
    text: str,
    *,
    project: str | None = None,
    job_type: str = "test",
    run_name: str | None = None,
    aliases: list[str] | None = None,
    partition_key: str | None = None,
) -> wandb.Artifact:
    with wandb.init(job_type=job_type, project=project, name=run_name) as run:
        artifact = wandb.Artifact(name, type="dataset")
        with artifact.new_file("data.txt") as handle:
            handle.write(text)
        run.log_artifact(artifact, aliases=aliases, partition_key=partition_key).wait()
    return artifact


def test_global_options_work_after_the_subcommand(tmp_path: Path) -> None:
    log("bike-model", "weights", project="bike-sharing")
    out = cli("versions", "bike-model", "--project", "bike-sharing").stdout
    assert out.splitlines()[1].startswith("v0")
    folder = cli(
        "get", "bike-model:latest", "--project", "bike-sharing", "--root", str(tmp_path / "out")
    ).stdout.strip()
    assert Path(folder, "data.txt").read_text() == "weights"
    store = os.environ["DAGSTER_ARTIFACTS_ROOT"]
    assert (
        cli("ls", "--store", store, "--project", "bike-sharing", "--json").stdout.count(
            "bike-model"
        )
        == 1
    )


def test_empty_ls_and_not_found_name_the_project_and_the_flag() -> None:
    log("bike-model", "weights", project="bike-sharing")
    empty = cli("ls")
    assert empty.stdout == ""
    assert "No artifacts in project default/uncategorized" in empty.stderr
    assert "default/bike-sharing (dagster-artifacts ls --all-projects)" in empty.stderr

    missing = cli("show", "bike-model:latest", code=1)
    assert "It is in project default/bike-sharing: add --project bike-sharing." in missing.stderr
    assert "Api()" not in missing.stderr
    elsewhere = cli("versions", "nope", code=1)
    assert "Projects with artifacts: default/bike-sharing" in elsewhere.stderr


def test_versions_and_show_have_the_partition() -> None:
    for day in ("2026-05-01", "2026-05-02"):
        log("daily", day, partition_key=day)
    table = cli("versions", "daily").stdout.splitlines()
    assert table[0].split()[:3] == ["VERSION", "ALIASES", "PARTITION"]
    assert "2026-05-01" in table[1] and "2026-05-02" in table[2]
    assert "partition:   2026-05-02" in cli("show", "daily:latest").stdout
    assert [v["partition_key"] for v in cli_json("versions", "daily")] == [
        "2026-05-01",
        "2026-05-02",
    ]
    log("plain", "no partition")
    assert "PARTITION" not in cli("versions", "plain").stdout  # no empty column


def test_lineage_folds_deduplicated_reruns_and_is_bounded() -> None:
    for _ in range(4):  # the same step re-run: deduplicated, one more logging run each time
        log("rides", "same rows", job_type="data", run_name="bike_rides")
    for index in range(12):  # twelve different consumers
        with wandb.init(job_type="train", name=f"model_{index:02d}") as run:
            run.use_artifact("rides:latest")
    tree = cli("lineage", "rides:v0").stdout
    assert "(bike_rides, data) and 3 re-runs" in tree
    assert tree.count("logged by run") == 1
    assert tree.count("used by run") == 10
    assert "... 2 more run groups (--breadth)" in tree
    data = cli_json("lineage", "rides:v0")
    assert data["upstream"][0]["count"] == 4 and len(data["upstream"][0]["runs"]) == 4
    assert data["downstream_more"] == 2
    assert cli("lineage", "rides:v0", "--breadth", "20").stdout.count("used by run") == 12


def test_runs_show_the_step_name_and_counts_read_as_english(tmp_path: Path) -> None:
    log("raw", "one file", job_type="data", run_name="bike_rides")
    runs = cli("runs").stdout.splitlines()
    assert runs[0].split()[:3] == ["RUN", "NAME", "JOB"]
    assert "bike_rides" in runs[1]
    shown = cli("show", "raw:v0").stdout
    assert "in 1 file\n" in shown and "logged by:   bike_rides (data, run " in shown
    folder = cli("get", "raw:v0", "--root", str(tmp_path / "out")).stdout.strip()
    assert "OK " in (verified := cli("verify", "raw:v0", "--root", folder).stdout)
    assert ": 1 file matches " in verified


def test_aliases_come_in_one_order_everywhere() -> None:
    logged = log("ordered", "x", aliases=["zeta", "alpha", "mid"])
    expected = ["alpha", "latest", "mid", "zeta"]
    assert wandb.Api().artifact("ordered:latest").aliases == expected
    assert wandb.Api().artifact_versions("dataset", "ordered")[0].aliases == expected
    assert cli_json("show", "ordered:latest")["aliases"] == expected
    assert "alpha, latest, mid, zeta" in cli("versions", "ordered").stdout
    assert logged.aliases == expected


def test_the_quickstart_leaves_nothing_in_the_temp_folder(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "quickstart.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "logged   default/quickstart/bike-model:v0" in done.stdout
    assert list(scratch.iterdir()) == []
