"""What the download cache's folders hold that its index does not name, swept by ``cache prune``.

A download killed between writing and recording (or an older version's files) leaves files no
entry points to. Only those an hour old or more go: a younger one may be another process's
download in flight, written before it is recorded.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Collection

STRAY_AGE = 3600.0


def sweep_strays(
    blobs_dir: str, file_keys: Collection[str], segments_dir: str, segments: Collection[str]
) -> None:
    """Remove old files under ``blobs_dir`` whose key (their "/"-separated path under it) is
    not in ``file_keys``, and old files in ``segments_dir`` not named in ``segments``."""
    for directory, _dirs, names in os.walk(blobs_dir):
        for name in names:
            full = os.path.join(directory, name)
            if os.path.relpath(full, blobs_dir).replace(os.sep, "/") not in file_keys:
                _unlink_if_old(full)
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(segments_dir):
            if name not in segments:
                _unlink_if_old(os.path.join(segments_dir, name))


def _unlink_if_old(path: str) -> None:
    with contextlib.suppress(OSError):
        if time.time() - os.path.getmtime(path) > STRAY_AGE:
            os.unlink(path)
