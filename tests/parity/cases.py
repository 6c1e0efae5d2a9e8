"""How parity cases are written down: a case is a recipe (the ``Artifact`` arguments and a list
of calls, see ``steps.py``) that a builder writes at session start, with the files, routes and
objects it needs, so that wandb and dagster_artifacts run the same calls on the same inputs.

A builder takes a :class:`Context` (a folder of its own, and the services of its kind) and
returns the steps. Cases register themselves with :func:`case`; ``local_cases.py`` and
``remote_cases.py`` hold them. A case where this project differs from W&B on purpose names the
label of ``differences.DIFFERENCES`` (``deliberate=``; the README's "What differs from W&B" lists
each one) and may check what
this project does instead (``ours=``).
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.parity.differences import DIFFERENCES

Step = dict[str, Any]
#: The kinds of case, one oracle batch each: local files and file:// references, http, https
#: (TLS with a test certificate both sides trust), S3, GCS.
KINDS = ("local", "http", "https", "s3", "gcs")


@dataclass
class Context:
    """What a builder may use: ``root`` (a folder of its own) and its kind's service."""

    root: Path
    http: Any = None  # tests.services.http.HttpRoutes
    s3: Any = None  # conftest.S3Site
    gcs: Any = None  # conftest.GCSSite
    prefix: str = ""  # unique per case: route paths, bucket names

    def file(self, relative: str, data: bytes | str = b"") -> str:
        """Write ``root/relative`` (parents made); its absolute path."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return str(path)

    def folder(self, relative: str, files: dict[str, bytes | str]) -> str:
        """A folder holding ``files`` (relative path -> bytes); its absolute path."""
        base = self.root / relative
        base.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            target = base / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data.encode() if isinstance(data, str) else data)
        return str(base)


@dataclass(frozen=True)
class CaseDef:
    id: str
    kind: str
    build: Callable[[Context], list[Step]]
    artifact: dict[str, Any] = field(default_factory=dict)
    deliberate: str | None = None
    ours: Callable[[dict[str, Any]], None] | None = None


CASES: dict[str, CaseDef] = {}


def case(
    kind: str,
    case_id: str,
    *,
    artifact: dict[str, Any] | None = None,
    deliberate: str | None = None,
    ours: Callable[[dict[str, Any]], None] | None = None,
) -> Callable[[Callable[[Context], list[Step]]], Callable[[Context], list[Step]]]:
    """Register the decorated builder as case ``case_id`` of ``kind``."""
    assert kind in KINDS, kind
    assert deliberate is None or deliberate in DIFFERENCES, f"unlisted difference {deliberate!r}"

    def register(build: Callable[[Context], list[Step]]) -> Callable[[Context], list[Step]]:
        add_case(
            CaseDef(case_id, kind, build, dict(artifact or {}), deliberate, ours),
        )
        return build

    return register


def add_case(definition: CaseDef) -> None:
    assert definition.id not in CASES, f"two cases named {definition.id}"
    CASES[definition.id] = definition


# -- steps ----------------------------------------------------------------------------------
def call(op: str, *args: Any, **kwargs: Any) -> Step:
    return {"op": op, "args": list(args), "kwargs": kwargs}


def add_file(*args: Any, **kwargs: Any) -> Step:
    return call("add_file", *args, **kwargs)


def add_dir(*args: Any, **kwargs: Any) -> Step:
    return call("add_dir", *args, **kwargs)


def add_reference(*args: Any, **kwargs: Any) -> Step:
    return call("add_reference", *args, **kwargs)


def new_file(
    name: str, *args: Any, text: str | None = None, data: bytes | None = None, **kwargs: Any
) -> Step:
    """``new_file(name, *args, **kwargs)``, then one write of ``text`` (or bytes ``data``)."""
    import base64

    step = call("new_file", name, *args, **kwargs)
    if data is not None:
        step["base64"] = base64.b64encode(data).decode()
    else:
        step["text"] = text or ""
    return step


def add_object(obj: dict[str, Any], name: str, **kwargs: Any) -> Step:
    step = call("add", name, **kwargs)
    step["object"] = obj
    return step


def as_path(path: str) -> dict[str, str]:
    """An argument that reaches the call as a ``pathlib.Path``."""
    return {"$path": path}


# -- seeded random trees ----------------------------------------------------------------------
_WORDS = ["data", "train", "README", "model", "x", "img", "a", "Zeta", "notes", "v2", "00"]
_UNICODE = ["café", "naïve", "Ångström", "日本語", "Ελληνικά", "🎉", "straße", "ﬁle", "ñ", "Ω"]
#: Legal in POSIX names, not in Windows ones; plus characters URLs and shells treat specially.
_ODD = list(':*?"<>|\\') + list(" #%&'!@$+,;=[]{}()~`^")


def _random_name(rng: random.Random) -> str:
    """One file or folder name: words, unicode (NFC or NFD), odd characters, spaces, dots."""
    while True:
        parts = [
            rng.choice(
                [
                    rng.choice(_WORDS),
                    rng.choice(_UNICODE),
                    rng.choice(_ODD),
                    str(rng.randint(0, 99)),
                ]
            )
            for _ in range(rng.randint(1, 4))
        ]
        name = "".join(parts)
        form = rng.choice(["NFC", "NFD", "NFC"])
        name = unicodedata.normalize(form, name)
        if rng.random() < 0.1:
            name = "." + name
        if rng.random() < 0.05:
            name = name + " "  # trailing space: legal on POSIX
        # Names every W&B client accepts on every platform: not ".", "..", or a Windows drive
        # or root ("a:b", "\\x"), and no ".." between backslashes (a Windows parent step).
        # The cases of names_refused_as_windows_paths cover those.
        if name in (".", "..") or name.startswith("\\") or (len(name) > 1 and name[1] == ":"):
            continue
        if ".." in name.split("\\") or len(name.encode()) > 200:
            continue
        return name


def random_tree(root: Path, seed: int, files: int) -> dict[str, bytes]:
    """Write a seeded random tree of ``files`` files under ``root``; relative path -> bytes.

    Names are drawn by :func:`_random_name`; about a tenth get a case-only twin (``a`` and
    ``A``) and an NFC/NFD twin; contents repeat (the same bytes under several names), some
    files are empty, and one chain of folders is 12 deep.
    """
    rng = random.Random(seed)
    contents = [b"", b"same bytes\n", bytes(range(256)), b"x" * 5000] + [
        rng.randbytes(rng.choice([1, 17, 1000, 4096, 70_000])) for _ in range(files // 3)
    ]
    folders = [""]
    deep = ""
    for _ in range(12):
        deep = f"{deep}{_random_name(rng)}/"
        folders.append(deep)
    for _ in range(max(3, files // 8)):
        folders.append(rng.choice(folders) + _random_name(rng) + "/")
    written: dict[str, bytes] = {}
    while len(written) < files:
        folder = rng.choice(folders)
        name = _random_name(rng)
        names = [name]
        if rng.random() < 0.1 and name.swapcase() != name:
            names.append(name.swapcase())
        decomposed = unicodedata.normalize("NFD", name)
        composed = unicodedata.normalize("NFC", name)
        if rng.random() < 0.15 and decomposed != composed:
            names += [decomposed, composed]
        for each in names:
            relative = folder + each
            if relative in written or any(k.startswith(relative + "/") for k in written):
                continue
            if any(relative.startswith(k + "/") for k in written):
                continue
            data = rng.choice(contents)
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            written[relative] = data
    return written
