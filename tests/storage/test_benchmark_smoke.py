"""The S3 upload benchmark still runs (``--quick``) and prints its table."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "s3_upload.py"


def test_s3_upload_benchmark_quick_mode(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARK), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert any(re.match(r"one-by-one\s+50\s+[\d.]+\s+[\d.]+", line) for line in lines)
    assert any(re.match(r"batched\s+50\s+[\d.]+\s+[\d.]+", line) for line in lines)
    assert re.search(r"batched / one-by-one: [\d.]+x", result.stdout)
