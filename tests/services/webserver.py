"""A real ``dagster-webserver`` on loopback, on a given ``DAGSTER_HOME``, for GraphQL checks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

WEBSERVER = Path(sys.executable).with_name("dagster-webserver")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def http_service(
    command: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    log_path: Path,
    probe_url: str,
    startup_seconds: float = 90,
) -> Iterator[None]:
    """Run ``command`` (a web server), wait until ``probe_url`` answers, then stop it on exit.

    A server that dies while starting fails the test with its log; one that never answers in
    ``startup_seconds`` too. Shared by the Dagster UI and the artifact browser fixtures.
    """
    with open(log_path, "wb") as log:
        server = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + startup_seconds
            while True:
                try:
                    urllib.request.urlopen(probe_url, timeout=2)
                    break
                except OSError:
                    assert server.poll() is None, log_path.read_text()
                    assert time.monotonic() < deadline, f"{command[0]} did not start"
                    time.sleep(0.2)
            yield
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@contextmanager
def dagster_webserver(
    home: Path, cwd: Path, log_path: Path, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Start ``dagster-webserver -w workspace.yaml`` in ``cwd`` on ``home`` (environment
    ``env``, default this process's); yield its base URL once it answers; stop it."""
    port = free_port()
    env = {**(os.environ if env is None else env), "DAGSTER_HOME": str(home)}
    base = f"http://127.0.0.1:{port}"
    command = [str(WEBSERVER), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    with http_service(
        command, cwd=cwd, env=env, log_path=log_path, probe_url=f"{base}/server_info"
    ):
        yield base


def graphql(base: str, query: str, variables: dict[str, Any] | None = None) -> Any:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"{base}/graphql", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        payload = json.loads(response.read())
    assert "errors" not in payload, payload
    return payload["data"]
