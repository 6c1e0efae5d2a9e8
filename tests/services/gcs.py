"""GCS for tests: ``gcp-storage-emulator`` on 127.0.0.1, reached through gcsfs.

``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false`` is set before gcsfs is used, or every call waits
60 s probing for hierarchical namespaces the emulator does not have.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.services.s3 import free_port

os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")


@dataclass
class GCSService:
    """A running GCS emulator and a gcsfs filesystem for arranging and inspecting buckets."""

    endpoint_url: str

    @property
    def storage_options(self) -> dict[str, Any]:
        return {"endpoint_url": self.endpoint_url, "token": "anon", "project": "test"}

    @property
    def fs(self) -> Any:
        import gcsfs

        return gcsfs.GCSFileSystem(**self.storage_options)

    def make_bucket(self, versioned: bool = False) -> str:
        name = f"bucket-{uuid.uuid4().hex[:16]}"
        fs = self.fs
        fs.mkdir(name)
        if versioned:  # the emulator takes versioning through PATCH, as the JSON API allows
            from fsspec.asyn import sync

            sync(fs.loop, fs._call, "PATCH", "b/{}", name, json={"versioning": {"enabled": True}})
        return name

    def put(self, bucket: str, key: str, data: bytes) -> None:
        self.fs.pipe_file(f"{bucket}/{key}", data)
        self.fs.invalidate_cache()

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        fs = self.fs
        fs.invalidate_cache()
        return sorted(path.split("/", 1)[1] for path in fs.find(f"{bucket}/{prefix}"))


@pytest.fixture(scope="session")
def gcs_endpoint() -> Iterator[str]:
    """Start the GCS emulator once per test process (in memory)."""
    pytest.importorskip("gcp_storage_emulator", reason="gcp-storage-emulator is needed")
    from gcp_storage_emulator.server import create_server

    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def gcs(gcs_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> GCSService:
    """The emulator; ``STORAGE_EMULATOR_HOST`` points at it for this test, as Google's SDK expects."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_endpoint)
    monkeypatch.setenv("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    return GCSService(gcs_endpoint)
