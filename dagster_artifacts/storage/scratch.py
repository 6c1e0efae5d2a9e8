"""Names for scratch files and folders: the one scheme, so that leftovers can be recognised.

Everything this package writes before it is complete goes under a name that says so and says
whose it is: ``<host>-<pid>-<token>-<n>`` (the host with ``-`` replaced, this process's id, a
random token drawn once per process, a counter). Temp files beside their target are
``.<name>.tmp-<tag>``, private folders beside a download root ``.<name>.partial-<tag>``, a
draft's staging folder ``<tag>``. The host and pid let the next writer into the same folder
remove what a killed process of this host left behind; the token keeps two processes that share
a host name and a pid (containers on one volume) from taking each other's files.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import shutil
import socket

_TOKEN = secrets.token_hex(4)
_COUNTER = itertools.count()  # next() is atomic under the GIL: safe across threads


def host_tag() -> str:
    return socket.gethostname().replace("-", "_") or "host"


def owner_tag() -> str:
    """``<host>-<pid>`` of this process."""
    return f"{host_tag()}-{os.getpid()}"


def scratch_tag() -> str:
    """A name no other scratch file or folder of any process has: ``<host>-<pid>-<token>-<n>``."""
    return f"{owner_tag()}-{_TOKEN}-{next(_COUNTER)}"


def temp_path_beside(path: str) -> str:
    """A hidden sibling of ``path`` to write first, so that the final rename is atomic."""
    directory, base = os.path.split(path)
    return os.path.join(directory, f".{base}.tmp-{scratch_tag()}")


def partial_folder_beside(root: str) -> str:
    """Create a hidden sibling folder of ``root`` (same filesystem: it can be renamed into place).

    Folders that killed processes of this host left beside ``root`` are removed first, so an
    interrupted download costs no disk space once the next one into the same place starts.
    """
    parent, name = os.path.split(root)
    os.makedirs(parent, exist_ok=True)
    prefix = f".{name}.partial-"
    sweep_dead(parent, prefix)
    folder = os.path.join(parent, prefix + scratch_tag())
    os.mkdir(folder)
    return folder


def left_by_dead_process(tag: str) -> bool:
    """Whether a scratch name's tag (``<host>-<pid>-...``) belongs to a process that is gone.

    Only processes of this host can be checked; anything else counts as alive.
    """
    host, _sep, rest = tag.partition("-")
    pid = rest.partition("-")[0]
    if host != host_tag() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    return not _alive(int(pid))


def sweep_dead(parent: str, prefix: str = "") -> None:
    """Remove entries of ``parent`` named ``<prefix><tag>`` whose process is gone."""
    with contextlib.suppress(OSError):
        for name in os.listdir(parent):
            if name.startswith(prefix) and left_by_dead_process(name[len(prefix) :]):
                path = os.path.join(parent, name)
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        os.unlink(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
