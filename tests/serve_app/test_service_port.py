"""The service's port while it starts: held against Ray's random port picks, and only the service's
own readiness answer counts as ready."""

from __future__ import annotations

import socket

import pytest
from prometheus_client import CollectorRegistry, start_http_server

from serve_app import runtime
from serve_app.direct_server import listening_socket
from tests.support import free_port


def test_a_reserved_port_is_refused_to_other_programs_and_shared_with_the_replicas() -> None:
    port = free_port()
    reservation = runtime.reserve_port("127.0.0.1", port)
    try:
        # As Ray probes a port for its own servers: a plain bind on any address.
        with socket.socket() as probe, pytest.raises(OSError):
            probe.bind(("", port))
        # A replica binds it the way the reservation does, and listens.
        replica = listening_socket("127.0.0.1", port)
        replica.listen()
        replica.close()
    finally:
        reservation.close()
    with socket.socket() as probe:
        probe.bind(("", port))


def test_a_port_another_program_listens_on_is_a_clear_error() -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(RuntimeError, match=f"cannot use 127.0.0.1:{port}"):
            runtime.reserve_port("127.0.0.1", port)


def test_a_server_answering_every_path_with_200_is_not_taken_for_the_service() -> None:
    # Ray's metrics exporter answers any GET with 200 (and a POST with 405).
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=CollectorRegistry())
    try:
        with pytest.raises(TimeoutError, match="200"):
            runtime.wait_http_ready(f"http://127.0.0.1:{port}", 1.0)
    finally:
        server.shutdown()
        thread.join(5)
