"""Query benchmark: every query class through REST and GraphQL under concurrency, against the
raw SQL time on the engine (the floor), plus the spec's naive content-analytics workflow.

    python -m bench.bench_queries --size small     # 300k events
    python -m bench.bench_queries --size full      # 10M events (written to queries_full.json)
    python -m bench.bench_queries --size full --classes content.analytics,users.analytics

Adding a query class is one entry in ``QUERY_CLASSES``: a REST request, a GraphQL query and the
SQL that does the same work directly on the engine (each optional). A class whose route does not
answer 2xx is reported with its errors instead of stopping the run.

Analytics answers are cached by the watermark (docs/queries.md#the-result-cache): a class that
repeats one request would time the cache. Every class but the ``cached.*`` ones sends
``Cache-Control: no-cache``, so each answer is computed (and ``requests`` classes also make the i-th
request distinct: another content, another page size); the ``cached.*`` classes repeat one request
on purpose, to time the cache. The workload has a bot slice (1% of sessions with
1,000-5,000 events), the shape that made transitions and journeys pathological.

The floor runs the SQL through the event store actor, so it includes one Ray call (the
``engine.select_1`` row measures that call alone).

``run_classes`` is the machinery any set of classes runs on (bench/bench_operations.py times the
system and import routes with it): load the size's workload into a service, pick what to ask about
from it, time every class and its floor, write the result.
"""

from __future__ import annotations

import argparse
import secrets
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

import httpx
import orjson
import ray

from bench.common import (
    BenchService,
    load_average,
    percentiles,
    print_table,
    service_memory,
    service_processes,
    write_result,
)
from bench.loadgen import LoadGenerator
from bench.workload import PLATFORM_HOST, Workload, load_into_actor, load_metadata_into_actor

NAME = "queries"
# 1% of sessions are bots with 1,000-5,000 events each (bench/workload.py).
BOT_SESSION_SHARE = 0.01

SIZES: dict[str, dict[str, Any]] = {
    # requests: per (class, interface, concurrency), cut short after seconds.
    "tiny": {
        "events": 3_000,
        "days": 7,
        "requests": 20,
        "seconds": 30.0,
        "concurrency": (2,),
        "naive_items": 2,
        "floor_runs": 5,
    },
    "small": {
        "events": 300_000,
        "days": 30,
        "requests": 200,
        "seconds": 8.0,
        "concurrency": (1, 8),
        "naive_items": 4,
        "floor_runs": 20,
    },
    "full": {
        "events": 10_000_000,
        "days": 30,
        "requests": 400,
        "seconds": 20.0,
        "concurrency": (1, 8, 32),
        "naive_items": 2,
        "floor_runs": 50,
    },
}


def window_dates(start: datetime, end: datetime) -> dict[str, str]:
    """The analytics window (``start_date``, ``end_date``, both days included) that covers [start, end)."""
    return {
        "start_date": start.date().isoformat(),
        "end_date": (end - timedelta(seconds=1)).date().isoformat(),
    }


@dataclass(frozen=True)
class Context:
    """Ids and dates picked from the loaded workload, for the queries to ask about."""

    top_content: str
    mid_content: str
    heavy_user: str
    # The user of the biggest bot session (the heavy user when the workload has no bot slice).
    bot_user: str
    session: str
    event_id: str
    start: datetime
    end: datetime
    # The most viewed contents, for requests that each ask about another one.
    contents: tuple[str, ...] = ()

    @property
    def dates(self) -> dict[str, str]:
        return window_dates(self.start, self.end)


def _q(path: str, **params: Any) -> str:
    return f"{path}?{urlencode(params)}" if params else path


GQL_EVENTS = (
    "query($f: EventFilterInput) { events(filter: $f, limit: 100) { events { id eventType timestamp contentId userId "
    "deviceType country trafficSource } nextCursor } }"
)
GQL_EVENT = "query($id: String!) { event(id: $id) { id eventType timestamp userId contentId properties } }"
GQL_CONTENT = "query($id: String!, $r: AnalyticsRange) { contentAnalytics(contentId: $id, range: $r) { comparison } }"
_LIST = (
    "SELECT id, event_type, event_category, timestamp, user_id, session_id, content_id, properties FROM events "
    "WHERE {where} ORDER BY timestamp DESC, id DESC LIMIT 101"
)
_CONTENT_FLOOR = (
    "SELECT countIf(event_type = 'content_view') AS views, "
    "uniqExactIf(user_id, event_type = 'content_view' AND user_id != '') AS unique_views, "
    "countIf(event_type = 'content_complete') AS completes, countIf(event_type = 'content_like') AS likes, "
    "countIf(event_type = 'content_share') AS shares, countIf(event_type = 'content_bookmark') AS bookmarks, "
    "countIf(event_type = 'search_result_click') AS search_clicks, "
    "countIf(event_type = 'recommendation_click') AS recommendation_clicks, "
    "sumIf(JSONExtractFloat(properties, 'watch_time_seconds'), event_type = 'content_complete') AS watch_time, "
    "topKIf(5)(country, event_type = 'content_view') AS countries, "
    "groupArrayIf((traffic_source, 1), event_type = 'content_view') AS _sources, "
    "countIf(device_type = 'mobile') AS mobile "
    "FROM events WHERE content_id = {c:String} "
    "AND timestamp >= {s:DateTime64(3)} AND timestamp < {e:DateTime64(3)}"
)
_USER_FLOOR = (
    "SELECT uniqExact(session_id) AS sessions, countIf(event_type = 'content_view') AS views, "
    "uniqExactIf(content_id, event_type = 'content_view') AS unique_views, "
    "countIf(event_type = 'search_query') AS searches FROM events WHERE user_id = {u:String} "
    "AND timestamp >= {s:DateTime64(3)} AND timestamp < {e:DateTime64(3)}"
)


Request = tuple[str, str, dict[str, Any] | None]  # method, path, JSON body
# What a set of classes asks about, picked from the loaded workload (``Context`` for the query classes).
C = TypeVar("C")


@dataclass(frozen=True)
class QueryClass(Generic[C]):
    name: str
    rest: Callable[[C], str] | None = None
    graphql: tuple[str, Callable[[C], dict[str, Any]]] | None = None
    sql: tuple[str, Callable[[C], dict[str, Any]]] | None = None
    # The i-th request of a run (method, path, body), for classes whose requests differ.
    requests: Callable[[C, int], Request] | None = None
    # Concurrency levels of this class instead of the size's (the cached classes go higher).
    concurrency: tuple[int, ...] | None = None
    # Also offer this many POST requests per second (open loop: latency counts from when each was
    # due, so a server falling behind shows as latency, not as a lower rate).
    open_rate: float | None = None

    @property
    def cached(self) -> bool:
        """Whether the class times the result cache (else every answer is computed)."""
        return self.name.startswith("cached.")


def _range(c: Context) -> dict[str, Any]:
    return {"s": c.start.replace(tzinfo=None), "e": c.end.replace(tzinfo=None)}


def _three_dimensions(c: Context, *, limit: int) -> dict[str, Any]:
    """Views, distinct viewers and completion rate by country, device and day over the 30 days.

    ``limit`` only makes requests distinct for the cache: every answer has fewer rows."""
    return {
        "metrics": ["views", "unique_viewers", "completion_rate"],
        "dimensions": ["country", "device_type", "day"],
        "date_range": {"start_date": c.dates["start_date"], "end_date": c.dates["end_date"]},
        "limit": limit,
    }


def _always(i: int) -> list[dict[str, Any]]:
    """A filter every event passes that differs per request: distinct cache keys for the same work."""
    return [{"dimension": "event_type", "op": "neq", "value": f"never-{i}"}]


def _funnel(c: Context, i: int) -> dict[str, Any]:
    steps = ("content_view", "content_play", "content_complete", "content_like")
    return {
        "date_range": {"start_date": c.dates["start_date"], "end_date": c.dates["end_date"]},
        "steps": [{"event_type": t, "filters": _always(i) if n == 0 else []} for n, t in enumerate(steps)],
        "conversion_window": {"value": 1, "unit": "days"},
    }


def _retention(c: Context, i: int) -> dict[str, Any]:
    return {
        "start_event": {"event_type": "content_view", "filters": _always(i)},
        "return_event": {"event_type": "content_view"},
        "bucket": "week",
        "periods": 12,
    }


def _paths(c: Context, i: int) -> dict[str, Any]:
    return {
        "date_range": {"start_date": c.dates["start_date"], "end_date": c.dates["end_date"]},
        "anchor": f"content:{c.contents[i % len(c.contents)]}",
        "direction": "after",
        "depth": 3,
        # Past the first pass over the contents, another page size keeps the requests distinct.
        "limit": min(10 + i // len(c.contents), 50),
    }


_THREE_DIMENSIONS_FLOOR = (
    "SELECT country, device_type, toDate(timestamp) AS day, countIf(event_type = 'content_view') AS views, "
    "uniqExactIf(if(user_id != '', user_id, session_id), event_type = 'content_view') AS viewers, "
    "uniqExactIf(session_id, event_type = 'content_complete') "
    "/ greatest(uniqExactIf(session_id, event_type IN ('content_play', 'content_view')), 1) AS completion "
    "FROM events WHERE event_type IN ('content_view', 'content_play', 'content_complete') "
    "AND timestamp >= {s:DateTime64(3)} AND timestamp < {e:DateTime64(3)} GROUP BY country, device_type, day"
)


QUERY_CLASSES: tuple[QueryClass[Context], ...] = (
    QueryClass("engine.select_1", sql=("SELECT 1", lambda c: {})),
    QueryClass(
        "events.by_content",
        rest=lambda c: _q("/api/v1/analytics/events", content_id=c.top_content, limit=100),
        graphql=(GQL_EVENTS, lambda c: {"f": {"contentId": c.top_content}}),
        sql=(_LIST.format(where="content_id = {c:String}"), lambda c: {"c": c.top_content}),
    ),
    QueryClass(
        "events.by_user",
        rest=lambda c: _q("/api/v1/analytics/events", user_id=c.heavy_user, limit=100),
        graphql=(GQL_EVENTS, lambda c: {"f": {"userId": c.heavy_user}}),
        sql=(_LIST.format(where="user_id = {u:String}"), lambda c: {"u": c.heavy_user}),
    ),
    QueryClass(
        "events.by_type_last_day",
        rest=lambda c: _q(
            "/api/v1/analytics/events",
            event_type="error_occurred",
            start=(c.end - timedelta(days=1)).isoformat(),
            end=c.end.isoformat(),
            limit=100,
        ),
        graphql=(
            GQL_EVENTS,
            lambda c: {
                "f": {
                    "eventType": "error_occurred",
                    "start": (c.end - timedelta(days=1)).isoformat(),
                    "end": c.end.isoformat(),
                }
            },
        ),
        sql=(
            _LIST.format(
                where="event_type = 'error_occurred' "
                "AND timestamp >= {s:DateTime64(3)} AND timestamp < {e:DateTime64(3)}"
            ),
            lambda c: {"s": (c.end - timedelta(days=1)).replace(tzinfo=None), "e": c.end.replace(tzinfo=None)},
        ),
    ),
    QueryClass(
        "events.get",
        rest=lambda c: f"/api/v1/analytics/events/{c.event_id}",
        graphql=(GQL_EVENT, lambda c: {"id": c.event_id}),
        sql=("SELECT * FROM events WHERE id = {i:String} LIMIT 1", lambda c: {"i": c.event_id}),
    ),
    QueryClass(
        "content.analytics",
        rest=lambda c: _q(f"/api/v1/analytics/content/{c.top_content}", **c.dates),
        graphql=(
            GQL_CONTENT,
            lambda c: {"id": c.top_content, "r": {"startDate": c.dates["start_date"], "endDate": c.dates["end_date"]}},
        ),
        sql=(_CONTENT_FLOOR, lambda c: {"c": c.top_content, **_range(c)}),
    ),
    QueryClass("content.top_performing", rest=lambda c: _q("/api/v1/analytics/content/top-performing", **c.dates)),
    QueryClass("users.overview", rest=lambda c: _q("/api/v1/analytics/users", **c.dates)),
    QueryClass(
        "users.analytics",
        rest=lambda c: _q(f"/api/v1/analytics/users/{c.heavy_user}", **c.dates),
        sql=(_USER_FLOOR, lambda c: {"u": c.heavy_user, **_range(c)}),
    ),
    QueryClass("search.overview", rest=lambda c: _q("/api/v1/analytics/search/overview", **c.dates)),
    QueryClass("realtime.metrics", rest=lambda c: "/api/v1/analytics/real-time"),
    QueryClass("realtime.trending", rest=lambda c: _q("/api/v1/analytics/content/trending", window="24h", limit=20)),
    QueryClass(
        "content.analytics_distinct",
        requests=lambda c, i: (
            "GET",
            _q(f"/api/v1/analytics/content/{c.contents[i % len(c.contents)]}", **c.dates),
            None,
        ),
        concurrency=(1, 8),
    ),
    QueryClass(
        "users.behavior_patterns",
        rest=lambda c: _q("/api/v1/analytics/users/behavior-patterns", **c.dates),
        concurrency=(1,),
    ),
    QueryClass(
        "users.journey",
        rest=lambda c: _q(f"/api/v1/analytics/users/{c.heavy_user}/journey", **c.dates),
        concurrency=(1,),
    ),
    QueryClass(
        "users.journey_bot",
        rest=lambda c: _q(f"/api/v1/analytics/users/{c.bot_user}/journey", **c.dates),
        concurrency=(1,),
    ),
    QueryClass(
        "content.journey",
        rest=lambda c: _q(f"/api/v1/analytics/content/{c.top_content}/journey", **c.dates),
        concurrency=(1,),
    ),
    QueryClass(
        "query.3_dimensions_30d",
        requests=lambda c, i: ("POST", "/api/v1/analytics/query", _three_dimensions(c, limit=1000 + i)),
        sql=(_THREE_DIMENSIONS_FLOOR, lambda c: _range(c)),
        concurrency=(1, 8),
    ),
    QueryClass(
        "funnel.4_steps_30d",
        requests=lambda c, i: ("POST", "/api/v1/analytics/funnels", _funnel(c, i)),
        concurrency=(1, 8),
    ),
    QueryClass(
        "retention.12_weeks",
        requests=lambda c, i: ("POST", "/api/v1/analytics/retention", _retention(c, i)),
        concurrency=(1, 8),
    ),
    QueryClass(
        "paths.depth_3",
        requests=lambda c, i: ("POST", "/api/v1/analytics/paths", _paths(c, i)),
        concurrency=(1, 8),
    ),
    QueryClass(
        "cached.query_3_dimensions",
        requests=lambda c, i: ("POST", "/api/v1/analytics/query", _three_dimensions(c, limit=1000)),
        concurrency=(1, 32, 64),
        open_rate=1000.0,
    ),
)


def workload_end_of(workload: Workload) -> datetime:
    """The end of the workload's window (a workload always has one once made)."""
    if workload.end is None:
        raise ValueError("the workload has no end")
    return workload.end


def _context(workload: Workload, actor: Any) -> Context:
    """The most and a median popular item, the busiest user, one of their sessions and events."""

    def one(sql: str, params: dict[str, Any] | None = None) -> Any:
        return ray.get(actor.query.remote(sql, params or {})).rows

    prefix = workload.prefix
    views = one(
        "SELECT content_id, count() AS n FROM events "
        "WHERE startsWith(id, {p:String}) AND event_type = 'content_view' "
        "GROUP BY content_id ORDER BY n DESC, content_id",
        {"p": prefix},
    )
    user = one(
        "SELECT user_id, count() AS n FROM events WHERE startsWith(id, {p:String}) AND user_id != '' "
        "GROUP BY user_id ORDER BY n DESC, user_id LIMIT 1",
        {"p": prefix},
    )[0][0]
    session, event_id = one(
        "SELECT session_id, id FROM events WHERE user_id = {u:String} ORDER BY timestamp LIMIT 1", {"u": user}
    )[0]
    bot = one(
        "SELECT user_id FROM events WHERE startsWith(id, {p:String}) AND user_id != '' AND session_id != '' "
        "GROUP BY user_id, session_id ORDER BY count() DESC, user_id LIMIT 1",
        {"p": prefix},
    )
    return Context(
        top_content=views[0][0],
        mid_content=views[len(views) // 2][0],
        contents=tuple(row[0] for row in views[:200]),
        heavy_user=user,
        bot_user=bot[0][0] if bot else user,
        session=session,
        event_id=event_id,
        start=workload.start,
        end=workload_end_of(workload),
    )


def naive_content_analytics(client: httpx.Client, content_id: str, start: datetime, end: datetime) -> dict[str, Any]:
    """The spec's calculate_content_analytics_workflow: fetch the raw events, compute in Python."""
    raw: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {
            "content_id": content_id,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "limit": 1000,
        }
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/analytics/events", params=params)
        page.raise_for_status()
        body = page.json()
        raw.extend(body["events"])
        cursor = body["next_cursor"]
        if not cursor:
            break
    views = [e for e in raw if e["event_type"] == "content_view"]
    completes = [e for e in raw if e["event_type"] == "content_complete"]
    engagement = Counter(
        e["event_type"]
        for e in raw
        if e["event_type"] in ("content_share", "content_bookmark", "content_like", "content_comment")
    )
    watch = sum(float(e["properties"].get("watch_time_seconds", 0)) for e in completes)
    return {
        "events_fetched": len(raw),
        "total_views": len(views),
        "unique_views": len({e["user_id"] for e in views if e["user_id"]}),
        "completion_rate": len(completes) / max(len(views), 1),
        "average_view_duration": watch / max(len(views), 1),
        "likes": engagement["content_like"],
        "shares": engagement["content_share"],
        "bookmarks": engagement["content_bookmark"],
        "search_clicks": sum(
            1
            for e in raw
            if e["event_type"] == "search_result_click" and e["properties"].get("content_id") == content_id
        ),
        "recommendation_clicks": sum(
            1
            for e in raw
            if e["event_type"] == "recommendation_click" and e["properties"].get("content_id") == content_id
        ),
        "traffic_sources": Counter(e["traffic_source"] for e in views),
        "top_countries": Counter(e["country"] for e in views if e["country"]).most_common(5),
        "devices": Counter(e["device_type"] for e in views),
    }


def _floor(actor: Any, sql: str, params: dict[str, Any], runs: int) -> dict[str, Any]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        ray.get(actor.query.remote(sql, params))
        samples.append(time.perf_counter() - started)
    return percentiles(samples)


def _graphql_errors(url: str, key: str, body: bytes) -> list[str]:
    """The error messages of one GraphQL request (none when it answers with data)."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    answer = httpx.post(f"{url}/graphql", content=body, headers=headers, timeout=600)
    if answer.status_code != 200:
        return [f"HTTP {answer.status_code}: {answer.text[:200]}"]
    return [str(error.get("message")) for error in answer.json().get("errors") or []]


def _interface_outcome(outcome: dict[str, Any]) -> dict[str, Any]:
    ok = sum(v for k, v in outcome["statuses"].items() if k.startswith("2"))
    return {
        **percentiles(outcome["latencies"]),
        "ok": ok,
        "statuses": outcome["statuses"],
        "qps": round(len(outcome["latencies"]) / outcome["seconds"], 1) if outcome["seconds"] else None,
        "errors": outcome.get("errors", []),
    }


def select_classes(classes: Sequence[QueryClass[C]], wanted: list[str] | None) -> list[QueryClass[C]]:
    """The classes named in ``wanted`` (all when None); a name no class has stops the run."""
    unknown = set(wanted or ()) - {qc.name for qc in classes}
    if unknown:
        raise SystemExit(f"unknown query classes: {', '.join(sorted(unknown))}")
    return [qc for qc in classes if wanted is None or qc.name in wanted]


def _time_class(
    qc: QueryClass[C], context: C, actor: Any, generator: LoadGenerator, url: str, key: str, params: dict[str, Any]
) -> dict[str, Any]:
    """One class's entry: its floor, then each interface at each of its concurrency levels."""
    entry: dict[str, Any] = {"name": qc.name}
    if qc.sql:
        sql, make = qc.sql
        entry["floor_sql"] = _floor(actor, sql, make(context), params["floor_runs"])
    for concurrency in qc.concurrency or params["concurrency"]:
        n = params["requests"] * max(1, concurrency // 2)
        seconds = params["seconds"]
        if qc.requests:
            made = [qc.requests(context, i) for i in range(n)]
            sent: list[tuple[str, str, bytes | None]] = [
                (m, path, orjson.dumps(body) if body is not None else None) for m, path, body in made
            ]
            entry[f"rest_c{concurrency}"] = _interface_outcome(
                generator.request_loop(url, key, sent, concurrency, seconds, fresh=not qc.cached)
            )
        if qc.open_rate and qc.requests and concurrency == (qc.concurrency or params["concurrency"])[0]:
            _, path, body = qc.requests(context, 0)
            bodies = [orjson.dumps(body)] * int(qc.open_rate * seconds)
            entry[f"rest_rate{int(qc.open_rate)}"] = _interface_outcome(
                generator.open_loop(url, key, path, bodies, qc.open_rate)
            )
        if qc.rest:
            gets: list[tuple[str, str, bytes | None]] = [("GET", qc.rest(context), None)] * n
            entry[f"rest_c{concurrency}"] = _interface_outcome(
                generator.request_loop(url, key, gets, concurrency, seconds, fresh=not qc.cached)
            )
        if qc.graphql:
            query, make = qc.graphql
            document = orjson.dumps({"query": query, "variables": make(context)})
            # GraphQL answers 200 with "errors" in the body: time only a query that answers.
            refused = _graphql_errors(url, key, document)
            if refused:
                entry[f"graphql_c{concurrency}"] = {"n": 0, "ok": 0, "errors": refused}
                continue
            posts: list[tuple[str, str, bytes | None]] = [("POST", "/graphql", document)] * n
            entry[f"graphql_c{concurrency}"] = _interface_outcome(
                generator.request_loop(url, key, posts, concurrency, seconds, fresh=not qc.cached)
            )
    return entry


def run_classes(
    size: str,
    classes: Sequence[QueryClass[C]],
    context_of: Callable[[Workload, Any], C],
    *,
    name: str,
    title: str,
    id_prefix: str,
    service: Any = None,
    results_dir: Path | None = None,
    workload_end: datetime | None = None,
    more: Callable[[Any, C, dict[str, Any]], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Load the size's workload into a service, time ``classes`` against it, write and print the result.

    ``context_of(workload, event store actor)`` picks what the classes ask about. ``more(service,
    context, size parameters)`` measures anything else the benchmark adds to its result (its entries
    follow ``classes``). The result is ``<name>.json``, ``<name>_full.json`` for the full size; ids of
    the workload start with ``id_prefix`` and a random token, so a service other runs use keeps them apart.
    """
    params = SIZES[size]
    load_before = load_average()
    end = workload_end or datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    workload = Workload(
        events=params["events"],
        days=params["days"],
        seed=41,
        prefix=f"{id_prefix}{secrets.token_hex(3)}-",
        end=end,
        bot_session_share=BOT_SESSION_SHARE,
    )
    with ExitStack() as stack:
        if service is None:
            service = stack.enter_context(BenchService(internal_hosts=[PLATFORM_HOST]))
        actor = service.event_store
        generator = stack.enter_context(LoadGenerator())
        loaded = load_into_actor(workload, actor)
        metadata_rows = load_metadata_into_actor(workload, actor)
        stored = int(ray.get(actor.query.remote("SELECT count() FROM events")).rows[0][0])
        memory = {"events_stored": stored, **service_memory(generator.pids)}
        context = context_of(workload, actor)
        url, key = service.base_url, service.admin_key
        timed = [_time_class(qc, context, actor, generator, url, key, params) for qc in classes]
        extra = more(service, context, params) if more is not None else {}
        process_count = len(service_processes(generator.pids))

    payload = {
        "size": size,
        "parameters": {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()},
        "load_average": {"before": load_before, "after": load_average()},
        "workload": {
            **loaded.as_dict(),
            "content_metadata_rows": metadata_rows,
            "window": [workload.start.isoformat(), workload_end_of(workload).isoformat()],
        },
        "context": {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in vars(context).items()},
        "memory": memory,
        "classes": timed,
        **extra,
        "service_processes": process_count,
    }
    payload["workload"].pop("by_type", None)
    payload["summary"] = {
        c["name"]: {k: c[k].get("p95_ms") for k in c if k.startswith(("rest_", "graphql_", "floor_"))} for c in timed
    }
    path = write_result(name if size != "full" else f"{name}_full", payload, results_dir)
    print_classes(payload, path, title)
    return payload


def _naive_runs(service: Any, context: Context, params: dict[str, Any]) -> dict[str, Any]:
    """The spec's naive workflow for the top and a middle item, beside the endpoint and the floor."""
    naive = []
    url, key, actor = service.base_url, service.admin_key, service.event_store
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=600) as client:
        items = [context.top_content, context.mid_content][: params["naive_items"]]
        for content_id in items:
            samples, fetched = [], 0
            for _ in range(max(1, params["naive_items"] // len(items))):
                started = time.perf_counter()
                fetched = naive_content_analytics(client, content_id, context.start, context.end)["events_fetched"]
                samples.append(time.perf_counter() - started)
            started = time.perf_counter()
            endpoint_status = client.get(f"/api/v1/analytics/content/{content_id}", params=context.dates).status_code
            endpoint_seconds = time.perf_counter() - started
            floor = _floor(actor, _CONTENT_FLOOR, {"c": content_id, **_range(context)}, 5)
            naive.append(
                {
                    "content_id": content_id,
                    "events_fetched": fetched,
                    "naive": percentiles(samples),
                    "endpoint_status": endpoint_status,
                    "endpoint_ms": round(endpoint_seconds * 1000, 2) if endpoint_status == 200 else None,
                    "floor_sql": floor,
                }
            )
    return {"naive_content_analytics": naive}


def run(
    size: str = "small",
    *,
    service: Any = None,
    results_dir: Path | None = None,
    workload_end: datetime | None = None,
    classes_wanted: list[str] | None = None,
) -> dict[str, Any]:
    """Run the query benchmark; ``service`` is an already running service (e.g. the test session's).

    ``classes_wanted``: names of the query classes to run (all when None).
    """
    return run_classes(
        size,
        select_classes(QUERY_CLASSES, classes_wanted),
        _context,
        name=NAME,
        title="query benchmark",
        id_prefix="bq",
        service=service,
        results_dir=results_dir,
        workload_end=workload_end,
        more=_naive_runs,
    )


def print_classes(payload: dict[str, Any], path: Path, title: str) -> None:
    """The classes' table (each interface beside its floor), the naive workflow's when the result has it."""
    print(
        f"\n{title} ({payload['size']}): {payload['memory']['events_stored']:,} events stored, "
        f"load average {payload['load_average']['before']} -> {payload['load_average']['after']}"
    )
    rows = []
    for c in payload["classes"]:
        for key in sorted(k for k in c if k.startswith(("rest_", "graphql_"))):
            r = c[key]
            rows.append(
                [
                    c["name"],
                    key,
                    r.get("p50_ms"),
                    r.get("p95_ms"),
                    r.get("p99_ms"),
                    r.get("qps"),
                    c.get("floor_sql", {}).get("p50_ms", "-"),
                    "" if r["ok"] == r.get("n") else r["statuses"],
                ]
            )
        if not any(k.startswith(("rest_", "graphql_")) for k in c):
            f = c.get("floor_sql", {})
            rows.append(
                [c["name"], "engine", f.get("p50_ms"), f.get("p95_ms"), f.get("p99_ms"), "-", f.get("p50_ms"), ""]
            )
    print_table(["class", "interface", "p50 ms", "p95 ms", "p99 ms", "qps", "floor p50 ms", "non-2xx"], rows)
    if "naive_content_analytics" in payload:
        print()
        rows = [
            [
                n["content_id"],
                n["events_fetched"],
                n["naive"].get("p50_ms"),
                n["endpoint_ms"] or n["endpoint_status"],
                n["floor_sql"].get("p50_ms"),
            ]
            for n in payload["naive_content_analytics"]
        ]
        print_table(["content", "raw events", "naive fetch+compute p50 ms", "endpoint ms", "floor SQL p50 ms"], rows)
    print(f"result: {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_queries")
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--results-dir", type=Path)
    parser.add_argument("--classes", help="comma-separated query classes to run (default: all)")
    args = parser.parse_args(argv)
    wanted = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    run(args.size, results_dir=args.results_dir, classes_wanted=wanted)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
