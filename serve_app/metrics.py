"""Prometheus metrics of an ingress replica. The event store actor exports its own; /metrics shows both."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, GCCollector, Histogram

from core.errors import FieldError

REGISTRY = CollectorRegistry(auto_describe=True)
# python_gc_collections_total and friends: the collector's work in this replica (core/heap.py).
GCCollector(registry=REGISTRY)

EVENTS_ACCEPTED = Counter(
    "analytics_events_accepted", "Events acknowledged as stored (including duplicates of stored events)", registry=REGISTRY
)
EVENTS_DUPLICATE = Counter(
    "analytics_events_duplicate", "Acknowledged events whose id was already stored", registry=REGISTRY
)
EVENTS_REJECTED = Counter(
    "analytics_events_rejected", "Events refused at validation, by reason", ["reason"], registry=REGISTRY
)
INGEST_LATENCY = Histogram(
    "analytics_ingest_request_seconds",
    "Ingest request latency, from parsed body to durable acknowledgement",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
STORE_ERRORS = Counter(
    "analytics_store_errors", "Requests that failed because a store was unavailable", ["store"], registry=REGISTRY
)


def record_rejections(errors: list[FieldError]) -> None:
    # One count per refused event, under the reason of its first error.
    seen: set[int | None] = set()
    for error in errors:
        if error.index in seen:
            continue
        seen.add(error.index)
        EVENTS_REJECTED.labels(reason=error.code).inc()
