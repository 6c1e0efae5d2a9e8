"""One build recipe, run by two libraries: the real ``wandb`` (in the oracle's virtualenv, by
``oracle.py``) and ``dagster_artifacts`` (in the test process).

A case is JSON: the ``Artifact(...)`` arguments and a list of steps, each one call on the
artifact with its arguments. Running the very same code on both sides is what makes the
comparison fair: no call is spelled differently for one library. Standard library only (the
oracle's interpreter has nothing of this project); the one module each side passes in is the
library, imported as ``wandb``.

Step shapes (``args``/``kwargs`` are passed through unchanged; ``{"$path": "..."}`` anywhere in
them becomes a ``pathlib.Path``):

- ``{"op": "add_file" | "add_dir" | "add_reference" | "remove", "args": [...], "kwargs": {...}}``
- ``{"op": "new_file", "args": [name], "kwargs": {...}, "text": "..."}`` or ``"base64": "..."``
  (written in one ``write`` call inside the ``with`` block)
- ``{"op": "add", "object": {"table": {"columns": [...], "data": [[...]]}}
  | {"dataframe": {"columns": [...], "data": [[...]]}} | {"partitioned_table": "parts/"},
  "args": [name], "kwargs": {...}}``

A step that raises is recorded (type, the names of its classes, message) and the next steps run.
"""

from __future__ import annotations

import base64
import pathlib
from typing import Any


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$path"}:
            return pathlib.Path(value["$path"])
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


def _make_object(module: Any, spec: dict[str, Any]) -> Any:
    if "table" in spec:
        return module.Table(columns=spec["table"]["columns"], data=spec["table"]["data"])
    if "dataframe" in spec:
        import pandas as pd

        frame = pd.DataFrame(spec["dataframe"]["data"], columns=spec["dataframe"]["columns"])
        return module.Table(dataframe=frame)
    if "partitioned_table" in spec:
        return module.data_types.PartitionedTable(spec["partitioned_table"])
    raise ValueError(f"unknown object spec {spec!r}")


def _apply(module: Any, artifact: Any, step: dict[str, Any]) -> None:
    op = step["op"]
    args = _decode(step.get("args", []))
    kwargs = _decode(step.get("kwargs", {}))
    if op == "new_file":
        with artifact.new_file(*args, **kwargs) as handle:
            if "base64" in step:
                handle.write(base64.b64decode(step["base64"]))
            else:
                handle.write(step.get("text", ""))
        return
    if op == "add":
        artifact.add(_make_object(module, step["object"]), *args, **kwargs)
        return
    if op not in ("add_file", "add_dir", "add_reference", "remove"):
        raise ValueError(f"unknown step {op!r}")
    getattr(artifact, op)(*args, **kwargs)


def _error(error: BaseException) -> dict[str, Any]:
    return {
        "type": type(error).__name__,
        "classes": [cls.__name__ for cls in type(error).__mro__],
        "message": str(error)[:1000],
    }


def run_case(module: Any, case: dict[str, Any]) -> dict[str, Any]:
    """Build the case's artifact with ``module``; its manifest JSON, digest and step errors."""
    options = dict(case.get("artifact") or {})
    name = options.pop("name", "parity")
    kind = options.pop("type", "dataset")
    try:
        artifact = module.Artifact(name, kind, **options)
    except Exception as error:  # the constructor itself refused the arguments
        return {"manifest": None, "digest": None, "errors": {"artifact": _error(error)}}
    errors: dict[str, Any] = {}
    for index, step in enumerate(case["steps"]):
        try:
            _apply(module, artifact, step)
        except Exception as error:
            errors[str(index)] = _error(error)
    return {
        "manifest": artifact.manifest.to_manifest_json(),
        "digest": artifact.digest,
        "errors": errors,
    }
