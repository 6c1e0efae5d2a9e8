"""The staging area of a draft artifact: private copies of what it holds, taken at ``add`` time.

With W&B's default ``policy="mutable"``, adding a file copies it here while hashing it (one read
of each byte, see :func:`.storage.staged.stage_copy`), so the artifact is a snapshot of the
file at ``add`` time: changing or deleting the file afterwards does not change what is logged.
The commit then *moves* each copy into a local store with one ``rename`` (nothing is read or
written twice), or uploads it to an object store.

Where it lives: ``<cache dir>/staging/<host>-<pid>-<token>-<n>/`` (a scratch name, see
:mod:`.storage.scratch`), one folder per draft. The cache dir is normally on the same filesystem
as a local store (both under the user's home by default), which makes the ``rename`` possible; on another filesystem the commit copies instead
(verified). The store itself never holds staged files, so a failed or abandoned log leaves the
store untouched (invariant 7) and gc never sees them.

Clean-up: the folder is removed when the draft is committed, and by a ``weakref`` finalizer when
a draft that was never logged is garbage collected or the process exits. A process killed
mid-log cannot clean up; the next staging area created under the same cache dir on the same host
removes folders whose process is gone.
"""

from __future__ import annotations

import itertools
import os
import shutil
import threading
import weakref

from dagster_artifacts.storage.scratch import scratch_tag, sweep_dead

STAGING = "staging"


class StagingArea:
    """One draft's staging folder; created on first use, removed by :meth:`cleanup`."""

    def __init__(self, cache_dir: str) -> None:
        self._parent = os.path.join(os.path.abspath(cache_dir), STAGING)
        self._path = os.path.join(self._parent, scratch_tag())
        self._created = False
        self._lock = threading.Lock()
        self._counter = itertools.count()  # next() is atomic under the GIL: safe across threads
        self._finalizer = weakref.finalize(self, shutil.rmtree, self._path, ignore_errors=True)

    @property
    def path(self) -> str:
        """The folder, created on first use: re-logging unchanged files never touches disk."""
        if not self._created:
            with self._lock:
                if not self._created:
                    os.makedirs(self._parent, exist_ok=True)
                    sweep_dead(self._parent)  # folders of killed processes of this host
                    os.makedirs(self._path, exist_ok=True)
                    self._created = True
        return self._path

    def new_path(self) -> str:
        """A fresh file name in the area, for a copy whose digest is not known yet.

        Small copies are named by their digest instead (``<hex[:2]>/<hex[2:]>``, see
        :func:`.storage.staged.stage_copy`), so these never collide with them.
        """
        return os.path.join(self.path, f"tmp-{next(self._counter)}")

    def cleanup(self) -> None:
        if self._created:
            self._finalizer()
        else:
            self._finalizer.detach()
