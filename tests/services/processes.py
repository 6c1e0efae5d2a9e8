"""Helpers for tests that start worker processes."""

from __future__ import annotations

import signal


def stoppable() -> None:
    """A pool initializer that lets the pool stop its worker.

    A worker inherits ignored signals from whoever started the test run (a run started in the
    background can hand it an ignored SIGTERM), and ``Pool.terminate`` stops workers with
    SIGTERM: the pool's teardown would then wait for them forever.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
