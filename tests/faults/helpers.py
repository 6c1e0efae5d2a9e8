"""What the fault tests share: making folders, logging versions, reading the store's files
directly, filling a disk, forging a manifest, and running the CLI the way a shell would see it."""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

import dagster_artifacts as wandb
from dagster_artifacts.cli import main
from dagster_artifacts.digests import artifact_digest
from dagster_artifacts.state import reset_stores

#: The ``tmpfs`` and ``read_only`` fixtures: mount something, return where it is.
Mount = Callable[..., Path]
#: The ``store_snapshot`` fixture: files (with sizes) and registry rows of the local store.
Snapshot = Callable[[], dict[str, Any]]


# -- local folders ------------------------------------------------------------------------------


def make_files(folder: Path, files: Mapping[str, bytes | str]) -> Path:
    """Create ``folder`` holding ``files`` (relative path -> content); return it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode()
        path.write_bytes(content)
    return folder


def random_files(folder: Path, count: int, size: int, prefix: str = "part") -> Path:
    """``count`` files of ``size`` random bytes each (so no two share a blob)."""
    return make_files(folder, {f"{prefix}-{i:04d}.bin": os.urandom(size) for i in range(count)})


def log_folder(
    name: str, folder: Path, *, aliases: list[str] | None = None, policy: str | None = None
) -> wandb.Artifact:
    """Log ``folder`` as a new version of ``name`` (type ``dataset``) and wait for it."""
    with wandb.init(job_type="fault-setup") as run:
        artifact = wandb.Artifact(name, type="dataset")
        artifact.add_dir(str(folder), policy=policy)
        run.log_artifact(artifact, aliases=aliases).wait()
    return artifact


def files_under(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones included) -> its bytes."""
    if not folder.exists():
        return {}
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def count_files(folder: Path) -> int:
    if not folder.exists():
        return 0
    return sum(len(files) for _dir, _dirs, files in os.walk(folder))


# -- the store's own files ----------------------------------------------------------------------


def blob_path(store: Path, digest: str, algorithm: str = "md5") -> Path:
    """Where the blob of a base64 ``digest`` lives in a local store."""
    hex_digest = base64.b64decode(digest).hex()
    return store / "blobs" / algorithm / hex_digest[:2] / hex_digest[2:]


def blob_files(store: Path) -> list[Path]:
    blobs = store / "blobs"
    if not blobs.exists():
        return []
    return [p for p in blobs.rglob("*") if p.is_file() and ".tmp-" not in p.name]


def record_of(name: str) -> Any:
    """The registry record of ``name:alias`` (its ``manifest_key``, ``id``, ``digest``)."""
    return wandb.Api().artifact(name)._record


def manifest_path(store: Path, name: str) -> Path:
    return store / record_of(name).manifest_key


def stored_state(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A store snapshot without the ``runs`` table: what a failed log may not change (a run
    that failed is still a run)."""
    rows = {table: rows for table, rows in snapshot["rows"].items() if table != "runs"}
    return {"files": snapshot["files"], "rows": rows}


def forge_manifest(store: Path, name: str, edit: Callable[[dict[str, Any]], None]) -> Path:
    """Edit the manifest of ``name`` *consistently*: the edited JSON is stored under its own
    MD5 key and the registry row (SQLite ``registry.db`` inside ``store``) points at it with
    the matching artifact digest, as if a writer had logged it. Only what the edit itself
    makes wrong can then be caught. Returns the new manifest file."""
    data = json.loads((store / record_of(name).manifest_key).read_bytes())
    edit(data)
    raw = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    digest = artifact_digest((path, entry["digest"]) for path, entry in data["contents"].items())
    return replace_manifest(store, name, raw, digest)


def replace_manifest(store: Path, name: str, raw: bytes, digest: str | None = None) -> Path:
    """Store ``raw`` as a manifest under its own MD5 key and point the registry row of ``name``
    at it (and at ``digest``, when given): a manifest that is what its name says, whatever
    its content. Returns the new manifest file."""
    record = record_of(name)
    key = f"manifests/{hashlib.md5(raw).hexdigest()}.json"
    (store / key).write_bytes(raw)
    reset_stores()
    connection = sqlite3.connect(store / "registry.db")
    try:
        with connection:
            connection.execute(
                "UPDATE versions SET manifest_key = ?, digest = COALESCE(?, digest) WHERE id = ?",
                (key, digest, record.id),
            )
    finally:
        connection.close()
    reset_stores()
    return store / key


# -- a full disk --------------------------------------------------------------------------------


def fill(folder: Path, name: str = "filler") -> Path:
    """Write one file into ``folder`` until its filesystem has no byte left (ENOSPC)."""
    path = folder / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for chunk in (b"\0" * 65536, b"\0" * 4096, b"\0"):
            while True:
                try:
                    os.write(fd, chunk)
                except OSError as error:
                    assert error.errno == errno.ENOSPC, error
                    break
    finally:
        os.close(fd)
    return path


def no_space_hint(message: str) -> bool:
    """Whether an error message tells the user to free space."""
    lowered = message.lower()
    return "space" in lowered and "free" in lowered


# -- the command line ---------------------------------------------------------------------------


def cli(*args: str) -> Result:
    """Run ``dagster-artifacts ARGS`` in-process; an exception escaping the command (which a
    shell would show as a traceback) stays in ``result.exception``."""
    return CliRunner().invoke(main, list(args), catch_exceptions=True)


def describe(result: Result) -> str:
    escaped = result.exception
    if escaped is not None and not isinstance(escaped, SystemExit):
        return f"escaped {type(escaped).__name__}: {escaped}\noutput: {result.output!r}"
    return f"exit {result.exit_code}, output: {result.output!r}"


def assert_one_line_error(result: Result, code: int = 1) -> str:
    """The command failed as the README promises: exit ``code``, one ``Error: ...`` line, no
    traceback. Returns the line."""
    escaped = result.exception
    assert escaped is None or isinstance(escaped, SystemExit), (
        f"an exception escaped the command (a shell shows a traceback): {describe(result)}"
    )
    assert "Traceback" not in result.output, describe(result)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == code, describe(result)
    assert len(lines) == 1 and lines[0].startswith("Error: "), describe(result)
    return lines[0]


def assert_ok(result: Result) -> str:
    assert result.exit_code == 0 and result.exception is None, describe(result)
    return result.output


# -- processes ----------------------------------------------------------------------------------


def start_python(script: str, *args: str) -> subprocess.Popen[str]:
    """Run ``script`` in a new Python process with this test's environment and cwd."""
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
        cwd=os.getcwd(),
    )


def wait_for(condition: Callable[[], bool], timeout: float = 60.0, poll: float = 0.001) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll)
    return False


def kill(process: subprocess.Popen[str]) -> None:
    """SIGKILL ``process`` (as a crash or an OOM kill would) and reap it."""
    process.kill()
    process.wait()
