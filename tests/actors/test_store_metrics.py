"""actors/store_metrics.py: the store's Prometheus metrics, on their own and after known writes
through the store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
from prometheus_client.parser import text_string_to_metric_families

from actors.event_store import EventStoreActor
from actors.store_metrics import StoreMetrics
from core.arrow_ipc import pack
from storage.events import EventFilter
from tests.support import stored_events

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def _samples(text: bytes) -> dict[str, float]:
    """``name{labels}`` -> value, for the store's own metrics."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            if sample.name.startswith("analytics_store_"):
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


def test_recorded_values_come_out_in_the_exposition() -> None:
    metrics = StoreMetrics()
    metrics.log_appended(0.002)
    metrics.log_appended(0.2)
    metrics.inserted(7, 0.03)
    metrics.inserted(600, 0.05)
    metrics.insert_failed()
    metrics.duplicates_dropped(4)
    metrics.duplicates_dropped(0)
    metrics.indexed_ids(1234)
    metrics.pending_rows(17)
    metrics.pending_rows(5)

    samples = _samples(metrics.text())
    assert samples["analytics_store_log_append_seconds_count"] == 2
    assert samples['analytics_store_log_append_seconds_bucket{le="0.0025"}'] == 1
    assert samples['analytics_store_log_append_seconds_bucket{le="0.5"}'] == 2
    assert samples["analytics_store_insert_rows_count"] == 2
    assert samples["analytics_store_insert_rows_sum"] == 607
    assert samples['analytics_store_insert_rows_bucket{le="10.0"}'] == 1
    assert samples['analytics_store_insert_rows_bucket{le="1000.0"}'] == 2
    assert samples["analytics_store_insert_seconds_count"] == 2
    assert samples["analytics_store_insert_errors_total"] == 1
    assert samples["analytics_store_duplicates_dropped_total"] == 4
    assert samples["analytics_store_indexed_ids"] == 1234
    assert samples["analytics_store_pending_rows"] == 5


def _events(prefix: str, n: int) -> pa.Table:
    return stored_events(prefix, n, NOW, step=timedelta(seconds=1), session_id=["s1"] * n)


def test_metrics_after_known_writes(settings: dict[str, Any]) -> None:
    async def run() -> tuple[dict[str, float], dict[str, float], dict[str, Any], int]:
        store = EventStoreActor(settings)
        try:
            await store.write(pack(_events("m", 30)), [30])
            # m0-m4 again (pending: duplicates) beside 10 new rows, for two requests.
            await store.write(pack(pa.concat_tables([_events("m", 5), _events("n", 10)])), [5, 10])
            logged = _samples(await store.metrics_text())
            count = await store.count(EventFilter(session_id="s1"))  # a read inserts what is logged
            stored = _samples(await store.metrics_text())
            return logged, stored, await store.describe(), count
        finally:
            store.close()

    logged, stored, described, count = asyncio.run(run())
    assert count == 40
    # Acknowledged, in the log, none inserted yet (the flush interval is long).
    assert logged["analytics_store_log_append_seconds_count"] == 2
    assert logged["analytics_store_duplicates_dropped_total"] == 5
    assert logged["analytics_store_pending_rows"] == 40
    assert logged["analytics_store_indexed_ids"] == 40
    assert logged["analytics_store_insert_rows_count"] == 0
    # The read's flush: one insert of all 40 rows.
    assert stored["analytics_store_insert_rows_count"] == 1
    assert stored["analytics_store_insert_rows_sum"] == 40
    assert stored['analytics_store_insert_rows_bucket{le="10.0"}'] == 0
    assert stored['analytics_store_insert_rows_bucket{le="100.0"}'] == 1
    assert stored["analytics_store_insert_errors_total"] == 0
    assert stored["analytics_store_pending_rows"] == 0
    assert stored["analytics_store_indexed_ids"] == 40
    assert stored["analytics_store_duplicates_dropped_total"] == 5
    assert {k: described[k] for k in ("indexed_ids", "pending_rows", "log_seq", "stored_through")} == {
        "indexed_ids": 40,
        "pending_rows": 0,
        "log_seq": 2,
        "stored_through": 2,
    }
