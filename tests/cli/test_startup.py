"""``dagster-artifacts ls`` starts light: on a local store it never imports SQLAlchemy, Alembic
or fsspec (SQLAlchemy's import alone takes some 0.3 s, the whole command's budget).

What is checked is the mechanism, in a fresh interpreter: the modules loaded by the time the
command has answered. How long it takes is measured by ``python -m benchmarks.run`` (the CLI
start-up case), not asserted here, where the machine's load would decide.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import dagster_artifacts as wandb
from dagster_artifacts.settings import Settings

#: Runs the CLI as the console script does, then reports the heavy modules it imported.
WRAPPER = """
import json, sys
from dagster_artifacts.cli import main
try:
    main(sys.argv[1:], prog_name="dagster-artifacts")
    code = 0
except SystemExit as done:
    code = done.code
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("sqlalchemy", "alembic", "fsspec"))
print(json.dumps(heavy), file=sys.stderr)
sys.exit(code)
"""


def _run(*args: str) -> tuple[str, str, list[str]]:
    """``dagster-artifacts ARGS`` in a new process: its output, its errors, the heavy modules."""
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    *errors, heavy = done.stderr.splitlines()
    return done.stdout, "\n".join(errors), json.loads(heavy)


def _log(name: str, type: str, project: str | None = None) -> None:
    with wandb.init(job_type="test", project=project) as run:
        artifact = wandb.Artifact(name, type=type)
        with artifact.new_file("data.txt") as handle:
            handle.write(name)
        run.log_artifact(artifact).wait()


@pytest.fixture
def small_store() -> None:
    _log("rides", "dataset")
    _log("bike-model", "model")
    _log("eval-set", "dataset", project="other")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("ls",), "bike-model"),
        (("ls", "--type", "model"), "bike-model"),
        (("ls", "--projects"), "other"),
        (("ls", "--types"), "model"),
        (("ls", "--all-projects", "--json"), '"eval-set"'),
        (("--json", "ls"), '"rides"'),
    ],
)
def test_ls_imports_no_sqlalchemy(small_store: None, args: tuple[str, ...], expected: str) -> None:
    out, _, heavy = _run(*args)
    assert expected in out
    assert heavy == []


def test_ls_of_an_empty_project_hints_without_sqlalchemy(small_store: None) -> None:
    """The hint reads the other projects' collections: still through the light reader."""
    _, errors, heavy = _run("ls", "--project", "nothing-here")
    assert "No artifacts in project default/nothing-here." in errors
    assert "default/other" in errors and "default/uncategorized" in errors
    assert heavy == []


def test_help_imports_no_sqlalchemy() -> None:
    out, _, heavy = _run("--help")
    assert "Commands:" in out
    assert heavy == []


def test_versions_still_opens_the_full_registry(small_store: None) -> None:
    """The light reader is for listings only: anything reading versions opens the store."""
    out, _, heavy = _run("versions", "rides")
    assert out.splitlines()[1].startswith("v0")
    assert "sqlalchemy" in heavy


def test_show_in_a_fresh_process_names_the_run_that_logged_it(small_store: None) -> None:
    """The API imports the run layer only when it makes artifacts; they still know their runs."""
    out, _, _ = _run("show", "rides:latest")
    assert "logged by:   " in out and "(test, run " in out


def test_artifact_save_outside_a_run_in_a_fresh_process(tmp_path: Path) -> None:
    """``wandb.Artifact(...).save()`` with no run, first thing in a process (W&B's API): the
    lazily loaded ``Artifact`` comes with the run layer that logs it."""
    source = tmp_path / "a.txt"
    source.write_text("alpha")
    code = (
        "import dagster_artifacts as wandb\n"
        "artifact = wandb.Artifact('saved', type='dataset')\n"
        f"artifact.add_file({str(source)!r})\n"
        "artifact.save()\n"
        "print(artifact.version, artifact.logged_by().job_type)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["v0", "auto"]


def test_ls_on_a_store_not_created_yet_creates_its_registry() -> None:
    """No registry file yet: ``ls`` opens the full registry, which creates it, as before."""
    registry_file = Path(Settings.resolve().database.removeprefix("sqlite:///"))
    assert not registry_file.exists()
    _, errors, _ = _run("ls")
    assert "No artifacts in project default/uncategorized." in errors
    assert registry_file.is_file()


def test_the_api_default_gc_grace_is_the_garbage_collectors() -> None:
    """``api.py`` repeats ``garbage.DEFAULT_GRACE`` so as not to import the collector."""
    from dagster_artifacts import api, garbage

    assert api.DEFAULT_GC_GRACE == garbage.DEFAULT_GRACE
