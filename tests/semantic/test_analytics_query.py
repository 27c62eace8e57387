"""analyticsQuery on real chDB: a hand-built dataset whose answers are computed here in Python.

The events below are made by one seeded loop plus a few written out at day boundaries; every
expected number is computed from those rows in this file (``expected`` and ``expected_totals``),
never read from the code under test.
"""

from __future__ import annotations

import math
import random
import secrets
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pyarrow as pa
import pytest

from core.access import Role
from core.errors import Forbidden, InvalidRequest
from core.taxonomy import default_category
from semantic.analytics_query import (
    AnalyticsQueryRequest,
    AnalyticsQueryResult,
    AnalyticsQueryService,
    relative_dates,
)
from semantic.compiler import compile_query
from semantic.freshness import Watermark
from semantic.public_catalog import METRICS
from storage.events import EVENT_SCHEMA, ClickHouseEvents
from tests.semantic.conftest import InProcessStore, open_store

INJECTION = "x' OR 1=1 --"
DROP = "\\'; DROP TABLE events; --"
PLACEHOLDER = "{p0:String}"
BACKSLASH = "back\\slash"
UNICODE = "ünïcødé"
HOSTILE = (INJECTION, DROP, PLACEHOLDER, BACKSLASH, UNICODE, "\x00", "%' --", "é\u202e")

CONTENTS = ("c1", "c2", "c3", "c4", "c5", "c6")
USERS = tuple(f"u{i}" for i in range(1, 9))
QUERIES = ("Football", " football ", "news", INJECTION, UNICODE, BACKSLASH)
METADATA: dict[str, dict[str, str]] = {
    "c1": {"category": "news", "content_type": "video", "language": "ar", "author": "alice"},
    "c2": {"category": "sports", "content_type": "video", "language": "en", "author": "bob"},
    "c3": {"category": "news", "content_type": "article", "language": "en", "author": "Alicia"},
    "c4": {"category": "kids", "content_type": "video", "language": "ar", "author": INJECTION},
    "c6": {"category": "sports"},
}
PLACES = (("SA", "Riyadh", "Riyadh"), ("DE", "Berlin", "Berlin"), ("US", "California", ""), ("", "", ""))
TYPES = (
    ("content_view", 30),
    ("content_play", 10),
    ("content_complete", 6),
    ("content_like", 4),
    ("content_share", 2),
    ("content_bookmark", 2),
    ("content_comment", 2),
    ("search_query", 10),
    ("search_result_click", 5),
    ("api_request", 14),
    ("error_occurred", 3),
    ("import_started", 2),
    ("import_completed", 2),
    ("import_failed", 1),
    ("import_stage_completed", 2),
    ("processing_started", 1),
    ("processing_completed", 1),
    ("processing_failed", 1),
    ("page_view", 2),
    ("user_login", 2),
)


def _properties(rng: random.Random, event_type: str) -> tuple[str, dict[str, Any]]:
    """The event's content_id column and its properties."""
    content = rng.choice(CONTENTS)
    props: dict[str, Any] = {}
    if event_type == "content_view":
        props["duration_seconds"] = rng.choice([None, 30, 12.5, "12", -5, 100_000, 7])
        if props["duration_seconds"] is None:
            del props["duration_seconds"]
        where = rng.random()
        if where < 0.15:
            return "", {**props, "content_id": content}
        if where < 0.3:
            return "", props
        return content, props
    if event_type.startswith("content_"):
        return ("", {"content_id": content}) if rng.random() < 0.1 else (content, props)
    if event_type == "search_query":
        props["query"] = rng.choice(QUERIES)
        results = rng.choice([0, 3, None, 12])
        if results is not None:
            props["results_count"] = results
        return "", props
    if event_type == "search_result_click":
        return "", {"query": rng.choice(QUERIES), "position": rng.randint(1, 9), "content_id": content}
    if event_type == "api_request":
        props.update(
            service=rng.choice(["api", "search-svc"]),
            endpoint=rng.choice(["/v1/items", "/v1/search"]),
            method=rng.choice(["GET", "POST"]),
            status=rng.choice([200, 200, 201, 404, 500, 503]),
        )
        latency = rng.choice(["number", "number", "number", "missing", "text"])
        if latency == "number":
            props["duration_ms"] = round(rng.uniform(1, 900), 1)
        elif latency == "text":
            props["duration_ms"] = "fast"
        return "", props
    if event_type == "error_occurred":
        return "", {
            "error_type": rng.choice(["timeout", "db"]),
            "severity": rng.choice(["high", "low"]),
            "service": rng.choice(["api", "search-svc"]),
        }
    if event_type.startswith(("import_", "processing_")):
        # Job ids as strings and integers; figures as numbers, text, negative or missing.
        props = {"job_id": rng.choice(["j1", "j2", "j3", 7, ""]), "stage": rng.choice(["fetch", "parse", ""])}
        if event_type.startswith("import_") or rng.random() < 0.5:
            props["source"] = rng.choice(["csv", "api"])
        if event_type.startswith("processing_"):
            props["kind"] = rng.choice(["transcode", "thumbnail"])
        for name in (
            "records_processed",
            "records_failed",
            "duplicates",
            "invalid_rows",
            "missing_fields",
            "transform_errors",
            "duration_ms",
        ):
            value = rng.choice([None, 120, 45.5, "80", -3, 0])
            if value is not None:
                props[name] = value
        if event_type.endswith("_failed"):
            props["failure_reason"] = rng.choice(["timeout", "schema mismatch"])
        return "", props
    return "", props


def _event(rng: random.Random, index: int, at: datetime, event_type: str | None = None) -> dict[str, Any]:
    event_type = event_type or rng.choices([t for t, _ in TYPES], [w for _, w in TYPES])[0]
    content_id, props = _properties(rng, event_type)
    user = "" if rng.random() < 0.15 else rng.choice(USERS)
    if user:
        session = f"s-{user}-{at.date().isoformat()}" if rng.random() < 0.9 else ""
    else:
        session = f"anon-{index}" if rng.random() < 0.5 else ""
    country, region, city = rng.choice(PLACES)
    return {
        "id": f"e{index:04d}",
        "event_type": event_type,
        "event_category": default_category(event_type),
        "timestamp": at,
        "user_id": user,
        "session_id": session,
        "content_id": content_id,
        "resource_type": rng.choice(["video", "article", ""]),
        "resource_id": "",
        "ip_address": "",
        "user_agent": "",
        "referrer": "",
        "country": country,
        "region": region,
        "city": city,
        "properties": orjson.dumps(props).decode(),
        "processed_at": at,
        "batch_id": "",
        "device_type": rng.choice(["desktop", "mobile", "tablet"]),
        "browser": rng.choice(["Chrome", "Safari", "Firefox"]),
        "os": rng.choice(["iOS", "Windows", ""]),
        "traffic_source": rng.choice(["direct", "search", "social"]),
        "referrer_host": rng.choice(["", "www.google.com"]),
    }


def build_events() -> list[dict[str, Any]]:
    rng = random.Random(20250301)
    rows: list[dict[str, Any]] = []
    start = datetime(2025, 3, 1, tzinfo=UTC)
    for _ in range(360):  # 1-14 March 2025
        rows.append(_event(rng, len(rows), start + timedelta(seconds=rng.randrange(14 * 86_400))))
    last_year = datetime(2024, 3, 1, tzinfo=UTC)
    for _ in range(60):  # 1-14 March 2024, for previous_year
        rows.append(_event(rng, len(rows), last_year + timedelta(seconds=rng.randrange(14 * 86_400))))
    # Around midnight of 5/6 March: a different day in Riyadh (+3), New York (-5) and Kolkata (+5:30).
    for at in (
        "2025-03-05T20:59:59",
        "2025-03-05T21:00:00",
        "2025-03-05T23:59:59",
        "2025-03-06T00:00:00",
        "2025-03-06T04:59:59",
        "2025-03-06T05:00:00",
        "2025-03-05T18:29:59",
        "2025-03-05T18:30:00",
    ):
        moment = datetime.fromisoformat(at).replace(tzinfo=UTC)
        for event_type in ("content_view", "api_request"):
            rows.append(_event(rng, len(rows), moment, event_type))
    return rows


EVENTS_DATA = build_events()


# --- the answers, computed in Python -------------------------------------------------------------


def _props(row: dict[str, Any]) -> dict[str, Any]:
    return orjson.loads(row["properties"])


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _ascii_lower(text: str) -> str:
    return "".join(c.lower() if c.isascii() else c for c in text)


def content_of(row: dict[str, Any]) -> str:
    return row["content_id"] or _text(_props(row).get("content_id"))


def dimension_value(row: dict[str, Any], name: str) -> Any:
    props = _props(row)
    if name == "content_id":
        return content_of(row)
    if name in ("category", "content_type", "language", "author"):
        return METADATA.get(content_of(row), {}).get(name, "")
    if name in ("service", "endpoint", "method", "error_type", "severity"):
        return _text(props.get(name))
    if name == "import_source":
        source = _text(props.get("source"))
        return _text(props.get("kind")) if not source and row["event_type"].startswith("processing_") else source
    if name == "job_kind":
        return next((kind for kind in ("import", "processing") if row["event_type"].startswith(f"{kind}_")), "")
    if name == "import_stage":
        return _text(props.get("stage"))
    if name == "failure_reason":
        return _text(props.get("failure_reason"))
    if name == "status":
        status = props.get("status")
        return status if isinstance(status, int) else 0
    if name == "search_query":
        return _ascii_lower(_text(props.get("query")).strip(" "))
    return row[name]


def time_value(row: dict[str, Any], name: str, zone: ZoneInfo, granularity: str) -> Any:
    local = row["timestamp"].astimezone(zone)
    if name == "bucket":
        name = granularity
    if name == "hour":
        return local.replace(minute=0, second=0, microsecond=0).isoformat()
    if name == "day":
        return local.date().isoformat()
    if name == "week":
        return (local.date() - timedelta(days=local.weekday())).isoformat()
    if name == "month":
        return local.date().replace(day=1).isoformat()
    if name == "hour_of_day":
        return local.hour
    assert name == "weekday"
    return local.isoweekday()


def _quantile(values: list[float], level: float) -> float | None:
    """Linear interpolation between the closest ranks (numpy's default percentile)."""
    if not values:
        return None
    ordered = sorted(values)
    h = (len(ordered) - 1) * level
    low = math.floor(h)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (h - low) * (ordered[high] - ordered[low])


def _timing(values: list[float], level: float) -> float | None:
    """quantileTiming on at most 5,670 values: the whole milliseconds (30 s at most), sorted, the one at
    index floor(level * n)."""
    if not values:
        return None
    ordered = sorted(int(min(v, 30_000.0)) for v in values)
    return float(ordered[min(int(level * len(ordered)), len(ordered) - 1)])


def _percent(row: dict[str, Any], name: str) -> float | None:
    value = _props(row).get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return min(max(float(value), 0.0), 100.0)


def _job_number(row: dict[str, Any], name: str) -> float | None:
    """A job figure: a JSON number (not a boolean), negative as 0; None otherwise."""
    value = _props(row).get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return max(float(value), 0.0)


def _job_id(row: dict[str, Any]) -> str:
    value = _props(row).get("job_id")
    if isinstance(value, bool):
        return ""
    return str(value) if isinstance(value, int) else _text(value)


def _duration(row: dict[str, Any]) -> float:
    value = _props(row).get("duration_seconds")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return min(max(float(value), 0.0), 86_400.0)


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def all_metrics(group: list[dict[str, Any]]) -> dict[str, Any]:
    def of(event_type: str, *, content: bool = False) -> list[dict[str, Any]]:
        return [r for r in group if r["event_type"] == event_type and (not content or content_of(r))]

    def viewer(r: dict[str, Any]) -> str:
        return r["user_id"] or (f"session:{r['session_id']}" if r["session_id"] else f"event:{r['id']}")

    def session(r: dict[str, Any]) -> str:
        return r["session_id"] or (f"user:{r['user_id']}" if r["user_id"] else f"event:{r['id']}")

    playback = [r for t in ("content_view", "content_play", "content_complete") for r in of(t, content=True)]
    searches = of("search_query")
    zero = [r for r in searches if _props(r).get("results_count", None) == 0]
    api = of("api_request")
    failed = [r for r in api if dimension_value(r, "status") >= 500]
    latencies = [
        float(v) for r in api if isinstance(v := _props(r).get("duration_ms"), int | float) and not isinstance(v, bool)
    ]
    response_times = [max(v, 0.0) for v in latencies]
    checks = [str(_props(r).get("status", "")).lower() for r in of("health_check")]
    values: dict[str, Any] = {
        "events": len(group),
        "users": len({r["user_id"] for r in group if r["user_id"]}),
        "sessions": len({r["session_id"] for r in group if r["session_id"]}),
        "views": len(of("content_view", content=True)),
        "unique_viewers": len({viewer(r) for r in of("content_view", content=True)}),
        "plays": len(of("content_play", content=True)),
        "completes": len(of("content_complete", content=True)),
        "playback_sessions": len({session(r) for r in playback}),
        "completed_sessions": len({session(r) for r in of("content_complete", content=True)}),
        "likes": len(of("content_like", content=True)),
        "shares": len(of("content_share", content=True)),
        "bookmarks": len(of("content_bookmark", content=True)),
        "comments": len(of("content_comment", content=True)),
        "watch_time_seconds": sum(_duration(r) for r in group),
        "searches": len(searches),
        "zero_result_searches": len(zero),
        "search_clicks": len(of("search_result_click")),
        "api_requests": len(api),
        "server_error_requests": len(failed),
        "errors": len(of("error_occurred")),
        "latency_p50": _quantile(latencies, 0.5),
        "latency_p95": _quantile(latencies, 0.95),
        "latency_p99": _quantile(latencies, 0.99),
        "successful_requests": sum(100 <= dimension_value(r, "status") < 400 for r in api),
        "client_error_requests": sum(400 <= dimension_value(r, "status") < 500 for r in api),
        "response_time_avg": sum(response_times) / len(response_times) if response_times else None,
        "response_time_p50": _timing(response_times, 0.5),
        "response_time_p95": _timing(response_times, 0.95),
        "response_time_p99": _timing(response_times, 0.99),
        "cache_hits": sum(_props(r).get("cache_hit") is True for r in api),
        "cache_misses": sum(_props(r).get("cache_hit") is False for r in api),
        "external_calls": sum(int(_props(r).get("external_calls", 0)) for r in api),
        "external_errors": sum(int(_props(r).get("external_errors", 0)) for r in api),
        **{
            f"{resource}_percent_avg": (
                sum(found) / len(found)
                if (found := [v for r in of("resource_usage") if (v := _percent(r, f"{resource}_percent")) is not None])
                else None
            )
            for resource in ("cpu", "memory", "disk")
        },
        "health_checks": len(checks),
        "health_checks_up": checks.count("up"),
        "health_checks_degraded": checks.count("degraded"),
        "health_checks_down": checks.count("down"),
        "imports_started": len(of("import_started")),
        "imports_completed": len(of("import_completed")),
        "imports_failed": len(of("import_failed")),
    }
    starts, completions = (
        of("import_started") + of("processing_started"),
        of("import_completed") + of("processing_completed"),
    )
    failures = of("import_failed") + of("processing_failed")

    def total(name: str, rows: list[dict[str, Any]]) -> int:
        return sum(int(v) for r in rows if (v := _job_number(r, name)) is not None)

    timed = [
        r
        for r in completions
        if (_job_number(r, "duration_ms") or 0) > 0 and _job_number(r, "records_processed") is not None
    ]
    timed_ms = sum(_job_number(r, "duration_ms") or 0 for r in timed)
    ends = [d for r in completions + failures if (d := _job_number(r, "duration_ms")) is not None]
    stages = [d for r in of("import_stage_completed") if (d := _job_number(r, "duration_ms")) is not None]
    values.update(
        {
            "job_runs": len({_job_id(r) for r in starts if _job_id(r)}),
            "jobs_completed": len(completions),
            "jobs_failed": len(failures),
            "import_records_processed": total("records_processed", completions),
            "import_records_failed": total("records_failed", completions + failures),
            **{
                f"import_{name}": total(name, completions + failures)
                for name in ("duplicates", "invalid_rows", "missing_fields", "transform_errors")
            },
            "job_throughput": total("records_processed", timed) * 1000 / timed_ms if timed_ms else None,
            "job_duration_p50": _quantile(ends, 0.5),
            "job_duration_p95": _quantile(ends, 0.95),
            "stage_duration_p50": _quantile(stages, 0.5),
            "stage_duration_p95": _quantile(stages, 0.95),
        }
    )
    values["completion_rate"] = _ratio(values["completed_sessions"], values["playback_sessions"])
    values["zero_result_rate"] = _ratio(values["zero_result_searches"], values["searches"])
    values["search_ctr"] = _ratio(values["search_clicks"], values["searches"])
    values["error_rate"] = _ratio(values["errors"], values["api_requests"])
    values["request_error_rate"] = _ratio(values["server_error_requests"], values["api_requests"])
    values["cache_hit_rate"] = _ratio(values["cache_hits"], values["cache_hits"] + values["cache_misses"])
    rated = values["health_checks_up"] + values["health_checks_degraded"] + values["health_checks_down"]
    values["availability"] = _ratio(values["health_checks_up"] + values["health_checks_degraded"], rated)
    values["import_success_rate"] = _ratio(
        values["imports_completed"], values["imports_completed"] + values["imports_failed"]
    )
    finished = values["jobs_completed"] + values["jobs_failed"]
    values["job_success_rate"] = _ratio(values["jobs_completed"], finished)
    values["job_failure_rate"] = _ratio(values["jobs_failed"], finished)
    return values


# Quantiles and throughput: a group is kept when they have a value, even 0.
NULLABLE = {
    "latency_p50", "latency_p95", "latency_p99", "job_throughput", "job_duration_p50", "job_duration_p95",
    "stage_duration_p50", "stage_duration_p95",
}  # fmt: skip
# A ratio's row is kept when one of the counts it is made of is not 0.
DERIVED = {
    "completion_rate": ("completed_sessions", "playback_sessions"),
    "zero_result_rate": ("zero_result_searches", "searches"),
    "search_ctr": ("search_clicks", "searches"),
    "error_rate": ("errors", "api_requests"),
    "request_error_rate": ("server_error_requests", "api_requests"),
    "import_success_rate": ("imports_completed", "imports_failed"),
    "job_success_rate": ("jobs_completed", "jobs_failed"),
    "job_failure_rate": ("jobs_completed", "jobs_failed"),
    "cache_hit_rate": ("cache_hits", "cache_misses"),
    "availability": ("health_checks_up", "health_checks_degraded", "health_checks_down"),
}


def _number(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except ValueError:
        return 0.0


def passes(value: Any, flt: dict[str, Any]) -> bool:
    op = flt["op"]
    values = flt.get("values", [flt.get("value")])
    if isinstance(value, int):
        values = [int(float(v)) for v in values]
    else:
        values = [str(v) if op not in ("gt", "gte", "lt", "lte") else v for v in values]
    if op == "in":
        return value in values
    if op == "not_in":
        return value not in values
    if op == "eq":
        return value == values[0]
    if op == "neq":
        return value != values[0]
    if op == "contains":
        return str(values[0]).lower() in str(value).lower()
    left, right = _number(value), float(values[0])
    return {"gt": left > right, "gte": left >= right, "lt": left < right, "lte": left <= right}[op]


def _selected(
    start: date, end: date, tz: str, filters: Sequence[dict[str, Any]], data: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    zone = ZoneInfo(tz)
    lo = datetime.combine(start, datetime.min.time(), zone)
    hi = datetime.combine(end + timedelta(days=1), datetime.min.time(), zone)
    return [
        r
        for r in (data if data is not None else EVENTS_DATA)
        if lo <= r["timestamp"] < hi and all(passes(dimension_value(r, f["dimension"]), f) for f in filters)
    ]


def expected(
    metrics: Sequence[str],
    dimensions: Sequence[str],
    start: date,
    end: date,
    *,
    tz: str = "UTC",
    granularity: str = "day",
    filters: Sequence[dict[str, Any]] = (),
) -> list[dict[str, Any]]:
    """The rows, ordered by the dimensions."""
    zone = ZoneInfo(tz)
    time_names = {"bucket", "hour", "day", "week", "month", "hour_of_day", "weekday"}
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in _selected(start, end, tz, filters):
        key = tuple(
            time_value(row, d, zone, granularity) if d in time_names else dimension_value(row, d) for d in dimensions
        )
        groups.setdefault(key, []).append(row)
    base = {b for m in metrics for b in DERIVED.get(m, (m,))}
    out = []
    for key in sorted(groups):
        values = all_metrics(groups[key])
        if all(values[b] is None if b in NULLABLE else values[b] in (0, None) for b in base):
            continue
        out.append({**dict(zip(dimensions, key, strict=True)), **{m: values[m] for m in metrics}})
    return out


def expected_totals(
    metrics: Sequence[str], start: date, end: date, *, tz: str = "UTC", filters: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    values = all_metrics(_selected(start, end, tz, filters))
    return {m: values[m] for m in metrics}


def same(actual: Any, wanted: Any) -> bool:
    """Equal values of equal types; floats (sums and ratios computed in another order) to 1e-9."""
    if isinstance(wanted, float):
        return isinstance(actual, float) and actual == pytest.approx(wanted, rel=1e-9, abs=1e-9)
    if isinstance(wanted, dict) and isinstance(actual, dict):
        return actual.keys() == wanted.keys() and all(same(actual[k], wanted[k]) for k in wanted)
    return type(actual) is type(wanted) and actual == wanted


def assert_rows(actual: list[dict[str, Any]], wanted: list[dict[str, Any]]) -> None:
    assert len(actual) == len(wanted), (len(actual), len(wanted))
    for got, want in zip(actual, wanted, strict=True):
        assert same(got, want), (got, want)


# --- fixtures ------------------------------------------------------------------------------------


def events_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=EVENT_SCHEMA)


def load(events: ClickHouseEvents) -> None:
    half = len(EVENTS_DATA) // 2
    # Two inserts: the rollups then hold several parts for the same keys.
    events.insert(events_table(EVENTS_DATA[:half]), "aq-1")
    events.insert(events_table(EVENTS_DATA[half:]), "aq-2")
    fields = ("content_id", "category", "content_type", "language", "author", "updated_at")
    updated = datetime(2025, 1, 1, tzinfo=UTC)
    events.client.insert(
        "content_metadata_updates",
        [[cid, *(meta.get(f, "") for f in fields[1:-1]), updated] for cid, meta in METADATA.items()],
        column_names=list(fields),
    )


@pytest.fixture(scope="module")
def store(chdb_dir: Path) -> Iterator[InProcessStore]:
    events = open_store(chdb_dir, f"analytics_query_{secrets.token_hex(4)}")
    load(events)
    yield InProcessStore(events)
    events.close()


@pytest.fixture(scope="module")
def service(store: InProcessStore) -> AnalyticsQueryService:
    return AnalyticsQueryService(store)


async def ask(service: AnalyticsQueryService, role: Role = Role.ADMIN, **body: Any) -> AnalyticsQueryResult:
    return await service.run(service.resolve(AnalyticsQueryRequest.parse(body)), role)


def march(first: int, last: int) -> dict[str, str]:
    return {"start_date": f"2025-03-{first:02d}", "end_date": f"2025-03-{last:02d}"}


ALL_METRICS = list(METRICS)
# Requests of at most 18 metrics (20 is the limit).
METRIC_CHUNKS = [ALL_METRICS[i : i + 18] for i in range(0, len(ALL_METRICS), 18)]


# --- every metric, by many dimensions --------------------------------------------------------------


@pytest.mark.parametrize(
    ("dimensions", "tz", "granularity"),
    [
        ((), "UTC", "day"),
        (("country",), "UTC", "day"),
        (("category", "device_type", "day"), "UTC", "day"),
        (("content_id", "content_type", "language"), "Asia/Riyadh", "day"),
        (("status", "service", "method"), "UTC", "day"),
        (("endpoint", "error_type", "severity"), "UTC", "day"),
        (("import_source", "event_category", "event_type"), "UTC", "day"),
        (("job_kind", "import_stage", "failure_reason"), "UTC", "day"),
        (("hour",), "Asia/Kolkata", "day"),
        (("week", "weekday", "author"), "America/New_York", "day"),
        (("month", "hour_of_day"), "UTC", "day"),
        (("search_query", "region", "city"), "UTC", "day"),
        (("user_id", "session_id"), "UTC", "day"),
        (("bucket", "os"), "Asia/Riyadh", "hour"),
        (("bucket", "browser", "traffic_source"), "UTC", "week"),
        (("referrer_host", "resource_type"), "UTC", "month"),
    ],
)
async def test_every_metric_by_dimensions_matches_python(
    service: AnalyticsQueryService, dimensions: tuple[str, ...], tz: str, granularity: str
) -> None:
    first, last = (3, 9) if granularity == "hour" else (1, 14)
    for metrics in METRIC_CHUNKS:
        result = await ask(
            service,
            metrics=metrics,
            dimensions=list(dimensions),
            date_range=march(first, last),
            timezone=tz,
            granularity=granularity,
            limit=10_000,
        )
        wanted = expected(
            metrics, dimensions, date(2025, 3, first), date(2025, 3, last), tz=tz, granularity=granularity
        )
        assert wanted, "the dataset has rows for these dimensions"
        assert_rows(
            sorted(result.rows, key=lambda r: tuple(str(r[d]) for d in dimensions)),
            sorted(wanted, key=lambda r: tuple(str(r[d]) for d in dimensions)),
        )
        assert same(result.totals, expected_totals(metrics, date(2025, 3, first), date(2025, 3, last), tz=tz))
        assert result.next_cursor is None
        assert [c.name for c in result.columns] == [*dimensions, *metrics]


async def test_columns_say_type_unit_and_kind(service: AnalyticsQueryService) -> None:
    result = await ask(
        service,
        metrics=["views", "completion_rate", "latency_p95", "watch_time_seconds"],
        dimensions=["bucket", "status"],
        granularity="hour",
        date_range=march(1, 2),
    )
    shown = [(c.name, c.type, c.unit, c.kind) for c in result.columns]
    assert shown == [
        ("bucket", "datetime", None, "dimension"),
        ("status", "integer", None, "dimension"),
        ("views", "integer", "events", "metric"),
        ("completion_rate", "float", "ratio", "metric"),
        ("latency_p95", "float", "ms", "metric"),
        ("watch_time_seconds", "float", "seconds", "metric"),
    ]
    # Latency is null where no request reported one, never 0.
    assert any(row["latency_p95"] is None for row in result.rows)


# --- filters --------------------------------------------------------------------------------------

FILTERS = [
    {"dimension": "country", "op": "eq", "value": "DE"},
    {"dimension": "country", "op": "neq", "value": "DE"},
    {"dimension": "device_type", "op": "in", "values": ["mobile", "tablet"]},
    {"dimension": "browser", "op": "not_in", "values": ["Chrome"]},
    {"dimension": "search_query", "op": "contains", "value": "FOOT"},
    {"dimension": "status", "op": "gt", "value": 404},
    {"dimension": "status", "op": "gte", "value": "500"},
    {"dimension": "status", "op": "lt", "value": 300},
    {"dimension": "status", "op": "lte", "value": 200},
    {"dimension": "status", "op": "in", "values": [500, "503"]},
    {"dimension": "status", "op": "lt", "value": "1e30"},
    {"dimension": "status", "op": "in", "values": [-1e30, 404]},
    {"dimension": "category", "op": "eq", "value": "news"},
    {"dimension": "category", "op": "neq", "value": "news"},
    {"dimension": "category", "op": "eq", "value": ""},
    {"dimension": "author", "op": "in", "values": ["alice", INJECTION]},
    {"dimension": "language", "op": "not_in", "values": ["ar"]},
    {"dimension": "author", "op": "contains", "value": "ALI"},
    {"dimension": "content_type", "op": "gt", "value": -1},
    {"dimension": "content_type", "op": "lt", "value": 0},
    {"dimension": "content_id", "op": "in", "values": ["c1", "c5"]},
    {"dimension": "content_id", "op": "eq", "value": ""},
    {"dimension": "city", "op": "lte", "value": 0},
    {"dimension": "search_query", "op": "eq", "value": INJECTION.lower()},
    {"dimension": "search_query", "op": "eq", "value": BACKSLASH.lower()},
    {"dimension": "search_query", "op": "in", "values": [UNICODE, "news"]},
]


@pytest.mark.parametrize("flt", FILTERS, ids=[f"{f['dimension']}-{f['op']}-{i}" for i, f in enumerate(FILTERS)])
async def test_every_filter_op_matches_python(service: AnalyticsQueryService, flt: dict[str, Any]) -> None:
    metrics = ["events", "views", "unique_viewers", "api_requests", "searches", "users"]
    result = await ask(service, metrics=metrics, dimensions=["country"], filters=[flt], date_range=march(1, 14))
    wanted = expected(metrics, ["country"], date(2025, 3, 1), date(2025, 3, 14), filters=[flt])
    assert_rows(result.rows, wanted)
    assert same(result.totals, expected_totals(metrics, date(2025, 3, 1), date(2025, 3, 14), filters=[flt]))


@pytest.mark.parametrize(
    "flt", [f for f in FILTERS if f["dimension"] in ("category", "author", "language", "content_id")]
)
async def test_content_filters_on_the_rollup_match_python(service: AnalyticsQueryService, flt: dict[str, Any]) -> None:
    """Content metrics by content dimensions are answered by the content rollup, filters included."""
    metrics = ["views", "unique_viewers", "completion_rate", "likes"]
    result = await ask(service, metrics=metrics, dimensions=["category", "day"], filters=[flt], date_range=march(1, 14))
    assert result.source == "content_daily"
    wanted = expected(metrics, ["category", "day"], date(2025, 3, 1), date(2025, 3, 14), filters=[flt])
    assert_rows(result.rows, wanted)
    assert same(result.totals, expected_totals(metrics, date(2025, 3, 1), date(2025, 3, 14), filters=[flt]))


async def test_several_filters_and(service: AnalyticsQueryService) -> None:
    filters = [
        {"dimension": "event_type", "op": "in", "values": ["api_request", "error_occurred"]},
        {"dimension": "service", "op": "eq", "value": "api"},
        {"dimension": "status", "op": "not_in", "values": [200]},
    ]
    metrics = ["events", "api_requests", "errors", "error_rate", "request_error_rate", "latency_p50"]
    result = await ask(
        service, metrics=metrics, dimensions=["endpoint", "day"], filters=filters, date_range=march(1, 14)
    )
    assert_rows(
        result.rows, expected(metrics, ["endpoint", "day"], date(2025, 3, 1), date(2025, 3, 14), filters=filters)
    )
    assert result.source == "events"


# --- where it is answered ---------------------------------------------------------------------------

PARITY = [
    (
        "content_daily",
        {
            "metrics": [
                "views",
                "unique_viewers",
                "completion_rate",
                "likes",
                "shares",
                "bookmarks",
                "comments",
                "playback_sessions",
                "completed_sessions",
            ],
            "dimensions": ["content_id", "category", "day"],
        },
    ),
    (
        "content_daily",
        {
            "metrics": ["views", "completion_rate"],
            "dimensions": ["author", "week"],
            "filters": [{"dimension": "language", "op": "neq", "value": "ar"}],
        },
    ),
    (
        "content_hourly",
        {"metrics": ["views", "unique_viewers"], "dimensions": ["hour_of_day", "language"], "timezone": "Asia/Riyadh"},
    ),
    ("content_hourly", {"metrics": ["views"], "dimensions": ["hour", "content_id"]}),
    ("content_daily", {"metrics": ["likes", "views"], "dimensions": ["content_id"], "compare_to": "previous_period"}),
    (
        "search_daily",
        {
            "metrics": ["searches", "zero_result_searches", "zero_result_rate", "search_clicks", "search_ctr"],
            "dimensions": ["search_query", "day"],
        },
    ),
    (
        "search_daily",
        {
            "metrics": ["search_ctr"],
            "dimensions": ["month"],
            "filters": [{"dimension": "search_query", "op": "contains", "value": "ball"}],
        },
    ),
    ("user_daily", {"metrics": ["users"], "dimensions": ["user_id", "weekday"]}),
    (
        "user_daily",
        {"metrics": ["users"], "dimensions": ["bucket"], "granularity": "week", "compare_to": "previous_year"},
    ),
]


@pytest.mark.parametrize(("source", "body"), PARITY)
async def test_rollup_families_answer_the_same_as_raw_events(
    store: InProcessStore, service: AnalyticsQueryService, source: str, body: dict[str, Any]
) -> None:
    """The equivalences of semantic/analytics_query.py: the same answer from the rollup and from events."""
    raw = AnalyticsQueryService(store, route="raw")
    request = {**body, "date_range": march(8, 14), "limit": 10_000}
    routed = await ask(service, **request)
    from_events = await ask(raw, **request)
    assert routed.source == source
    assert from_events.source == "events"
    assert routed.rows, "the query has rows"
    assert routed.model_dump(exclude={"source"}) == from_events.model_dump(exclude={"source"})
    dimensions = body["dimensions"]
    wanted = expected(
        body["metrics"],
        dimensions,
        date(2025, 3, 8),
        date(2025, 3, 14),
        tz=body.get("timezone", "UTC"),
        granularity=body.get("granularity", "day"),
        filters=body.get("filters", ()),
    )
    plain = [{k: v for k, v in row.items() if k != "compare"} for row in routed.rows]
    key = lambda r: tuple(str(r[d]) for d in dimensions)  # noqa: E731
    assert_rows(sorted(plain, key=key), sorted(wanted, key=key))


async def test_metrics_only_events_define_are_read_from_events(service: AnalyticsQueryService) -> None:
    assert (
        await ask(service, metrics=["views", "plays"], dimensions=["content_id"], date_range=march(1, 7))
    ).source == "events"
    # A dimension the content rollups lack.
    assert (await ask(service, metrics=["views"], dimensions=["country"], date_range=march(1, 7))).source == "events"
    # A zone whose days are not whole UTC hours.
    assert (
        await ask(service, metrics=["views"], dimensions=["day"], timezone="Asia/Kolkata", date_range=march(1, 7))
    ).source == "events"


def test_events_family_reads_only_the_columns_it_needs() -> None:
    from semantic.analytics_query import plan
    from semantic.periods import Period

    step = plan(["views", "latency_p50"], ["country"], [], Period(date(2025, 3, 1), date(2025, 3, 7)))
    sql = compile_query(step.query).sql
    assert "SELECT *" not in sql
    inner = sql[sql.index("FROM (SELECT ") + len("FROM (SELECT ") : sql.index(" FROM events")]
    assert sorted(part.rsplit(" AS ", 1)[1] for part in _split_columns(inner)) == [
        "e_content_id",
        "e_country",
        "e_event_type",
        "e_latency_ms",
    ]
    # Only the event types the metrics count.
    assert "event_type IN ('api_request', 'content_view')" in sql


def _split_columns(select: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in select:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    return [*parts, current.strip()]


# --- time zones ------------------------------------------------------------------------------------


@pytest.mark.parametrize("tz", ["UTC", "Asia/Riyadh", "America/New_York", "Asia/Kolkata"])
async def test_days_start_at_local_midnight(service: AnalyticsQueryService, tz: str) -> None:
    metrics = ["events", "views", "api_requests"]
    result = await ask(service, metrics=metrics, dimensions=["day", "hour_of_day"], timezone=tz, date_range=march(5, 6))
    wanted = expected(metrics, ["day", "hour_of_day"], date(2025, 3, 5), date(2025, 3, 6), tz=tz)
    assert_rows(result.rows, wanted)
    # The boundary events: 21:00 UTC on the 5th is the 6th in Riyadh; 04:59:59 UTC on the 6th is the 5th in New York.
    days = {row["day"]: row["events"] for row in result.rows}
    utc_days = {r["day"]: r["events"] for r in expected(["events"], ["day"], date(2025, 3, 5), date(2025, 3, 6))}
    if tz != "UTC":
        assert days != utc_days
    assert result.period.timezone == tz


# --- comparison periods ------------------------------------------------------------------------------


async def test_compare_to_previous_period_matches_python(service: AnalyticsQueryService) -> None:
    metrics = ["views", "completion_rate", "users", "latency_p50"]
    dimensions = ["device_type", "day"]
    result = await ask(
        service,
        metrics=metrics,
        dimensions=dimensions,
        date_range=march(8, 14),
        compare_to="previous_period",
        limit=10_000,
    )
    assert (result.compare_period.start_date, result.compare_period.end_date) == (date(2025, 3, 1), date(2025, 3, 7))
    before = {
        (r["device_type"], (date.fromisoformat(r["day"]) - date(2025, 3, 1)).days): r
        for r in expected(metrics, dimensions, date(2025, 3, 1), date(2025, 3, 7))
    }
    for row in result.rows:
        earlier = before.get((row["device_type"], (date.fromisoformat(row["day"]) - date(2025, 3, 8)).days))
        for m in metrics:
            previous = earlier[m] if earlier else (None if m == "latency_p50" else 0)
            assert same(row["compare"][m]["value"], previous), (row, m)
            if previous is None or row[m] is None:
                assert row["compare"][m]["change"] is None
            else:
                assert row["compare"][m]["change"] == pytest.approx(row[m] - previous, abs=1e-6)
                if previous:
                    assert row["compare"][m]["change_percent"] == pytest.approx(
                        100 * (row[m] - previous) / previous, abs=0.01
                    )
                else:
                    assert row["compare"][m]["change_percent"] is None
    assert any(row["compare"]["views"]["value"] for row in result.rows)
    previous_totals = expected_totals(metrics, date(2025, 3, 1), date(2025, 3, 7))
    assert result.compare_totals is not None
    assert same({m: v["value"] for m, v in result.compare_totals.items()}, previous_totals)


async def test_compare_to_previous_year_matches_python(service: AnalyticsQueryService) -> None:
    metrics = ["events", "views", "api_requests"]
    result = await ask(
        service, metrics=metrics, dimensions=["category"], date_range=march(1, 14), compare_to="previous_year"
    )
    assert (result.compare_period.start_date, result.compare_period.end_date) == (date(2024, 3, 1), date(2024, 3, 14))
    last_year = {r["category"]: r for r in expected(metrics, ["category"], date(2024, 3, 1), date(2024, 3, 14))}
    assert last_year, "the dataset has events a year earlier"
    for row in result.rows:
        for m in metrics:
            assert row["compare"][m]["value"] == last_year.get(row["category"], {}).get(m, 0)
    assert {m: v["value"] for m, v in (result.compare_totals or {}).items()} == expected_totals(
        metrics, date(2024, 3, 1), date(2024, 3, 14)
    )


def test_leap_days_and_relative_ranges() -> None:
    wednesday = date(2025, 3, 12)
    assert relative_dates("today", wednesday) == (wednesday, wednesday)
    assert relative_dates("yesterday", wednesday) == (date(2025, 3, 11), date(2025, 3, 11))
    assert relative_dates("last_7_days", wednesday) == (date(2025, 3, 6), wednesday)
    assert relative_dates("last_30_days", wednesday) == (date(2025, 2, 11), wednesday)
    assert relative_dates("last_week", wednesday) == (date(2025, 3, 3), date(2025, 3, 9))
    assert relative_dates("last_week", date(2025, 3, 10)) == (date(2025, 3, 3), date(2025, 3, 9))
    assert relative_dates("last_month", wednesday) == (date(2025, 2, 1), date(2025, 2, 28))
    assert relative_dates("last_month", date(2025, 1, 31)) == (date(2024, 12, 1), date(2024, 12, 31))
    assert relative_dates("month_to_date", wednesday) == (date(2025, 3, 1), wednesday)
    service = AnalyticsQueryService(store=None)  # type: ignore[arg-type]  # resolve reads no data
    resolved = service.resolve(
        AnalyticsQueryRequest.parse({"metrics": ["views"], "date_range": {"relative": "last_week"}}), today=wednesday
    )
    assert resolved.date_range is not None
    assert (resolved.date_range.start_date, resolved.date_range.end_date, resolved.date_range.relative) == (
        date(2025, 3, 3),
        date(2025, 3, 9),
        None,
    )
    default = service.resolve(AnalyticsQueryRequest.parse({"metrics": ["views"]}), today=wednesday)
    assert default.date_range is not None and default.date_range.start_date == date(2025, 2, 11)
    # A comparison a year before 29 February 2024 ends on the 28th.
    from semantic.analytics_query import comparison_period
    from semantic.periods import Period

    leap = comparison_period(Period(date(2024, 2, 1), date(2024, 2, 29)), "previous_year")
    assert (leap.start_date, leap.end_date) == (date(2023, 2, 1), date(2023, 2, 28))


# --- ordering and pages -------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 7, 50])
async def test_pages_cover_every_row_once_in_order(service: AnalyticsQueryService, limit: int) -> None:
    metrics = ["views", "events"]
    dimensions = ["country", "device_type", "day"]
    order = [{"field": "views", "direction": "desc"}, {"field": "country", "direction": "asc"}]
    body = {"metrics": metrics, "dimensions": dimensions, "date_range": march(1, 14), "order_by": order}
    pages: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await ask(service, **body, limit=limit, cursor=cursor)
        assert len(page.rows) <= limit
        pages += page.rows
        cursor = page.next_cursor
        if cursor is None:
            break
        assert len(page.rows) == limit
    wanted = expected(metrics, dimensions, date(2025, 3, 1), date(2025, 3, 14))
    wanted.sort(key=lambda r: (-r["views"], r["country"], r["device_type"], r["day"]))
    assert pages == wanted
    assert len(pages) > 50


async def test_order_by_a_ratio_then_dimensions(service: AnalyticsQueryService) -> None:
    metrics = ["completion_rate", "views"]
    result = await ask(
        service,
        metrics=metrics,
        dimensions=["content_id"],
        date_range=march(1, 14),
        order_by=[{"field": "completion_rate", "direction": "desc"}],
        limit=3,
    )
    wanted = expected(metrics, ["content_id"], date(2025, 3, 1), date(2025, 3, 14))
    wanted.sort(key=lambda r: (-r["completion_rate"], r["content_id"]))
    assert_rows(result.rows, wanted[:3])
    assert result.next_cursor is not None


async def test_cursors_are_bound_to_their_query(service: AnalyticsQueryService) -> None:
    body = {"metrics": ["events"], "dimensions": ["day"], "date_range": march(1, 14), "limit": 2}
    first = await ask(service, **body)
    assert first.next_cursor is not None
    second = await ask(service, **body, cursor=first.next_cursor)
    assert second.rows[0]["day"] == "2025-03-03"
    # Another limit keeps the position (an offset into the same ordered rows).
    assert (await ask(service, **{**body, "limit": 5}, cursor=first.next_cursor)).rows[0]["day"] == "2025-03-03"
    text, signature = first.next_cursor.split(".")
    tampered = [
        f"{text[:-2]}AA.{signature}",
        f"{text}.{signature[:-2]}AA",
        text,
        first.next_cursor + ".x",
        *HOSTILE,
    ]
    for cursor in tampered:
        with pytest.raises(InvalidRequest) as refused:
            await ask(service, **body, cursor=cursor)
        assert refused.value.details == {"field": "cursor"}, cursor
    for other in ({**body, "metrics": ["views"]}, {**body, "date_range": march(2, 14)}):
        with pytest.raises(InvalidRequest) as elsewhere:
            await ask(service, **other, cursor=first.next_cursor)
        assert elsewhere.value.details == {"field": "cursor"}
        assert "another query" in elsewhere.value.message


# --- roles ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.VIEWER, Role.CONTENT_MANAGER])
async def test_roles_use_only_their_metrics_and_dimensions(service: AnalyticsQueryService, role: Role) -> None:
    allowed = await ask(service, role, metrics=["views", "search_ctr"], dimensions=["country"], date_range=march(1, 7))
    assert allowed.rows
    refusals = [
        ({"metrics": ["views", "users"]}, "metrics[1]", "metric", "users"),
        ({"metrics": ["latency_p99"]}, "metrics[0]", "metric", "latency_p99"),
        ({"metrics": ["imports_failed"]}, "metrics[0]", "metric", "imports_failed"),
        ({"metrics": ["views"], "dimensions": ["day", "user_id"]}, "dimensions[1]", "dimension", "user_id"),
        (
            {"metrics": ["views"], "filters": [{"dimension": "session_id", "value": "s"}]},
            "filters[0].dimension",
            "dimension",
            "session_id",
        ),
    ]
    for body, field, kind, name in refusals:
        with pytest.raises(Forbidden) as refused:
            await ask(service, role, **body, date_range=march(1, 7))
        assert refused.value.details == {"field": field, kind: name, "allowed_roles": ["admin", "analyst"]}
        assert name in refused.value.message and "admin, analyst" in refused.value.message
    analyst = await ask(service, Role.ANALYST, metrics=["users"], dimensions=["user_id"], date_range=march(1, 7))
    assert analyst.rows


# --- bad requests and hostile input --------------------------------------------------------------------

BAD = [
    ({"metrics": []}, "metrics"),
    ({"metrics": ["views"] * 21}, "metrics"),
    ({"metrics": ["views", "veiws"]}, "metrics[1]"),
    ({"metrics": ["views", "views"]}, "metrics[1]"),
    ({"metrics": ["views"], "dimensions": ["day", "hour", "week", "month", "country", "city"]}, "dimensions"),
    ({"metrics": ["views"], "dimensions": ["contry"]}, "dimensions[0]"),
    ({"metrics": ["views"], "filters": [{"dimension": "country", "op": "like", "value": "x"}]}, "filters[0].op"),
    ({"metrics": ["views"], "filters": [{"dimension": "cuntry", "value": "x"}]}, "filters[0].dimension"),
    ({"metrics": ["views"], "filters": [{"dimension": "status", "op": "gt", "value": "abc"}]}, "filters[0]"),
    ({"metrics": ["views"], "filters": [{"dimension": "country", "op": "eq", "values": ["a", "b"]}]}, "filters[0]"),
    (
        {
            "metrics": ["views"],
            "filters": [{"dimension": "city", "value": "x"}, {"dimension": "status", "value": "inf"}],
        },
        "filters[1]",
    ),
    ({"metrics": ["views"], "filters": [{"dimension": "country", "value": "x"}] * 21}, "filters"),
    ({"metrics": ["views"], "filters": [{"dimension": "country", "values": ["a", None]}]}, "filters[0].values[1]"),
    ({"metrics": ["views"], "limit": 0}, "limit"),
    ({"metrics": ["views"], "limit": 10_001}, "limit"),
    ({"metrics": ["views"], "granularity": "minute"}, "granularity"),
    ({"metrics": ["views"], "compare_to": "last_decade"}, "compare_to"),
    ({"metrics": ["views"], "order_by": [{"field": "country"}]}, "order_by[0].field"),
    ({"metrics": ["views"], "order_by": [{"field": "views", "direction": "up"}]}, "order_by[0].direction"),
    ({"metrics": ["views"], "date_range": {"relative": "last_year"}}, "date_range.relative"),
    ({"metrics": ["views"], "date_range": {"relative": "today", "start_date": "2025-03-01"}}, "date_range"),
    ({"metrics": ["views"], "date_range": {"start_date": "2025-03-01"}}, "date_range"),
    (
        {"metrics": ["views"], "date_range": {"start_date": "2025-03-09", "end_date": "2025-03-01"}},
        "date_range.end_date",
    ),
    (
        {"metrics": ["views"], "date_range": {"start_date": "2023-01-01", "end_date": "2025-03-01"}},
        "date_range.start_date",
    ),
    (
        {
            "metrics": ["views"],
            "date_range": {"start_date": "2025-01-01", "end_date": "2025-03-01"},
            "granularity": "hour",
        },
        "granularity",
    ),
    ({"metrics": ["views"], "timezone": "Europe"}, "timezone"),
    (
        {"metrics": ["views"], "date_range": {"start_date": "0001-01-01", "end_date": "0001-01-02"}},
        "date_range.start_date",
    ),
    (
        {"metrics": ["views"], "date_range": {"start_date": "9999-12-30", "end_date": "9999-12-31"}},
        "date_range.start_date",
    ),
    ({"metrics": ["views"], "colour": "red"}, "colour"),
    ({"metrics": "views"}, "metrics"),
]


@pytest.mark.parametrize(("body", "field"), BAD, ids=[f for _, f in BAD])
async def test_bad_requests_name_the_field(service: AnalyticsQueryService, body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        await ask(service, **body)
    assert refused.value.details["field"] == field, refused.value.details
    assert refused.value.status == 400


def test_unknown_names_suggest_close_ones() -> None:
    with pytest.raises(InvalidRequest) as metric:
        AnalyticsQueryRequest.parse({"metrics": ["veiws"]})
    assert "'views'" in metric.value.message and "catalog" in metric.value.message
    with pytest.raises(InvalidRequest) as dimension:
        AnalyticsQueryRequest.parse({"metrics": ["views"], "dimensions": ["contry"]})
    assert "'country'" in dimension.value.message


async def test_hostile_strings_are_values_or_refused_names(service: AnalyticsQueryService) -> None:
    total = await ask(service, metrics=["events"], date_range=march(1, 14))
    everything = len(_selected(date(2025, 3, 1), date(2025, 3, 14), "UTC", ()))
    assert total.totals["events"] == everything
    for text in HOSTILE:
        for op in ("eq", "neq", "in", "not_in", "contains"):
            flt = (
                {"dimension": "search_query", "op": op, "value": text}
                if op not in ("in", "not_in")
                else {"dimension": "search_query", "op": op, "values": [text, "news"]}
            )
            for dimension in ("search_query", "author"):
                flt = {**flt, "dimension": dimension}
                result = await ask(service, metrics=["events"], filters=[flt], date_range=march(1, 14))
                wanted = expected_totals(["events"], date(2025, 3, 1), date(2025, 3, 14), filters=[flt])
                assert result.totals == wanted, (text, op, dimension)
        for numeric in ("gt", "lt"):
            with pytest.raises(InvalidRequest):
                await ask(service, metrics=["events"], filters=[{"dimension": "status", "op": numeric, "value": text}])
        for body, field in (
            ({"metrics": [text]}, "metrics[0]"),
            ({"metrics": ["events"], "dimensions": [text]}, "dimensions[0]"),
            ({"metrics": ["events"], "filters": [{"dimension": text, "value": "x"}]}, "filters[0].dimension"),
            ({"metrics": ["events"], "order_by": [{"field": text}]}, "order_by[0].field"),
            ({"metrics": ["events"], "timezone": text}, "timezone"),
            ({"metrics": ["events"], "cursor": text}, "cursor"),
            ({"metrics": ["events"], "date_range": {"relative": text}}, "date_range.relative"),
            ({"metrics": ["events"], "granularity": text}, "granularity"),
            ({"metrics": ["events"], "compare_to": text}, "compare_to"),
            ({"metrics": ["events"], "order_by": [{"field": "events", "direction": text}]}, "order_by[0].direction"),
            ({"metrics": ["events"], "filters": [{"dimension": "city", "op": text, "value": "x"}]}, "filters[0].op"),
            ({"metrics": ["events"], text: "x"}, text or "(body)"),
        ):
            with pytest.raises(InvalidRequest) as refused:
                await ask(service, **body, date_range=march(1, 14)) if "date_range" not in body else await ask(
                    service, **body
                )
            assert refused.value.details["field"] == field, (text, body)
    # The injection that is data is matched as data (queries are counted lower-cased), and the events
    # table is still whole.
    as_data = [{"dimension": "search_query", "op": "eq", "value": INJECTION.lower()}]
    matched = await ask(service, metrics=["searches"], filters=as_data, date_range=march(1, 14))
    searches = expected_totals(["searches"], date(2025, 3, 1), date(2025, 3, 14), filters=as_data)["searches"]
    assert matched.totals["searches"] == searches > 0
    assert (await ask(service, metrics=["events"], date_range=march(1, 14))).totals["events"] == everything


# --- purity ----------------------------------------------------------------------------------------------


async def test_run_is_a_function_of_its_inputs(service: AnalyticsQueryService) -> None:
    request = service.resolve(AnalyticsQueryRequest.parse({"metrics": ["views"], "date_range": march(1, 7)}))
    watermark = Watermark(stored_seq=2, fed_seq=2, as_of_ms=1_741_000_000_000)
    first = await service.run(request, Role.ADMIN, watermark)
    again = await service.run(request, Role.ADMIN, watermark)
    assert first == again
    assert first.as_of == datetime(2025, 3, 3, 11, 6, 40, tzinfo=UTC)
    assert (await service.run(request, Role.ADMIN)).as_of is None
    unresolved = AnalyticsQueryRequest.parse({"metrics": ["views"], "date_range": {"relative": "today"}})
    with pytest.raises(ValueError, match="resolve"):
        await service.run(unresolved, Role.ADMIN)
    # Equal requests resolve to equal (hashable-as-JSON) requests, so a cache can key on them.
    assert service.resolve(AnalyticsQueryRequest.parse({"metrics": ["views"], "date_range": march(1, 7)})) == request
