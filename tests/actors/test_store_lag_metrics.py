"""The event store's flush and watermark lags (actors/store_metrics.py): read at each scrape from the
times the store hands over, on their own and through a real store whose writes wait in the log, then
reach ClickHouse, then the rollups."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from actors.event_store import EventStoreActor
from actors.store_metrics import StoreMetrics
from core.arrow_ipc import pack
from storage.events import EventFilter
from tests.support import stored_events

FLUSH_LAG = "analytics_store_flush_lag_seconds"
WATERMARK_LAG = "analytics_store_watermark_lag_seconds"


def _lags(text: bytes) -> tuple[float, float]:
    values = {
        sample.name: sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
        if sample.name in (FLUSH_LAG, WATERMARK_LAG)
    }
    return values[FLUSH_LAG], values[WATERMARK_LAG]


def test_the_lags_are_the_ages_of_the_oldest_waiting_times_at_each_scrape() -> None:
    metrics = StoreMetrics()
    # Before the store hands its sources over, nothing waits.
    assert _lags(metrics.text()) == (0, 0)

    now_ms = int(time.time() * 1000)
    pending: list[int | None] = [None]
    unfed: list[int | None] = [None]
    metrics.track_lag(lambda: pending[0], lambda: unfed[0])
    assert _lags(metrics.text()) == (0, 0)

    # Stored but not yet in the rollups: only the watermark waits.
    unfed[0] = now_ms - 40_000
    flush, watermark = _lags(metrics.text())
    assert flush == 0 and 40 <= watermark < 45

    # A newer pending write: the watermark still waits for the older unfed insert.
    pending[0] = now_ms - 10_000
    flush, watermark = _lags(metrics.text())
    assert 10 <= flush < 15 and 40 <= watermark < 45

    # An older pending write: both follow it.
    pending[0] = now_ms - 90_000
    flush, watermark = _lags(metrics.text())
    assert 90 <= flush < 95 and 90 <= watermark < 95

    # A clock behind an accepted time is no negative lag.
    pending[0], unfed[0] = now_ms + 60_000, None
    assert _lags(metrics.text()) == (0, 0)


def test_a_store_reports_its_lags_until_its_writes_are_stored_and_fed(settings: dict[str, Any]) -> None:
    async def run() -> list[tuple[float, float]]:
        store = EventStoreActor(settings)
        try:
            seen = [_lags(await store.metrics_text())]
            start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
            await store.write(pack(stored_events("lag", 20, start, step=timedelta(seconds=1))), [20])
            # Acknowledged and in the log; the flush interval is long, so it stays there.
            await asyncio.sleep(1.2)
            seen.append(_lags(await store.metrics_text()))
            assert await store.count(EventFilter(event_type="content_view")) == 20  # a read inserts what is logged
            seen.append(_lags(await store.metrics_text()))
            await store.settle_rollups()
            seen.append(_lags(await store.metrics_text()))
            return seen
        finally:
            store.close()

    idle, logged, stored, fed = asyncio.run(run())
    assert idle == (0, 0)
    flush, watermark = logged
    assert 1.2 <= flush < 30 and watermark >= flush
    # In ClickHouse: no flush lag (the rollups may not have been fed yet by then).
    assert stored[0] == 0
    assert fed == (0, 0)
