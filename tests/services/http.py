"""HTTP for tests: pytest-httpserver on 127.0.0.1, serving files with ETag and Content-Length."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest


class HttpFiles:
    """Serve byte strings at paths with a strong ETag (MD5 hex) and Content-Length.

    Calling :meth:`serve` again for a path changes the body under the same URL.
    """

    def __init__(self, server: Any) -> None:
        self.server = server
        self.files: dict[str, tuple[bytes, str | None]] = {}
        self.statuses: dict[str, int] = {}

    def serve(self, path: str, body: bytes, etag: str | None = None, with_etag: bool = True) -> str:
        tag = etag or hashlib.md5(body, usedforsecurity=False).hexdigest()
        self.files[path] = (body, tag if with_etag else None)
        self.statuses.pop(path, None)
        self._install()
        return str(self.server.url_for(path))

    def fail(self, path: str, status: int, times: int | None = None) -> None:
        """Answer ``status`` for ``path``: ``times`` times then the file again, or for good."""
        if times is None:
            self.statuses[path] = status
            self.files.pop(path, None)
            self._install()
            return
        for _ in range(times):
            self.server.expect_oneshot_request(path).respond_with_data(b"busy", status=status)

    def _install(self) -> None:
        self.server.clear_all_handlers()
        for file_path, status in self.statuses.items():
            self.server.expect_request(file_path).respond_with_data(b"", status=status)
        for file_path, (data, file_tag) in self.files.items():
            headers = {"ETag": f'"{file_tag}"'} if file_tag else {}
            self.server.expect_request(file_path, method="GET").respond_with_data(
                data, headers=headers
            )
            self.server.expect_request(file_path, method="HEAD").respond_with_data(
                data, headers=headers
            )


@pytest.fixture
def http_files(httpserver: Any) -> HttpFiles:
    return HttpFiles(httpserver)
