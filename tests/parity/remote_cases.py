"""Parity cases on references to services: http(s) (a local server answering header by header),
S3 (moto, versioned and unversioned buckets) and GCS (the emulator)."""

from __future__ import annotations

import hashlib
from typing import Any

from tests.parity.cases import Context, Step, add_reference, case

# -- http(s) ---------------------------------------------------------------------------------------
BODY = b"station,rides\nA,12\nB,7\n"
MD5_ETAG = '"' + hashlib.md5(BODY, usedforsecurity=False).hexdigest() + '"'

REDIRECTED = (
    "the ref is the URL as given, not the one the redirect ended at (W&B records the target, "
    "often a short-lived signed URL, so its downloads break when the signature expires); "
    "without an ETag the digest is that URL too"
)


def _http(case_id: str, headers: dict[str, str] | None = None, **options: Any) -> None:
    """A route answering ``headers`` for this case, and ``add_reference`` of it."""
    chunked = options.pop("chunked", False)
    path = options.pop("path", "data.csv")
    reference = options.pop("reference", {})

    def build(ctx: Context) -> list[Step]:
        url = ctx.http.route(f"/{ctx.prefix}/{path}", BODY, headers=headers or {}, chunked=chunked)
        kwargs = dict(reference)
        return [add_reference(url + kwargs.pop("suffix", ""), **kwargs)]

    case("http", case_id, **options)(build)


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
