"""Dashboards benchmark: the prebuilt dashboards' data cold and cached, dashboard creation, and live
updates pushed to 200 websocket subscribers.

    python -m bench.bench_dashboards --size small     # 300k events
    python -m bench.bench_dashboards --size full      # 10M events over 30 days (the load alone takes minutes)

The real service (BenchService, its defaults: one ingress replica, the in-process result cache) runs with
a workload of ``workload_events`` events over 30 days and its content metadata bulk-loaded. Everything
then goes through the public API, as a client would:

- Dashboard data (``GET /dashboards/{id}/data`` as admin) of each prebuilt dashboard (executive, content
  operations, performance monitoring; found in ``GET /dashboards``). A dashboard's data is cached per
  (dashboard, version, refresh tick, role and scope), and each widget's analytics answer inside it per
  (question, scope, data watermark), so "cold" can mean two things, both measured:

  - fully cold: the request sends ``Cache-Control: no-cache`` (the dashboard's refresh button): the
    dashboard and every widget's answer are computed, none read from the cache. This is the work of
    the first view after new data moved the watermark.
  - cold dashboard, widget answers cached: the dashboard is touched first (``PUT`` of its own
    description: a new version, so its cached data no longer applies), its data read once, touched
    again, then the timed request: the dashboard is computed but its widgets' answers are found at
    the same watermark (what the first view after an edit costs while the data stands still).
    The service records its own requests as events (self-telemetry), so the watermark moves about
    once a second while the benchmark runs: each sample's widget answers are counted from the result
    cache's counters (``analytics_result_cache_requests_total`` in ``/metrics``, read before and after
    it), and only samples whose every widget answer came from the cache make this figure; the others
    are reported apart ("partly computed").
  - cached: the same request repeated within one refresh tick (``X-Cache: hit``); a repeat that crossed
    into the next tick is a miss, reported apart.

  The first request of each dashboard (the first computation of its statements) is recorded apart.
  Every sample's ``X-Cache`` header is kept; a widget that answers an error stops the benchmark.
- Creation: ``POST /dashboards`` with eight widgets of eight types (live counters, trending, a time
  series, a table, top content, an inline query, a funnel), after one warm-up request.
- Live updates: ``live_dashboards`` dashboards with a refresh interval of 1 s, each with
  ``live_widgets`` live counters (5-minute views) of contents of their own; ``live_subscribers``
  websocket clients per dashboard (graphql-transport-ws, the ``websockets`` library, all in this
  process) subscribe to ``dashboardUpdates`` with a viewer key. Events are ingested steadily
  (``live_events_per_second`` content views in batches every 100 ms, round robin over the contents, so
  every counter changes every tick). Over ``live_seconds`` (after ``live_warmup_seconds``) it counts the
  widget updates received by all clients together (the first message, every widget, excluded), and
  the delay from an event's ingest acknowledgement to the first message that shows it (a counter whose
  value reached that event's ordinal), per event and subscriber. The delay includes the wait for the
  dashboard's next refresh tick (up to 1 s): it is what a viewer sees. The time from a message's
  ``refreshedAt`` (when the service began computing that tick) to its receipt is reported beside it:
  the computation and the push alone. The dashboard computations the service made meanwhile come from
  the result cache's counters (kind ``dashboard.data``), and the CPU of every process of the service
  and of this process (the clients) from ``psutil``.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
from websockets.asyncio.client import connect

from bench.common import (
    BenchService,
    cpu_by_role,
    cpu_delta,
    load_average,
    percentiles,
    print_table,
    service_processes,
    write_result,
)
from bench.workload import PLATFORM_HOST, Workload, load_into_actor, load_metadata_into_actor

NAME = "dashboards"
SIZES: dict[str, dict[str, Any]] = {
    # For the test suite: proves the harness runs end to end, measures nothing.
    "tiny": {
        "workload_events": 3_000,
        "cached_requests": 5,
        "cold_requests": 2,
        "create_requests": 3,
        "live_dashboards": 2,
        "live_subscribers": 3,
        "live_widgets": 3,
        "live_events_per_second": 30,
        "live_warmup_seconds": 1,
        "live_seconds": 3,
        "live_grace_seconds": 3,
    },
    "small": {
        "workload_events": 300_000,
        "cached_requests": 100,
        "cold_requests": 30,
        "create_requests": 50,
        "live_dashboards": 10,
        "live_subscribers": 20,
        "live_widgets": 5,
        "live_events_per_second": 250,
        "live_warmup_seconds": 3,
        "live_seconds": 30,
        "live_grace_seconds": 5,
    },
    "full": {
        "workload_events": 10_000_000,
        "cached_requests": 100,
        "cold_requests": 30,
        "create_requests": 50,
        "live_dashboards": 10,
        "live_subscribers": 20,
        "live_widgets": 5,
        "live_events_per_second": 250,
        "live_warmup_seconds": 3,
        "live_seconds": 60,
        "live_grace_seconds": 5,
    },
}
API = "/api/v1/analytics"
DASHBOARDS = f"{API}/dashboards"
PREBUILT = ("executive", "content_operations", "performance_monitoring")
TARGET_MS = {"cold": 200.0, "cached": 20.0, "create": 200.0}
TARGET_UPDATES_PER_SECOND = 500.0
WORKLOAD_SEED = 67
DATA_KIND = "dashboard.data"
COMPUTED = ("miss", "refresh")
FROM_CACHE = ("hit", "shared")
BATCH_SECONDS = 0.1
# Websocket handshakes in flight at once while the subscribers connect.
CONNECTING_AT_ONCE = 20
FIRST_UPDATE_TIMEOUT = 120.0
UPDATES = (
    "subscription($id: String!) { dashboardUpdates(dashboardId: $id) { dashboardId version refreshedAt "
    "removedWidgetIds widgets { widgetId widgetType title asOf refreshedAt data error digest } } }"
)
_CACHE_LINE = re.compile(r"^analytics_result_cache_requests_total\{([^}]*)\}\s+(\S+)", re.MULTILINE)
_LABEL = re.compile(r'(\w+)="([^"]*)"')


# --- what the service says of its result cache ----------------------------------------------------------


def parse_cache_counts(text: str) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for labels, value in _CACHE_LINE.findall(text):
        named = dict(_LABEL.findall(labels))
        counts[(named.get("kind", ""), named.get("outcome", ""))] += int(float(value))
    return counts


def cache_counts(admin: httpx.Client) -> Counter[tuple[str, str]]:
    """The result cache's requests so far, by (kind, outcome), from the replica's ``/metrics``."""
    response = admin.get("/metrics")
    response.raise_for_status()
    return parse_cache_counts(response.text)


def widget_answers(before: Counter[tuple[str, str]], after: Counter[tuple[str, str]]) -> dict[str, int]:
    """Widget answers (every kind but the dashboard's own) computed and read from the cache in between."""
    delta = after - before
    return {
        "computed": sum(n for (kind, outcome), n in delta.items() if kind != DATA_KIND and outcome in COMPUTED),
        "cached": sum(n for (kind, outcome), n in delta.items() if kind != DATA_KIND and outcome in FROM_CACHE),
    }


# --- dashboard data ----------------------------------------------------------------------------------------


@dataclass
class Sample:
    seconds: float
    x_cache: str
    bytes: int
    computed: int | None = None
    cached: int | None = None


def get_data(admin: httpx.Client, dashboard: dict[str, Any], *, fresh: bool = False) -> Sample:
    """One timed ``GET /dashboards/{id}/data``; a failed request or a widget's error stops the benchmark."""
    headers = {"Cache-Control": "no-cache"} if fresh else None
    started = time.perf_counter()
    response = admin.get(f"{DASHBOARDS}/{dashboard['id']}/data", headers=headers)
    took = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"GET data of {dashboard['name']!r} answered {response.status_code}: {response.text}")
    errors = [(w["title"], w["error"]) for w in response.json()["widgets"] if w["error"] is not None]
    if errors:
        raise RuntimeError(f"dashboard {dashboard['name']!r}: widgets answered errors: {errors}")
    return Sample(took, response.headers.get("X-Cache", ""), len(response.content))


def touch(admin: httpx.Client, dashboard: dict[str, Any]) -> float:
    """A new version of the dashboard with nothing changed (its own description saved again)."""
    started = time.perf_counter()
    response = admin.put(f"{DASHBOARDS}/{dashboard['id']}", json={"description": dashboard["description"]})
    took = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"PUT {dashboard['name']!r} answered {response.status_code}: {response.text}")
    return took


def _summary(samples: list[Sample]) -> dict[str, Any]:
    return {
        "latency": percentiles(s.seconds for s in samples),
        "x_cache": dict(Counter(s.x_cache for s in samples)),
    }


def measure_dashboard(admin: httpx.Client, dashboard: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    first = get_data(admin, dashboard)
    cached = [get_data(admin, dashboard) for _ in range(params["cached_requests"])]

    cold_dashboard: list[Sample] = []
    touches: list[float] = []
    for _ in range(params["cold_requests"]):
        touches.append(touch(admin, dashboard))
        # Widget answers at the current watermark, so the timed request finds them.
        get_data(admin, dashboard)
        before = cache_counts(admin)
        touches.append(touch(admin, dashboard))
        sample = get_data(admin, dashboard)
        answers = widget_answers(before, cache_counts(admin))
        sample.computed, sample.cached = answers["computed"], answers["cached"]
        cold_dashboard.append(sample)

    fully_cold: list[Sample] = []
    for _ in range(params["cold_requests"]):
        before = cache_counts(admin)
        sample = get_data(admin, dashboard, fresh=True)
        answers = widget_answers(before, cache_counts(admin))
        sample.computed, sample.cached = answers["computed"], answers["cached"]
        fully_cold.append(sample)

    hits = [s for s in cached if s.x_cache == "hit"]
    warm = [s for s in cold_dashboard if s.computed == 0]
    partly = [s for s in cold_dashboard if s.computed]
    return {
        "id": dashboard["id"],
        "name": dashboard["name"],
        "widgets": dashboard["widget_count"],
        "refresh_interval_seconds": dashboard["refresh_interval_seconds"],
        "response_bytes": first.bytes,
        "first": {"ms": round(first.seconds * 1000, 2), "x_cache": first.x_cache},
        "cached": {
            **_summary(hits),
            "all": _summary(cached),
            # Repeats that crossed into the next refresh tick and computed the dashboard again.
            "misses": len(cached) - len(hits),
        },
        "cold_dashboard": {
            **_summary(warm),
            "all": _summary(cold_dashboard),
            "widget_answers_cached_mean": _mean(s.cached for s in warm),
            "partly_computed": {**_summary(partly), "widget_answers_computed": [s.computed for s in partly]},
        },
        "fully_cold": {
            **_summary(fully_cold),
            "widget_answers_computed": [s.computed for s in fully_cold],
            "widget_answers_cached": [s.cached for s in fully_cold],
        },
        "touch": percentiles(touches),
    }


def _mean(values: Iterable[int | None]) -> float | None:
    got = [v for v in values if v is not None]
    return round(sum(got) / len(got), 2) if got else None


def prebuilt_dashboards(admin: httpx.Client) -> dict[str, dict[str, Any]]:
    response = admin.get(DASHBOARDS, params={"limit": 200})
    response.raise_for_status()
    found = {d["prebuilt"]: d for d in response.json()["items"] if d["prebuilt"]}
    missing = [key for key in PREBUILT if key not in found]
    if missing:
        raise RuntimeError(f"the service has no prebuilt dashboards {missing}; it listed {sorted(found)}")
    return found


def run_data(admin: httpx.Client, params: dict[str, Any]) -> dict[str, Any]:
    dashboards = prebuilt_dashboards(admin)
    return {key: measure_dashboard(admin, dashboards[key], params) for key in PREBUILT}


# --- creation ----------------------------------------------------------------------------------------------


def creation_body(n: int, content_id: str) -> dict[str, Any]:
    """A dashboard of eight widgets of eight types, laid out on the 12-column grid."""
    return {
        "name": f"bench dashboard {n}",
        "description": "eight widgets",
        "refresh_interval_seconds": 10,
        "widgets": [
            {
                "widget_type": "real_time_counter",
                "title": "Active users now",
                "config": {"metric": "active_users_5m"},
                "layout": {"x": 0, "y": 0, "w": 3, "h": 2},
            },
            {
                "widget_type": "real_time_counter",
                "title": "Views of one item, last hour",
                "config": {"metric": "views", "window": "1h", "content_id": content_id},
                "layout": {"x": 3, "y": 0, "w": 3, "h": 2},
            },
            {
                "widget_type": "custom_metric",
                "title": "Plays, last 7 days",
                "config": {
                    "query": {
                        "metrics": ["plays"],
                        "date_range": {"relative": "last_7_days"},
                        "compare_to": "previous_period",
                    }
                },
                "layout": {"x": 6, "y": 0, "w": 3, "h": 2},
            },
            {
                "widget_type": "trending_content",
                "title": "Trending",
                "config": {"window": "1h", "limit": 10},
                "layout": {"x": 9, "y": 0, "w": 3, "h": 6},
            },
            {
                "widget_type": "time_series",
                "title": "Views and plays by day",
                "config": {"metrics": ["views", "plays"], "range": "last_30_days", "granularity": "day"},
                "layout": {"x": 0, "y": 2, "w": 9, "h": 4},
            },
            {
                "widget_type": "table",
                "title": "Views by country",
                "config": {"metrics": ["views", "unique_viewers"], "dimensions": ["country"], "limit": 10},
                "layout": {"x": 0, "y": 6, "w": 4, "h": 5},
            },
            {
                "widget_type": "top_content",
                "title": "Top content",
                "config": {"metric": "views", "range": "last_7_days", "limit": 10},
                "layout": {"x": 4, "y": 6, "w": 4, "h": 5},
            },
            {
                "widget_type": "funnel",
                "title": "View, play, complete",
                "config": {
                    "funnel": {
                        "steps": [
                            {"event_type": "content_view"},
                            {"event_type": "content_play"},
                            {"event_type": "content_complete"},
                        ],
                        "date_range": {"relative": "last_7_days"},
                    }
                },
                "layout": {"x": 8, "y": 6, "w": 4, "h": 5},
            },
        ],
    }


CREATED_WIDGETS = len(creation_body(0, "x")["widgets"])


def run_create(admin: httpx.Client, runs: int, content_id: str) -> dict[str, Any]:
    def create(n: int) -> float:
        started = time.perf_counter()
        response = admin.post(DASHBOARDS, json=creation_body(n, content_id))
        took = time.perf_counter() - started
        if response.status_code != 201:
            raise RuntimeError(f"POST {DASHBOARDS} answered {response.status_code}: {response.text}")
        made = len(response.json()["widgets"])
        if made != CREATED_WIDGETS:
            raise RuntimeError(f"the new dashboard has {made} widgets, not {CREATED_WIDGETS}")
        return took

    first = create(0)
    seconds = [create(n) for n in range(1, runs + 1)]
    return {
        "widgets": CREATED_WIDGETS,
        "first_ms": round(first * 1000, 2),
        "latency": percentiles(seconds),
        "target_ms": TARGET_MS["create"],
    }


# --- live updates ------------------------------------------------------------------------------------------


@dataclass
class Subscriber:
    dashboard: int
    subscribed_at: float = 0.0
    # (monotonic receipt, wall-clock receipt, the update) for every "next" message, in order.
    messages: list[tuple[float, float, dict[str, Any]]] = field(default_factory=list)
    first: asyncio.Event = field(default_factory=asyncio.Event)
    error: str | None = None


@dataclass
class Batch:
    first: int  # global index of its first event
    size: int
    sent: float
    acked: float


def live_body(run: str, d: int, widgets: int) -> dict[str, Any]:
    return {
        "name": f"bench live {run} {d}",
        "refresh_interval_seconds": 1,
        "is_public": True,
        "widgets": [
            {
                "widget_type": "real_time_counter",
                "title": f"views of {content_of(run, d, widgets, w)}",
                "config": {"metric": "views", "window": "5m", "content_id": content_of(run, d, widgets, w)},
                "layout": {"x": 3 * (w % 4), "y": 2 * (w // 4), "w": 3, "h": 2},
            }
            for w in range(widgets)
        ],
    }


def content_of(run: str, d: int, widgets: int, w: int) -> str:
    return f"{run}-c{d * widgets + w}"


async def subscribe(
    url: str, key: str, dashboard_id: str, me: Subscriber, gate: asyncio.Semaphore, stop: asyncio.Event
) -> None:
    try:
        async with gate:
            ws = await connect(url, subprotocols=["graphql-transport-ws"], open_timeout=60, max_size=2**24)
        async with ws:
            await ws.send(
                orjson.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}}).decode()
            )
            ack = orjson.loads(await asyncio.wait_for(ws.recv(), 60))
            if ack.get("type") != "connection_ack":
                raise RuntimeError(f"no connection_ack: {ack}")
            me.subscribed_at = time.monotonic()
            await ws.send(
                orjson.dumps(
                    {"id": "1", "type": "subscribe", "payload": {"query": UPDATES, "variables": {"id": dashboard_id}}}
                ).decode()
            )
            async for raw in ws:
                at, wall = time.monotonic(), time.time()
                message = orjson.loads(raw)
                kind = message.get("type")
                if kind == "ping":
                    await ws.send('{"type": "pong"}')
                    continue
                if kind != "next" or "errors" in message["payload"]:
                    me.error = orjson.dumps(message).decode()[:500]
                    break
                me.messages.append((at, wall, message["payload"]["data"]["dashboardUpdates"]))
                me.first.set()
                if stop.is_set():
                    break
    except Exception as exc:  # noqa: BLE001 - reported with the results, the run goes on
        me.error = f"{type(exc).__name__}: {exc}"
    finally:
        me.first.set()


async def steady_ingest(
    client: httpx.AsyncClient, run: str, contents: int, per_second: int, stop: asyncio.Event, batches: list[Batch]
) -> None:
    """Content views in a batch every ``BATCH_SECONDS``, event ``i`` to content ``i % contents``."""
    size = max(1, round(per_second * BATCH_SECONDS))
    n = 0
    due = time.monotonic()
    while not stop.is_set():
        now = datetime.now(UTC).isoformat()
        events = [
            {
                "id": f"{run}-e{n + i}",
                "event_type": "content_view",
                "content_id": f"{run}-c{(n + i) % contents}",
                "user_id": f"{run}-u{(n + i) % 997}",
                "session_id": f"{run}-s{(n + i) % 211}",
                "timestamp": now,
            }
            for i in range(size)
        ]
        sent = time.monotonic()
        response = await client.post(f"{API}/events/batch", json={"events": events})
        acked = time.monotonic()
        if response.status_code != 200 or response.json().get("accepted") != size:
            raise RuntimeError(f"ingest answered {response.status_code}: {response.text[:500]}")
        batches.append(Batch(n, size, sent, acked))
        n += size
        due += BATCH_SECONDS
        await asyncio.sleep(max(0.0, due - time.monotonic()))


def _value(widget: dict[str, Any]) -> float | None:
    data = widget.get("data")
    return data.get("value") if isinstance(data, dict) and widget.get("error") is None else None


def live_figures(
    subscribers: list[Subscriber],
    batches: list[Batch],
    widget_content: dict[str, int],
    contents: int,
    window: tuple[float, float],
) -> dict[str, Any]:
    """Updates received in the window, and each event's delay to each subscriber of its content."""
    start, end = window
    seconds = end - start
    ack_of = np.array([b.acked for b in batches for _ in range(b.size)])
    sent_of = np.array([b.sent for b in batches for _ in range(b.size)])
    total = ack_of.size
    updates = messages = 0
    widget_errors = 0
    from_ack: list[np.ndarray] = []
    from_send: list[np.ndarray] = []
    push: list[float] = []
    first_update: list[float] = []
    missed = counted = 0
    for me in subscribers:
        if not me.messages:
            continue
        first_update.append(me.messages[0][0] - me.subscribed_at)
        seen: dict[str, list[tuple[float, float]]] = {}
        for index, (at, wall, update) in enumerate(me.messages):
            for widget in update["widgets"]:
                value = _value(widget)
                if value is None:
                    widget_errors += 1
                    continue
                seen.setdefault(widget["widgetId"], []).append((at, value))
            if index == 0 or not start <= at <= end:
                continue
            messages += 1
            updates += len(update["widgets"])
            push.append(wall - datetime.fromisoformat(update["refreshedAt"]).timestamp())
        for widget_id, receipts in seen.items():
            k = widget_content[widget_id]
            # The content's events in order: global indexes k, k + contents, ...; its n-th has ordinal n.
            indexes = np.arange(k, total, contents)
            in_window = (ack_of[indexes] >= start) & (ack_of[indexes] <= end)
            ordinals = np.nonzero(in_window)[0] + 1
            if ordinals.size == 0:
                continue
            times = np.array([t for t, _ in receipts])
            values = np.maximum.accumulate(np.array([v for _, v in receipts], dtype=float))
            position = np.searchsorted(values, ordinals, side="left")
            shown = position < values.size
            counted += int(ordinals.size)
            missed += int((~shown).sum())
            chosen = indexes[ordinals[shown] - 1]
            at_seen = times[position[shown]]
            from_ack.append(np.maximum(0.0, at_seen - ack_of[chosen]))
            from_send.append(at_seen - sent_of[chosen])
    delays_ack = np.concatenate(from_ack) if from_ack else np.array([])
    delays_send = np.concatenate(from_send) if from_send else np.array([])
    return {
        "window_seconds": round(seconds, 3),
        "widget_updates": updates,
        "widget_updates_per_second": round(updates / seconds, 1) if seconds > 0 else 0.0,
        "messages": messages,
        "messages_per_subscriber_per_second": round(messages / max(1, len(subscribers)) / seconds, 3),
        "widget_errors": widget_errors,
        "events_sent": total,
        "event_subscriber_pairs": counted,
        "missed": missed,
        "event_to_subscriber_from_ack": percentiles(delays_ack),
        "event_to_subscriber_from_send": percentiles(delays_send),
        "refreshed_at_to_receipt": percentiles(push),
        "subscribe_to_first_update": percentiles(first_update),
    }


async def measure_live(
    base_url: str, admin_key: str, viewer_key: str, live: list[dict[str, Any]], p: dict[str, Any], run: str
) -> dict[str, Any]:
    url = base_url.replace("https://", "wss://").replace("http://", "ws://") + "/graphql"
    stop, stop_ingest = asyncio.Event(), asyncio.Event()
    gate = asyncio.Semaphore(CONNECTING_AT_ONCE)
    subscribers = [Subscriber(d) for d in range(len(live)) for _ in range(p["live_subscribers"])]
    contents = p["live_dashboards"] * p["live_widgets"]
    widget_content = {
        w["id"]: d * p["live_widgets"] + i
        for d, dashboard in enumerate(live)
        for i, w in enumerate(dashboard["widgets"])
    }
    batches: list[Batch] = []
    headers = {"Authorization": f"Bearer {admin_key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as client:
        connecting = time.monotonic()
        tasks = [
            asyncio.create_task(subscribe(url, viewer_key, live[me.dashboard]["id"], me, gate, stop))
            for me in subscribers
        ]
        await asyncio.wait_for(asyncio.gather(*(me.first.wait() for me in subscribers)), FIRST_UPDATE_TIMEOUT)
        connected = time.monotonic() - connecting
        failed = [me.error for me in subscribers if me.error]
        if failed:
            raise RuntimeError(f"{len(failed)} of {len(subscribers)} subscriptions failed: {failed[:3]}")
        ingest = asyncio.create_task(
            steady_ingest(client, run, contents, p["live_events_per_second"], stop_ingest, batches)
        )
        await asyncio.sleep(p["live_warmup_seconds"])
        processes = service_processes()
        cache_before = parse_cache_counts((await client.get("/metrics")).text)
        cpu_before = cpu_by_role(processes)
        start = time.monotonic()
        await asyncio.sleep(p["live_seconds"])
        end = time.monotonic()
        cpu_after = cpu_by_role(processes)
        cache_after = parse_cache_counts((await client.get("/metrics")).text)
        stop_ingest.set()
        await ingest
        # Every event acknowledged in the window has had time to show.
        await asyncio.sleep(p["live_grace_seconds"])
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    delta = cache_after - cache_before
    computations = sum(n for (kind, outcome), n in delta.items() if kind == DATA_KIND and outcome in COMPUTED)
    seconds = end - start
    cpu = cpu_delta(cpu_before, cpu_after)
    figures = live_figures(subscribers, batches, widget_content, contents, (start, end))
    errors = [me.error for me in subscribers if me.error]
    return {
        "dashboards": len(live),
        "subscribers": len(subscribers),
        "widgets_per_dashboard": p["live_widgets"],
        "contents": contents,
        "connect_seconds": round(connected, 2),
        "ingest_events_per_second": round(sum(b.size for b in batches if start <= b.acked <= end) / seconds, 1),
        **figures,
        # Every counter changes on every 1 s tick: what the service could push at most.
        "possible_widget_updates_per_second": len(subscribers) * p["live_widgets"],
        "target_widget_updates_per_second": TARGET_UPDATES_PER_SECOND,
        "dashboard_computations": computations,
        "dashboard_computations_per_second": round(computations / seconds, 2),
        "cpu_share_of_a_core": {role: round(s / seconds, 3) for role, s in sorted(cpu.items(), key=lambda i: -i[1])},
        "subscriber_errors": errors[:5],
    }


def run_live(admin: httpx.Client, service: Any, p: dict[str, Any]) -> dict[str, Any]:
    run = f"bdl{secrets.token_hex(3)}"
    made = admin.post("/api/v1/admin/api-keys", json={"name": f"{run} viewer", "role": "viewer"})
    if made.status_code != 201:
        raise RuntimeError(f"creating the viewer key answered {made.status_code}: {made.text}")
    viewer_key = made.json()["key"]
    live = []
    for d in range(p["live_dashboards"]):
        response = admin.post(DASHBOARDS, json=live_body(run, d, p["live_widgets"]))
        if response.status_code != 201:
            raise RuntimeError(f"POST {DASHBOARDS} answered {response.status_code}: {response.text}")
        live.append(response.json())
    return asyncio.run(measure_live(service.base_url, service.admin_key, viewer_key, live, p, run))


# --- the run -----------------------------------------------------------------------------------------------


@contextmanager
def _admin_client(service: Any) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {service.admin_key}"}
    with httpx.Client(base_url=service.base_url, headers=headers, timeout=120) as client:
        yield client


def run(size: str = "small", *, results_dir: Path | None = None) -> dict[str, Any]:
    params = SIZES[size]
    load_before = load_average()
    with ExitStack() as stack:
        service = stack.enter_context(BenchService(internal_hosts=[PLATFORM_HOST]))
        workload = Workload(events=params["workload_events"], days=30, seed=WORKLOAD_SEED)
        loaded = load_into_actor(workload, service.event_store)
        load_metadata_into_actor(workload, service.event_store)
        assert workload.end is not None
        admin = stack.enter_context(_admin_client(service))
        print(f"\ndashboards benchmark ({size}, {loaded.events:,} events), load average {load_before}")
        # Each part's figures are printed as soon as they are measured: a later part that stops the
        # benchmark leaves the earlier ones on the screen.
        data = run_data(admin, params)
        _print_data(data)
        created = run_create(admin, params["create_requests"], f"{workload.prefix}c0")
        _print_create(created)
        live = run_live(admin, service, params)
        _print_live(live)
    payload: dict[str, Any] = {
        "size": size,
        "parameters": params,
        "load_average": {"before": load_before, "after": load_average()},
        "workload": {
            "events": loaded.events,
            "days": workload.days,
            "seed": workload.seed,
            "end": workload.end.isoformat(),
            "first_event": loaded.first,
            "last_event": loaded.last,
            "load_seconds": round(loaded.seconds, 2),
        },
        "data": data,
        "create": created,
        "live": live,
    }
    summary: dict[str, Any] = {}
    for key, d in data.items():
        summary[f"{key}_fully_cold_p95_ms"] = d["fully_cold"]["latency"].get("p95_ms")
        summary[f"{key}_cold_dashboard_p95_ms"] = d["cold_dashboard"]["latency"].get("p95_ms")
        summary[f"{key}_cached_p95_ms"] = d["cached"]["latency"].get("p95_ms")
    summary.update(
        {
            "cold_target_ms": TARGET_MS["cold"],
            "cached_target_ms": TARGET_MS["cached"],
            "create_p95_ms": created["latency"]["p95_ms"],
            "create_target_ms": TARGET_MS["create"],
            "live_subscribers": live["subscribers"],
            "live_widget_updates_per_second": live["widget_updates_per_second"],
            "live_target_widget_updates_per_second": TARGET_UPDATES_PER_SECOND,
            "live_delay_from_ack_p95_ms": live["event_to_subscriber_from_ack"].get("p95_ms"),
            "live_refreshed_at_to_receipt_p95_ms": live["refreshed_at_to_receipt"].get("p95_ms"),
            "live_missed": live["missed"],
        }
    )
    payload["summary"] = summary
    path = write_result(NAME if size != "full" else f"{NAME}_full", payload, results_dir)
    print(f"load average after {payload['load_average']['after']}\nresult: {path}")
    return payload


def _ms(latency: dict[str, Any], key: str) -> Any:
    return latency.get(key, "-")


def _print_data(data: dict[str, Any]) -> None:
    rows = []
    for key, d in data.items():
        for label, part, target in (
            ("fully cold (no-cache)", d["fully_cold"], TARGET_MS["cold"]),
            ("cold dashboard, answers cached", d["cold_dashboard"], TARGET_MS["cold"]),
            ("cold dashboard, partly computed", d["cold_dashboard"]["partly_computed"], TARGET_MS["cold"]),
            ("cached", d["cached"], TARGET_MS["cached"]),
        ):
            latency = part["latency"]
            rows.append(
                [
                    key,
                    label,
                    latency.get("n", 0),
                    _ms(latency, "p50_ms"),
                    _ms(latency, "p95_ms"),
                    _ms(latency, "max_ms"),
                    target,
                    part["x_cache"],
                ]
            )
        rows.append([key, "first request", 1, d["first"]["ms"], "", "", "", {d["first"]["x_cache"]: 1}])
    print_table(["dashboard", "data request", "n", "p50 ms", "p95 ms", "max ms", "target ms", "X-Cache"], rows)


def _print_create(c: dict[str, Any]) -> None:
    latency = c["latency"]
    print_table(
        ["create", "n", "first ms", "p50 ms", "p95 ms", "max ms", "target ms"],
        [
            [
                f"POST /dashboards, {c['widgets']} widgets",
                latency["n"],
                c["first_ms"],
                latency["p50_ms"],
                latency["p95_ms"],
                latency["max_ms"],
                c["target_ms"],
            ]
        ],
    )


def _print_live(live: dict[str, Any]) -> None:
    print(
        f"live: {live['subscribers']} subscribers over {live['dashboards']} dashboards of "
        f"{live['widgets_per_dashboard']} counters, {live['ingest_events_per_second']} events/s ingested; "
        f"{live['widget_updates_per_second']} widget updates/s of {live['possible_widget_updates_per_second']} "
        f"possible (target {TARGET_UPDATES_PER_SECOND:.0f}), "
        f"{live['messages_per_subscriber_per_second']} messages per subscriber per second, "
        f"{live['dashboard_computations_per_second']} dashboard computations/s, {live['missed']} of "
        f"{live['event_subscriber_pairs']} event-subscriber pairs never shown"
    )
    print_table(
        ["live delay", "n", "p50 ms", "p95 ms", "p99 ms", "max ms"],
        [
            [name, v.get("n"), v.get("p50_ms"), v.get("p95_ms"), v.get("p99_ms"), v.get("max_ms")]
            for name, v in (
                ("event ack -> subscriber", live["event_to_subscriber_from_ack"]),
                ("event sent -> subscriber", live["event_to_subscriber_from_send"]),
                ("refreshedAt -> receipt", live["refreshed_at_to_receipt"]),
                ("subscribe -> first update", live["subscribe_to_first_update"]),
            )
        ],
    )
    print(f"CPU (share of a core) during the window: {live['cpu_share_of_a_core']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_dashboards")
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--results-dir", type=Path)
    args = parser.parse_args(argv)
    run(args.size, results_dir=args.results_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
