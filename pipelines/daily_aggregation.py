"""The daily analytics job on Ray Data: a UTC day's content records and rankings, its search record and
its services' hourly records, written to PostgreSQL.

How the work is split, and why:

1. One statement lists the day's active content (ClickHouse groups it; a Ray Data shuffle group-by was
   measured 25-45x slower than the engine's own GROUP BY, so the grouping stays in the engine).
2. The content ids are cut into partitions of ``PARTITION_SIZE``; Ray Data maps each partition, in
   parallel across the cluster's workers and retried on its own when its worker dies, to its records:
   ``ContentAnalyticsService.compute`` for those ids and that day (a fixed number of statements per
   partition, every metric from the semantic layer, so a record equals the live API's answer).
3. The driver gathers the records, ranks them (overall and per category), computes the day's search
   record (``SearchAnalyticsService.overview`` of the day) and the SystemAnalytics of each service and
   hour (``SystemAnalyticsService.services``): a few statements each, not worth partitions; and replaces
   the day's records, rankings, search and system records in one PostgreSQL transaction: a re-run
   replaces, never duplicates, and readers never see half a day.

The run is recorded in ``aggregation_runs`` (status, timings, partitions, record counts, the data
watermark it read at) and announced on the bus (``analytics.aggregation_completed``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import orjson
import ray

from actors.event_store import RemoteEventStore, find_event_store_actor
from core.models import utc_now
from core.settings import Settings
from pipelines.ray_jobs import TaskLauncher
from semantic.analytics import Analytics
from semantic.daily_content import active_content, content_records, rankings
from semantic.daily_search import search_record
from semantic.daily_system import system_records
from storage.aggregates import AggregateStore, AggregationRun
from storage.bus import EventBus, open_bus
from storage.metadata import MetadataStore

log = logging.getLogger(__name__)

AGGREGATION_COMPLETED = "analytics.aggregation_completed"
# Content per partition: large enough that a partition's few statements dominate its overhead, small
# enough that a retried partition redoes little.
PARTITION_SIZE = 500
PARTITION_RETRIES = 3


@dataclass(slots=True)
class _Worker:
    """What a Ray Data worker process computes partitions with, opened once per process."""

    loop: asyncio.AbstractEventLoop
    analytics: Analytics


_WORKER: _Worker | None = None


def _worker(settings: dict[str, Any]) -> _Worker:
    global _WORKER
    if _WORKER is None:
        loop = asyncio.new_event_loop()
        events = RemoteEventStore(find_event_store_actor(), batch=True)
        _WORKER = _Worker(loop, Analytics.build(events, Settings(**settings)))
    return _WORKER


def compute_partitions(batch: dict[str, np.ndarray], settings: dict[str, Any]) -> dict[str, list[bytes]]:
    """Ray Data's map over partitions: each row a day and its content ids; out, the records as JSON."""
    worker = _worker(settings)
    out: list[bytes] = []
    for day_text, ids in zip(batch["day"], batch["content_ids"], strict=True):
        day = date.fromisoformat(str(day_text))
        records = worker.loop.run_until_complete(
            content_records(
                worker.analytics.content, worker.analytics.metadata, day, [str(i) for i in ids], calculated_at=utc_now()
            )
        )
        out.extend(orjson.dumps(record) for record in records)
    return {"record": out}


def _partitions(day: date, content_ids: list[str]) -> list[dict[str, Any]]:
    return [
        {"day": day.isoformat(), "content_ids": content_ids[start : start + PARTITION_SIZE]}
        for start in range(0, len(content_ids), PARTITION_SIZE)
    ]


def _gather(partitions: list[dict[str, Any]], settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Every partition's records, computed by Ray Data (blocking: call it in a thread)."""
    if not partitions:
        return []
    dataset = ray.data.from_items(partitions).map_batches(
        compute_partitions,  # type: ignore[arg-type]  # fn_kwargs gives its second argument
        batch_size=1,
        fn_kwargs={"settings": settings},
        max_retries=PARTITION_RETRIES,
        retry_exceptions=True,
    )
    return [orjson.loads(row["record"]) for row in dataset.iter_rows()]


@dataclass(slots=True)
class AggregationEnvironment:
    settings: Settings
    metadata: MetadataStore
    store: AggregateStore
    events: RemoteEventStore
    bus: EventBus

    @classmethod
    async def open(cls, settings: Settings) -> AggregationEnvironment:
        if not settings.postgres_dsn:
            raise RuntimeError("ANALYTICS_POSTGRES_DSN must be resolved before aggregation runs start")
        metadata = await MetadataStore.connect(settings.postgres_dsn)
        return cls(
            settings=settings,
            metadata=metadata,
            store=AggregateStore(metadata.pool),
            events=RemoteEventStore(find_event_store_actor(), batch=True),
            bus=open_bus(settings.nats_url),
        )

    async def close(self) -> None:
        for closing in (self.bus.close(), self.metadata.close()):
            with contextlib.suppress(Exception):
                await closing


async def aggregate_day(
    env: AggregationEnvironment,
    run: AggregationRun,
    *,
    gather: Callable[[list[dict[str, Any]], dict[str, Any]], list[dict[str, Any]]] = _gather,
) -> AggregationRun:
    """Compute ``run``'s day and replace its records; the run completed, or failed with the error."""
    try:
        watermark = await env.events.watermark()
        content_ids = await active_content(env.events, run.day)
        partitions = _partitions(run.day, content_ids)
        settings = env.settings.model_dump(mode="json")
        records = await asyncio.to_thread(gather, partitions, settings)
        calculated_at = utc_now()
        for record in records:
            record["day"] = run.day
            record["calculated_at"] = calculated_at
        # The day's search record and its services' hours: a few statements each, computed here rather
        # than in partitions.
        analytics = Analytics.build(env.events, env.settings)
        search, system = await asyncio.gather(
            search_record(analytics.search, run.day, calculated_at=calculated_at),
            system_records(analytics.system, run.day, calculated_at=calculated_at),
        )
        finished = await env.store.replace_day(
            run.id,
            run.day,
            records,
            rankings(records),
            search,
            system,
            as_of=watermark.as_of,
            partitions=len(partitions),
        )
    except Exception as exc:
        log.exception("aggregation run %s of %s failed", run.id, run.day)
        await env.store.fail_run(run.id, f"{type(exc).__name__}: {exc}")
        raise
    with contextlib.suppress(Exception):
        await env.bus.publish(AGGREGATION_COMPLETED, orjson.dumps(finished.to_dict()))
    return finished


async def _run_in_task(settings: dict[str, Any], run_id: str) -> str | None:
    env = await AggregationEnvironment.open(Settings(**settings))
    try:
        run = await env.store.run(run_id)
        if run is None or run.status != "running":
            return None
        return (await aggregate_day(env, run)).status
    finally:
        await env.close()


@ray.remote(max_retries=0)
def aggregation_task(settings: dict[str, Any], run_id: str) -> str | None:
    return asyncio.run(_run_in_task(settings, run_id))


def aggregation_launcher(settings: Settings) -> TaskLauncher:
    return TaskLauncher(settings, aggregation_task, "aggregation")


def parse_day(value: str) -> date:
    return datetime.strptime(value, "%Y-%m-%d").date()
