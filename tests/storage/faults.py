"""An S3 filesystem that fails requests on purpose, for retry and no-partial-version tests.

It is real s3fs talking to the real moto server; only every ``fail_every``-th request is replaced
by a connection error before it is sent (the fault a flaky network causes, which moto cannot).
Registered as the ``flakys3://`` and ``deads3://`` protocols so the whole public API can be pointed
at it with ``root="flakys3://bucket/prefix"``.
"""

from __future__ import annotations

from typing import Any

import fsspec
import s3fs


class FlakyS3FileSystem(s3fs.S3FileSystem):  # type: ignore[misc]
    """Fails one S3 request in ``fail_every`` (default 5) with ``ConnectionError``."""

    protocol = ("flakys3",)
    fail_every = 5
    calls = 0
    failures = 0

    async def _call_s3(self, method: str, *args: Any, **kwargs: Any) -> Any:
        cls = type(self)
        cls.calls += 1
        if cls.calls % cls.fail_every == 0:
            cls.failures += 1
            raise ConnectionError(f"injected fault on {method} (request {cls.calls})")
        return await super()._call_s3(method, *args, **kwargs)


class DeadS3FileSystem(FlakyS3FileSystem):
    """Every request that would write fails: a store that is down for good."""

    protocol = ("deads3",)

    async def _call_s3(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if method.startswith(("put", "create_multipart", "upload")):
            type(self).failures += 1
            raise ConnectionError(f"injected permanent fault on {method}")
        return await s3fs.S3FileSystem._call_s3(self, method, *args, **kwargs)


fsspec.register_implementation("flakys3", FlakyS3FileSystem, clobber=True)
fsspec.register_implementation("deads3", DeadS3FileSystem, clobber=True)


class NoMarkerListingS3FileSystem(FlakyS3FileSystem):
    """Listing gc's batch markers is refused (a policy that forbids ``gc/``): the failure comes
    after the writer's lease is stored, before any blob is."""

    protocol = ("nomarkers3",)

    async def _call_s3(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if method == "list_objects_v2" and "/gc" in str(kwargs.get("Prefix", "")):
            type(self).failures += 1
            raise PermissionError(f"injected: access denied listing {kwargs['Prefix']}")
        return await s3fs.S3FileSystem._call_s3(self, method, *args, **kwargs)


fsspec.register_implementation("nomarkers3", NoMarkerListingS3FileSystem, clobber=True)
