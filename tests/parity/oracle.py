"""The oracle: build artifacts with the real ``wandb``, offline, and print what it made.

Run by the interpreter of ``tests/parity/.venv-wandb`` (never the project's), from the test
suite (``tests/parity/conftest.py``):

    .venv-wandb/bin/python oracle.py CASES.json RESULTS.json

``CASES.json`` is a list of cases (see ``steps.py``); ``RESULTS.json`` gets, per case id, the
manifest JSON (``artifact.manifest.to_manifest_json()``), the artifact digest
(``artifact.digest``, which for a draft is ``manifest.digest()``) and the errors of its steps.
All cases run in one process: starting Python and importing wandb costs more than most cases.

One change to wandb's behaviour, for time only: its HTTP session retries 5xx answers 16 times
with backoff up to two minutes (20 minutes in all). The count is kept, the sleeps are dropped, so
a case whose server keeps failing ends in milliseconds with the same outcome.
"""

from __future__ import annotations

import json
import os
import sys

import steps  # beside this file: the same recipe runner the project's side uses


def main(cases_path: str, results_path: str) -> None:
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    from urllib3.util.retry import Retry

    Retry.DEFAULT_BACKOFF_MAX = 0
    Retry.get_backoff_time = lambda self: 0.0  # type: ignore[method-assign]
    import wandb

    with open(cases_path, encoding="utf-8") as handle:
        cases = json.load(handle)
    results = {case["id"]: steps.run_case(wandb, case) for case in cases}
    with open(results_path, "w", encoding="utf-8") as handle:
        json.dump({"wandb": wandb.__version__, "results": results}, handle)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
