"""Names for scratch files and folders: the one scheme, so that leftovers can be recognised.

Everything this package writes before it is complete goes under a name that says so and says
whose it is: ``<host>-<pid>-<ns>-<token>-<n>`` (the host with ``-`` replaced, this process's id,
its PID namespace, a random token drawn once per process, a counter). Temp files beside their
target are ``.<name>.tmp-<tag>``, private folders beside a download root
``.<name>.partial-<tag>``, a draft's staging folder ``<tag>``. Host, namespace and pid let the
next writer into the same folder remove what a killed process left behind: only a process of
the same host *and* PID namespace can be asked whether it still runs, so containers that share a
host name and a volume never sweep each other's live files; anything else counts as alive.
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


def _pid_namespace() -> str:
    """This process's PID namespace (the inode of ``/proc/self/ns/pid``), ``0`` where unknown."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "0"


_NAMESPACE = _pid_namespace()


def owner_tag() -> str:
    """``<host>-<pid>-<ns>`` of this process."""
    return f"{host_tag()}-{os.getpid()}-{_NAMESPACE}"


def scratch_tag() -> str:
    """A name no other scratch file or folder of any process has: ``<host>-<pid>-<ns>-<token>-<n>``."""
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
    """Whether a scratch name's tag (``<host>-<pid>-<ns>-...``) belongs to a process that is
    gone. Only processes of this host and PID namespace can be checked; anything else (another
    container, a tag without a namespace) counts as alive."""
    parts = tag.split("-", 3)
    if len(parts) < 3:
        return False
    host, pid, namespace = parts[0], parts[1], parts[2]
    if host != host_tag() or namespace != _NAMESPACE or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False
    return not _alive(int(pid))


#: A temp file of another host (or PID namespace) older than this is a leftover, not in flight.
FOREIGN_SCRATCH_TTL_SECONDS = 24 * 3600.0


def temp_file_tag(name: str) -> str | None:
    """The tag of a temp file name (``.<name>.tmp-<tag>``), None for any other name."""
    if name.startswith(".") and ".tmp-" in name:
        return name.split(".tmp-", 1)[1]
    return None


def in_flight(tag: str, modified: float, now: float) -> bool:
    """Whether the temp file with this tag may still be being written: its process, of this
    host, still runs; or it is another host's and younger than a day (it cannot be asked)."""
    if left_by_dead_process(tag):
        return False
    parts = tag.split("-", 3)
    checkable = len(parts) >= 3 and parts[0] == host_tag() and parts[2] == _NAMESPACE
    return checkable or now - modified < FOREIGN_SCRATCH_TTL_SECONDS


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


def sweep_dead_temp_files(root: str) -> None:
    """Remove the temp files (``.<name>.tmp-<tag>``) that killed processes left under ``root``.

    A download killed while writing into an existing folder leaves them beside the files it was
    replacing; they are hidden, but a folder check (``verify``) would count them as extra files.
    """
    for folder, _dirs, files in os.walk(root):
        for name in files:
            tag = temp_file_tag(name)
            if tag is not None and left_by_dead_process(tag):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(folder, name))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
