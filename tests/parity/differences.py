"""Every way this project differs from W&B on purpose, each with its reason, in one place.

A parity case that finds one of these names it by its label (``case(..., deliberate=LABEL)``);
the test then expects the difference (a strict xfail: should both libraries come to agree, the
case fails and the entry goes). The README's "What differs from W&B" section lists every label
in bold (``test_differences_listed.py`` checks it), so the list a user reads is this one.
"""

from __future__ import annotations

DIFFERENCES: dict[str, str] = {
    # -- checked by compare.py on every case, not by an xfail ---------------------------------
    "The manifest names its digest algorithm": (
        "an xxh128 manifest carries storagePolicyConfig.digestAlgorithm = 'xxh128': W&B keeps "
        "an artifact's algorithm in its server's database, a self-hosted store has only the "
        "manifest (and an artifact of references alone has no entry to carry W&B's alg tag); "
        "W&B ignores the key when it reads the manifest"
    ),
    "Typed errors": (
        "a refused call raises this project's typed errors (InvalidPathError, "
        "DuplicateEntryError, ...), subclasses of ArtifactError, where W&B mostly raises "
        "ValueError; the suite checks that the same calls are refused"
    ),
    # -- local files ---------------------------------------------------------------------------
    "add_dir is all or none": (
        "an add_dir that fails part way (a file conflicting with an entry, a dangling link) "
        "adds nothing; W&B raises too, but keeps the files it added before the failure"
    ),
    "Link loops are left out": (
        "add_dir follows links to folders as W&B does, but a link to a folder it is inside of "
        "is left out with a warning; W&B goes round the loop until the kernel refuses the path "
        "(40 links deep), raises OSError and keeps the files of every level it reached"
    ),
    "'xxh128' is a name too": (
        "digest_algorithm takes 'xxh128' as well as W&B's 'XXH128', and refuses unknown names; "
        "W&B reads any spelling but 'XXH128' as MD5, silently"
    ),
    "add() refuses a taken name": (
        "adding another object under a name already taken raises DuplicateEntryError (pass "
        "overwrite=True to replace it); W&B keeps the first object and drops the second silently"
    ),
    # -- http(s) -------------------------------------------------------------------------------
    "Redirects keep the URL asked for": (
        "an http(s) reference records the URL as given, not the one a redirect ended at (W&B "
        "records the target, often a short-lived signed URL, so its downloads break once the "
        "signature expires); without an ETag the digest is that URL too"
    ),
    # -- buckets -------------------------------------------------------------------------------
    "max_objects refuses, never truncates": (
        "an S3 prefix with more objects than max_objects raises ReferenceLimitError before "
        "anything is added; W&B keeps the first max_objects objects and drops the rest silently "
        "(for file:// and GCS both raise)"
    ),
    "max_objects defaults to the documented 10,000": (
        "a reference expands to at most 10,000 objects unless max_objects says otherwise, as "
        "W&B's reference documentation says; wandb 0.31's code allows 10,000,000 "
        "(storage_handler.DEFAULT_MAX_OBJECTS), so a whole bucket referenced by mistake is "
        "listed and hashed to the end"
    ),
    "A bucket path that matches nothing is an error": (
        "an s3:// reference that matches no object and no prefix raises "
        "ArtifactFileNotFoundError; W&B adds nothing and says nothing, so a typo goes unnoticed"
    ),
    "A prefix is a folder": (
        "s3://b/data and gs://b/data mean the objects under data/, never data2/x or "
        "database.csv; W&B lists every key that starts with 'data', then fails with ValueError "
        "(S3) or records database.csv with the prefix itself as its ref (GCS)"
    ),
    "'#' belongs to an S3 key": (
        "'#' is part of an S3 key (S3 allows it); W&B parses the URI as a URL, cuts '#...' off "
        "as a fragment, and so references another key or fails"
    ),
    "An empty object named by its key is kept": (
        "an empty S3 object referenced by its whole key is tracked (size 0); W&B drops it "
        "without a word (it drops empty objects under a prefix as folder placeholders, which "
        "this project does too)"
    ),
    "?versionId= is honoured": (
        "s3://b/k?versionId=<id> records that version; W&B 0.31 records the latest version "
        "instead (its ObjectVersion(...).Object() drops the version id), so the entry names "
        "other bytes than the ones asked for"
    ),
    "gs://bucket lists the bucket": (
        "gs://bucket references every object of the bucket, as s3://bucket does in W&B; W&B's "
        "GCS handler raises ValueError ('Cannot determine path without a blob name')"
    ),
}


def reason(label: str) -> str:
    """``label: reason`` for a known difference; a KeyError names an unlisted one."""
    return f"{label}: {DIFFERENCES[label]}"
