"""HTTPS for both ingress modes, from ``ANALYTICS_TLS_CERT_FILE`` / ``ANALYTICS_TLS_KEY_FILE``.

In ``direct`` mode each replica's uvicorn server wraps its socket; in ``proxy`` mode Serve's HTTP proxy
does (its ``http_options``: ``ssl_certfile`` / ``ssl_keyfile``), since it, not the app, owns the port.
Settings has checked that both files or neither are given and that they exist; ``check_tls_pair``
also loads them as a server would, so a key that does not match its certificate stops the start
with a clear message instead of replicas that fail one after another.
"""

from __future__ import annotations

import ssl
from typing import Any

from core.settings import Settings

# TLS 1.2 suites with forward secrecy and authenticated encryption only (TLS 1.3 suites are all of
# that kind and are not affected). uvicorn's own default, "TLSv1", leaves TLS 1.2 clients the old
# CBC suites alone.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL"


def serves_https(settings: Settings) -> bool:
    return settings.tls_cert_file is not None and settings.tls_key_file is not None


def check_tls_pair(settings: Settings) -> None:
    """Raise ValueError naming the settings when the certificate and key do not load as a pair."""
    if not serves_https(settings):
        return
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(str(settings.tls_cert_file), str(settings.tls_key_file))
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(
            f"ANALYTICS_TLS_CERT_FILE ({settings.tls_cert_file}) and ANALYTICS_TLS_KEY_FILE "
            f"({settings.tls_key_file}) do not load as a certificate and its unencrypted private key "
            f"(PEM): {exc}"
        ) from exc


def uvicorn_tls_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of ``uvicorn.Config`` for a replica's own server (direct mode)."""
    if not serves_https(settings):
        return {}
    return {
        "ssl_certfile": str(settings.tls_cert_file),
        "ssl_keyfile": str(settings.tls_key_file),
        "ssl_ciphers": TLS12_CIPHERS,
    }


def proxy_http_options(settings: Settings) -> dict[str, Any]:
    """Serve's ``http_options`` for its proxy to listen on the service's address (proxy mode)."""
    options: dict[str, Any] = {"host": settings.host, "port": settings.port}
    if serves_https(settings):
        options |= {"ssl_certfile": str(settings.tls_cert_file), "ssl_keyfile": str(settings.tls_key_file)}
    return options


def base_url(settings: Settings) -> str:
    scheme = "https" if serves_https(settings) else "http"
    return f"{scheme}://{settings.host}:{settings.port}"
