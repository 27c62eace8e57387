"""Direct ingress: the Serve replicas themselves listen on the service's port (no proxy process, no
hop), connections are spread over them, and a replica that dies is replaced on the same port, with
acknowledged events intact."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from ray import serve

from serve_app import runtime
from tests.support import free_port

pytestmark = pytest.mark.e2e


def listeners_of(port: int) -> set[int]:
    """The processes listening on ``port``."""
    return {
        conn.pid
        for conn in psutil.net_connections(kind="tcp")
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid
    }


def listener_of(port: int) -> psutil.Process | None:
    pids = listeners_of(port)
    return psutil.Process(min(pids)) if pids else None


def serving_processes(port: int) -> set[int]:
    """The processes holding accepted connections on ``port``."""
    return {
        conn.pid
        for conn in psutil.net_connections(kind="tcp")
        if conn.status == psutil.CONN_ESTABLISHED and conn.laddr and conn.laddr.port == port and conn.pid
    }


def wait_for_listeners(port: int, count: int, timeout: float = 90.0) -> set[int]:
    deadline = time.monotonic() + timeout
    while len(pids := listeners_of(port)) != count:
        assert time.monotonic() < deadline, f"{len(pids)} processes listen on {port}, not {count}"
        time.sleep(0.2)
    return pids


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


def listening_under(root: psutil.Process) -> set[tuple[str, int, str]]:
    """(address, port, process name) of every socket that ``root`` or a process under it listens on."""
    processes = {p.pid: p for p in root.children(recursive=True)} | {root.pid: root}
    names = {}
    for pid, process in processes.items():
        with contextlib.suppress(psutil.Error):  # one may end while we look
            names[pid] = process.name()
    return {
        (c.laddr.ip, c.laddr.port, names.get(c.pid, "?"))
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.pid in processes and c.laddr
    }


def beyond_loopback(listening: set[tuple[str, int, str]]) -> set[tuple[str, int, str]]:
    def loopback(text: str) -> bool:
        address = ipaddress.ip_address(text)
        mapped = getattr(address, "ipv4_mapped", None)
        return address.is_loopback or (mapped is not None and mapped.is_loopback)

    return {entry for entry in listening if not loopback(entry[0])}


def test_no_process_of_the_service_listens_beyond_loopback(service: runtime.RunningService) -> None:
    # The session's service runs under this process: Ray's GCS, raylet, agents, actors and replicas.
    listening = listening_under(psutil.Process())
    assert service.settings.port in {port for _, port, _ in listening}
    # Ray's own servers are among those checked.
    assert {"gcs_server", "raylet"} <= {name for _, _, name in listening}, listening
    assert beyond_loopback(listening) == set()


def test_serves_controller_loops_every_half_second(service: runtime.RunningService) -> None:
    # Serve reads the interval from its process's environment when it starts (runtime.LOCAL_SERVE_ENV).
    controllers = [p for p in psutil.Process().children(recursive=True) if p.name().startswith("ray::ServeCont")]
    assert len(controllers) == 1, controllers
    assert controllers[0].environ().get("RAY_SERVE_CONTROL_LOOP_INTERVAL_S") == "0.5"


def test_every_replica_listens_and_connections_are_spread_over_them(
    service: runtime.RunningService, unique: str
) -> None:
    port = service.settings.port
    replicas = service.settings.ingress_replicas
    assert replicas == 2
    listeners = wait_for_listeners(port, replicas)
    assert all(psutil.Process(pid).cmdline()[0].startswith("ray::ServeReplica:analytics:") for pid in listeners)
    # 16 connections held open at once: the kernel hashes each to one of the listening sockets
    # (SO_REUSEPORT), so with two replicas all 16 land on one with chance 2 * 2**-16.
    headers = {"Authorization": f"Bearer {service.settings.bootstrap_admin_key}"}
    clients = [httpx.Client(base_url=service.base_url, headers=headers, timeout=30) for _ in range(16)]
    try:

        def send(i: int) -> int:
            event = {"id": f"spread-{unique}-{i}", "event_type": "content_view", "content_id": f"c-{unique}"}
            return clients[i].post("/api/v1/analytics/events", json=event).status_code

        with ThreadPoolExecutor(16) as pool:
            assert list(pool.map(send, range(16))) == [201] * 16
        assert serving_processes(port) == listeners
        # Stored once each, whichever replica took them.
        count = clients[0].get("/api/v1/analytics/events", params={"content_id": f"c-{unique}", "limit": 100})
        assert count.status_code == 200, count.text
        assert sorted(e["id"] for e in count.json()["events"]) == sorted(f"spread-{unique}-{i}" for i in range(16))
    finally:
        for client in clients:
            client.close()


def test_a_killed_replica_comes_back_on_the_same_port(
    service: runtime.RunningService, admin: httpx.Client, unique: str
) -> None:
    before = {"id": f"ingress-{unique}-before", "event_type": "content_view", "content_id": f"c-{unique}"}
    assert admin.post("/api/v1/analytics/events", json=before).status_code == 201
    port, replicas = service.settings.port, service.settings.ingress_replicas
    listening = wait_for_listeners(port, replicas)
    replica = psutil.Process(min(listening))
    os.kill(replica.pid, signal.SIGKILL)
    replica.wait(timeout=30)

    # Serve replaces the replica, which binds the same port at once although connections to the
    # killed one linger in TIME_WAIT (SO_REUSEADDR).
    runtime.wait_http_ready(service.base_url, 90)
    back = wait_for_listeners(port, replicas)
    assert replica.pid not in back and back - listening

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
        assert beyond_loopback(listening_under(psutil.Process(process.pid))) == set()
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
