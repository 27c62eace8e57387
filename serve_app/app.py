"""The Ray Serve application: ``serve_app.app:build_app`` (see serve_config.yaml)."""

from __future__ import annotations

from typing import Any

from ray import serve
from ray.serve import Application

from actors.event_store import event_store_actor
from actors.realtime_actors import realtime_actors
from core.settings import Settings
from serve_app.direct_server import DirectAnalyticsServer
from serve_app.factory import create_app
from serve_app.loopback import keep_replica_grpc_on_loopback


@serve.ingress(create_app)
class AnalyticsIngress:
    """One ingress replica: the FastAPI app with REST routes and GraphQL at /graphql."""

    def __init__(self) -> None:
        keep_replica_grpc_on_loopback()


def settings_env(settings: Settings) -> dict[str, str]:
    """Settings as ANALYTICS_* variables, so every replica builds the same Settings."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        env[f"ANALYTICS_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def build_app(args: dict[str, Any] | None = None) -> Application:
    """Typed builder: ``args`` are Settings fields (lower case names) layered over the environment."""
    settings = Settings(**(args or {}))
    if not settings.postgres_dsn:
        raise ValueError(
            "a cluster deployment needs ANALYTICS_POSTGRES_DSN (or args.postgres_dsn); "
            "`analytics run` starts an embedded one"
        )
    # The event store actor must exist before replicas look it up; `analytics run` has made it already.
    event_store_actor(settings, detached=True)
    realtime_actors(settings, detached=True)
    # Both modes deploy under one name, so a config's `deployments: - name: AnalyticsIngress` applies to either.
    deployment = serve.deployment(
        DirectAnalyticsServer if settings.ingress_mode == "direct" else AnalyticsIngress,
        name="AnalyticsIngress",
        num_replicas=settings.ingress_replicas,
        max_ongoing_requests=settings.ingress_max_ongoing_requests,
        # Replicas are mostly I/O-bound; reserving a whole core each would starve a 2-core node.
        ray_actor_options={"num_cpus": 0, "runtime_env": {"env_vars": settings_env(settings)}},
        health_check_period_s=5,
        # A log line per request costs replica CPU on the hot path; /metrics counts requests instead.
        logging_config={"enable_access_log": settings.environment == "development"},
    )
    return deployment.bind()
