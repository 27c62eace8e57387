"""HTTPS from ANALYTICS_TLS_CERT_FILE / ANALYTICS_TLS_KEY_FILE (serve_app/tls.py): the pair is checked
before anything starts, a replica's own uvicorn server (direct mode) speaks TLS with forward-secret
AEAD suites only, and Serve's proxy (proxy mode) is given the same files."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from core.settings import Settings
from serve_app.direct_server import ReplicaHttpServer
from serve_app.response_headers import add_response_headers
from serve_app.tls import base_url, check_tls_pair, proxy_http_options, uvicorn_tls_options
from tests.certificates import IssuedCertificates, make_certificates
from tests.support import free_port


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> IssuedCertificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


def _tls_settings(certificates: IssuedCertificates, **more: object) -> Settings:
    return Settings(
        environment="test",
        tls_cert_file=certificates.cert_file,
        tls_key_file=certificates.key_file,
        **more,  # type: ignore[arg-type]
    )


def test_a_matching_pair_passes_and_a_mismatched_one_is_named(certificates: IssuedCertificates, tmp_path: Path) -> None:
    check_tls_pair(_tls_settings(certificates))
    other = make_certificates(tmp_path / "other")
    mismatched = Settings(tls_cert_file=certificates.cert_file, tls_key_file=other.key_file)
    with pytest.raises(ValueError, match="ANALYTICS_TLS_CERT_FILE .* and ANALYTICS_TLS_KEY_FILE") as raised:
        check_tls_pair(mismatched)
    assert str(other.key_file) in str(raised.value)
    garbled = tmp_path / "garbled.pem"
    garbled.write_text("not a certificate\n")
    with pytest.raises(ValueError, match="do not load"):
        check_tls_pair(Settings(tls_cert_file=garbled, tls_key_file=certificates.key_file))
    # Plain HTTP: nothing to check.
    check_tls_pair(Settings())


def test_both_ingress_modes_get_the_files_and_the_url_says_https(certificates: IssuedCertificates) -> None:
    settings = _tls_settings(certificates, port=8443)
    options = uvicorn_tls_options(settings)
    assert options["ssl_certfile"] == str(certificates.cert_file)
    assert options["ssl_keyfile"] == str(certificates.key_file)
    assert proxy_http_options(settings) == {
        "host": "127.0.0.1",
        "port": 8443,
        "ssl_certfile": str(certificates.cert_file),
        "ssl_keyfile": str(certificates.key_file),
    }
    assert base_url(settings) == "https://127.0.0.1:8443"
    plain = Settings(port=8080)
    assert uvicorn_tls_options(plain) == {}
    assert proxy_http_options(plain) == {"host": "127.0.0.1", "port": 8080}
    assert base_url(plain) == "http://127.0.0.1:8080"


async def _pong(_: Request) -> PlainTextResponse:
    return PlainTextResponse("pong")


async def _handshake(port: int, context: ssl.SSLContext) -> tuple[str, str]:
    """The TLS version and cipher suite the server agreed to with a client limited by ``context``."""
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="127.0.0.1")
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        return ssl_object.version(), ssl_object.cipher()[0]
    finally:
        writer.close()


async def test_a_replicas_own_server_speaks_tls(certificates: IssuedCertificates) -> None:
    settings = _tls_settings(certificates, hsts_max_age_seconds=600)
    app = Starlette(routes=[Route("/ping", _pong)])
    add_response_headers(app, settings)
    port = free_port()
    server = ReplicaHttpServer(app, "127.0.0.1", port, tls=uvicorn_tls_options(settings))
    await server.start()
    try:
        trusted = ssl.create_default_context(cafile=str(certificates.ca_file))
        async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{port}", verify=trusted) as client:
            response = await client.get("/ping")
        assert response.status_code == 200 and response.text == "pong"
        # HTTPS as the app sees it: HSTS is sent; the server does not name its software.
        assert response.headers["strict-transport-security"] == "max-age=600"
        assert "server" not in response.headers

        # A client that trusts the system's authorities only refuses the test CA's certificate.
        async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{port}") as untrusting:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await untrusting.get("/ping")
        # Plain HTTP to the HTTPS port gets no answer.
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as plain:
            with pytest.raises(httpx.HTTPError):
                await plain.get("/ping")

        # A TLS 1.2 client gets a forward-secret suite with authenticated encryption.
        tls12 = ssl.create_default_context(cafile=str(certificates.ca_file))
        tls12.maximum_version = ssl.TLSVersion.TLSv1_2
        version, cipher = await _handshake(port, tls12)
        assert version == "TLSv1.2"
        assert cipher.startswith("ECDHE-") and ("GCM" in cipher or "CHACHA20" in cipher), cipher
        # Below TLS 1.2 nothing is agreed.
        old = ssl.create_default_context(cafile=str(certificates.ca_file))
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await _handshake(port, old)
    finally:
        await server.stop()
