"""The benchmarks still run. CI runs them only in ``--quick`` mode: small sizes, no peers
installed, no timing asserted (benchmarks are not timed tests); these check that every case
executes and reports a number, so a change cannot silently break ``benchmarks/``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
        check=False,
        env={**_clean_env(), "DAGSTER_ARTIFACTS_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result


def _clean_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_ARTIFACTS_")}


def test_every_speed_case_runs_in_quick_mode(tmp_path: Path) -> None:
    rows_file = tmp_path / "rows.json"
    result = _run(
        tmp_path,
        "-m",
        "benchmarks.run",
        "--quick",
        "--no-install",
        "--workdir",
        str(tmp_path / "work"),
        "--json",
        str(rows_file),
    )
    rows = json.loads(rows_file.read_text())
    cases = {row["case"].split()[0] for row in rows}
    # every case, and "0": the disk probes before and after them
    assert cases == {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"}, cases
    probes = [row for row in rows if row["case"].startswith("0 disk")]
    assert [row["unit"] for row in probes] == ["MB/s", "s", "MB/s", "s"], probes
    ours = [row["ours"] for row in rows]
    assert all(isinstance(value, (int, float)) and value > 0 for value in ours), rows
    # The printed table has one line per row, each with its target.
    table = [line for line in result.stdout.splitlines() if re.match(r"\| \d+ ", line)]
    assert len(table) == len(rows)


def test_s3_upload_benchmark_quick_mode(tmp_path: Path) -> None:
    result = _run(tmp_path, str(REPO / "benchmarks" / "s3_upload.py"), "--quick")
    lines = result.stdout.splitlines()
    assert any(re.match(r"one-by-one\s+50\s+[\d.]+\s+[\d.]+", line) for line in lines)
    assert any(re.match(r"batched\s+50\s+[\d.]+\s+[\d.]+", line) for line in lines)
    assert re.search(r"batched / one-by-one: [\d.]+x", result.stdout)


def test_concurrency_benchmark_quick_mode(tmp_path: Path) -> None:
    result = _run(tmp_path, str(REPO / "benchmarks" / "concurrency.py"), "--quick")
    rows = re.findall(r"^\| (sqlite|postgresql)\s*\|\s*(\d+) \|\s*(\d+) \|", result.stdout, re.M)
    measured = {
        (registry, int(writers)) for registry, writers, versions in rows if int(versions) > 0
    }
    expected = {(registry, n) for registry in ("sqlite", "postgresql") for n in (1, 2, 4, 8)}
    assert measured == expected, result.stdout


def _soak_summary(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """The summary's ``label  value`` lines (labels padded to 24 columns)."""
    return {
        line[:24].strip(): line[24:].strip()
        for line in result.stdout.splitlines()
        if len(line) > 24 and line[:24].strip() and not line.startswith((" ", "-"))
    }


def _check_soak(result: subprocess.CompletedProcess[str]) -> None:
    summary = _soak_summary(result)
    checked = re.fullmatch(r"(\d+) versions checked, 0 lost/unverifiable", summary["final check"])
    assert checked and int(checked.group(1)) > 0, result.stdout
    assert summary["errors by type"] == "none", result.stdout
    assert int(summary["versions committed"]) > 0, result.stdout
    assert re.match(r"\d+ completed", summary["gc passes"]), result.stdout
    assert re.match(r"\d+ SIGKILLs", summary["faults injected"]), result.stdout
    assert "RESULT: PASS" in result.stdout


def test_soak_quick_mode(tmp_path: Path) -> None:
    result = _run(
        tmp_path, str(REPO / "benchmarks" / "soak.py"), "--quick", "--workdir", str(tmp_path)
    )
    _check_soak(result)


def test_soak_quick_mode_on_s3(tmp_path: Path) -> None:
    result = _run(
        tmp_path,
        str(REPO / "benchmarks" / "soak.py"),
        "--quick",
        "--store",
        "s3",
        "--workdir",
        str(tmp_path),
    )
    _check_soak(result)
    assert "Soak summary (store s3, registry " in result.stdout


def test_gc_pause_benchmark_compares_the_three_choices(tmp_path: Path) -> None:
    result = _run(
        tmp_path, str(REPO / "benchmarks" / "gc_pause.py"), "--files", "300", "--rounds", "1"
    )
    rows = re.findall(r"^  (\w+)\s+add_dir\s+[\d.]+ s \(([\d.]+)x\)", result.stdout, re.M)
    assert [name for name, _ in rows] == ["freeze", "disable", "none"], result.stdout
    assert dict(rows)["none"] == "1.00"


def test_prefault_mode_runs_and_leaves_no_scratch_file(tmp_path: Path) -> None:
    """``--prefault`` precedes each measurement with a scratch file written and deleted."""
    import os

    from benchmarks.prefault import ENV, settle

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    os.environ[ENV] = f"{scratch}:3"
    try:
        settle()
    finally:
        del os.environ[ENV]
    assert list(scratch.iterdir()) == []
    rows_file = tmp_path / "rows.json"
    _run(
        tmp_path,
        "-m",
        "benchmarks.run",
        "--quick",
        "--no-install",
        "--prefault",
        "--cases",
        "1",
        "--workdir",
        str(scratch),
        "--json",
        str(rows_file),
    )
    rows = json.loads(rows_file.read_text())
    assert {row["case"].split()[0] for row in rows} == {"0", "1"}
    assert all(row["ours"] > 0 for row in rows)
