"""HTTP for tests: pytest-httpserver on 127.0.0.1, serving files with ETag and Content-Length."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest


class HttpFiles:
    """Serve byte strings at paths with a strong ETag (MD5 hex) and Content-Length.

    Calling :meth:`serve` again for a path changes the body under the same URL.
    """

    def __init__(self, server: Any) -> None:
        self.server = server
        self.files: dict[str, tuple[bytes, str | None]] = {}
        self.statuses: dict[str, int] = {}

    def serve(self, path: str, body: bytes, etag: str | None = None, with_etag: bool = True) -> str:
        tag = etag or hashlib.md5(body, usedforsecurity=False).hexdigest()
        self.files[path] = (body, tag if with_etag else None)
        self.statuses.pop(path, None)
        self._install()
        return str(self.server.url_for(path))

    def fail(self, path: str, status: int, times: int | None = None) -> None:
        """Answer ``status`` for ``path``: ``times`` times then the file again, or for good."""
        if times is None:
            self.statuses[path] = status
            self.files.pop(path, None)
            self._install()
            return
        for _ in range(times):
            self.server.expect_oneshot_request(path).respond_with_data(b"busy", status=status)

    def _install(self) -> None:
        self.server.clear_all_handlers()
        for file_path, status in self.statuses.items():
            self.server.expect_request(file_path).respond_with_data(b"", status=status)
        for file_path, (data, file_tag) in self.files.items():
            headers = {"ETag": f'"{file_tag}"'} if file_tag else {}
            self.server.expect_request(file_path, method="GET").respond_with_data(
                data, headers=headers
            )
            self.server.expect_request(file_path, method="HEAD").respond_with_data(
                data, headers=headers
            )


@pytest.fixture
def http_files(httpserver: Any) -> HttpFiles:
    return HttpFiles(httpserver)


class HttpRoutes:
    """Answers written header by header, for tests that compare what clients make of them.

    :class:`HttpFiles` serves well-behaved files; this serves anything: a weak, unquoted or
    missing ETag, no Content-Length (a chunked body), redirects, errors, and HEAD answered unlike
    GET. Routes match the path whatever the query string. It runs on a server of its own
    (:func:`http_routes`), which other tests' ``httpserver`` clean-ups never clear.
    """

    def __init__(self, server: Any) -> None:
        self.server = server
        self.ca_bundle: str | None = None  # the certificate to trust, for a TLS server

    def url(self, path: str) -> str:
        return str(self.server.url_for(path))

    def route(
        self,
        path: str,
        body: bytes = b"",
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        chunked: bool = False,
        head_status: int | None = None,
    ) -> str:
        """Answer GET (and HEAD, with ``head_status`` if given) at ``path``; return its URL.

        ``headers`` are sent as written (``{"ETag": 'W/"x"'}``); ``chunked`` sends the body
        without a Content-Length.
        """
        from werkzeug import Request, Response

        def answer(request: Request) -> Response:
            if request.method == "HEAD" and head_status is not None:
                return Response(b"", status=head_status)
            response = Response(iter([body]) if chunked else body, status=status)
            response.headers.remove("Content-Type")
            for name, value in (headers or {}).items():
                response.headers[name] = value
            return response

        self.server.expect_request(path).respond_with_handler(answer)
        return self.url(path)

    def redirect(self, path: str, to: str, status: int = 302) -> str:
        """Answer ``path`` with a redirect to the URL ``to``; return ``path``'s URL."""
        self.server.expect_request(path).respond_with_data(
            b"", status=status, headers={"Location": to}
        )
        return self.url(path)


@pytest.fixture(scope="session")
def http_routes() -> Any:
    """A server of its own on 127.0.0.1 for :class:`HttpRoutes`, for the whole session."""
    from pytest_httpserver import HTTPServer

    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    try:
        yield HttpRoutes(server)
    finally:
        server.clear()
        server.stop()


def _self_signed(folder: Any) -> tuple[str, str]:
    """A certificate for 127.0.0.1 and its key, as PEM files in ``folder``: (cert, key)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


@pytest.fixture(scope="session")
def https_routes(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """:class:`HttpRoutes` over TLS, with a self-signed certificate for 127.0.0.1 whose PEM file
    is ``ca_bundle`` (point ``REQUESTS_CA_BUNDLE`` at it so clients trust it)."""
    import ssl

    from pytest_httpserver import HTTPServer

    pytest.importorskip("cryptography", reason="cryptography makes the test certificate")
    cert, key = _self_signed(tmp_path_factory.mktemp("tls"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=context)
    server.start()
    routes = HttpRoutes(server)
    routes.ca_bundle = cert
    try:
        yield routes
    finally:
        server.clear()
        server.stop()
