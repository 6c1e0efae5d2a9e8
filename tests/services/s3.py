"""S3 for tests: moto's ``ThreadedMotoServer`` on 127.0.0.1, reached through s3fs like real S3.

moto's in-process mock cannot be used: s3fs is async (aiobotocore) and bypasses it. The server
is started once per test process; every test makes its own buckets (unique names), so tests do
not see each other's objects.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

DUMMY_KEY_ID = "testing-access-key"
DUMMY_SECRET = "testing-secret-key"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class S3Service:
    """A running moto S3 endpoint with a boto3 client for arranging and inspecting buckets."""

    endpoint_url: str
    client: Any

    @property
    def storage_options(self) -> dict[str, Any]:
        """What a user passes to reach this endpoint (credentials come from the environment)."""
        return {"endpoint_url": self.endpoint_url}

    def make_bucket(self, versioned: bool = False) -> str:
        name = f"bucket-{uuid.uuid4().hex[:16]}"
        self.client.create_bucket(Bucket=name)
        if versioned:
            self.client.put_bucket_versioning(
                Bucket=name, VersioningConfiguration={"Status": "Enabled"}
            )
        return name

    def put(self, bucket: str, key: str, data: bytes) -> dict[str, Any]:
        return dict(self.client.put_object(Bucket=bucket, Key=key, Body=data))

    def get(self, bucket: str, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=bucket, Key=key)["Body"].read())

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        return sorted(
            item["Key"]
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        )


def _dummy_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", DUMMY_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", DUMMY_SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """Start moto's S3 server once per test process."""
    pytest.importorskip("moto.server", reason="moto[server] is needed for the S3 tests")
    from moto.server import ThreadedMotoServer

    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> S3Service:
    """The moto endpoint, with dummy AWS credentials in the environment for this test."""
    import boto3

    _dummy_aws_environment(monkeypatch)
    client = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        aws_access_key_id=DUMMY_KEY_ID,
        aws_secret_access_key=DUMMY_SECRET,
        region_name="us-east-1",
    )
    return S3Service(moto_endpoint, client)
