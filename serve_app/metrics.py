"""Prometheus metrics of an ingress replica. The event store actor exports its own; /metrics shows both.

The ingest counters are recorded by the ingestion service (semantic/ingest_metrics.py) in this
replica's registry, whichever entry point (REST route, GraphQL mutation) received the events.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, GCCollector

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
