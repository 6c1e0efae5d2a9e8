"""Files/s for logging many small files to an S3 store (moto), batched versus one by one.

    .venv/bin/python benchmarks/s3_upload.py            # 1,000 files
    .venv/bin/python benchmarks/s3_upload.py --quick    # 50 files, a smoke run

Both modes log the same folder as an artifact through the public API (``init``, ``Artifact``,
``log_artifact``) into a fresh bucket on a local moto server. "batched" is the code path every
user gets: ``commit.upload_blobs`` -> ``BlobStore.missing`` (one listing per fan-out folder) and
``BlobStore.put_many`` (concurrent async PUTs). "one-by-one" swaps those for a check and a PUT
per blob, one blob after the other, to show what the batching buys.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

os.environ.setdefault("AWS_ACCESS_KEY_ID", "benchmark")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "benchmark")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

import dagster_artifacts as wandb  # noqa: E402
from benchmarks.moto_process import moto_server  # noqa: E402
from dagster_artifacts.settings import Settings  # noqa: E402
from dagster_artifacts.state import open_store, reset_stores  # noqa: E402
from dagster_artifacts.storage import BlobStore, BlobUpload  # noqa: E402


def one_by_one(store: BlobStore) -> None:
    """Replace the batched upload with a sequential loop (what the batching replaces)."""
    batched_missing, batched_put = store.missing, store.put_many

    def missing(uploads: Iterable[BlobUpload], present: set[str] | None = None) -> list[BlobUpload]:
        return list(uploads)  # decided per blob below, as a one-by-one uploader does

    def put_many(uploads: list[BlobUpload], callback: Any = None) -> None:
        # Each blob alone: its own existence check and its own PUT, waited for in turn.
        for upload in uploads:
            batched_put(batched_missing([upload]))

    store.missing = missing  # type: ignore[method-assign]
    store.put_many = put_many  # type: ignore[method-assign]


def run_mode(mode: str, folder: Path, endpoint: str, client: object, work: Path) -> float:
    bucket = f"bench-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
    settings = Settings.resolve(
        root=f"s3://{bucket}/artifacts",
        database=f"sqlite:///{work / f'{bucket}.db'}",
        storage_options={"endpoint_url": endpoint},
        cache_dir=str(work / "cache"),
    )
    store = open_store(settings)
    if mode == "one-by-one":
        one_by_one(store.blobs)
    start = time.perf_counter()
    with wandb.init(settings=settings, job_type="benchmark") as run:
        artifact = wandb.Artifact("small-files", type="dataset")
        artifact.add_dir(str(folder))
        run.log_artifact(artifact).wait()
    elapsed = time.perf_counter() - start
    reset_stores()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=1000, help="number of small files")
    parser.add_argument("--quick", action="store_true", help="smoke mode: 50 files")
    args = parser.parse_args()
    count = 50 if args.quick else args.files

    import boto3

    # moto in its own process: the server does not share this process's GIL with the client
    # being measured.
    with moto_server() as endpoint, tempfile.TemporaryDirectory(prefix="s3-upload-bench-") as tmp:
        client = boto3.client("s3", endpoint_url=endpoint)
        work = Path(tmp)
        folder = work / "files"
        folder.mkdir()
        for index in range(count):
            (folder / f"file-{index:05d}.txt").write_text(f"small file {index}\n" * 4)
        results = {
            mode: run_mode(mode, folder, endpoint, client, work)
            for mode in ("one-by-one", "batched")
        }

    print(f"Logging {count} small files to an S3 store (moto server on 127.0.0.1)")
    print(f"{'mode':<12} {'files':>6} {'seconds':>9} {'files/s':>9}")
    for mode, seconds in results.items():
        print(f"{mode:<12} {count:>6} {seconds:>9.2f} {count / seconds:>9.1f}")
    print(f"batched / one-by-one: {results['one-by-one'] / results['batched']:.1f}x faster")


if __name__ == "__main__":
    main()
