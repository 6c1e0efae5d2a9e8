"""``http(s)://`` references, recorded as W&B records them (``HTTPHandler``).

W&B's rules, checked against wandb itself by the parity suite: the headers of a ``GET`` (the
body is not read) give the entry; ``extra.etag`` is the ETag header as sent (quotes and ``W/``
kept), the digest is that ETag with its surrounding quotes stripped (``W/"x"`` -> ``W/"x``), or
the URL when there is no ETag; the size is Content-Length when sent. The ref (and a digest
without ETag) is the URL as ``requests`` sends it (``http://host`` -> ``http://host/``, spaces
percent-encoded). The entry is named after the last segment of the URL as written, query string
included. ``checksum=False`` records the URL as given, as digest and ref, without a request.

One deliberate difference (the README lists it): the ref is the URL requested, not the one a
redirect ended at (redirect targets are often short-lived signed URLs). An error answer (404,
500 once retries are spent) is refused, as W&B refuses it, with :class:`InvalidReferenceError`.
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import TYPE_CHECKING, Any

from dagster_artifacts.errors import (
    ArtifactFileNotFoundError,
    ChecksumMismatchError,
    InvalidReferenceError,
)
from dagster_artifacts.manifest import ManifestEntry
from dagster_artifacts.names import normalize_entry_path
from dagster_artifacts.storage.pipeline import write_verified
from dagster_artifacts.storage.references.handler import md5_from_etag, strip_etag
from dagster_artifacts.storage.retry import retry_sync

if TYPE_CHECKING:
    import requests


def _requested_url(uri: str) -> str:
    """``uri`` as ``requests`` sends it (``http://host`` -> ``http://host/``, spaces and
    non-ASCII percent-encoded): what W&B records, short of following redirects."""
    import requests  # only when a URL is referenced: keeps CLI start-up fast

    try:
        url = requests.Request("GET", uri).prepare().url
    except requests.RequestException as error:
        raise InvalidReferenceError(f"{uri!r} is not a URL requests can fetch: {error}") from error
    return str(url)


class HttpReferenceHandler:
    """``http(s)://`` URIs: ETag (quotes stripped) as digest, Content-Length as size."""

    content_addressed = False  # ETags

    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout

    @cached_property
    def session(self) -> requests.Session:
        """Made on first use: ``requests`` costs 40 ms to import, and most commands never
        fetch a URL."""
        import requests

        return requests.Session()

    def store(
        self, uri: str, name: str | None, checksum: bool, max_objects: int
    ) -> list[ManifestEntry]:
        default = os.path.basename(uri)  # W&B: the URL's last segment, query string and all
        if not (name or default):
            raise InvalidReferenceError(
                f"Cannot infer an entry name from {uri!r} (it ends with '/'); pass name=..."
            )
        path = normalize_entry_path(name or default)
        if not checksum:
            return [ManifestEntry(path=path, digest=uri, ref=uri)]
        url = _requested_url(uri)
        headers = self._headers(url)
        etag = headers.get("ETag")
        length = headers.get("Content-Length")
        return [
            ManifestEntry(
                path=path,
                digest=etag.strip('"') if etag else url,
                size=int(length) if length is not None else None,
                ref=url,
                extra={"etag": etag} if etag else {},
            )
        ]

    def _headers(self, uri: str) -> Any:
        """The headers of a GET of ``uri`` (redirects followed, body not read); transient
        failures are retried, an error answer is refused."""

        def get() -> Any:
            with self.session.get(
                uri, stream=True, allow_redirects=True, timeout=self.timeout
            ) as answer:
                answer.raise_for_status()
                return answer.headers

        import requests

        try:
            return retry_sync(get, "read", uri)
        except (requests.RequestException, OSError) as error:
            raise InvalidReferenceError(
                f"Cannot reference {uri}: {error}. Check the URL; an error page is not tracked "
                "as the file."
            ) from error

    def load(self, entry: ManifestEntry, dest: str) -> None:
        """Download, refusing a changed ETag, and checking size (and MD5 for MD5 ETags).

        Transient failures (connection resets, 5xx, 429) are retried with backoff. ETags are
        compared without quotes and ``W/``, so entries recorded before they were kept as sent
        still match.
        """
        ref = entry.ref
        assert ref is not None
        recorded = strip_etag(entry.extra.get("etag")) if entry.extra else None

        def attempt() -> None:
            with self.session.get(ref, stream=True, timeout=self.timeout) as response:
                if response.status_code in (404, 410):
                    raise ArtifactFileNotFoundError(
                        f"Referenced URL {ref} is gone (HTTP {response.status_code}); restore "
                        "it or re-log the artifact."
                    )
                response.raise_for_status()
                served = strip_etag(response.headers.get("ETag"))
                if recorded and served != recorded:
                    raise ChecksumMismatchError(
                        f"{ref} changed since it was referenced (ETag {served!r}, "
                        f"recorded {recorded!r}); re-log the artifact to track the new content."
                    )
                write_verified(
                    response.iter_content(1024 * 1024),
                    dest,
                    expected_digest=md5_from_etag(recorded),
                    expected_size=entry.size,
                    source=ref,
                )

        retry_sync(attempt, "download", ref)
