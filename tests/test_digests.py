"""Golden values of DESIGN.md section 3: our digests are W&B's, byte for byte."""

from __future__ import annotations

import io
from pathlib import Path

import dagster_artifacts as wandb
from dagster_artifacts.digests import (
    artifact_digest,
    b64_to_hex,
    digest_bytes,
    digest_stream,
    hex_to_b64,
)


def test_file_digest_of_hello_is_wandb_golden_value() -> None:
    assert digest_bytes(b"hello") == "XUFAKrxLKna5cZ2REBfFkg=="


def test_artifact_digest_of_one_file_is_wandb_golden_value() -> None:
    assert artifact_digest([("file1.txt", "XUFAKrxLKna5cZ2REBfFkg==")]) == (
        "a00c2239f036fb656c1dcbf9a32d89b4"
    )


def test_logged_artifact_has_the_golden_digest(tmp_path: Path) -> None:
    (tmp_path / "file1.txt").write_text("hello")
    with wandb.init(job_type="golden") as run:
        artifact = wandb.Artifact("golden", type="dataset")
        artifact.add_file(str(tmp_path / "file1.txt"))
        run.log_artifact(artifact).wait()
    assert artifact.digest == "a00c2239f036fb656c1dcbf9a32d89b4"
    assert artifact.manifest.entries["file1.txt"].digest == "XUFAKrxLKna5cZ2REBfFkg=="


def test_artifact_digest_ignores_entry_order() -> None:
    pairs = [("b.txt", "XUFAKrxLKna5cZ2REBfFkg=="), ("a.txt", "1B2M2Y8AsgTpgAmY7PhCfg==")]
    assert artifact_digest(pairs) == artifact_digest(list(reversed(pairs)))


def test_stream_digest_reads_in_chunks_and_matches_bytes_digest() -> None:
    data = bytes(range(256)) * 10_000
    digest, size = digest_stream(io.BytesIO(data))
    assert (digest, size) == (digest_bytes(data), len(data))


def test_hex_and_base64_round_trip() -> None:
    assert b64_to_hex("XUFAKrxLKna5cZ2REBfFkg==") == "5d41402abc4b2a76b9719d911017c592"
    assert hex_to_b64("5d41402abc4b2a76b9719d911017c592") == "XUFAKrxLKna5cZ2REBfFkg=="


def test_new_file_gives_the_golden_digest() -> None:
    with wandb.init(job_type="golden") as run:
        artifact = wandb.Artifact("golden-new-file", type="dataset")
        with artifact.new_file("file1.txt") as handle:
            handle.write("hello")
        run.log_artifact(artifact).wait()
    assert artifact.digest == "a00c2239f036fb656c1dcbf9a32d89b4"
