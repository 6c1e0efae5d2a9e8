"""The one retry policy of the package: tenacity, exponential backoff with full jitter.

Storage (a reset connection, a throttled request) and the registry (a lost race, a dropped
database connection) both retry the same way; only what counts as transient, how often and how
long they wait differ, and those are the arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tenacity


def retry_policy(
    is_transient: Callable[[BaseException], bool],
    *,
    attempts: int,
    initial_wait: float,
    max_wait: float,
) -> dict[str, Any]:
    """Keyword arguments for :class:`tenacity.Retrying` / :class:`tenacity.AsyncRetrying`.

    The last failure is re-raised as itself (``reraise=True``), so callers translate it into
    their own typed error with whatever context they hold.
    """
    return {
        "stop": tenacity.stop_after_attempt(max(1, attempts)),
        "wait": tenacity.wait_random_exponential(multiplier=initial_wait, max=max_wait),
        "retry": tenacity.retry_if_exception(is_transient),
        "reraise": True,
    }
