"""Prometheus metrics of an ingress replica. The event store actor exports its own; /metrics shows both.

The ingest counters are recorded by the ingestion service (semantic/ingest_metrics.py) in this
replica's registry, whichever entry point (REST route, GraphQL mutation) received the events. HTTP
answers are counted by status class by the request middleware (serve_app/request_telemetry.py).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, GCCollector

from semantic.ingest_metrics import IngestMetrics
from semantic.rate_limits import RateLimitMetrics
from semantic.result_cache import CacheMetrics

REGISTRY = CollectorRegistry(auto_describe=True)
# python_gc_collections_total and friends: the collector's work in this replica (core/heap.py).
GCCollector(registry=REGISTRY)

# One per process: a metric can be registered only once, however many apps a process builds.
INGEST = IngestMetrics(REGISTRY)
RESULT_CACHE = CacheMetrics(REGISTRY)
RATE_LIMITS = RateLimitMetrics(REGISTRY)

# Labels stay few and fixed: a status class and a known method, never a path (ids would make a series
# per request).
HTTP_RESPONSES = Counter(
    "analytics_http_responses",
    "HTTP requests answered by this replica, by status class (2xx, 4xx, 5xx, ...) and method",
    ["status_class", "method"],
    registry=REGISTRY,
)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_STATUS_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
# Present at 0 from the first scrape, so a rate over the first errors ever answered sees them.
for _method in ("GET", "POST"):
    for _status_class in ("2xx", "4xx", "5xx"):
        HTTP_RESPONSES.labels(status_class=_status_class, method=_method)


def record_response(method: str, status: int) -> None:
    """One HTTP request answered with ``status``."""
    HTTP_RESPONSES.labels(
        status_class=_STATUS_CLASSES.get(status // 100, "other"),
        method=method if method in _METHODS else "other",
    ).inc()
