"""Every ```python block of README.md, run as written against real parts, or skipped by name.

The README promises that its examples really work. Each block is found by a marker (a string
only it contains), never by line numbers, so edits elsewhere in the README do not matter; a block
whose marker is gone fails with a message saying so, and a NEW python block that no test claims
fails :func:`test_every_python_block_is_run_or_skipped_by_name` until it gets a test or an entry
in :data:`SKIPPED` with a reason.

A block runs in a fresh working directory with a fresh store, registry, download folder and cache
(``tests/conftest.py``'s ``isolated_store``), after the input files it expects are created.
Substitutions are limited to what necessarily points at the outside world: the example.com URL
becomes the local HTTP server, bucket names become fresh buckets on the moto server (the code's
endpoint becomes moto's; ``AWS_ENDPOINT_URL`` where the code relies on the environment), and the
PostgreSQL host becomes the throwaway cluster. The code is compiled with README.md as its file
name and its README line numbers, so a traceback points at the README line that failed.

Where the README shows the output of a block, the test compares it (normalized only for the
same substitutions and for values that differ per run: S3 version ids, temp paths).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import dagster_artifacts as wandb
from dagster_artifacts.settings import ENV_DATABASE, ENV_DOWNLOAD_DIR
from tests.services.http import HttpFiles
from tests.services.s3 import DUMMY_KEY_ID, DUMMY_SECRET, S3Service

README = Path(__file__).resolve().parent.parent / "README.md"

#: Blocks a test below runs: name -> a string only that block contains.
RUN = {
    "api": 'wandb.init(job_type="preprocessing")',
    "dagster": 'root="s3://bucket/artifacts"',
    "s3-store": 'artifact.add_reference("s3://my-bucket/model.h5")',
    "storage-options": '"SSEKMSKeyId": "alias/artifacts"',
    "dagster-s3-definitions": "# definitions.py",
    "dagster-s3-materialize": "for attempt in range(2):",
    "parallel-writers": "def train(args: tuple[int, str])",
    "dagster-fan-out": "def parallel_parts_job",
    "prune-ttl": "wandb.Api().prune(",
    "gc": "Api().gc(",
    "lineage-api": "api.lineage(",
    "xxh128": 'digest_algorithm="xxh128"',
    "packs": 'artifact = wandb.Artifact("clips", type="dataset")',
    # Dagster, past assets: run by tests/dagster/test_readme_dagster.py (and the Dask block by
    # tests/dagster/test_distributed_executor.py, on moto S3 and PostgreSQL).
    "dagster-ops": "def nightly_report",
    "dagster-types": "def weights() -> np.ndarray",
    "dagster-outside": "external_artifact_specs(store, group_name",
    "dagster-sensor": "on_production = build_artifact_sensor(",
    "dagster-checks": "asset_checks=build_artifact_checks(",
    "dagster-dask": "dask_run_config(workers=2)",
    "drafts": 'draft.remove("0.jpg")',
    "registry-link": '"wandb-registry-model/bikes", aliases=["production"]',
    "collections-tour": 'api.artifact_type("results")',
}

#: Blocks no test runs: name -> (marker, one-line reason). Empty: every block runs today.
SKIPPED: dict[str, tuple[str, str]] = {}


# -- reading the README ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Block:
    language: str
    line: int  # README line number of the block's first code line
    code: str

    @property
    def first_line(self) -> str:
        return self.code.splitlines()[0] if self.code else ""


def readme_blocks() -> list[Block]:
    """Every fenced block of README.md, in order."""
    blocks: list[Block] = []
    language: str | None = None
    start = 0
    body: list[str] = []
    for number, line in enumerate(README.read_text(encoding="utf-8").splitlines(), start=1):
        if language is None:
            if line.startswith("```"):
                language, start, body = line[3:].strip(), number + 1, []
        elif line.startswith("```"):
            blocks.append(Block(language, start, "\n".join(body) + "\n"))
            language = None
        else:
            body.append(line)
    assert language is None, f"README.md: the block opened at line {start - 1} is never closed"
    return blocks


def python_blocks() -> list[Block]:
    return [b for b in readme_blocks() if b.language == "python"]


def markers() -> dict[str, str]:
    return {**RUN, **{name: marker for name, (marker, _) in SKIPPED.items()}}


def block(name: str) -> Block:
    """The one python block holding ``name``'s marker; fails clearly if it is gone."""
    marker = markers()[name]
    found = [b for b in python_blocks() if marker in b.code]
    if not found:
        pytest.fail(
            f"README.md has no ```python block containing {marker!r} any more (block {name!r}): "
            "if it was reworded, update its marker in tests/test_readme.py; if it was removed, "
            "remove its test."
        )
    if len(found) > 1:
        lines = [b.line for b in found]
        pytest.fail(f"Marker {marker!r} of block {name!r} matches the blocks at lines {lines}.")
    return found[0]


def output_after(name: str) -> str:
    """The ```text block right after block ``name``: the output the README shows for it."""
    blocks = readme_blocks()
    index = blocks.index(block(name))
    following = blocks[index + 1] if index + 1 < len(blocks) else None
    if following is None or following.language != "text":
        pytest.fail(f"README.md: block {name!r} is no longer followed by its ```text output.")
    return following.code


def source(name: str, substitutions: dict[str, str] | None = None) -> str:
    """Block ``name``'s code with ``substitutions`` applied, padded to its README line numbers."""
    found = block(name)
    code = found.code
    for old, new in (substitutions or {}).items():
        if old not in code:
            pytest.fail(
                f"README.md block {name!r} no longer contains {old!r}, which the test "
                "substitutes; update tests/test_readme.py."
            )
        assert "\n" not in new, "a substitution must not move the README line numbers"
        code = code.replace(old, new)
    return "\n" * (found.line - 1) + code


def run_block(
    name: str,
    substitutions: dict[str, str] | None = None,
    namespace: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Execute block ``name`` (in ``namespace``, to continue an earlier block) and return it."""
    namespace = {"__name__": f"readme_{name.replace('-', '_')}"} if namespace is None else namespace
    # dont_inherit: this module's ``from __future__ import annotations`` must not leak into the
    # block (Dagster reads the annotations of ops at definition time).
    code = compile(source(name, substitutions), str(README), "exec", dont_inherit=True)
    exec(code, namespace)
    return namespace


def same_lines(text: str) -> list[str]:
    """Lines without trailing blanks (a formatted empty column leaves some)."""
    return [line.rstrip() for line in text.strip("\n").splitlines()]


# -- the inventory ---------------------------------------------------------------------------------
def test_every_python_block_is_run_or_skipped_by_name() -> None:
    blocks = python_blocks()
    claims = {b.line: [n for n, m in markers().items() if m in b.code] for b in blocks}
    unclaimed = [f"line {b.line}: {b.first_line!r}" for b in blocks if not claims[b.line]]
    assert not unclaimed, (
        "README.md has ```python blocks that no test runs or skips: "
        + "; ".join(unclaimed)
        + ". Add a test to tests/test_readme.py (RUN) or an entry in SKIPPED with a reason."
    )
    doubly = {line: names for line, names in claims.items() if len(names) > 1}
    assert not doubly, f"blocks claimed by several names: {doubly}"
    claimed = {name for names in claims.values() for name in names}
    missing = sorted(set(markers()) - claimed)
    assert not missing, f"README.md no longer has the blocks {missing} (markers not found)"
    assert not set(RUN) & set(SKIPPED)
    assert all(reason.strip() for _, reason in SKIPPED.values())


# -- fixtures --------------------------------------------------------------------------------------
@pytest.fixture
def workdir(isolated_store: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fresh cwd; downloads go to ``./artifacts`` in it, the documented default."""
    cwd = Path.cwd()
    monkeypatch.setenv(ENV_DOWNLOAD_DIR, str(cwd / "artifacts"))
    return cwd


@pytest.fixture
def aws(s3: S3Service, monkeypatch: pytest.MonkeyPatch) -> S3Service:
    """moto, reached the way a user without code reaches a custom endpoint: the environment."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint_url)
    return s3


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


# -- The Artifacts API -----------------------------------------------------------------------------
def test_artifacts_api_example(
    workdir: Path, http_files: HttpFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = b"hour,count\n7,120\n8,340\n9,210\n"
    (workdir / "bike-data.csv").write_bytes(csv)
    (workdir / "images").mkdir()
    (workdir / "images" / "cat.png").write_bytes(b"cat")
    (workdir / "images" / "dog.png").write_bytes(b"dog")
    reference = b"a,b\n1,2\n"
    url = http_files.serve("/x.csv", reference)

    run_block("api", {"https://example.com/x.csv": url})

    logged = wandb.Api().artifact("bike-dataset:best")
    assert (logged.name, logged.type, logged.metadata) == (
        "bike-dataset:v0",
        "dataset",
        {"rows": 3},
    )
    assert sorted(logged.aliases) == ["best", "latest"]
    entries = logged.manifest.entries
    assert sorted(entries) == [
        "bike-data.csv",
        "images/cat.png",
        "images/dog.png",
        "notes.txt",
        "x.csv",
    ]
    assert entries["bike-data.csv"].digest == md5_b64(csv)
    assert (entries["x.csv"].ref, entries["x.csv"].digest) == (url, md5_hex(reference))
    assert entries["x.csv"].size == len(reference)
    folder = workdir / "artifacts" / "bike-dataset:v0"  # the comment's ./artifacts/bike-dataset:v0
    assert (folder / "bike-data.csv").read_bytes() == csv
    assert (folder / "images" / "dog.png").read_bytes() == b"dog"
    assert (folder / "notes.txt").read_text() == "hello"
    assert (folder / "x.csv").read_bytes() == reference
    producer = logged.logged_by()
    assert producer is not None and producer.job_type == "preprocessing"
    assert [run.job_type for run in logged.used_by()] == ["train"]
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 1
    assert printed[0].startswith(f"bike-dataset:v0 {logged.aliases} {logged.digest} ")


# -- Dagster ---------------------------------------------------------------------------------------
def test_dagster_example_on_s3(
    aws: S3Service, isolated_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dagster as dg

    bucket = aws.make_bucket()
    # A bucket root needs a shared registry; the block leaves it to DAGSTER_ARTIFACTS_DATABASE.
    monkeypatch.setenv(ENV_DATABASE, f"sqlite:///{isolated_store.parent / 'registry.db'}")
    defs = run_block("dagster", {"s3://bucket/artifacts": f"s3://{bucket}/artifacts"})["defs"]

    result = dg.materialize(defs.assets, resources=defs.resources)  # as the README does below

    assert result.success
    meta = {
        event.asset_key.to_user_string(): {
            k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()
        }
        for event in result.get_asset_materialization_events()
    }
    assert meta["bike_rides"]["artifact/name"] == "bike-rides"
    assert meta["bike_rides"]["dagster/row_count"] == 3
    assert meta["peak_hour"]["artifact/version"] == "v0"
    api = wandb.Api(root=f"s3://{bucket}/artifacts", project="bikes")
    rides = api.artifact("bike-rides:raw")
    assert (rides.name, rides.type, sorted(rides.aliases)) == (
        "bike-rides:v0",
        "dataset",
        ["latest", "raw"],
    )
    assert rides.get("data")["count"].tolist() == [120, 340, 210]
    peak = api.artifact("peak_hour:latest")
    assert sorted(peak.manifest.entries) == ["data.json"]
    assert defs.load_asset_value("peak_hour") == {"hour": 8}  # read back through the IO manager
    observed = [  # "a step that reads an asset records artifact/used_version on it"
        (e.asset_key.to_user_string(), e.asset_observation_data.asset_observation.metadata)
        for e in result.get_asset_observation_events()
    ]
    assert [(key, m["artifact/used_version"].value) for key, m in observed] == [
        ("bike_rides", "bike-rides:v0")
    ]
    assert [a.name for a in peak.logged_by().used_artifacts()] == ["bike-rides:v0"]
    assert aws.keys(bucket, "artifacts/manifests/")


# -- Cloud storage ---------------------------------------------------------------------------------
def test_s3_store_example(
    workdir: Path, aws: S3Service, capsys: pytest.CaptureFixture[str]
) -> None:
    store, refs = aws.make_bucket(), aws.make_bucket(versioned=True)
    for key, data in {
        "images/cat.png": b"cat",
        "images/dog.png": b"dog",
        "model.h5": b"weights",
    }.items():
        aws.put(refs, key, data)
    (workdir / "data").mkdir()
    for i in range(3):
        (workdir / "data" / f"part-{i}.csv").write_text(f"id,value\n{i},{i * i}\n")

    run_block("s3-store", {"my-artifacts": store, "my-bucket": refs})

    version_id = re.compile(r"'versionID': '[^']+'")
    printed = version_id.sub("'versionID': ...", capsys.readouterr().out.replace(refs, "my-bucket"))
    expected = version_id.sub("'versionID': ...", output_after("s3-store"))
    assert same_lines(printed) == same_lines(expected)
    assert (workdir / "registry.db").is_file()  # sqlite:///registry.db, relative to the cwd
    assert len(aws.keys(store, "store/manifests/")) == 1
    assert aws.keys(store, "store/blobs/md5/")  # the three parts, uploaded
    assert aws.keys(refs) == ["images/cat.png", "images/dog.png", "model.h5"]  # not copied


def test_storage_options_example(s3: S3Service, postgres_url: str) -> None:
    """The block names its endpoint itself (moto's here), so no AWS_ENDPOINT_URL."""
    aws = s3
    bucket = aws.make_bucket()
    namespace = run_block(
        "storage-options",
        {
            "my-artifacts": bucket,
            "postgresql+psycopg://artifacts@db/artifacts": postgres_url,
            "https://minio.internal:9000": aws.endpoint_url,
        },
    )
    run, api = namespace["run"], namespace["api"]
    artifact = wandb.Artifact("encrypted", type="dataset")
    with artifact.new_file("secret.txt") as f:
        f.write("hello")
    run.log_artifact(artifact).wait()
    run.finish()

    logged = api.artifact("encrypted:latest")
    assert logged.version == "v0" and logged.logged_by().id == run.id
    keys = aws.keys(bucket, "store/")
    assert any(k.startswith("store/blobs/") for k in keys)
    assert any(k.startswith("store/manifests/") for k in keys)
    for key in keys:  # "they go with every object written"
        head = aws.client.head_object(Bucket=bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms", key
        assert head["SSEKMSKeyId"].endswith("alias/artifacts"), key
    folder = Path(logged.download())
    assert (folder / "secret.txt").read_text() == "hello"


def test_dagster_on_s3_example(
    workdir: Path,
    s3: S3Service,
    isolated_store: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The block names its endpoint itself (moto's here), so no AWS_ENDPOINT_URL."""
    aws = s3
    bucket = aws.make_bucket()
    monkeypatch.setenv(ENV_DATABASE, f"sqlite:///{isolated_store.parent / 'registry.db'}")
    monkeypatch.setenv("ARTIFACTS_S3_KEY_ID", DUMMY_KEY_ID)
    monkeypatch.setenv("ARTIFACTS_S3_SECRET", DUMMY_SECRET)
    namespace = run_block(
        "dagster-s3-definitions",
        {"my-artifacts": bucket, "http://127.0.0.1:5000": aws.endpoint_url},
    )
    run_block("dagster-s3-materialize", namespace=namespace)  # the next block continues it

    printed = capsys.readouterr().out
    assert same_lines(printed) == same_lines(output_after("dagster-s3-materialize"))
    blobs = aws.keys(bucket, "store/blobs/")
    assert blobs
    for key in blobs:
        head = aws.client.head_object(Bucket=bucket, Key=key)
        assert head["ServerSideEncryption"] == "AES256", key


# -- Team scale ------------------------------------------------------------------------------------
@pytest.mark.timeout(300)
def test_parallel_writers_example(workdir: Path, postgres_url: str) -> None:
    """Run as the script it is: ``spawn`` workers re-import the file, as the README explains."""
    script = workdir / "parallel_writers.py"
    script.write_text(source("parallel-writers"))
    env = {**os.environ, ENV_DATABASE: postgres_url, "DAGSTER_ARTIFACTS_PROGRESS": "0"}
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert same_lines(done.stdout) == same_lines(output_after("parallel-writers"))

    api = wandb.Api(database=postgres_url)
    logged = api.artifact("parallel-artifact:latest")
    producer = logged.logged_by()
    assert producer is not None
    group = api.runs(filters={"group": producer.group})
    assert len(group) == 6  # five writers and the finisher, one group
    for run in group:
        assert [a.name for a in run.logged_artifacts()] == ["parallel-artifact:v0"]


@pytest.mark.xdist_group("dagster")
@pytest.mark.timeout(300)
def test_dagster_fan_out_example(workdir: Path) -> None:
    """The job under its own multiprocess executor: every step in its own (spawned) process.

    The block becomes a module file so that the step processes can load the job again.
    """
    import dagster as dg
    from dagster._core.definitions.reconstruct import ReconstructableJob

    module = workdir / "fan_out.py"
    module.write_text(source("dagster-fan-out"))
    job = ReconstructableJob.for_file(str(module), "parallel_parts_job")  # `dagster job -f`
    with (
        dg.instance_for_test() as instance,
        dg.execute_job(job, instance=instance, raise_on_error=False) as result,
    ):
        failures = [e.message for e in result.all_events if e.is_failure]
        assert result.success, failures
        run_id = result.run_id
        writers = result.output_for_node("write_part")

    api = wandb.Api()
    logged = api.artifact("dagster-parallel:latest")
    assert logged.version == "v0"
    table = logged.get("distributed_table")
    assert len(table) == 3
    assert sorted(table.to_pandas()["part"].tolist()) == [0, 1, 2]
    runs = api.runs(filters={"group": run_id})
    assert sorted(run.job_type for run in runs) == ["finish"] + ["write-part"] * 3
    assert sorted(writers.values()) == sorted(r.id for r in runs if r.job_type == "write-part")
    for run in runs:
        assert [a.name for a in run.logged_artifacts()] == ["dagster-parallel:v0"]


# -- Retention ---------------------------------------------------------------------------------------
def log_versions(name: str, contents: list[str], first_alias: str | None = None) -> None:
    with wandb.init(job_type="setup") as run:
        for index, content in enumerate(contents):
            artifact = wandb.Artifact(name, type="dataset")
            with artifact.new_file("data.txt") as f:
                f.write(content)
            aliases = [first_alias] if first_alias and index == 0 else None
            run.log_artifact(artifact, aliases=aliases).wait()


def backdate(database: str, name: str, indexes: list[int], age: timedelta) -> None:
    """Make versions older in the registry (the prune example deletes only 30-day-old ones)."""
    import sqlalchemy as sa

    from dagster_artifacts.registry.models import CollectionRow, VersionRow

    engine = sa.create_engine(database)
    try:
        with engine.begin() as connection:
            collection = connection.execute(
                sa.select(CollectionRow.id).where(CollectionRow.name == name)
            ).scalar_one()
            connection.execute(
                sa.update(VersionRow)
                .where(VersionRow.collection_id == collection, VersionRow.index.in_(indexes))
                .values(created_at=datetime.now(timezone.utc) - age)
            )
    finally:
        engine.dispose()


def test_prune_and_ttl_example(isolated_store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    contents = ["zero\n", "one\n", "two\n", "three\n", "four\n"]
    log_versions("bike-dataset", contents, first_alias="best")
    backdate(
        f"sqlite:///{isolated_store / 'registry.db'}",
        "bike-dataset",
        [0, 1, 2, 3],
        timedelta(days=40),
    )

    namespace = run_block("prune-ttl")

    # keep_last=3 keeps v2-v4, keep_aliased keeps v0 (best): v1 is the one old, unaliased extra
    assert capsys.readouterr().out.splitlines() == [f"['v1'] {len(contents[1])}"]
    assert namespace["result"].freed_size == len(contents[1])
    api = wandb.Api()
    assert [v.version for v in api.artifact_versions("dataset", "bike-dataset")] == [
        "v0",
        "v2",
        "v3",
        "v4",
    ]
    latest = api.artifact("bike-dataset:latest")
    assert latest.version == "v4" and latest.ttl == timedelta(days=30)


def test_log_and_lineage_api_example(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "model.pkl").write_bytes(b"weights")

    namespace = run_block("lineage-api")

    assert same_lines(capsys.readouterr().out) == same_lines(output_after("lineage-api"))
    logged = wandb.Api().artifact("bike-model:candidate")
    assert logged.logged_by().id == namespace["run"].id  # type: ignore[union-attr]
    assert namespace["tree"]["artifact"] == "default/uncategorized/bike-model:v0"


def test_gc_example(isolated_store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import snapshot_store

    log_versions("scratch", ["garbage\n", "kept\n"])
    wandb.Api().artifact("scratch:v0").delete()
    two_days_ago = (datetime.now() - timedelta(days=2)).timestamp()
    for path in isolated_store.rglob("*"):  # older than the 24 h grace period
        if path.is_file():
            os.utime(path, (two_days_ago, two_days_ago))
    before = snapshot_store(isolated_store)

    namespace = run_block("gc")

    report = namespace["report"]
    assert (report.blobs_deleted, report.manifests_deleted) == (1, 1)
    assert capsys.readouterr().out.splitlines() == [f"1 {report.bytes_freed}"]
    assert report.bytes_freed > len("garbage\n")  # its blob and its manifest
    assert snapshot_store(isolated_store) == before  # dry_run=True: nothing was deleted


# -- Speed -----------------------------------------------------------------------------------------
def test_xxh128_example(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "data").mkdir()
    (workdir / "data" / "a.txt").write_text("hello\n")

    run_block("xxh128")

    printed = capsys.readouterr().out.replace(str(workdir), "/tmp/snip")
    assert same_lines(printed) == same_lines(output_after("xxh128"))
    assert wandb.Api().artifact("fast-data:v0").digest_algorithm == "xxh128"


def test_packs_example(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_block("packs")

    printed = capsys.readouterr().out.replace(str(workdir), "/tmp/snip")
    assert same_lines(printed) == same_lines(output_after("packs"))


def test_drafts_example(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "photos").mkdir()
    for index in range(100):
        (workdir / "photos" / f"{index}.jpg").write_bytes(b"jpg %d" % index)
    (workdir / "new.jpg").write_bytes(b"new")
    (workdir / "late.jpg").write_bytes(b"late")

    run_block("drafts")

    assert same_lines(capsys.readouterr().out) == same_lines(output_after("drafts"))
    latest = wandb.Api().artifact("bike-photos:latest")
    assert {"100.jpg", "101.jpg"} <= set(latest.manifest.entries)
    assert "0.jpg" not in latest.manifest.entries


def test_registry_link_example(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "model.pt").write_bytes(b"weights")

    run_block("registry-link")

    assert same_lines(capsys.readouterr().out) == same_lines(output_after("registry-link"))
    assert (workdir / "artifacts" / "bikes:v0" / "model.pt").read_bytes() == b"weights"
    assert wandb.Api().artifact("bike-model:v0").linked_artifacts == []


def test_collections_tour_example(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (workdir / "report.csv").write_text("a,b\n1,2\n")
    (workdir / "exports").mkdir()
    (workdir / "exports" / "stale.csv").write_text("old")
    monkeypatch.setenv("DAGSTER_ARTIFACTS_UI_URL", "unset by the block")  # restored afterwards

    run_block("collections-tour")

    assert same_lines(capsys.readouterr().out) == same_lines(output_after("collections-tour"))
    assert sorted(p.name for p in (workdir / "exports").iterdir()) == ["report.csv"]
