"""HTTP answers counted by status class (serve_app/metrics.py, recorded by serve_app/request_telemetry.py):
through the REST app over the in-process fakes, each answer adds one to its status class and method,
with or without a self-telemetry recorder and when the app raised; the exposition (/metrics) carries
the counter under its Prometheus name, and no label holds a path."""

from __future__ import annotations

from collections import Counter

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from core.access import Role
from core.settings import Settings
from semantic.self_telemetry import SelfTelemetry, SelfTelemetryMetrics
from serve_app import metrics
from serve_app.factory import create_app
from tests.graphql.fakes import ROLE_KEYS, FakeServices

NAME = "analytics_http_responses_total"


def _client(services: FakeServices) -> TestClient:
    app = create_app(Settings(environment="test"))
    app.state.services = services
    headers = {"Authorization": f"Bearer {ROLE_KEYS[Role.ADMIN]}"}
    return TestClient(app, headers=headers, raise_server_exceptions=False)


def _counts() -> Counter[tuple[str, str]]:
    """(status_class, method) -> answers counted so far, from the replica's registry."""
    out: Counter[tuple[str, str]] = Counter()
    for family in metrics.REGISTRY.collect():
        for sample in family.samples:
            if sample.name == NAME:
                out[(sample.labels["status_class"], sample.labels["method"])] = int(sample.value)
    return out


def _answers(client: TestClient) -> list[int]:
    return [
        client.get("/healthz").status_code,
        client.get("/healthz").status_code,
        client.get("/api/v1/analytics/events/missing-7").status_code,
        client.get("/nope/12345").status_code,
        client.delete("/healthz").status_code,
        client.post("/api/v1/analytics/events", json={"id": "h-1", "event_type": "content_view"}).status_code,
        # The fakes run no SQL: the search analytics fail, an unexpected error answered with a 500.
        client.get("/api/v1/analytics/search/overview").status_code,
        client.request("PROPFIND", "/healthz").status_code,
        TestClient(client.app, raise_server_exceptions=False).get("/api/v1/analytics/content/c-9").status_code,
    ]


EXPECTED_STATUSES = [200, 200, 404, 404, 405, 201, 500, 405, 401]
EXPECTED_COUNTS = {
    ("2xx", "GET"): 2,
    ("4xx", "GET"): 3,
    ("4xx", "DELETE"): 1,
    ("2xx", "POST"): 1,
    ("5xx", "GET"): 1,
    ("4xx", "other"): 1,
}


def _delta(before: Counter[tuple[str, str]], after: Counter[tuple[str, str]]) -> dict[tuple[str, str], int]:
    return {key: after[key] - before[key] for key in after if after[key] != before[key]}


def test_each_answer_counts_once_under_its_status_class_without_a_recorder() -> None:
    services = FakeServices.build()
    assert getattr(services, "telemetry", None) is None
    client = _client(services)
    before = _counts()
    assert _answers(client) == EXPECTED_STATUSES
    assert _delta(before, _counts()) == EXPECTED_COUNTS


def test_the_same_counts_with_a_recorder_and_with_one_that_fails() -> None:
    class Broken(SelfTelemetry):
        def end_request(self, *args: object) -> None:
            raise RuntimeError("recording failed")

    for telemetry in (SelfTelemetry(flush_seconds=60, metrics=SelfTelemetryMetrics()), Broken(flush_seconds=60)):
        services = FakeServices.build()
        services.telemetry = telemetry  # type: ignore[attr-defined]
        client = _client(services)
        before = _counts()
        assert _answers(client) == EXPECTED_STATUSES
        assert _delta(before, _counts()) == EXPECTED_COUNTS


def test_the_exposition_names_the_counter_and_its_labels_hold_no_path() -> None:
    client = _client(FakeServices.build())
    client.get("/api/v1/analytics/events/some-id-42")
    response = client.get("/metrics")
    assert response.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    family = families["analytics_http_responses"]
    assert family.type == "counter"
    samples = [s for s in family.samples if s.name == NAME]
    # Every status class an alert divides by is there from the start, errors included.
    assert {("2xx", "GET"), ("4xx", "GET"), ("5xx", "GET"), ("5xx", "POST")} <= {
        (s.labels["status_class"], s.labels["method"]) for s in samples
    }
    for sample in samples:
        assert set(sample.labels) == {"status_class", "method"}
        assert sample.labels["status_class"] in {"1xx", "2xx", "3xx", "4xx", "5xx", "other"}
    assert "some-id-42" not in response.text
