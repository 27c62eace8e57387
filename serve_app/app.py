"""The Ray Serve application: ``serve_app.app:build_app`` (see serve_config.yaml)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI
from ray import serve
from ray.serve import Application
from ray.serve.context import _get_global_client

from actors.event_store import event_store_actor
from actors.realtime_actors import realtime_actors
from actors.report_scheduler import report_scheduler_actor
from core.settings import Settings
from pipelines.scheduled_jobs import SCHEDULED_LAUNCH
from serve_app.direct_server import DirectAnalyticsServer, replica_settings
from serve_app.factory import create_app
from serve_app.jwt_tokens import JwtVerifier
from serve_app.loopback import keep_replica_grpc_on_loopback
from serve_app.tls import check_tls_pair, serves_https

log = logging.getLogger("analytics.app")


# Settings that hold credentials. They reach replicas and actors as constructor arguments, never
# through a runtime_env: Ray's runtime-env agent writes a runtime_env, environment variables and
# all, into its log (runtime_env_agent.log) for every worker it starts.
SECRET_SETTINGS = frozenset(
    {
        "postgres_dsn",
        "redis_url",
        "clickhouse_dsn",
        "nats_url",
        "bootstrap_admin_key",
        "jwt_hmac_secret",
        "user_id_hash_salt",
        "user_id_hash_previous_salts",
        "s3_access_key_id",
        "s3_secret_access_key",
        "file_encryption_key",
        "file_encryption_previous_keys",
    }
)


# The app is built in the replica by __serve_build_asgi_app__ (the factory, imported), never pickled:
# a pickled app breaks Strawberry's router.
@serve.ingress()
class AnalyticsIngress:
    """One ingress replica behind Serve's proxy: the FastAPI app with REST routes and GraphQL at /graphql."""

    def __init__(self, settings_fields: dict[str, Any] | None = None) -> None:
        keep_replica_grpc_on_loopback()
        self._settings = replica_settings(settings_fields)

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_app(self._settings)


def settings_env(settings: Settings) -> dict[str, str]:
    """Settings as ANALYTICS_* variables: what builds the same Settings in another process."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        env[f"ANALYTICS_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def runtime_env_vars(settings: Settings) -> dict[str, str]:
    """The environment for a Ray runtime_env: every setting but the credentials (SECRET_SETTINGS)."""
    secret = {f"ANALYTICS_{name.upper()}" for name in SECRET_SETTINGS}
    return {name: value for name, value in settings_env(settings).items() if name not in secret}


def build_app(args: dict[str, Any] | None = None) -> Application:
    """Typed builder: ``args`` are Settings fields (lower case names) layered over the environment."""
    settings = Settings(**(args or {}))
    if not settings.postgres_dsn:
        raise ValueError(
            "a cluster deployment needs ANALYTICS_POSTGRES_DSN (or args.postgres_dsn); "
            "`analytics run` starts an embedded one"
        )
    check_tls_pair(settings)
    # A JWT key that cannot be read stops the deployment here, not in every replica.
    JwtVerifier.from_settings(settings)
    if settings.ingress_mode == "proxy" and serves_https(settings):
        _check_proxy_serves_https()
    # The event store actor must exist before replicas look it up; `analytics run` has made it already.
    event_store_actor(settings, detached=True)
    realtime_actors(settings, detached=True)
    if settings.report_scheduler:
        report_scheduler_actor(settings, SCHEDULED_LAUNCH, detached=True)
    # Both modes deploy under one name, so a config's `deployments: - name: AnalyticsIngress` applies to either.
    deployment = serve.deployment(
        DirectAnalyticsServer if settings.ingress_mode == "direct" else AnalyticsIngress,
        name="AnalyticsIngress",
        num_replicas=settings.ingress_replicas,
        max_ongoing_requests=settings.ingress_max_ongoing_requests,
        # Replicas are mostly I/O-bound; reserving a whole core each would starve a 2-core node.
        ray_actor_options={"num_cpus": 0, "runtime_env": {"env_vars": runtime_env_vars(settings)}},
        health_check_period_s=5,
        # A log line per request costs replica CPU on the hot path; /metrics counts requests instead.
        logging_config={"enable_access_log": settings.environment == "development"},
    )
    # Every replica builds the same Settings from these, credentials included.
    return deployment.bind(settings.model_dump(mode="json"))


def _check_proxy_serves_https() -> None:
    """In proxy mode Serve's proxy holds the port, so HTTPS is its ``http_options``, set when Serve
    starts (`analytics run` sets it from the TLS settings; a cluster's serve_config.yaml must say it).
    Refused rather than serving plain HTTP to callers who configured HTTPS."""
    try:
        client = _get_global_client()
        http = client.http_config if client is not None else None
    except Exception:  # a private Ray API: when it differs, the operator's config is trusted
        log.warning("could not read Serve's HTTP options to check that its proxy serves HTTPS", exc_info=True)
        return
    if http is not None and not (http.ssl_certfile and http.ssl_keyfile):
        raise ValueError(
            "ANALYTICS_TLS_CERT_FILE and ANALYTICS_TLS_KEY_FILE are set with ANALYTICS_INGRESS_MODE=proxy, but "
            "Serve's proxy listens on plain HTTP: set http_options.ssl_certfile and http_options.ssl_keyfile "
            "in serve_config.yaml (in proxy mode the proxy holds the port and the certificate)"
        )
