"""Transport security of a whole running service, as `analytics run` starts it: HTTPS with a certificate
from a CA the test makes (verified against it), the security headers and CORS on real answers, and no
secret in any log the run wrote: the API keys used (and one refused), the bootstrap admin key, and the
passwords in the PostgreSQL DSN and the Redis URL.

One service, in a process of its own (one Serve per Ray), in `development`: the environment that logs
the most (access logs, replicas' output streamed to the console)."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from serve_app import runtime
from tests.certificates import IssuedCertificates, make_certificates
from tests.conftest import REDIS_URL
from tests.support import free_port

pytestmark = pytest.mark.e2e

ALLOWED_ORIGIN = "https://dashboard.example"


@dataclass
class TlsService:
    base_url: str
    port: int
    admin_key: str
    certificates: IssuedCertificates
    trusted: ssl.SSLContext
    console: Path
    data_dir: Path
    ray_dir: Path
    # Every secret the run was given or used; none may appear in its logs.
    secrets: dict[str, str]
    process: subprocess.Popen[bytes]

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.base_url, headers=headers, verify=self.trusted, timeout=60)


def _with_password(url: str, default_user: str, password: str) -> str:
    parts = urlsplit(url)
    assert parts.password is None, "the test servers' URLs carry no password"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or default_user}:{password}@{host}"))


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="module")
def tls_service(make_database: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsService]:
    root = tmp_path_factory.mktemp("transport")
    certificates = make_certificates(root / "tls")
    port = free_port()
    # Both servers here accept any password (PostgreSQL trusts local connections; Redis's default user
    # has none), so these reach the logs only if the service writes them there.
    postgres_password = "pg-" + secrets.token_urlsafe(18)
    redis_password = "redis-" + secrets.token_urlsafe(18)
    admin_key = "ak_test_" + secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "ANALYTICS_ENVIRONMENT": "development",
        "ANALYTICS_PORT": str(port),
        "ANALYTICS_DATA_DIR": str(root / "data"),
        "ANALYTICS_POSTGRES_DSN": _with_password(make_database(), "postgres", postgres_password),
        "ANALYTICS_REDIS_URL": _with_password(REDIS_URL, "default", redis_password),
        "ANALYTICS_BOOTSTRAP_ADMIN_KEY": admin_key,
        "ANALYTICS_TLS_CERT_FILE": str(certificates.cert_file),
        "ANALYTICS_TLS_KEY_FILE": str(certificates.key_file),
        "ANALYTICS_CORS_ORIGINS": ALLOWED_ORIGIN,
        "ANALYTICS_HSTS_MAX_AGE_SECONDS": "86400",
    }
    # Where runtime.start puts this instance's Ray files, logs included.
    ray_dir = Path(tempfile.gettempdir()) / f"analytics-ray-{port}"
    ray_dir_existed = ray_dir.exists()
    sessions_before = set(ray_dir.glob("session_*")) if ray_dir_existed else set()
    console = root / "console.log"
    with console.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "serve_app.cli", "run"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    trusted = ssl.create_default_context(cafile=str(certificates.ca_file))
    base_url = f"https://127.0.0.1:{port}"
    service = TlsService(
        base_url=base_url,
        port=port,
        admin_key=admin_key,
        certificates=certificates,
        trusted=trusted,
        console=console,
        data_dir=root / "data",
        ray_dir=ray_dir,
        secrets={
            "bootstrap admin key": admin_key,
            "PostgreSQL password": postgres_password,
            "Redis password": redis_password,
        },
        process=process,
    )
    try:
        runtime.wait_http_ready(base_url, 240, alive=lambda: process.poll() is None, verify=trusted)
        yield service
    finally:
        _stop(process)
        if not ray_dir_existed:
            shutil.rmtree(ray_dir, ignore_errors=True)
        for session in set(ray_dir.glob("session_*")) - sessions_before:
            shutil.rmtree(session, ignore_errors=True)


def test_the_service_answers_https_verified_against_its_ca(tls_service: TlsService) -> None:
    with tls_service.client() as client:
        response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert response.headers["strict-transport-security"] == "max-age=86400"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    # Without the test's CA the certificate is refused; plain HTTP gets no answer on the port.
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{tls_service.base_url}/healthz", timeout=30)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{tls_service.port}/healthz", timeout=30)


def test_cors_on_the_running_service(tls_service: TlsService) -> None:
    with tls_service.client() as client:
        preflight = client.options(
            "/api/v1/analytics/events",
            headers={
                "Origin": ALLOWED_ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert preflight.status_code == 204, preflight.text
        assert preflight.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
        assert "access-control-allow-credentials" not in preflight.headers
        foreign = client.options(
            "/api/v1/analytics/events",
            headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"},
        )
        assert foreign.status_code == 403 and "https://elsewhere.example" in foreign.json()["message"]
        assert "access-control-allow-origin" not in foreign.headers


def _log_files(service: TlsService, sessions: set[Path]) -> list[Path]:
    """Every log the run wrote: the console (its banner and, in development, the replicas' output),
    the whole logs directory of its Ray session(s), and any log in its data directory."""
    found = [service.console]
    for session in sessions:
        found.extend(p for p in (session / "logs").rglob("*") if p.is_file())
    for path in service.data_dir.rglob("*"):
        if path.is_file() and (path.suffix in {".log", ".out", ".err"} or {"log", "logs"} & set(path.parts)):
            found.append(path)
    return found


def _use_keys(service: TlsService) -> None:
    """Requests over HTTPS with a key made through the API, the admin key, and a key that is refused."""
    with service.client(service.admin_key) as admin:
        made = admin.post("/api/v1/admin/api-keys", json={"name": "transport test", "role": "service"})
        assert made.status_code == 201, made.text
        assert made.headers["cache-control"] == "no-store"
    service_key = made.json()["key"]
    service.secrets["service key"] = service_key
    refused_key = "ak_" + secrets.token_urlsafe(32)
    service.secrets["refused key"] = refused_key

    with service.client(service_key) as client:
        event = {"id": f"tls-{secrets.token_hex(4)}", "event_type": "content_view", "content_id": "c-tls"}
        stored = client.post("/api/v1/analytics/events", json=event)
        assert stored.status_code == 201, stored.text
        assert stored.headers["cache-control"] == "no-store"
        graphql = client.post("/graphql", json={"query": "{ __typename }"})
        assert graphql.status_code == 200, graphql.text
        assert client.get("/api/v1/analytics/no/such/route").status_code == 404
        # A service key reads no analytics: refused, with the key in the request all the same.
        assert client.get("/api/v1/analytics/content/c-tls").status_code == 403
    with service.client(refused_key) as stranger:
        refused = stranger.get("/metrics")
        assert refused.status_code == 401
        assert refused.headers["x-content-type-options"] == "nosniff"


# Last in the module: it stops the service, so that every log is complete when read.
def test_no_secret_reaches_any_log(tls_service: TlsService) -> None:
    _use_keys(tls_service)
    # The banner, printed once the service is ready, names the HTTPS address (and no key).
    deadline = time.monotonic() + 60
    while b"Press Ctrl-C" not in tls_service.console.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert f"REST API:    {tls_service.base_url}/api/v1/analytics/" in tls_service.console.read_text(errors="replace")
    _stop(tls_service.process)
    assert tls_service.process.returncode == 0, tls_service.console.read_text(errors="replace")[-3000:]

    sessions = set(tls_service.ray_dir.glob("session_2*"))
    assert sessions, f"no Ray session under {tls_service.ray_dir}"
    files = _log_files(tls_service, sessions)
    assert any("serve" in path.parts for path in files), "Serve's logs were not found"
    read = 0
    leaks = []
    for path in files:
        content = path.read_bytes()
        read += len(content)
        for what, secret in tls_service.secrets.items():
            if secret.encode() in content:
                leaks.append(f"{what} in {path}")
    assert read > 10_000, f"only {read} bytes of logs in {len(files)} files"
    # The settings without credentials do reach these logs (Ray's runtime-env agent logs the
    # environment it gives workers), so credentials sent the same way would have been caught.
    assert any(ALLOWED_ORIGIN.encode() in path.read_bytes() for path in files)
    assert leaks == []
