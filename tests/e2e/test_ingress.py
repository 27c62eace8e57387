"""Direct ingress: the Serve replica itself listens on the service's port (no proxy process, no
hop), and a replica that dies is replaced on the same port, with acknowledged events intact."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from ray import serve

from serve_app import runtime
from tests.support import free_port

pytestmark = pytest.mark.e2e


def listener_of(port: int) -> psutil.Process | None:
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            return psutil.Process(conn.pid)
    return None


def test_the_service_port_is_served_by_the_replica_on_loopback(service: runtime.RunningService) -> None:
    assert service.settings.ingress_mode == "direct"
    port = service.settings.port
    listener = listener_of(port)
    assert listener is not None, f"nothing listens on {port}"
    assert listener.cmdline()[0].startswith("ray::ServeReplica:analytics:"), listener.cmdline()[0]
    addresses = {
        c.laddr.ip
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    }
    assert addresses == {"127.0.0.1"}
    # Serve runs no HTTP proxy of its own.
    assert serve.status().proxies == {}


def test_a_killed_replica_comes_back_on_the_same_port(
    service: runtime.RunningService, admin: httpx.Client, unique: str
) -> None:
    before = {"id": f"ingress-{unique}-before", "event_type": "content_view", "content_id": f"c-{unique}"}
    assert admin.post("/api/v1/analytics/events", json=before).status_code == 201
    replica = listener_of(service.settings.port)
    assert replica is not None
    os.kill(replica.pid, signal.SIGKILL)
    replica.wait(timeout=30)

    # Serve replaces the replica, which binds the same port at once although connections to the
    # killed one linger in TIME_WAIT (SO_REUSEADDR).
    runtime.wait_http_ready(service.base_url, 90)
    back = listener_of(service.settings.port)
    assert back is not None and back.pid != replica.pid

    after = {"id": f"ingress-{unique}-after", "event_type": "content_view", "content_id": f"c-{unique}"}
    assert admin.post("/api/v1/analytics/events", json=after).status_code == 201
    # The event acknowledged before the kill is stored once; sending it again is a duplicate.
    again = admin.post("/api/v1/analytics/events", json=before)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    for event_id in (before["id"], after["id"]):
        response = admin.get(f"/api/v1/analytics/events/{event_id}")
        assert response.status_code == 200, response.text


def test_proxy_mode_serves_the_same_api_behind_serves_proxy(make_database: Any, tmp_path: Path) -> None:
    """`ANALYTICS_INGRESS_MODE=proxy` (what a cluster's serve_config.yaml uses): Serve's proxy owns
    the port and forwards to the replica. Its own service, in a process of its own (one Serve per Ray)."""
    port = free_port()
    key = "ak_test_" + secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "ANALYTICS_INGRESS_MODE": "proxy",
        "ANALYTICS_PORT": str(port),
        "ANALYTICS_DATA_DIR": str(tmp_path / "data"),
        "ANALYTICS_POSTGRES_DSN": make_database(),
        "ANALYTICS_BOOTSTRAP_ADMIN_KEY": key,
        "ANALYTICS_ENVIRONMENT": "test",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "serve_app.cli", "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        runtime.wait_http_ready(base, 180, alive=lambda: process.poll() is None)
        listener = listener_of(port)
        assert listener is not None and listener.cmdline()[0].startswith("ray::ProxyActor"), listener
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
            event = {"id": "proxy-mode-1", "event_type": "content_view", "content_id": "c-proxy"}
            assert client.post("/api/v1/analytics/events", json=event).status_code == 201
            stored = client.get("/api/v1/analytics/events/proxy-mode-1")
            assert stored.status_code == 200 and stored.json()["content_id"] == "c-proxy"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
