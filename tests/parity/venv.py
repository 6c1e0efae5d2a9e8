"""The oracle's own virtualenv: the real ``wandb`` from PyPI, never mixed with the project's.

``tests/parity/.venv-wandb`` (gitignored) holds what ``requirements.txt`` beside this file lists.
It is (re)made when missing or when ``requirements.txt`` changed since it was made (a stamp file
records the hash), under a file lock so that two pytest-xdist workers do not build it at once.

    python -m tests.parity.venv     # what `make parity-venv` runs (and `make test` before pytest)

Standard library only: it runs before anything else is installed.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-wandb"
PYTHON = VENV / "bin" / "python"
REQUIREMENTS = HERE / "requirements.txt"
STAMP = VENV / ".installed"
LOCK = HERE / ".venv-wandb.lock"


class OracleUnavailable(RuntimeError):
    """The wandb virtualenv could not be made (no network, no pip): the message says why."""


def _wanted() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()


def is_ready() -> bool:
    """The venv exists and was made from the current ``requirements.txt``."""
    return PYTHON.exists() and STAMP.exists() and STAMP.read_text().strip() == _wanted()


def ensure_venv(quiet: bool = True) -> Path:
    """The oracle's interpreter, making the venv first if it is missing or stale.

    Raises :class:`OracleUnavailable` with pip's last lines when the install fails.
    """
    if is_ready():
        return PYTHON
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another worker may be building it right now
        if is_ready():
            return PYTHON
        shutil.rmtree(VENV, ignore_errors=True)
        base = getattr(sys, "_base_executable", sys.executable)
        steps = [
            [base, "-m", "venv", str(VENV)],
            [
                str(PYTHON),
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "-q",
                "-r",
                str(REQUIREMENTS),
            ],
        ]
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        for command in steps:
            result = subprocess.run(command, capture_output=quiet, text=True, env=env, check=False)
            if result.returncode != 0:
                shutil.rmtree(VENV, ignore_errors=True)
                tail = ((result.stdout or "") + (result.stderr or ""))[-2000:]
                raise OracleUnavailable(
                    f"Cannot make the wandb oracle's virtualenv {VENV} "
                    f"({' '.join(command[:4])} ... failed): {tail}"
                )
        STAMP.write_text(_wanted() + "\n")
    return PYTHON


if __name__ == "__main__":
    try:
        python = ensure_venv(quiet=False)
    except OracleUnavailable as error:
        sys.exit(str(error))
    version = subprocess.run(
        [str(python), "-c", "import wandb; print(wandb.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print(f"wandb {version} in {VENV}")
