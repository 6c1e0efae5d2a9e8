"""What W&B's rules (matched by tests/parity against wandb itself) mean end to end here: the
entries the parity suite compares must also log, fetch, download and verify."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pytest
import xxhash

import dagster_artifacts as wandb
from dagster_artifacts import errors
from dagster_artifacts.api import Api
from dagster_artifacts.digests import ARTIFACT_DIGEST_HEADER
from dagster_artifacts.manifest import Manifest
from tests.services.http import HttpRoutes


def log(artifact: wandb.Artifact) -> wandb.Artifact:
    with wandb.init() as run:
        run.log_artifact(artifact).wait()
    return Api().artifact(f"{artifact.collection_name}:latest")


def b64_md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


def test_percent_encoded_file_references_keep_their_uri_and_download(tmp_path: Path) -> None:
    folder = tmp_path / "my data é #1 %"
    (folder / "sub").mkdir(parents=True)
    (folder / "a b.txt").write_text("a")
    (folder / "sub" / "c%41.txt").write_text("c")
    artifact = wandb.Artifact("encoded", type="dataset")
    artifact.add_reference(folder.as_uri(), name="refs")
    fetched = log(artifact)
    entries = fetched.manifest.entries
    assert entries["refs/a b.txt"].ref == folder.as_uri() + "/a b.txt"  # prefix kept encoded
    assert entries["refs/sub/c%41.txt"].ref == folder.as_uri() + "/sub/c%41.txt"
    root = Path(fetched.download(str(tmp_path / "out")))
    assert (root / "refs" / "a b.txt").read_text() == "a"
    assert (root / "refs" / "sub" / "c%41.txt").read_text() == "c"


def test_unchecksummed_file_reference_walks_and_downloads(tmp_path: Path) -> None:
    folder = tmp_path / "tree"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("aa")
    (folder / "sub" / "b.txt").write_text("b")
    artifact = wandb.Artifact("unchecked", type="dataset")
    artifact.add_reference(f"file://{folder}", checksum=False)
    fetched = log(artifact)
    entry = fetched.manifest.entries["sub/b.txt"]
    # W&B: one entry per file, its size, and the MD5 of the file's URI (not of its bytes).
    assert (entry.size, entry.digest) == (1, b64_md5((folder / "sub" / "b.txt").as_uri().encode()))
    (folder / "sub" / "b.txt").write_text("changed")  # nothing to check it against: fetched
    root = Path(fetched.download(str(tmp_path / "out")))
    assert (root / "sub" / "b.txt").read_text() == "changed"


@pytest.mark.parametrize("etag", ['W/"v1"', '"v1"', "v1"], ids=["weak", "strong", "unquoted"])
def test_http_etags_are_kept_as_sent_and_checked_on_download(
    http_routes: HttpRoutes, tmp_path: Path, etag: str
) -> None:
    from werkzeug import Request, Response

    name = f"etag-{abs(hash(etag))}"
    served = {"body": b"x,y\n", "etag": etag}

    def answer(request: Request) -> Response:
        return Response(served["body"], headers={"ETag": served["etag"]})

    http_routes.server.expect_request(f"/{name}/data.csv").respond_with_handler(answer)
    url = http_routes.url(f"/{name}/data.csv")
    artifact = wandb.Artifact(name, type="dataset")
    (entry,) = artifact.add_reference(url)
    assert (entry.digest, entry.extra) == (etag.strip('"'), {"etag": etag})
    fetched = log(artifact)
    assert (Path(fetched.download(str(tmp_path / "one"))) / "data.csv").read_bytes() == b"x,y\n"
    served.update(body=b"x,y\n2,3\n", etag='"v2"')
    with pytest.raises(errors.ChecksumMismatchError, match="changed since it was referenced"):
        fetched.download(str(tmp_path / "two"))


def test_xxh128_artifacts_hash_the_artifact_digest_with_xxh128_and_tag_entries(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.txt").write_text("a")
    artifact = wandb.Artifact("fast", type="dataset", digest_algorithm="XXH128")
    artifact.add_file(str(tmp_path / "a.txt"))
    with artifact.new_file("n.txt") as handle:
        handle.write("n")
    entries = artifact.manifest.entries
    assert {entry.extra["alg"] for entry in entries.values()} == {"XXH128"}
    expected = xxhash.xxh3_128()
    expected.update(ARTIFACT_DIGEST_HEADER.encode())
    for path in sorted(entries):
        expected.update(f"{path}:{entries[path].digest}\n".encode())
    assert artifact.digest == expected.hexdigest()
    fetched = log(artifact)
    assert fetched.digest == expected.hexdigest()
    assert fetched.digest_algorithm == "xxh128"
    assert fetched.verify(fetched.download(str(tmp_path / "out"))).checked == 2


def test_a_manifest_written_by_wandb_reads_as_xxh128_from_its_alg_tags() -> None:
    """W&B's manifest has no digestAlgorithm key: the entries' alg tags say it."""
    written_by_wandb = {
        "version": 1,
        "storagePolicy": "wandb-storage-policy-v1",
        "storagePolicyConfig": {"storageLayout": "V2"},
        "contents": {"a.txt": {"digest": "x", "size": 1, "extra": {"alg": "XXH128"}}},
    }
    manifest = Manifest.from_bytes(json.dumps(written_by_wandb).encode())
    assert manifest.digest_algorithm == "xxh128"
    # Versions logged before the artifact digest went xxh128 were recorded with the MD5 form:
    # it is still accepted (verification, deduplication).
    md5_form = hashlib.md5(
        (ARTIFACT_DIGEST_HEADER + "a.txt:x\n").encode(), usedforsecurity=False
    ).hexdigest()
    assert manifest.accepted_digests() == {manifest.digest(), md5_form}


def test_add_dir_follows_linked_folders_and_leaves_loops_out(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "o.txt").write_text("o")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "s.txt").write_text("s")
    os.symlink(outside, tree / "linked")
    os.symlink("..", tree / "sub" / "up")  # a loop: sub/up/sub/up/...
    artifact = wandb.Artifact("linked", type="dataset")
    with pytest.warns(UserWarning, match="Skipped 1 links to a folder they are inside of"):
        artifact.add_dir(str(tree))
    assert sorted(artifact.manifest.entries) == ["linked/o.txt", "sub/s.txt"]
    fetched = log(artifact)
    root = Path(fetched.download(str(tmp_path / "out")))
    assert (root / "linked" / "o.txt").read_text() == "o"


def test_new_file_takes_a_policy_and_refuses_an_unknown_one() -> None:
    artifact = wandb.Artifact("policies", type="dataset")
    with artifact.new_file("a.txt", policy="immutable") as handle:
        handle.write("a")
    with (
        pytest.raises(errors.ArtifactError, match="policy"),
        artifact.new_file("b.txt", policy="x"),
    ):
        pass
    assert sorted(artifact.manifest.entries) == ["a.txt"]
