"""An S3 protocol server (moto) in its own process, for benchmarks.

The tests use ``ThreadedMotoServer``; a benchmark must not, because a server thread would share
the measured (or supervising) process's GIL with the client.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"moto server did not start on port {port}")


@contextmanager
def moto_server(access_log: str | None = None) -> Iterator[str]:
    """Start ``python -m moto.server`` on a free port; yield its endpoint URL; stop it.

    ``access_log``: a file to receive the server's request log (one line per request, as the
    server saw it: what :func:`count_requests` counts)."""
    port = free_port()
    log = open(access_log, "ab") if access_log else None  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=log if log is not None else subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if log is not None:
            log.close()


_REQUEST = re.compile(r'"(?:\x1b\[[0-9;]*m)*([A-Z]+) (\S+) HTTP/[0-9.]+')


def count_requests(access_log: str, start: int = 0) -> tuple[dict[str, int], int]:
    """Requests in the server's log from byte ``start`` on, by kind (PUT, GET, LIST, HEAD,
    DELETE, POST), and the log's end offset (the next call's ``start``). A GET of a bucket or
    with a listing query is a LIST."""
    counts = {kind: 0 for kind in ("PUT", "GET", "LIST", "HEAD", "DELETE", "POST")}
    with open(access_log, "rb") as log:
        log.seek(start)
        data = log.read()
        end = start + len(data)
    for match in _REQUEST.finditer(data.decode("utf-8", "replace")):
        method, target = match.groups()
        path, _, query = target.partition("?")
        if method == "GET" and (
            "list-type" in query or "prefix=" in query or path.strip("/").count("/") == 0
        ):
            method = "LIST"
        counts[method] = counts.get(method, 0) + 1
    return counts, end
