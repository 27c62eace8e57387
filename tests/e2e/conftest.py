"""The whole service, started once for the end-to-end tests exactly as `make run` starts it, on a free
loopback port, and stopped when they are done (package scope): the rest of the suite runs without it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.settings import Settings
from serve_app import runtime
from tests.conftest import NATS_URL
from tests.e2e.browser import browser, screenshots  # noqa: F401 - the browser tests' session fixtures
from tests.mail import LoopbackController, Mailbox
from tests.support import free_port

# Report notifications of the session's service are signed with this and sent to the session's mail server.
WEBHOOK_SECRET = "e2e-webhook-" + secrets.token_hex(16)


@pytest.fixture(scope="package")
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server on loopback, which the session's service sends report e-mails to."""
    box = Mailbox()
    controller = LoopbackController(box, hostname="127.0.0.1", port=0)
    controller.start()
    box.port = controller.port
    yield box
    controller.stop()


@pytest.fixture(scope="package")
def service(
    make_database: Any, session_tmp: Path, redis_url: str, mailbox: Mailbox
) -> Iterator[runtime.RunningService]:
    settings = Settings(
        environment="test",
        data_dir=session_tmp / "service-data",
        port=free_port(),
        postgres_dsn=make_database(),
        redis_url=redis_url,
        nats_url=NATS_URL,
        bootstrap_admin_key="ak_test_" + secrets.token_urlsafe(24),
        internal_hosts=["platform.example"],
        # Two replicas on one port, so every end-to-end test also crosses the kernel's spreading of
        # connections (SO_REUSEPORT) and replicas that each hold their own caches.
        ingress_replicas=2,
        smtp_host="127.0.0.1",
        smtp_port=mailbox.port,
        smtp_from="reports@analytics.test",
        webhook_signing_secret=WEBHOOK_SECRET,
        notify_backoff_seconds=0.05,
        # A fixed port, as an operator sets it for Prometheus (tests/e2e/test_prometheus.py).
        ray_metrics_port=free_port(),
    )
    running = runtime.start(settings)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="package")
def base_url(service: runtime.RunningService) -> str:
    return service.base_url


@pytest.fixture(scope="package")
def admin(service: runtime.RunningService) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {service.admin_key}"}
    with httpx.Client(base_url=service.base_url, headers=headers, timeout=120) as client:
        yield client


@pytest.fixture(scope="package")
def role_keys(admin: httpx.Client) -> dict[str, str]:
    """One fresh API key per role, created through the admin API."""
    keys = {}
    for role in ("admin", "analyst", "content_manager", "viewer", "service"):
        response = admin.post("/api/v1/admin/api-keys", json={"name": f"test {role}", "role": role})
        assert response.status_code == 201, response.text
        keys[role] = response.json()["key"]
    return keys


@pytest.fixture(scope="package")
def client_for(service: runtime.RunningService, role_keys: dict[str, str]) -> Iterator[Any]:
    clients: dict[str, httpx.Client] = {}

    def get(role: str) -> httpx.Client:
        if role not in clients:
            clients[role] = httpx.Client(
                base_url=service.base_url, headers={"Authorization": f"Bearer {role_keys[role]}"}, timeout=120
            )
        return clients[role]

    yield get
    for client in clients.values():
        client.close()
