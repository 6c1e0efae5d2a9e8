"""The real ``wandb`` is the oracle: every case is built by both libraries from the same calls,
and the artifact digest, the manifest and every entry (path, digest, size, ref, extra,
birthArtifactID) must agree, as must which calls were refused. Cases live in ``local_cases.py``
and ``remote_cases.py``; the machinery in ``conftest.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

import dagster_artifacts
from tests.parity.cases import CASES
from tests.parity.compare import (
    ParityDifference,
    deliberate,
    differences,
    normalize,
    without_own_config,
)
from tests.parity.conftest import Batch
from tests.parity.differences import reason
from tests.parity.steps import run_case

pytestmark = [pytest.mark.xdist_group("parity"), pytest.mark.slow]


def _params(kind: str) -> list[Any]:
    return [
        pytest.param(
            case_id,
            id=case_id,
            marks=[deliberate(reason(definition.deliberate))] if definition.deliberate else [],
        )
        for case_id, definition in CASES.items()
        if definition.kind == kind
    ]


def check(case_id: str, batch: Batch) -> None:
    definition = CASES[case_id]
    theirs = normalize(batch.results[case_id])
    recipe = batch.recipes[case_id]
    built = run_case(dagster_artifacts, recipe)
    algorithm = str(recipe["artifact"].get("digest_algorithm", "md5")).lower()
    ours = normalize(without_own_config(built, algorithm))
    untyped = {
        step: e["type"] for step, e in ours["errors"].items() if "ArtifactError" not in e["classes"]
    }
    assert not untyped, f"Typed errors: steps refused without an ArtifactError: {untyped}"
    if definition.ours is not None:
        definition.ours(ours)  # what this project does instead, on purpose
    found = differences(theirs, ours)
    if found:
        raise ParityDifference(
            f"{case_id}: dagster_artifacts differs from wandb {batch.wandb_version}:\n  "
            + "\n  ".join(found)
        )


@pytest.mark.parametrize("case_id", _params("local"))
def test_local(case_id: str, parity_local: Batch) -> None:
    check(case_id, parity_local)


@pytest.mark.parametrize("case_id", _params("http"))
def test_http(case_id: str, parity_http: Batch, batch_env: Any) -> None:
    batch_env(parity_http)
    check(case_id, parity_http)


@pytest.mark.parametrize("case_id", _params("https"))
def test_https(case_id: str, parity_https: Batch, batch_env: Any) -> None:
    batch_env(parity_https)
    check(case_id, parity_https)


@pytest.mark.parametrize("case_id", _params("s3"))
def test_s3(case_id: str, parity_s3: Batch, batch_env: Any) -> None:
    batch_env(parity_s3)
    check(case_id, parity_s3)


@pytest.mark.parametrize("case_id", _params("gcs"))
def test_gcs(case_id: str, parity_gcs: Batch, batch_env: Any) -> None:
    batch_env(parity_gcs)
    check(case_id, parity_gcs)
