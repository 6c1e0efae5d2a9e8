"""Retry transient storage failures with backoff; turn permanent ones into ``StorageError``.

Object stores fail now and then (a reset connection, a throttled request, a timeout). Those are
retried a few times with exponential backoff and jitter. Anything that retrying cannot fix (no such
bucket, access denied, a bad request) fails at once with the URL in the message, so the user knows
which object and which store to look at. Secrets never appear: messages name URLs, never options.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import tenacity

from dagster_artifacts.errors import ArtifactError, StorageError
from dagster_artifacts.retrying import retry_policy

T = TypeVar("T")

RETRY_ATTEMPTS = 5
RETRY_INITIAL_WAIT = 0.05
RETRY_MAX_WAIT = 2.0

_TRANSIENT_ERRNOS = {
    errno.EIO,
    errno.EAGAIN,
    errno.EBUSY,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.ECONNREFUSED,
    errno.ETIMEDOUT,
    errno.EPIPE,
}


def is_transient(error: BaseException) -> bool:
    """True for failures that a later attempt may not see (network, throttling, timeouts)."""
    if isinstance(error, ArtifactError):
        return False  # our own verdicts (checksum mismatch, ...) are final
    status = getattr(getattr(error, "response", None), "status_code", None)
    if isinstance(status, int):  # an HTTP answer: only server errors and throttling pass
        return status >= 500 or status == 429
    if isinstance(error, (ConnectionError, TimeoutError, asyncio.TimeoutError)):
        return True
    if isinstance(
        error,
        (
            FileNotFoundError,
            PermissionError,
            FileExistsError,
            IsADirectoryError,
            NotADirectoryError,
        ),
    ):
        return False
    if isinstance(error, OSError):
        return error.errno in _TRANSIENT_ERRNOS or error.errno is None
    name = type(error).__name__
    # aiohttp / botocore transport errors, without importing either.
    return name in {
        "ClientConnectorError",
        "ClientOSError",
        "ServerDisconnectedError",
        "ServerTimeoutError",
        "ClientPayloadError",
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ResponseStreamingError",
    }


#: What to do, by the errno of a failed local operation.
_HINTS = {
    errno.ENOSPC: "the disk is full: free space there, or use another folder",
    errno.EDQUOT: "the disk quota is used up: free space there, or use another folder",
    errno.EROFS: "the file system is read-only: write somewhere writable (reading still works)",
    errno.EACCES: "permission denied: check the folder's owner and mode",
    errno.EPERM: "operation not permitted: check the folder's owner and mode",
}


def storage_error(action: str, url: str, error: BaseException) -> BaseException:
    """The error a user sees: typed, naming the URL, saying what to check."""
    if isinstance(error, ArtifactError):
        return error
    code = getattr(error, "errno", None)
    hint = _HINTS.get(code or -1)
    if hint is not None:
        return StorageError(f"Could not {action} {url}: {hint} ({error}).", url=url, errno=code)
    if isinstance(error, PermissionError):
        return StorageError(
            f"Access denied to {url} while trying to {action}: check the credentials "
            f"(storage_options or the cloud's environment variables) and permissions. ({error})",
            url=url,
            errno=code,
        )
    if isinstance(error, FileNotFoundError):
        return StorageError(
            f"Could not {action} {url}: it does not exist ({error}). Check that the bucket "
            "exists and the store root or reference is spelled right.",
            url=url,
            errno=code,
        )
    return StorageError(f"Could not {action} {url}: {error}", url=url, errno=code)


def _retrying_kwargs() -> dict[str, Any]:
    return retry_policy(
        is_transient,
        attempts=RETRY_ATTEMPTS,
        initial_wait=RETRY_INITIAL_WAIT,
        max_wait=RETRY_MAX_WAIT,
    )


def retry_sync(func: Callable[[], T], action: str, url: str) -> T:
    """Call ``func`` with retries; a final failure becomes :class:`StorageError` naming ``url``.

    ``FileNotFoundError`` passes through unchanged so that callers can ask "is it there?".
    """
    try:
        for attempt in tenacity.Retrying(**_retrying_kwargs()):
            with attempt:
                return func()
    except FileNotFoundError:
        raise
    except Exception as error:
        raise storage_error(action, url, error) from error
    raise AssertionError("unreachable")  # pragma: no cover


async def retry_async(func: Callable[[], Awaitable[T]], action: str, url: str) -> T:
    """The coroutine twin of :func:`retry_sync`."""
    try:
        async for attempt in tenacity.AsyncRetrying(**_retrying_kwargs()):
            with attempt:
                return await func()
    except FileNotFoundError:
        raise
    except Exception as error:
        raise storage_error(action, url, error) from error
    raise AssertionError("unreachable")  # pragma: no cover
