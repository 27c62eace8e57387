"""The event store's Prometheus metrics, in a registry of the store's own (served by
``EventStoreActor.metrics_text``; the rollup feeder adds its metrics to the same registry).

Any thread may record: prometheus_client guards each value with its own lock. The two lags are read
at each scrape from the sources the store hands over (``track_lag``), so they grow while nothing moves.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# When the oldest acknowledged row still waiting was accepted (epoch ms), or None when none waits.
OldestMs = Callable[[], int | None]


class StoreMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._insert_rows = Histogram(
            "analytics_store_insert_rows",
            "Rows per ClickHouse insert (group commit batch size)",
            buckets=(1, 10, 100, 500, 1000, 5000, 10_000, 50_000, 200_000),
            registry=self.registry,
        )
        self._insert_seconds = Histogram(
            "analytics_store_insert_seconds", "Duration of one ClickHouse insert", registry=self.registry
        )
        self._append_seconds = Histogram(
            "analytics_store_log_append_seconds",
            "Duration of one write-ahead log append, fsync included",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
            registry=self.registry,
        )
        self._duplicates = Counter(
            "analytics_store_duplicates_dropped",
            "Events not inserted because their id was stored",
            registry=self.registry,
        )
        self._insert_errors = Counter(
            "analytics_store_insert_errors",
            "Failed ClickHouse inserts, and failed log checkpoints after a flush's insert",
            registry=self.registry,
        )
        self._indexed = Gauge("analytics_store_indexed_ids", "Event ids in the dedup index", registry=self.registry)
        self._pending = Gauge(
            "analytics_store_pending_rows", "Acknowledged rows not yet in ClickHouse", registry=self.registry
        )
        self._flush_lag = Gauge(
            "analytics_store_flush_lag_seconds",
            "Age of the oldest acknowledged event not yet in ClickHouse (0 when none waits)",
            registry=self.registry,
        )
        self._watermark_lag = Gauge(
            "analytics_store_watermark_lag_seconds",
            "How far the data watermark is behind now: age of the oldest acknowledged event not yet in "
            "ClickHouse and the rollups (0 when none waits)",
            registry=self.registry,
        )

    def log_appended(self, seconds: float) -> None:
        self._append_seconds.observe(seconds)

    def inserted(self, rows: int, seconds: float) -> None:
        self._insert_seconds.observe(seconds)
        self._insert_rows.observe(rows)

    def insert_failed(self) -> None:
        self._insert_errors.inc()

    def flush_failed(self) -> None:
        """A flush failed after its insert (the log checkpoint, or releasing its rows); it is retried."""
        self._insert_errors.inc()

    def duplicates_dropped(self, count: int) -> None:
        self._duplicates.inc(count)

    def indexed_ids(self, count: int) -> None:
        self._indexed.set(count)

    def pending_rows(self, rows: int) -> None:
        self._pending.set(rows)

    def track_lag(self, oldest_pending_ms: OldestMs, oldest_unfed_ms: OldestMs) -> None:
        """The flush lag follows the oldest pending write (PendingWrites); the watermark lag also the
        oldest insert not yet fed to the rollups (RollupFeeder), as the watermark's as_of does."""
        self._flush_lag.set_function(lambda: _age_seconds(oldest_pending_ms()))
        self._watermark_lag.set_function(
            lambda: _age_seconds(
                min((t for t in (oldest_pending_ms(), oldest_unfed_ms()) if t is not None), default=None)
            )
        )

    def text(self) -> bytes:
        """The exposition format, for the service's /metrics."""
        return generate_latest(self.registry)


def _age_seconds(accepted_ms: int | None) -> float:
    if accepted_ms is None:
        return 0.0
    return max(0.0, time.time() - accepted_ms / 1000)
