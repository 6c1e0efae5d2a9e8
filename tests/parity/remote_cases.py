"""Parity cases on references to services: http(s) (a local server answering header by header),
S3 (moto, versioned and unversioned buckets) and GCS (the emulator)."""

from __future__ import annotations

import hashlib
from typing import Any

from tests.parity.cases import Context, Step, add_reference, case

# -- http(s) ---------------------------------------------------------------------------------------
BODY = b"station,rides\nA,12\nB,7\n"
MD5_ETAG = '"' + hashlib.md5(BODY, usedforsecurity=False).hexdigest() + '"'

REDIRECTED = "Redirects keep the URL asked for"


def _http(case_id: str, headers: dict[str, str] | None = None, **options: Any) -> None:
    """A route answering ``headers`` for this case, and ``add_reference`` of it."""
    chunked = options.pop("chunked", False)
    path = options.pop("path", "data.csv")
    body = options.pop("body", BODY)
    reference = options.pop("reference", {})
    kind = options.pop("kind", "http")

    def build(ctx: Context) -> list[Step]:
        url = ctx.http.route(f"/{ctx.prefix}/{path}", body, headers=headers or {}, chunked=chunked)
        kwargs = dict(reference)
        return [add_reference(url + kwargs.pop("suffix", ""), **kwargs)]

    case(kind, case_id, **options)(build)


_http("http-strong-md5-etag", {"ETag": MD5_ETAG})
_http("http-strong-opaque-etag", {"ETag": '"v1-5f3a"'})
_http("http-weak-etag", {"ETag": 'W/"5f3a-12"'})
_http("http-unquoted-etag", {"ETag": "5f3a"})
_http("http-no-etag", {})
_http("http-no-content-length", {"ETag": MD5_ETAG}, chunked=True)
_http("http-no-etag-no-content-length", {}, chunked=True)
_http("http-named", {"ETag": MD5_ETAG}, reference={"name": "web/stations.csv"})
_http("http-query-string", {"ETag": MD5_ETAG}, reference={"suffix": "?token=abc&x=1"})
_http(
    "http-query-string-named",
    {"ETag": MD5_ETAG},
    reference={"suffix": "?token=abc", "name": "s.csv"},
)
_http("http-percent-encoded-path", {"ETag": MD5_ETAG}, path="my%20dir/a%20b%C3%A9.csv")
_http("http-raw-space-and-unicode-path", {"ETag": MD5_ETAG}, path="my dir/a bé.csv")
_http("http-raw-path-no-etag", {}, path="my dir/a bé.csv")
_http("http-unchecksummed", {"ETag": MD5_ETAG}, reference={"checksum": False})
_http(
    "http-unchecksummed-query-named",
    {},
    reference={"checksum": False, "suffix": "?v=2", "name": "n.csv"},
)
_http("http-max_objects-ignored", {"ETag": MD5_ETAG}, reference={"max_objects": 1})
_http(
    "http-xxh128-artifact",
    {"ETag": MD5_ETAG},
    artifact={"digest_algorithm": "XXH128"},
)


@case("http", "http-head-refused-get-answered")
def _head_refused(ctx: Context) -> list[Step]:
    url = ctx.http.route(f"/{ctx.prefix}/h.csv", BODY, headers={"ETag": MD5_ETAG}, head_status=405)
    return [add_reference(url)]


@case("http", "http-trailing-slash")
def _trailing_slash(ctx: Context) -> list[Step]:
    return [add_reference(ctx.http.route(f"/{ctx.prefix}/dir/", BODY, headers={"ETag": '"d"'}))]


@case("http", "http-trailing-slash-named")
def _trailing_slash_named(ctx: Context) -> list[Step]:
    url = ctx.http.route(f"/{ctx.prefix}/dir/", BODY, headers={"ETag": '"d"'})
    return [add_reference(url, name="index.html")]


@case("http", "http-no-path")
def _no_path(ctx: Context) -> list[Step]:
    url = ctx.http.route("/", BODY, headers={"ETag": '"root"'})
    return [add_reference(url.rstrip("/"))]


def _redirect(ctx: Context, hops: int, etag: str | None) -> str:
    target = ctx.http.route(
        f"/{ctx.prefix}/target.csv", BODY, headers={"ETag": etag} if etag else {}
    )
    for hop in range(hops):
        target = ctx.http.redirect(f"/{ctx.prefix}/hop{hop}.csv", target)
    return target


for _hops in (1, 2):
    for _etag in (MD5_ETAG, None):
        _label = f"http-redirect-{_hops}-hop{'s' if _hops > 1 else ''}" + (
            "" if _etag else "-no-etag"
        )
        case("http", _label, deliberate=REDIRECTED)(
            lambda ctx, h=_hops, e=_etag: [add_reference(_redirect(ctx, h, e))]
        )
case("http", "http-redirect-unchecksummed")(
    lambda ctx: [add_reference(_redirect(ctx, 1, MD5_ETAG), checksum=False)]
)


def _refused(result: dict[str, Any]) -> None:
    assert set(result["errors"]) == {"0"}, result["errors"]
    assert result["errors"]["0"]["type"] == "InvalidReferenceError", result["errors"]
    assert not result["entries"]


for _status in (404, 410, 403):
    case("http", f"http-error-{_status}", ours=_refused)(
        lambda ctx, s=_status: [
            add_reference(ctx.http.route(f"/{ctx.prefix}/gone.csv", b"not here", status=s))
        ]
    )
for _status in (500, 503):
    case("http", f"http-error-{_status}", ours=_refused)(
        lambda ctx, s=_status: [
            add_reference(ctx.http.route(f"/{ctx.prefix}/busy.csv", b"busy", status=s))
        ]
    )
case("http", "http-error-unchecksummed")(
    lambda ctx: [
        add_reference(ctx.http.route(f"/{ctx.prefix}/gone.csv", b"", status=404), checksum=False)
    ]
)


# -- s3:// (moto) ----------------------------------------------------------------------------------
OBJECTS = {
    "data/a.csv": b"a,1\n",
    "data/sub/b.csv": b"b,22\n",
    "data/sub/deeper/c.bin": bytes(range(256)),
    "data/dup.csv": b"a,1\n",
    "top.txt": b"top",
    "my dir/caf\u00e9 (1) [x].csv": b"odd key",
}
SILENT_EMPTY = "A bucket path that matches nothing is an error"
TRUNCATED = "max_objects refuses, never truncates"
SIBLING_PREFIX = "A prefix is a folder"


def _s3(
    case_id: str,
    uri: str,
    objects: dict[str, bytes] | None = None,
    versioned: bool = False,
    **options: Any,
) -> None:
    """``add_reference(s3://<bucket>/<uri>, **reference)`` over a fresh bucket."""
    reference = options.pop("reference", {})

    def build(ctx: Context) -> list[Step]:
        bucket = ctx.s3.bucket(OBJECTS if objects is None else objects, versioned=versioned)
        return [add_reference(f"s3://{bucket}/{uri}", **reference)]

    case("s3", case_id, **options)(build)


for _versioned in (False, True):
    _v = "-versioned" if _versioned else ""
    _s3(f"s3-object{_v}", "top.txt", versioned=_versioned)
    _s3(f"s3-object-nested{_v}", "data/sub/b.csv", versioned=_versioned)
    _s3(f"s3-object-named{_v}", "data/a.csv", versioned=_versioned, reference={"name": "x/y.csv"})
    _s3(f"s3-prefix{_v}", "data", versioned=_versioned)
    _s3(f"s3-prefix-trailing-slash{_v}", "data/", versioned=_versioned)
    _s3(f"s3-prefix-named{_v}", "data", versioned=_versioned, reference={"name": "n"})
    _s3(f"s3-bucket-root{_v}", "", versioned=_versioned)
    _s3(f"s3-bucket-root-named{_v}", "", versioned=_versioned, reference={"name": "all"})
_s3("s3-odd-key", "my dir/caf\u00e9 (1) [x].csv")
_s3(
    "s3-hash-in-key",
    "notes #1.txt",
    objects={"notes #1.txt": b"hash"},
    deliberate="'#' belongs to an S3 key",
    ours=lambda result: _paths_are(result, {"notes #1.txt"}),
)
_s3("s3-odd-key-prefix", "my dir")
_s3(
    "s3-empty-object",
    "empty.txt",
    objects={"empty.txt": b"", "x.txt": b"x"},
    deliberate="An empty object named by its key is kept",
    ours=lambda result: _paths_are(result, {"empty.txt"}),
)
_s3("s3-prefix-with-empty-objects", "d", objects={"d/e": b"", "d/f.txt": b"f", "d/sub/": b""})
_s3("s3-unchecksummed", "data/a.csv", reference={"checksum": False})
_s3("s3-unchecksummed-prefix", "data", reference={"checksum": False})
_s3("s3-unchecksummed-named", "data/a.csv", reference={"checksum": False, "name": "n.csv"})
_s3("s3-unchecksummed-query", "data/a.csv?versionId=abc", reference={"checksum": False})
_s3("s3-unchecksummed-bucket-root", "", reference={"checksum": False})
_s3("s3-max_objects-enough", "data", reference={"max_objects": 4})
_s3("s3-max_objects-zero", "data", reference={"max_objects": 0})
_s3(
    "s3-max_objects-exceeded",
    "data",
    reference={"max_objects": 2},
    deliberate=TRUNCATED,
    ours=lambda result: _refused_with(result, "ReferenceLimitError"),
)
_s3(
    "s3-missing",
    "nothing/here",
    deliberate=SILENT_EMPTY,
    ours=lambda result: _refused_with(result, "ArtifactFileNotFoundError"),
)
_s3(
    "s3-sibling-prefix",
    "data",
    objects={"data/a.csv": b"a", "database.csv": b"db"},
    deliberate=SIBLING_PREFIX,
    ours=lambda result: _paths_are(result, {"a.csv"}),
)
_s3(
    "s3-xxh128-artifact",
    "data",
    artifact={"digest_algorithm": "XXH128"},
)


def _refused_with(result: dict[str, Any], error: str) -> None:
    assert set(result["errors"]) == {"0"}, result["errors"]
    assert result["errors"]["0"]["type"] == error, result["errors"]
    assert not result["entries"]


def _paths_are(result: dict[str, Any], paths: set[str]) -> None:
    assert set(result["entries"]) == paths, sorted(result["entries"])


VERSION_QUERY = "?versionId= is honoured"


def _first_version(result: dict[str, Any]) -> None:
    (entry,) = result["entries"].values()
    assert entry["size"] == len(b"first"), entry


@case("s3", "s3-object-versionId-query", deliberate=VERSION_QUERY, ours=_first_version)
def _s3_version_query(ctx: Context) -> list[Step]:
    bucket = ctx.s3.bucket({}, versioned=True)
    first = ctx.s3.put(bucket, "model.bin", b"first")["VersionId"]
    ctx.s3.put(bucket, "model.bin", b"second, longer")
    return [add_reference(f"s3://{bucket}/model.bin?versionId={first}")]


@case("s3", "s3-object-versionId-query-named", deliberate=VERSION_QUERY, ours=_first_version)
def _s3_version_query_named(ctx: Context) -> list[Step]:
    bucket = ctx.s3.bucket({}, versioned=True)
    first = ctx.s3.put(bucket, "model.bin", b"first")["VersionId"]
    ctx.s3.put(bucket, "model.bin", b"second, longer")
    return [add_reference(f"s3://{bucket}/model.bin?versionId={first}", name="m/old.bin")]


@case("s3", "s3-multipart-etag")
def _s3_multipart(ctx: Context) -> list[Step]:
    bucket = ctx.s3.bucket({})
    ctx.s3.multipart(bucket, "big.bin", [b"p" * (5 * 1024 * 1024), b"tail"])
    return [add_reference(f"s3://{bucket}/big.bin")]


@case("s3", "s3-positional-arguments")
def _s3_positional(ctx: Context) -> list[Step]:
    bucket = ctx.s3.bucket(OBJECTS)
    return [add_reference(f"s3://{bucket}/data", "named", True, 10)]


# -- gs:// (the GCS emulator) ----------------------------------------------------------------------
def _gcs(case_id: str, uri: str, objects: dict[str, bytes] | None = None, **options: Any) -> None:
    """``add_reference(gs://<bucket>/<uri>, **reference)`` over a fresh emulated bucket."""
    reference = options.pop("reference", {})
    versioned = options.pop("versioned", False)

    def build(ctx: Context) -> list[Step]:
        bucket = ctx.gcs.bucket(OBJECTS if objects is None else objects, versioned=versioned)
        return [add_reference(f"gs://{bucket}/{uri}", **reference)]

    case("gcs", case_id, **options)(build)


_gcs("gcs-object", "top.txt")
_gcs("gcs-object-nested", "data/sub/b.csv")
_gcs("gcs-object-named", "data/a.csv", reference={"name": "x/y.csv"})
_gcs("gcs-prefix", "data")
_gcs("gcs-prefix-trailing-slash", "data/")
_gcs("gcs-prefix-named", "data", reference={"name": "n"})
_gcs(
    "gcs-bucket-root",
    "",
    deliberate="gs://bucket lists the bucket",
    ours=lambda result: _paths_are(result, set(OBJECTS)),
)
_gcs(
    "gcs-sibling-prefix",
    "data",
    objects={"data/a.csv": b"a", "database.csv": b"db"},
    deliberate=SIBLING_PREFIX,
    ours=lambda result: _paths_are(result, {"a.csv"}),
)
_gcs("gcs-odd-key", "my dir/caf\u00e9 (1) [x].csv")
_gcs("gcs-empty-object", "empty.txt", objects={"empty.txt": b"", "x.txt": b"x"})
_gcs("gcs-unchecksummed", "data/a.csv", reference={"checksum": False})
_gcs("gcs-unchecksummed-named", "data/a.csv", reference={"checksum": False, "name": "n.csv"})
_gcs("gcs-max_objects-enough", "data", reference={"max_objects": 4})
_gcs("gcs-xxh128-artifact", "data", artifact={"digest_algorithm": "XXH128"})
_gcs("gcs-object-versioned-bucket", "top.txt", versioned=True)
_gcs("gcs-prefix-versioned-bucket", "data", versioned=True)


@case("gcs", "gcs-object-generation-fragment")
def _gcs_generation(ctx: Context) -> list[Step]:
    bucket = ctx.gcs.bucket({"model.bin": b"first"}, versioned=True)
    generation = ctx.gcs.info(bucket, "model.bin")["generation"]
    ctx.gcs.fs.pipe_file(f"{bucket}/model.bin", b"second, longer")
    return [add_reference(f"gs://{bucket}/model.bin#{generation}")]


_http("http-empty-body", {"ETag": '"d41d8cd98f00b204e9800998ecf8427e"'}, body=b"")
_http("http-etag-lowercase-weak", {"ETag": 'w/"abc"'})
_http("http-etag-single-quote", {"ETag": '"abc'})
_http("http-named-pathlib", {"ETag": MD5_ETAG}, reference={"name": {"$path": "web/p.csv"}})
_http("http-fragment", {"ETag": MD5_ETAG}, reference={"suffix": "#part"})
_http("http-xxh128-no-etag", {}, artifact={"digest_algorithm": "XXH128"})


# -- https (TLS, a test certificate both libraries trust) ------------------------------------------
_http("https-strong-md5-etag", {"ETag": MD5_ETAG}, kind="https")
_http("https-weak-etag", {"ETag": 'W/"5f3a-12"'}, kind="https")
_http("https-no-etag-no-content-length", {}, chunked=True, kind="https")
_http(
    "https-query-string", {"ETag": MD5_ETAG}, reference={"suffix": "?sig=a%2Fb&x=1"}, kind="https"
)
_http("https-unchecksummed", {"ETag": MD5_ETAG}, reference={"checksum": False}, kind="https")
_http("https-named", {"ETag": MD5_ETAG}, reference={"name": "w/s.csv"}, kind="https")
case("https", "https-redirect", deliberate=REDIRECTED)(
    lambda ctx: [add_reference(_redirect(ctx, 1, MD5_ETAG))]
)
case("https", "https-error-404", ours=_refused)(
    lambda ctx: [add_reference(ctx.http.route(f"/{ctx.prefix}/gone.csv", b"no", status=404))]
)
