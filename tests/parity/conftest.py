"""The parity suite's machinery: build every case of a kind once, run them all through the real
``wandb`` in one process of its own virtualenv, and hand each test the oracle's answer.

One batch per kind (local, http, s3, gcs), made the first time a test of that kind asks: it
builds the cases' files, routes and objects (:mod:`tests.parity.cases`), writes the recipes as
JSON, and runs ``oracle.py`` with ``tests/parity/.venv-wandb/bin/python`` (made by
``tests/parity/venv.py`` if missing; skipped, with the reason, when it cannot be made). The
project's side runs in the test itself, on the same recipe.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.parity import local_cases, remote_cases  # noqa: F401 - they register the cases
from tests.parity.cases import CASES, Context
from tests.parity.venv import OracleUnavailable, ensure_venv

HERE = Path(__file__).resolve().parent


@dataclass
class Batch:
    """One kind's cases as built (``recipes``), and wandb's answer for each (``results``)."""

    kind: str
    recipes: dict[str, dict[str, Any]]
    results: dict[str, dict[str, Any]]
    wandb_version: str
    seconds: float
    env: dict[str, str]


@pytest.fixture(scope="session")
def oracle_python() -> Path:
    """The wandb virtualenv's interpreter (made on first use when ``make`` did not make it)."""
    try:
        return ensure_venv()
    except OracleUnavailable as error:
        pytest.skip(f"the wandb oracle is unavailable: {error}")


def _oracle_env(work: Path, extra: dict[str, str]) -> dict[str, str]:
    """The oracle's environment: offline, silent, every wandb folder inside ``work``, nothing of
    this project's virtualenv or settings, and the service endpoints of the batch."""
    keep = ("PATH", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env.update(
        {
            "HOME": str(work / "home"),
            "WANDB_MODE": "offline",
            "WANDB_SILENT": "true",
            "WANDB_DIR": str(work / "wandb"),
            "WANDB_CACHE_DIR": str(work / "wandb-cache"),
            "WANDB_DATA_DIR": str(work / "wandb-data"),
            "WANDB_CONFIG_DIR": str(work / "wandb-config"),
            "WANDB_ARTIFACT_DIR": str(work / "wandb-artifacts"),
            "PYTHONIOENCODING": "utf-8",
        }
    )
    env.update(extra)
    return env


def run_batch(
    kind: str, python: Path, base: Path, services: dict[str, Any], env: dict[str, str]
) -> Batch:
    """Build every case of ``kind`` under ``base`` and run them all through the oracle."""
    recipes: dict[str, dict[str, Any]] = {}
    for case_id, definition in CASES.items():
        if definition.kind != kind:
            continue
        root = base / "cases" / case_id
        root.mkdir(parents=True)
        context = Context(root=root, prefix=uuid.uuid4().hex[:8], **services)
        recipes[case_id] = {
            "id": case_id,
            "artifact": definition.artifact,
            "steps": definition.build(context),
        }
    cases_file = base / "cases.json"
    cases_file.write_text(json.dumps(list(recipes.values())), encoding="utf-8")
    results_file = base / "results.json"
    started = time.perf_counter()
    work = base / "oracle"
    work.mkdir()
    done = subprocess.run(
        [str(python), str(HERE / "oracle.py"), str(cases_file), str(results_file)],
        cwd=work,
        env=_oracle_env(work, env),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"the wandb oracle failed ({done.returncode}):\n{done.stderr[-4000:]}")
    answer = json.loads(results_file.read_text(encoding="utf-8"))
    return Batch(kind, recipes, answer["results"], answer["wandb"], seconds, env)


@pytest.fixture(scope="session")
def parity_local(oracle_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Batch:
    return run_batch("local", oracle_python, tmp_path_factory.mktemp("parity-local"), {}, {})


@pytest.fixture(scope="session")
def parity_http(
    oracle_python: Path, tmp_path_factory: pytest.TempPathFactory, http_routes: Any
) -> Batch:
    base = tmp_path_factory.mktemp("parity-http")
    return run_batch("http", oracle_python, base, {"http": http_routes}, {})


@pytest.fixture(scope="session")
def parity_https(
    oracle_python: Path, tmp_path_factory: pytest.TempPathFactory, https_routes: Any
) -> Batch:
    """The https cases: both sides trust the test certificate through REQUESTS_CA_BUNDLE (what
    requests, under wandb and under this project, reads)."""
    base = tmp_path_factory.mktemp("parity-https")
    env = {"REQUESTS_CA_BUNDLE": https_routes.ca_bundle}
    return run_batch("https", oracle_python, base, {"http": https_routes}, env)


@dataclass
class S3Site:
    """Buckets on the moto server for the S3 cases (boto3, as the cases arrange them)."""

    endpoint_url: str
    client: Any

    def bucket(self, objects: dict[str, bytes], versioned: bool = False) -> str:
        name = f"parity-{uuid.uuid4().hex[:16]}"
        self.client.create_bucket(Bucket=name)
        if versioned:
            self.client.put_bucket_versioning(
                Bucket=name, VersioningConfiguration={"Status": "Enabled"}
            )
        for key, data in objects.items():
            self.put(name, key, data)
        return name

    def put(self, bucket: str, key: str, data: bytes) -> dict[str, Any]:
        return dict(self.client.put_object(Bucket=bucket, Key=key, Body=data))

    def multipart(self, bucket: str, key: str, parts: list[bytes]) -> None:
        """Upload ``key`` in ``parts`` (all but the last at least 5 MiB): a ``<md5>-N`` ETag."""
        upload = self.client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        done = []
        for number, data in enumerate(parts, start=1):
            answer = self.client.upload_part(
                Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=data
            )
            done.append({"ETag": answer["ETag"], "PartNumber": number})
        self.client.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": done}
        )


S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing-access-key",
    "AWS_SECRET_ACCESS_KEY": "testing-secret-key",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture(scope="session")
def parity_s3(
    oracle_python: Path, tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str
) -> Batch:
    """The S3 cases against moto: wandb's handler reaches it through ``AWS_S3_ENDPOINT_URL``
    (what wandb reads for its boto3 session), this project through ``AWS_ENDPOINT_URL``."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )
    env = {**S3_ENV, "AWS_S3_ENDPOINT_URL": moto_endpoint, "AWS_ENDPOINT_URL": moto_endpoint}
    base = tmp_path_factory.mktemp("parity-s3")
    return run_batch("s3", oracle_python, base, {"s3": S3Site(moto_endpoint, client)}, env)


@dataclass
class GCSSite:
    """Buckets on the GCS emulator for the GCS cases (gcsfs, as the cases arrange them)."""

    endpoint_url: str

    @property
    def fs(self) -> Any:
        import gcsfs

        return gcsfs.GCSFileSystem(endpoint_url=self.endpoint_url, token="anon", project="test")

    def bucket(self, objects: dict[str, bytes], versioned: bool = False) -> str:
        name = f"parity-{uuid.uuid4().hex[:16]}"
        fs = self.fs
        fs.mkdir(name)
        if versioned:
            from fsspec.asyn import sync

            sync(fs.loop, fs._call, "PATCH", "b/{}", name, json={"versioning": {"enabled": True}})
        for key, data in objects.items():
            fs.pipe_file(f"{name}/{key}", data)
        fs.invalidate_cache()
        return name

    def info(self, bucket: str, key: str) -> dict[str, Any]:
        fs = self.fs
        fs.invalidate_cache()
        return dict(fs.info(f"{bucket}/{key}"))


@pytest.fixture(scope="session")
def parity_gcs(
    oracle_python: Path, tmp_path_factory: pytest.TempPathFactory, gcs_endpoint: str
) -> Batch:
    """The GCS cases against the emulator: wandb's ``google.cloud.storage.Client()`` and this
    project's gcsfs both follow ``STORAGE_EMULATOR_HOST``."""
    env = {"STORAGE_EMULATOR_HOST": gcs_endpoint, "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}
    base = tmp_path_factory.mktemp("parity-gcs")
    return run_batch("gcs", oracle_python, base, {"gcs": GCSSite(gcs_endpoint)}, env)


@pytest.fixture
def batch_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Apply a batch's service environment to this test (the project's side reads it too)."""

    def apply(batch: Batch) -> None:
        for name, value in batch.env.items():
            monkeypatch.setenv(name, value)

    yield apply
