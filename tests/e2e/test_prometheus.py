"""A real Prometheus against the running service: it scrapes /metrics with the committed scrape
configuration (deploy/prometheus/prometheus.yml, with this session's address, key and a short interval)
and Ray's metrics endpoint, loads the committed alerting rules (deploy/prometheus/alerts.yml) and
evaluates them; events ingested through the service show in its query API. Every PromQL expression of
the Grafana dashboards and alerting rules parses in this Prometheus and names only series that the
service's /metrics or Ray's metrics endpoint expose."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
import ray
import yaml

from serve_app import runtime
from tests.deploy.promql import (
    PROMETHEUS_DIR,
    PROMETHEUS_SERIES,
    alert_expressions,
    alert_rules,
    dashboard_expressions,
    exposed_names,
    for_prometheus,
    metric_names,
)
from tests.support import free_port

pytestmark = pytest.mark.e2e

PROMETHEUS = "/usr/bin/prometheus"
SCRAPE_SECONDS = 2
EVENTS = "/api/v1/analytics/events"


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    home: Path
    ray_metrics_url: str

    def query(self, expression: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expression}, timeout=10)
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", (expression, body)
        return list(body["data"]["result"])

    def value(self, expression: str) -> float | None:
        """The value of an expression that yields one series, or None while it yields none."""
        result = self.query(expression)
        assert len(result) <= 1, (expression, result)
        return float(result[0]["value"][1]) if result else None

    def log(self) -> str:
        return (self.home / "prometheus.log").read_text(errors="replace")[-4000:]


def _ray_metrics_port(service: runtime.RunningService) -> int:
    """The metrics export port of the session's Ray node (the driver is this test process): the one
    ANALYTICS_RAY_METRICS_PORT set."""
    ports = {int(node["MetricsExportPort"]) for node in ray.nodes() if node["Alive"]}
    assert ports == {service.settings.ray_metrics_port}, ports
    return ports.pop()


def _config(service: runtime.RunningService, home: Path, ray_port: int) -> dict[str, Any]:
    """The committed configuration, pointed at this session: its address and key, Ray's node, a short
    interval, and the committed rules by absolute path."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"].update(
        scrape_interval=f"{SCRAPE_SECONDS}s", scrape_timeout=f"{SCRAPE_SECONDS}s", evaluation_interval="1s"
    )
    config["rule_files"] = [str(PROMETHEUS_DIR / name) for name in config["rule_files"]]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"analytics", "ray"}

    key_file = home / "analytics-api-key"
    key_file.write_text(str(service.admin_key))
    key_file.chmod(0o600)
    analytics = jobs["analytics"]
    analytics["authorization"]["credentials_file"] = str(key_file)
    analytics["static_configs"] = [{"targets": [urlparse(service.base_url).netloc]}]

    # The file Ray's dashboard writes on a cluster, in its format, for this session's one node.
    discovery = home / "prom_metrics_service_discovery.json"
    discovery.write_text(json.dumps([{"labels": {"job": "ray"}, "targets": [f"127.0.0.1:{ray_port}"]}]))
    jobs["ray"]["file_sd_configs"] = [{"files": [str(discovery)], "refresh_interval": "5s"}]
    return config


def _wait(what: str, check: Callable[[], Any], prometheus: Prometheus | None, seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            detail = prometheus.log() if prometheus is not None else ""
            raise AssertionError(f"timed out waiting for {what}\n{detail}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def prometheus(service: runtime.RunningService, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    home = tmp_path_factory.mktemp("prometheus")
    ray_port = _ray_metrics_port(service)
    (home / "prometheus.yml").write_text(yaml.safe_dump(_config(service, home, ray_port)))
    port = free_port()
    with (home / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={home / 'prometheus.yml'}",
                f"--storage.tsdb.path={home / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=home,
        )
    running = Prometheus(f"http://127.0.0.1:{port}", process, home, f"http://127.0.0.1:{ray_port}/metrics")
    try:

        def ready() -> bool:
            assert process.poll() is None, f"prometheus exited with {process.returncode}\n{running.log()}"
            try:
                return httpx.get(f"{running.url}/-/ready", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        _wait("Prometheus to start", ready, running, seconds=60)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _targets_up(prometheus: Prometheus) -> dict[str, float]:
    return {r["metric"]["job"]: float(r["value"][1]) for r in prometheus.query("up")}


def test_prometheus_scrapes_the_service_and_ray(prometheus: Prometheus, service: runtime.RunningService) -> None:
    up = _wait("both targets scraped", lambda: (t := _targets_up(prometheus)) and len(t) == 2 and t, prometheus)
    assert up == {"analytics": 1.0, "ray": 1.0}

    # The service dashboard's replica count, from Ray's metrics: the session's ingress replicas (each
    # replica's health series appears once Serve's controller has reported it).
    expected = service.settings.ingress_replicas

    def replicas() -> dict[str, float] | None:
        result = prometheus.query("sum by (deployment) (ray_serve_deployment_replica_healthy)")
        by_deployment = {r["metric"]["deployment"]: float(r["value"][1]) for r in result}
        return by_deployment if by_deployment.get("AnalyticsIngress") == expected else None

    assert _wait(f"{expected} healthy ingress replicas in Ray's metrics", replicas, prometheus, seconds=150)
    # The store's lag gauges arrive through whichever replica answers.
    assert prometheus.value("max(analytics_store_flush_lag_seconds)") is not None
    assert prometheus.value("max(analytics_store_watermark_lag_seconds)") is not None


def _batch(prefix: str, n: int) -> list[dict[str, Any]]:
    start = datetime.now(UTC) - timedelta(minutes=30)
    return [
        {
            "id": f"{prefix}-{i}",
            "event_type": "content_view",
            "timestamp": (start + timedelta(seconds=i)).isoformat(),
            "user_id": f"u{i}",
            "session_id": prefix,
            "content_id": f"c{i % 3}",
        }
        for i in range(n)
    ]


def test_ingested_events_show_in_prometheus(
    prometheus: Prometheus, service: runtime.RunningService, unique: str
) -> None:
    accepted = "sum(analytics_events_accepted_total)"
    inserted = "sum(analytics_store_insert_rows_sum)"
    _wait("the ingest counters scraped", lambda: prometheus.value(accepted) is not None, prometheus)
    accepted_before = prometheus.value(accepted)
    inserted_before = prometheus.value(inserted)
    assert accepted_before is not None and inserted_before is not None

    # Prometheus keeps its connection, so its scrapes reach one replica, whichever the kernel gave that
    # connection. Each batch goes over a new connection: with these many, every replica takes some, so
    # the replica scraped counts at least one batch.
    per_batch, batches = 5, 16
    headers = {"Authorization": f"Bearer {service.admin_key}"}
    for b in range(batches):
        with httpx.Client(base_url=service.base_url, headers=headers, timeout=60) as client:
            response = client.post(f"{EVENTS}/batch", json={"events": _batch(f"prom-{unique}-{b}", per_batch)})
            assert response.status_code in (200, 201), response.text
            assert response.json()["accepted"] == per_batch

    _wait(
        f"the replica's accepted counter to grow by at least {per_batch}",
        lambda: (prometheus.value(accepted) or 0) >= accepted_before + per_batch,
        prometheus,
    )
    # The event store counts every replica's events: all of them reach ClickHouse, once.
    _wait(
        f"ClickHouse's inserted rows to grow by at least {per_batch * batches}",
        lambda: (prometheus.value(inserted) or 0) >= inserted_before + per_batch * batches,
        prometheus,
    )
    answers = prometheus.value('sum(analytics_http_responses_total{status_class="2xx", method="POST"})')
    assert answers is not None and answers >= 1


def test_the_alerting_rules_load_and_evaluate(prometheus: Prometheus) -> None:
    committed = {rule["alert"] for rule in alert_rules()}

    def evaluated() -> list[dict[str, Any]] | None:
        response = httpx.get(f"{prometheus.url}/api/v1/rules", params={"type": "alert"}, timeout=10)
        assert response.status_code == 200, response.text
        rules = [rule for group in response.json()["data"]["groups"] for rule in group["rules"]]
        return rules if rules and all(rule["health"] != "unknown" for rule in rules) else None

    rules = _wait("every alerting rule evaluated", evaluated, prometheus)
    assert {rule["name"] for rule in rules} == committed
    for rule in rules:
        assert rule["health"] == "ok", rule
    states = {rule["name"]: rule["state"] for rule in rules}
    # The service answers its scrapes, so this one stays quiet.
    assert states["AnalyticsMetricsDown"] == "inactive"


def test_every_promql_expression_parses_and_names_exposed_series(prometheus: Prometheus, admin: httpx.Client) -> None:
    response = admin.get("/metrics")
    assert response.status_code == 200
    service_names = exposed_names(response.text)

    expressions = dashboard_expressions() + alert_expressions()
    wanted = set().union(*(metric_names(expression) for _, expression in expressions))
    ray_wanted = {name for name in wanted if name.startswith("ray_")}

    def ray_names() -> set[str] | None:
        # Ray's agent exports a metric once a process has reported it: wait for those named.
        names = exposed_names(httpx.get(prometheus.ray_metrics_url, timeout=30).text)
        return names if ray_wanted <= names else None

    exposed = service_names | _wait("Ray to export the metrics named", ray_names, prometheus, seconds=90)

    missing = {}
    for where, expression in expressions:
        prometheus.query(for_prometheus(expression))  # parses: a syntax error is a 400
        unknown = metric_names(expression) - exposed - PROMETHEUS_SERIES
        if unknown:
            missing[where] = sorted(unknown)
    assert missing == {}
    # Every dashboard and rule names something, so the check above checked something.
    assert all(metric_names(expression) for _, expression in expressions)
