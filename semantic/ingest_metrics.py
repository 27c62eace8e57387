"""The ingest counters: recorded by the ingestion service, so every entry point (REST, GraphQL,
stream consumers) counts events the same way.

The metrics live in the registry the process exports (serve_app/metrics.py passes its own); a
service built without one still counts, in a registry of its own that nothing scrapes.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from core.errors import FieldError

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.accepted = Counter(
            "analytics_events_accepted",
            "Events acknowledged as stored (including duplicates of stored events)",
            registry=self.registry,
        )
        self.duplicate = Counter(
            "analytics_events_duplicate", "Acknowledged events whose id was already stored", registry=self.registry
        )
        self.rejected = Counter(
            "analytics_events_rejected", "Events refused at validation, by reason", ["reason"], registry=self.registry
        )
        # `route` names the entry point: a REST route (event, batch, content_view, ...) or a GraphQL mutation.
        self.latency = Histogram(
            "analytics_ingest_request_seconds",
            "Ingest request latency, from parsed body to durable acknowledgement",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.store_errors = Counter(
            "analytics_store_errors",
            "Requests that failed because a store was unavailable",
            ["store"],
            registry=self.registry,
        )

    def stored(self, route: str, seconds: float, accepted: int, duplicates: int) -> None:
        """A request whose valid events are durable (``accepted`` counts duplicates too)."""
        self.latency.labels(route=route).observe(seconds)
        if accepted:
            self.accepted.inc(accepted)
        if duplicates:
            self.duplicate.inc(duplicates)

    def record_rejections(self, errors: list[FieldError]) -> None:
        # One count per refused event, under the reason of its first error.
        seen: set[int | None] = set()
        for error in errors:
            if error.index in seen:
                continue
            seen.add(error.index)
            self.rejected.labels(reason=error.code).inc()

    def event_too_large(self) -> None:
        self.rejected.labels(reason="too_large").inc()

    def event_store_error(self) -> None:
        self.store_errors.labels(store="events").inc()
