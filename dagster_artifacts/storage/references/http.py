"""``http(s)://`` references: the ETag (quotes stripped) as digest, Content-Length as size."""

from __future__ import annotations

from typing import Any

import requests

from dagster_artifacts.errors import (
    ArtifactFileNotFoundError,
    ChecksumMismatchError,
    InvalidReferenceError,
)
from dagster_artifacts.manifest import ManifestEntry
from dagster_artifacts.storage.pipeline import write_verified
from dagster_artifacts.storage.references.handler import md5_from_etag, untracked_entry
from dagster_artifacts.storage.retry import retry_sync


class HttpReferenceHandler:
    content_addressed = False  # ETags

    """``http(s)://`` URIs: ETag (quotes stripped) as digest, Content-Length as size."""

    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.session = requests.Session()

    @staticmethod
    def _etag(headers: Any) -> str | None:
        etag = headers.get("ETag")
        if not etag:
            return None
        if etag.startswith("W/"):
            etag = etag[2:]
        return etag.strip('"')

    def store(
        self, uri: str, name: str | None, checksum: bool, max_objects: int
    ) -> list[ManifestEntry]:
        if not checksum:
            return [untracked_entry(uri, name)]

        def head() -> requests.Response:
            answer = self.session.head(uri, allow_redirects=True, timeout=self.timeout)
            answer.raise_for_status()
            return answer

        try:
            response = retry_sync(head, "read", uri)  # transient failures are retried
        except (requests.RequestException, OSError) as error:
            raise InvalidReferenceError(f"Cannot reach {uri}: {error}") from error
        etag = self._etag(response.headers)
        length = response.headers.get("Content-Length")
        entry = untracked_entry(uri, name)
        entry.digest = etag or uri
        entry.size = int(length) if length is not None else None
        if etag:
            entry.extra = {"etag": etag}
        return [entry]

    def load(self, entry: ManifestEntry, dest: str) -> None:
        """Download, refusing a changed ETag, and checking size (and MD5 for MD5 ETags).

        Transient failures (connection resets, 5xx, 429) are retried with backoff.
        """
        ref = entry.ref
        assert ref is not None
        untracked = entry.digest == ref and not entry.extra  # checksum=False
        recorded = entry.extra.get("etag") if entry.extra else None

        def attempt() -> None:
            with self.session.get(ref, stream=True, timeout=self.timeout) as response:
                if response.status_code in (404, 410):
                    raise ArtifactFileNotFoundError(
                        f"Referenced URL {ref} is gone (HTTP {response.status_code}); restore "
                        "it or re-log the artifact."
                    )
                response.raise_for_status()
                served = self._etag(response.headers)
                if recorded and served != recorded:
                    raise ChecksumMismatchError(
                        f"{ref} changed since it was referenced (ETag {served!r}, "
                        f"recorded {recorded!r}); re-log the artifact to track the new content."
                    )
                write_verified(
                    response.iter_content(1024 * 1024),
                    dest,
                    expected_digest=None if untracked else md5_from_etag(recorded),
                    expected_size=None if untracked else entry.size,
                    source=ref,
                )

        retry_sync(attempt, "download", ref)
