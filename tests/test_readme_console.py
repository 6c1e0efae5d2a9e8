"""The README's command-line section runs as printed.

Every ``$ command`` in the ```console blocks of "The `dagster-artifacts` command" section runs
in order, in one folder, against a fresh store, and its output must be the README's, up to
what differs from run to run (times, run ids, the folder's path). The few steps the README
does not show as commands (writing the demo files, a training run that uses a version) are the
hooks below.

    .venv/bin/python -m tests.test_readme_console --write   # rewrite the README from a run
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SECTION_START = "## The `dagster-artifacts` command"
SECTION_END = "## Speed"
SHOWN_FOLDER = "/tmp/demo"

TRAIN = """
import dagster_artifacts as wandb
with wandb.init(job_type="train", name="train_model") as run:
    run.use_artifact("bike-dataset:best")
    model = wandb.Artifact("bike-model", type="model")
    with model.new_file("model.pkl") as handle:
        handle.write("w=0.42")
    run.log_artifact(model).wait()
"""


def _write_rides(folder: Path, days: int) -> None:
    (folder / "train").mkdir(parents=True, exist_ok=True)
    (folder / "test").mkdir(exist_ok=True)
    (folder / "train" / "part-0.csv").write_text("day,rides\n" + "1,10\n" * days)
    (folder / "test" / "part-0.csv").write_text("day,rides\n4,7\n")
    (folder / "scratch.tmp").write_text("not data")
    (folder / ".git").mkdir(exist_ok=True)
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main")


def _train(folder: Path, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-c", TRAIN], cwd=folder, env=env, check=True)


#: Steps before the command with this text (the demo data; a run that uses a version).
HOOKS: dict[str, Callable[[Path, dict[str, str]], None]] = {
    "dagster-artifacts put bikes --name bike-dataset --type dataset --alias best --ignore "
    "'*.tmp' --ignore .git/": lambda folder, _env: _write_rides(folder / "bikes", 2),
    "dagster-artifacts put bikes --name bike-dataset --type dataset --ignore '*.tmp' "
    "--ignore .git/": lambda folder, _env: _write_rides(folder / "bikes", 3),
    "dagster-artifacts put bikes --name bike-dataset --type dataset --ignore '*.tmp' "
    "--ignore .git/ --ttl 30d": lambda folder, _env: _write_rides(folder / "bikes", 4),
    "dagster-artifacts ls": _train,
}

_TIME = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?(\+00:00)?")
_RUN_ID = re.compile(r"\b[a-z0-9]{8}\b")  # (also 8-letter words: on both sides alike)


def normalize(text: str, folder: str) -> str:
    """What may differ between two runs of the same commands, replaced by placeholders."""
    text = text.replace(folder, SHOWN_FOLDER)
    text = _TIME.sub("<time>", text)
    text = _RUN_ID.sub("<run id>", text)
    # Table columns are as wide as their widest cell, and the folder's real path is longer.
    return "\n".join(re.sub(r" {2,}", "  ", line) for line in text.splitlines())


def section_blocks(readme: str) -> list[tuple[int, int, list[tuple[str, list[str]]]]]:
    """``(start, end, [(command, expected lines)])`` of each console block in the section,
    ``start``/``end`` being line numbers of the block's body."""
    lines = readme.splitlines()
    first = lines.index(SECTION_START)
    last = lines.index(SECTION_END, first)
    blocks = []
    index = first
    while index < last:
        if lines[index] == "```console":
            end = lines.index("```", index + 1)
            steps: list[tuple[str, list[str]]] = []
            for line in lines[index + 1 : end]:
                if line.startswith("$ "):
                    steps.append((line[2:], []))
                else:
                    steps[-1][1].append(line)
            blocks.append((index + 1, end, steps))
            index = end
        index += 1
    return blocks


def run_section(folder: Path) -> list[list[tuple[str, list[str], list[str]]]]:
    """Run every command of the section; ``(command, expected, got)`` per command, by block."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_ARTIFACTS_")},
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DAGSTER_ARTIFACTS_ROOT": str(folder / "store"),
        "DAGSTER_ARTIFACTS_CACHE_DIR": str(folder / "cache"),
        "DAGSTER_ARTIFACTS_PROGRESS": "0",
        "COLUMNS": "80",
    }
    results = []
    last_code = 0
    for _start, _end, steps in section_blocks(README.read_text()):
        block = []
        for command, expected in steps:
            hook = HOOKS.get(command)
            if hook is not None:
                hook(folder, env)
            done = subprocess.run(
                ["bash", "-c", f"(exit {last_code}); {command}"],
                cwd=folder,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=120,
                check=False,
            )
            if not command.startswith("echo "):
                last_code = done.returncode
            got = [line.rstrip() for line in done.stdout.splitlines()]
            block.append((command, expected, got))
        results.append(block)
    return results


def test_every_command_of_the_cli_section_prints_what_the_readme_shows() -> None:
    with tempfile.TemporaryDirectory(prefix="readme-cli-") as tmp:
        folder = str(Path(tmp).resolve())
        for block in run_section(Path(folder)):
            for command, expected, got in block:
                want = normalize("\n".join(line.rstrip() for line in expected), folder)
                assert normalize("\n".join(got), folder) == want, f"$ {command}"


def write_readme() -> None:
    """Replace each command's output in the README by what a run prints now."""
    with tempfile.TemporaryDirectory(prefix="readme-cli-") as tmp:
        folder = Path(tmp).resolve()
        results = run_section(folder)
    text = README.read_text()
    lines = text.splitlines()
    for (start, end, _steps), block in reversed(
        list(zip(section_blocks(text), results, strict=True))
    ):
        body = []
        for command, _expected, got in block:
            body.append(f"$ {command}")
            body += [line.replace(str(folder), SHOWN_FOLDER) for line in got]
        lines[start:end] = body
    README.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit("usage: python -m tests.test_readme_console --write")
    write_readme()
