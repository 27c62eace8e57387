"""Start and stop the whole service on one machine: stores, Ray, the event store actor and Serve.

``make run`` and the test session use this same code path.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import ray
from ray import serve

from actors import names
from actors.event_store import event_store_actor
from actors.realtime_actors import realtime_actors, wait_ready
from actors.report_scheduler import report_scheduler_actor
from core.settings import Settings
from pipelines.scheduled_jobs import SCHEDULED_LAUNCH
from serve_app.app import build_app, runtime_env_vars
from serve_app.direct_server import listening_socket
from serve_app.loopback import keep_local_ray_on_loopback
from serve_app.tls import base_url as service_base_url
from serve_app.tls import check_tls_pair, proxy_http_options, serves_https
from storage.embedded_postgres import EmbeddedPostgres
from storage.metadata import MetadataStore

log = logging.getLogger("analytics.runtime")
APP_NAME = "analytics"

LOCAL_RAY_SYSTEM_CONFIG = {
    # A local Ray starts one idle Python worker per CPU for tasks, each costing memory. The service runs
    # no tasks (every process is a named actor, a Serve replica, the proxy or the controller), so
    # workers are started only when an actor needs one.
    "prestart_worker_first_driver": False,
    # Arguments and results up to 8 MiB go straight to the actor in the call, not through the object
    # store and the raylet (the default limit is 100 KiB, below a 1000-event batch of Arrow), which
    # roughly halves Ray's own CPU per ingested event.
    "max_direct_call_object_size": 8 * 1024 * 1024,
}

LOCAL_SERVE_ENV = {
    # Serve's controller goes over its deployments every 0.1 s by default, which with Ray's processes
    # answering it is a visible share of an idle small machine's CPU (docs/benchmarks.md, idle CPU).
    # Replicas' health is checked every 5 s regardless, so a dead one is replaced at most 0.4 s later.
    # (Inherited by every process of the local node.)
    "RAY_SERVE_CONTROL_LOOP_INTERVAL_S": "0.5",
}


@dataclass
class RunningService:
    settings: Settings
    admin_key: str | None
    base_url: str
    started_ray: bool
    # Held for the service's lifetime: the actor is owned by this process and dies with its last handle.
    event_store: ray.actor.ActorHandle
    # Counter shards and the live hub (which ranks trending): owned the same way.
    realtime: list[ray.actor.ActorHandle] = field(default_factory=list)
    embedded_postgres: EmbeddedPostgres | None = None
    ray_temp_dir: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def _remove_serve(self, *, shutdown: bool = True) -> None:
        try:
            serve.delete(APP_NAME)
        except Exception:  # best effort while shutting down
            log.debug("serve app already gone", exc_info=True)
        if shutdown:
            try:
                serve.shutdown()
            except Exception:
                log.warning("Serve did not shut down cleanly", exc_info=True)

    def settle_rollups(self) -> int:
        """Wait until the rollups hold every event acknowledged so far (they trail by ~1 s)."""
        return int(ray.get(self.event_store.settle_rollups.remote()))

    def stop(self) -> None:
        if self.started_ray:
            # A signal to the whole process group (systemd's default, `kill -- -PGID`) stops Ray's GCS
            # and raylet too, and Serve's calls would then wait on them for a minute. So they run
            # aside, given up on once the head has gone: the replicas and actors went with it.
            cleanup = threading.Thread(target=self._remove_serve, name="serve-cleanup", daemon=True)
            cleanup.start()
            deadline = time.monotonic() + 120
            while cleanup.is_alive() and not _local_ray_head_died() and time.monotonic() < deadline:
                cleanup.join(0.2)
            ray.shutdown()
        else:
            self._remove_serve(shutdown=False)
        if self.embedded_postgres is not None:
            self.embedded_postgres.stop()


def admin_key_file(settings: Settings) -> Path:
    return settings.data_dir.resolve() / "admin-api-key"


async def _prepare_metadata(settings: Settings) -> str | None:
    store = await MetadataStore.connect(settings.postgres_dsn or "")
    try:
        await store.migrate()
        return await store.ensure_bootstrap_admin(settings.bootstrap_admin_key)
    finally:
        await store.close()


def start(settings: Settings, *, wait_ready_seconds: float = 120.0) -> RunningService:
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    # Before anything starts: a certificate and key that do not load would otherwise fail every replica.
    check_tls_pair(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Replicas and actors may run in other working directories: every path they are given is absolute.
    settings = settings.model_copy(update=_absolute_paths(settings))

    # Ray's processes pick their ports at random; holding the service's port first keeps them off it
    # (a metrics server of Ray's on it would answer the readiness probe instead of the service).
    reservation = reserve_port(settings.host, settings.port) if settings.ingress_mode == "direct" else None
    try:
        return _start(settings, wait_ready_seconds, t0, timings)
    finally:
        if reservation is not None:
            reservation.close()


def reserve_port(host: str, port: int) -> socket.socket:
    """The service's port, bound but not listening: no other process binds it (Ray's port picks
    skip it) while the replicas, which share it the same way (SO_REUSEPORT), still can. A port
    another program listens on is a clear error here, before anything starts."""
    try:
        return listening_socket(host, port)
    except OSError as exc:
        raise RuntimeError(f"cannot use {host}:{port} for the service: {exc.strerror}") from exc


def _start(settings: Settings, wait_ready_seconds: float, t0: float, timings: dict[str, float]) -> RunningService:
    embedded_pg = None
    if not settings.postgres_dsn:
        embedded_pg = EmbeddedPostgres(settings.postgres_data_path)
        settings = settings.model_copy(update={"postgres_dsn": embedded_pg.start()})
    timings["postgres"] = time.perf_counter() - t0

    made_key = asyncio.run(_prepare_metadata(settings))
    key_file = admin_key_file(settings)
    if made_key:
        key_file.write_text(made_key + "\n")
        key_file.chmod(0o600)
    admin_key = (
        settings.bootstrap_admin_key or made_key or (key_file.read_text().strip() if key_file.exists() else None)
    )

    started_ray = False
    temp_dir = None
    if not ray.is_initialized():
        # Ray's unix sockets need a short path; keep it per port so two instances never collide.
        temp_dir = os.path.join(tempfile.gettempdir(), f"analytics-ray-{settings.port}")
        local = settings.ray_address is None
        log_to_driver = settings.environment == "development"
        if local:
            keep_local_ray_on_loopback()
            for name, value in LOCAL_SERVE_ENV.items():
                os.environ.setdefault(name, value)
        ray.init(
            address=settings.ray_address,
            namespace=names.NAMESPACE,
            include_dashboard=False,
            _temp_dir=temp_dir if local else None,
            _metrics_export_port=settings.ray_metrics_port if local else None,
            _system_config=LOCAL_RAY_SYSTEM_CONFIG if local else None,
            runtime_env={"env_vars": runtime_env_vars(settings)},
            # Replica access logs streamed into the driver cost CPU on every request: development only.
            log_to_driver=log_to_driver,
            configure_logging=False,
        )
        started_ray = True
        if local:
            _stop_idle_head_processes(keep_log_monitor=log_to_driver)
    timings["ray"] = time.perf_counter() - t0

    actor = event_store_actor(settings)
    ray.get(actor.ping.remote(), timeout=120)
    timings["event_store"] = time.perf_counter() - t0
    live = realtime_actors(settings)
    wait_ready(live)
    if settings.report_scheduler:
        # Owned by this run, as the other actors; build_app below finds it.
        report_scheduler_actor(settings, SCHEDULED_LAUNCH)
    timings["realtime"] = time.perf_counter() - t0

    direct = settings.ingress_mode == "direct"
    if direct:
        # The replicas serve HTTP themselves (serve_app/direct_server.py): no Serve proxy at all.
        serve.start(proxy_location="Disabled")
    else:
        # Serve's proxy owns the port, so it holds the certificate (serve_app/tls.py).
        serve.start(http_options=proxy_http_options(settings))
    app = build_app(settings.model_dump(mode="json"))
    serve.run(app, name=APP_NAME, route_prefix=None if direct else "/", blocking=False)
    base_url = service_base_url(settings)
    # The probe asks this machine's own server whether it came up and sends no credentials; the
    # certificate names the public host, not the address probed, so it is not verified here.
    wait_http_ready(base_url, wait_ready_seconds, verify=not serves_https(settings))
    timings["ready"] = time.perf_counter() - t0
    return RunningService(
        settings=settings,
        admin_key=admin_key,
        base_url=base_url,
        started_ray=started_ray,
        event_store=actor,
        realtime=live,
        embedded_postgres=embedded_pg,
        ray_temp_dir=temp_dir,
        timings=timings,
    )


def _is_readiness(response: httpx.Response) -> bool:
    # Another server on the port (anything answering every path with 200) is not the service.
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("status") == "ready" and isinstance(body.get("checks"), dict)


def _absolute_paths(settings: Settings) -> dict[str, Path]:
    paths = {
        "data_dir": settings.data_dir,
        "tls_cert_file": settings.tls_cert_file,
        "tls_key_file": settings.tls_key_file,
        "jwt_public_key_file": settings.jwt_public_key_file,
        "jwt_jwks_file": settings.jwt_jwks_file,
        "file_encryption_key_file": settings.file_encryption_key_file,
    }
    return {name: path.resolve() for name, path in paths.items() if path is not None}


def _local_ray_head_died() -> bool:
    """Whether the GCS or the raylet of the Ray node this process started has exited."""
    node = getattr(ray._private.worker, "_global_node", None)
    if node is None:
        return False
    try:
        return any(kind in ("gcs_server", "raylet") for kind, _ in node.dead_processes())
    except Exception:  # a private Ray API: when it differs, stop as usual
        log.debug("could not tell whether Ray's head processes are alive", exc_info=True)
        return False


def _stop_idle_head_processes(*, keep_log_monitor: bool) -> None:
    """Stop the head-node helpers a single-machine service never uses (each holds memory for nothing).

    ``ray.init`` always starts them and has no option to leave them out: the autoscaler monitor
    (one machine, nothing to scale), the dashboard's API server (job submission and state API;
    ``include_dashboard=False`` only trims its modules; Serve is driven through its controller
    actor) and, unless replica logs are streamed to the console, the log monitor. The raylet,
    the GCS and the two per-node agents stay: the raylet needs the agents.
    """
    node = getattr(ray._private.worker, "_global_node", None)
    if node is None:
        return
    stops = [node.kill_monitor, node.kill_dashboard]
    if not keep_log_monitor:
        stops.append(node.kill_log_monitor)
    for stop in stops:
        try:
            stop(check_alive=False)
        except Exception:  # a private Ray API: a newer Ray may differ; the service runs either way
            log.warning("could not stop an idle Ray head process (%s)", stop.__name__, exc_info=True)


def wait_http_ready(
    base_url: str,
    timeout: float,
    *,
    alive: Callable[[], bool] = lambda: True,
    verify: bool | ssl.SSLContext = True,
) -> None:
    """Until ``base_url`` answers /readyz with 200 and the service's own readiness body; ``alive``
    says whether its server can still come up; ``verify`` is httpx's check of an HTTPS server's
    certificate."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"the service at {base_url} stopped while starting: {last}")
        try:
            response = httpx.get(f"{base_url}/readyz", timeout=5, verify=verify)
            if response.status_code == 200 and _is_readiness(response):
                return
            last = f"{response.status_code} {response.text[:200]}"
            if response.status_code == 200:
                last = f"another server answers on the port: {last}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.25)
    raise TimeoutError(f"the service did not become ready at {base_url}: {last}")
