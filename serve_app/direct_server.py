"""Direct ingress: each Serve replica runs the FastAPI app in its own uvicorn server on the port.

Serve's HTTP proxy is one more process and one more hop per request: on two cores, behind it even
an empty endpoint completed only ~104 single requests/s, against ~500 served this way, and batch
ingest ran 15-60% slower (bench/bench_ingest.py). Here Serve
still places, health-checks and restarts the replicas, but the requests go straight from the
socket to the app in the replica. Every replica binds the same address with SO_REUSEPORT, so
the kernel spreads connections over the replicas of a node, and a replacement replica binds
at once even while the old one's connections linger (SO_REUSEADDR). With a certificate configured
each replica's server speaks HTTPS itself (serve_app/tls.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn

from core.settings import Settings, get_settings
from serve_app.factory import create_app
from serve_app.loopback import keep_replica_grpc_on_loopback
from serve_app.tls import base_url, uvicorn_tls_options

log = logging.getLogger("analytics.direct_server")


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


class _ReplicaServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The replica's signals belong to Ray; Serve stops the replica (and so this server) itself.
        yield


class ReplicaHttpServer:
    """A uvicorn server for ``app`` on the replica's own event loop."""

    def __init__(
        self, app: Any, host: str, port: int, *, access_log: bool = False, tls: dict[str, Any] | None = None
    ) -> None:
        config = uvicorn.Config(
            app,
            lifespan="on",
            access_log=access_log,
            log_level="warning",
            timeout_graceful_shutdown=10,
            # No `server: uvicorn`: it names the software to scanners and tells a client nothing.
            server_header=False,
            **(tls or {}),
        )
        self.server = _ReplicaServer(config)
        self.socket = listening_socket(host, port)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.server.serve(sockets=[self.socket]))
        while not self.server.started:
            if self.task.done():
                self.task.result()  # raises what stopped the server
                raise RuntimeError("the HTTP server stopped while starting")
            await asyncio.sleep(0.05)

    def check(self) -> None:
        if self.task is None or self.task.done():
            raise RuntimeError("the replica's HTTP server has stopped")

    async def stop(self) -> None:
        """Finish the requests in flight, then close."""
        self.server.should_exit = True
        if self.task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout=15)
        except Exception:
            log.warning("the HTTP server did not stop cleanly", exc_info=True)


def replica_settings(fields: dict[str, Any] | None) -> Settings:
    """A replica's Settings: the fields the application was built with (serve_app/app.py), checked
    again here, on the replica's node (a TLS file must exist there too); else the environment."""
    return Settings(**fields) if fields is not None else get_settings()


class DirectAnalyticsServer:
    """One replica serving the service's HTTP itself; Serve sees no requests, only health checks."""

    async def __init__(self, settings_fields: dict[str, Any] | None = None) -> None:
        keep_replica_grpc_on_loopback()
        settings = replica_settings(settings_fields)
        self._http = ReplicaHttpServer(
            create_app(settings),
            settings.host,
            settings.port,
            access_log=settings.environment == "development",
            tls=uvicorn_tls_options(settings),
        )
        await self._http.start()
        log.info("serving on %s", base_url(settings))

    async def check_health(self) -> None:
        self._http.check()

    async def __del__(self) -> None:
        # Serve calls this when it stops the replica.
        await self._http.stop()
