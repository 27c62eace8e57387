"""A widget's data: computed for the viewer (its role and content scope), in one of six shapes.

Every widget reads through what the rest of the API answers with, so a widget's number is the number
its own endpoint gives: analytics queries and analyses through ``Answers`` (pinned to the dashboard's
data watermark, from the result cache), live figures from the counter actors, system and import
figures through their reads. A widget the viewer may not see, or whose data cannot be computed, carries
its error; the other widgets of the dashboard are unaffected.

Shapes (``kind``): counter (one figure, with its change), series (values by period), table (columns and
rows), funnel (steps), retention (cohorts by offset), status (overall health and one check per
service). docs/dashboards.md shows each.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from pydantic import BaseModel, Field

from core.access import Permission, Principal
from core.errors import AnalyticsError, InvalidRequest
from semantic.analysis_kinds import FUNNEL, RETENTION
from semantic.analytics import Analytics
from semantic.analytics_query import MAX_METRICS, AnalyticsQueryRequest, relative_dates
from semantic.answers import Answers
from semantic.content_scope import require_applicable
from semantic.dashboard_widgets import INGEST_LAG, LIVE_GLOBAL_METRICS, WIDGET_TYPES
from semantic.freshness import Watermark
from semantic.import_reads import ImportReads
from semantic.periods import Period
from semantic.public_catalog import METRICS
from semantic.realtime_results import ContentLive, RealtimeMetrics, TrendingList
from semantic.system_reads import SystemReads
from storage.dashboards import StoredWidget
from storage.events import EventStore

# Runs a saved query: (saved query id, who may see it: the dashboard's owner, whom it is computed for)
# -> (its kind, the result as JSON).
SavedQueryRunner = Callable[[str, Principal, Principal], Awaitable[tuple[str, Any]]]

_UNITS = {"ratio": "ratio", "seconds": "seconds", "ms": "ms", "percent": "percent"}


class LiveFigures(Protocol):
    """The live layer (actors/realtime_client.py)."""

    async def realtime(self) -> RealtimeMetrics: ...

    async def trending(self, window: str, limit: int, category: str | None = None) -> TrendingList: ...

    async def content_live(self, content_id: str) -> ContentLive: ...


@dataclass(slots=True)
class WidgetSources:
    answers: Answers
    analytics: Analytics
    live: LiveFigures
    store: EventStore
    saved_query: SavedQueryRunner
    # The dashboard's owner, for the widget being computed.
    owner: Principal | None = None
    # Answers of this computation's inline queries asked together (``coalesced_queries``), by query.
    prefetched: dict[str, dict[str, Any]] | None = None


class WidgetError(BaseModel):
    code: str
    message: str
    field: str | None = None


class WidgetData(BaseModel):
    widget_id: str
    widget_type: str
    title: str
    as_of: datetime | None = Field(description="how fresh the widget's data is (its data watermark or live tick)")
    refreshed_at: datetime
    data: dict[str, Any] | None
    error: WidgetError | None = None
    # Of data and error: a subscriber is sent a widget only when this changed.
    digest: str = ""


def label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def unit_of(metric: str) -> str:
    entry = METRICS.get(metric)
    return _UNITS.get(entry.unit or "", "count") if entry is not None else "count"


def column_type(metric: str) -> str:
    entry = METRICS.get(metric)
    if entry is None:
        return "text"
    if entry.unit == "ratio":
        return "percent"
    if entry.unit == "seconds":
        return "duration"
    return "integer" if entry.type == "integer" else "decimal"


def digest_of(data: dict[str, Any] | None, error: WidgetError | None) -> str:
    body = orjson.dumps({"d": data, "e": error.model_dump() if error else None}, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(body, digest_size=12).hexdigest()


async def widget_data(
    widget: StoredWidget,
    principal: Principal,
    owner: Principal,
    sources: WidgetSources,
    watermark: Watermark,
    now: datetime,
) -> WidgetData:
    """The widget's data for ``principal``, or its error: never raises for a widget's own failure. A saved
    query the widget reads is looked up as ``owner`` (who put it there) and computed for ``principal``, so
    the data depends on the viewer's role and scope only."""
    as_of: datetime | None = None
    data: dict[str, Any] | None = None
    error: WidgetError | None = None
    try:
        kind = WIDGET_TYPES[widget.widget_type]
        if kind.operation is not None:
            Permission(kind.operation).check(principal)
        data, as_of = await _COMPUTE[widget.widget_type](
            widget.config, principal, replace(sources, owner=owner), watermark
        )
    except AnalyticsError as exc:
        details = exc.details if isinstance(exc.details, dict) else {}
        field = details.get("field")
        error = WidgetError(
            code=exc.code, message=exc.message, field=f"config.{field}" if isinstance(field, str) else None
        )
    except Exception as exc:  # noqa: BLE001 - one widget's failure is its own, never the dashboard's
        error = WidgetError(
            code="widget_failed", message=f"this widget's data could not be computed: {type(exc).__name__}"
        )
    return WidgetData(
        widget_id=widget.id,
        widget_type=widget.widget_type,
        title=widget.title,
        as_of=as_of,
        refreshed_at=now,
        data=data,
        error=error,
        digest=digest_of(data, error),
    )


Computed = tuple[dict[str, Any], datetime | None]


def _as_of(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value)
    return None


# --- live -----------------------------------------------------------------------------------------------


async def _real_time_counter(
    config: dict[str, Any], _: Principal, sources: WidgetSources, watermark: Watermark
) -> Computed:
    metric, window = config["metric"], config.get("window", "1h")
    if metric == INGEST_LAG:
        require_applicable("the ingest lag")
        as_of = watermark.as_of
        lag = max(0.0, (datetime.now(UTC) - as_of).total_seconds()) if as_of is not None else None
        return {"kind": "counter", "label": "Ingest lag", "value": lag, "unit": "seconds"}, as_of
    content_id = config.get("content_id")
    if content_id:
        if metric in LIVE_GLOBAL_METRICS:
            raise InvalidRequest(
                f"{metric} is a global figure; a content's counters are the window counts",
                details={"field": "metric"},
            )
        live = await sources.live.content_live(content_id)
        figures = live.windows.get(window)
        value = getattr(figures, metric, None) if figures is not None else 0
        return _counter(f"{label(metric)} ({window})", value or 0, metric), live.as_of
    metrics = await sources.live.realtime()
    if metric in LIVE_GLOBAL_METRICS:
        text = {
            "events_per_second": "Events per second",
            "events_last_60s": "Events (last 60 s)",
            "active_users_5m": "Active users (5 min)",
            "active_sessions_5m": "Active sessions (5 min)",
        }[metric]
        unit = "per_second" if metric == "events_per_second" else "count"
        return {"kind": "counter", "label": text, "value": getattr(metrics, metric), "unit": unit}, metrics.as_of
    figures = metrics.windows.get(window)
    value = getattr(figures, metric, None) if figures is not None else None
    return _counter(f"{label(metric)} ({window})", value or 0, metric), metrics.as_of


def _counter(text: str, value: float, metric: str) -> dict[str, Any]:
    return {"kind": "counter", "label": text, "value": value, "unit": "seconds" if "seconds" in metric else "count"}


async def _trending_content(config: dict[str, Any], _: Principal, sources: WidgetSources, __: Watermark) -> Computed:
    ranking = await sources.live.trending(config.get("window", "1h"), config.get("limit", 10), config.get("category"))
    ids = [item.content_id for item in ranking.items]
    titles = await _titles(sources, ids)
    columns = [
        {"name": "rank", "label": "Rank", "type": "integer"},
        {"name": "title", "label": "Title", "type": "text"},
        {"name": "content_id", "label": "Content", "type": "text"},
        {"name": "score", "label": "Score", "type": "decimal"},
        {"name": "activity", "label": "Activity", "type": "decimal"},
        {"name": "velocity", "label": "Velocity", "type": "decimal"},
    ]
    rows = [
        [i.rank, titles.get(i.content_id) or i.content_id, i.content_id, i.score, i.activity, i.velocity]
        for i in ranking.items
    ]
    return _table(columns, rows, config.get("chart", "table"), "title", "score"), ranking.as_of


async def _titles(sources: WidgetSources, ids: list[str]) -> dict[str, str]:
    if not ids:
        return {}
    known = await sources.analytics.metadata.get_many(ids)
    return {content_id: getattr(meta, "title", None) or "" for content_id, meta in known.items()}


def _table(
    columns: list[dict[str, Any]], rows: list[list[Any]], chart: str, label_column: str, value_column: str
) -> dict[str, Any]:
    return {
        "kind": "table",
        "chart": chart,
        "columns": columns,
        "rows": rows,
        "label_column": label_column,
        "value_column": value_column,
    }


# --- analytics queries ------------------------------------------------------------------------------------


async def _query(
    body: dict[str, Any], principal: Principal, sources: WidgetSources, watermark: Watermark
) -> dict[str, Any]:
    service = sources.analytics.query
    request = service.resolve(AnalyticsQueryRequest.parse(body))
    service.check_role(request, principal.role)
    answer = await sources.answers.answer(
        "analytics_query", request, principal, lambda at: service.run(request, principal.role, at), at=watermark
    )
    result: dict[str, Any] = answer.json()
    return result


def _date_range(config: dict[str, Any]) -> dict[str, Any]:
    return {"relative": config.get("range", "last_7_days")}


def _series(result: dict[str, Any], metrics: list[str], chart: str, breakdown: str | None = None) -> dict[str, Any]:
    rows = result["rows"]
    x = sorted({str(row["bucket"]) for row in rows})
    position = {bucket: index for index, bucket in enumerate(x)}
    series: list[dict[str, Any]] = []
    if breakdown is None:
        for metric in metrics:
            values: list[Any] = [0] * len(x)
            for row in rows:
                values[position[str(row["bucket"])]] = row.get(metric) or 0
            series.append({"name": metric, "label": label(metric), "unit": unit_of(metric), "values": values})
    else:
        metric = metrics[0]
        by_value: dict[str, list[Any]] = {}
        for row in rows:
            key = str(row.get(breakdown))
            by_value.setdefault(key, [0] * len(x))[position[str(row["bucket"])]] = row.get(metric) or 0
        for key, values in by_value.items():
            series.append({"name": key, "label": key, "unit": unit_of(metric), "values": values})
    return {"kind": "series", "chart": chart, "x": x, "series": series}


async def _time_series(
    config: dict[str, Any], principal: Principal, sources: WidgetSources, watermark: Watermark
) -> Computed:
    metrics = config["metrics"]
    breakdown = config.get("breakdown")
    body: dict[str, Any] = {
        "metrics": metrics if breakdown is None else metrics[:1],
        "dimensions": ["bucket"],
        "granularity": config.get("granularity", "day"),
        "date_range": _date_range(config),
        "filters": config.get("filters", []),
        "limit": 10_000,
    }
    if breakdown is not None:
        top = await _query(
            {
                "metrics": metrics[:1],
                "dimensions": [breakdown],
                "date_range": _date_range(config),
                "filters": config.get("filters", []),
                "order_by": [{"field": metrics[0], "direction": "desc"}],
                "limit": config.get("breakdown_limit", 5),
            },
            principal,
            sources,
            watermark,
        )
        values = [row[breakdown] for row in top["rows"] if row.get(breakdown) is not None]
        body["dimensions"] = ["bucket", breakdown]
        if values:
            body["filters"] = [*body["filters"], {"dimension": breakdown, "op": "in", "values": values}]
    result = await _query(body, principal, sources, watermark)
    return _series(result, metrics, config.get("chart", "line"), breakdown), _as_of(result.get("as_of"))


async def _user_activity(
    config: dict[str, Any], principal: Principal, sources: WidgetSources, watermark: Watermark
) -> Computed:
    return await _time_series({**config, "chart": config.get("chart", "line")}, principal, sources, watermark)


def _result_table(result: dict[str, Any], chart: str) -> dict[str, Any]:
    columns = []
    for column in result["columns"]:
        name = column["name"]
        if column["kind"] == "metric":
            kind = column_type(name)
        else:
            kind = column["type"] if column["type"] in ("integer", "date", "datetime") else "text"
        columns.append({"name": name, "label": label(name), "type": kind})
    rows = [[row.get(c["name"]) for c in columns] for row in result["rows"]]
    dimensions = [c["name"] for c in result["columns"] if c["kind"] == "dimension"]
    metrics = [c["name"] for c in result["columns"] if c["kind"] == "metric"]
    return _table(
        columns, rows, chart, dimensions[0] if dimensions else columns[0]["name"], metrics[0] if metrics else ""
    )


async def _table_widget(
    config: dict[str, Any], principal: Principal, sources: WidgetSources, watermark: Watermark
) -> Computed:
    metrics = config["metrics"]
    order = config.get("order_by") or metrics[0]
    result = await _query(
        {
            "metrics": metrics if order in metrics else [*metrics, order],
            "dimensions": config["dimensions"],
            "date_range": _date_range(config),
            "filters": config.get("filters", []),
            "order_by": [{"field": order, "direction": "desc"}],
            "limit": config.get("limit", 10),
        },
        principal,
        sources,
        watermark,
    )
    return _result_table(result, config.get("chart", "table")), _as_of(result.get("as_of"))


async def _top_content(
    config: dict[str, Any], principal: Principal, sources: WidgetSources, watermark: Watermark
) -> Computed:
    metric = config.get("metric", "views")
    filters = []
    if config.get("category"):
        filters.append({"dimension": "category", "op": "in", "values": [config["category"]]})
    result = await _query(
        {
            "metrics": [metric],
            "dimensions": ["content_id"],
            "date_range": _date_range(config),
            "filters": filters,
            "order_by": [{"field": metric, "direction": "desc"}],
            "limit": config.get("limit", 10),
        },
        principal,
        sources,
        watermark,
    )
    ids = [str(row["content_id"]) for row in result["rows"]]
    titles = await _titles(sources, ids)
    columns = [
        {"name": "title", "label": "Title", "type": "text"},
        {"name": "content_id", "label": "Content", "type": "text"},
        {"name": metric, "label": label(metric), "type": column_type(metric)},
    ]
    rows = [[titles.get(cid) or cid, cid, row.get(metric)] for cid, row in zip(ids, result["rows"], strict=True)]
    return _table(columns, rows, config.get("chart", "table"), "title", metric), _as_of(result.get("as_of"))


def _query_shape(result: dict[str, Any], chart: str) -> dict[str, Any]:
    """A query's result as a counter (no dimensions), a series (by period only) or a table."""
    dimensions = [c["name"] for c in result["columns"] if c["kind"] == "dimension"]
    metrics = [c["name"] for c in result["columns"] if c["kind"] == "metric"]
    if not dimensions and metrics and chart == "auto":
        metric = metrics[0]
        compare = (result.get("compare_totals") or {}).get(metric) or {}
        return {
            "kind": "counter",
            "label": label(metric),
            "value": result["totals"].get(metric) or 0,
            "unit": unit_of(metric),
            "previous": compare.get("value"),
            "change_percent": compare.get("change_percent"),
        }
    if dimensions == ["bucket"] and chart in ("auto", "line", "bar"):
        return _series(result, metrics, "line" if chart == "auto" else chart)
    return _result_table(result, "table" if chart == "auto" else chart)


async def _custom_metric(
    config: dict[str, Any], principal: Principal, sources: WidgetSources, watermark: Watermark
) -> Computed:
    chart = config.get("chart", "auto")
    if config.get("saved_query_id"):
        kind, result = await sources.saved_query(config["saved_query_id"], sources.owner or principal, principal)
        if kind != "query":
            raise InvalidRequest(
                f"saved query {config['saved_query_id']!r} is a {kind}, not an analytics query",
                details={"field": "saved_query_id"},
            )
    else:
        found = (sources.prefetched or {}).get(query_key(config["query"]))
        result = found if found is not None else await _query(config["query"], principal, sources, watermark)
    return _query_shape(result, chart), _as_of(result.get("as_of"))


def query_key(body: dict[str, Any]) -> str:
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS).decode()


async def coalesced_queries(
    widgets: Sequence[StoredWidget], principal: Principal, sources: WidgetSources, watermark: Watermark
) -> dict[str, dict[str, Any]]:
    """The answers of the widgets' inline queries without dimensions, those asking the same thing of
    different metrics (a board's KPIs: same range, filters and comparison) asked as one query: one
    statement per period instead of one per widget. A group whose query fails is left to its widgets,
    which then fail (or not) each on its own."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for widget in widgets:
        body = widget.config.get("query") if widget.widget_type == "custom_metric" else None
        if isinstance(body, dict) and not body.get("dimensions") and isinstance(body.get("metrics"), list):
            rest = {k: v for k, v in body.items() if k != "metrics"}
            groups.setdefault(query_key(rest), []).append(body)
    found: dict[str, dict[str, Any]] = {}
    for bodies in groups.values():
        if len(bodies) < 2:
            continue
        metrics = list(dict.fromkeys(m for body in bodies for m in body["metrics"]))
        if len(metrics) > MAX_METRICS:
            continue
        try:
            merged = await _query({**bodies[0], "metrics": metrics}, principal, sources, watermark)
        except Exception:  # noqa: BLE001 - each widget then asks its own query and carries its own error
            continue
        for body in bodies:
            found[query_key(body)] = _only(merged, body["metrics"])
    return found


def _only(result: dict[str, Any], metrics: list[str]) -> dict[str, Any]:
    """A merged answer as the query of ``metrics`` alone answers it."""
    wanted = set(metrics)
    columns = [c for c in result["columns"] if c["kind"] != "metric" or c["name"] in wanted]
    order = {name: index for index, name in enumerate(metrics)}
    columns.sort(key=lambda c: (c["kind"] == "metric", order.get(c["name"], 0)))
    out = dict(result)
    out["columns"] = columns
    out["totals"] = {m: result["totals"].get(m) for m in metrics}
    if result.get("compare_totals") is not None:
        out["compare_totals"] = {m: result["compare_totals"].get(m) for m in metrics}
    rows = []
    for row in result["rows"]:
        kept = {m: row.get(m) for m in metrics}
        if isinstance(row.get("compare"), dict):
            kept["compare"] = {m: row["compare"].get(m) for m in metrics}
        rows.append(kept)
    out["rows"] = rows
    return out


# --- analyses -------------------------------------------------------------------------------------------


async def _analysis_result(
    name: str, config: dict[str, Any], principal: Principal, sources: WidgetSources
) -> dict[str, Any]:
    if config.get("saved_query_id"):
        kind, result = await sources.saved_query(config["saved_query_id"], sources.owner or principal, principal)
        if kind != name:
            raise InvalidRequest(
                f"saved query {config['saved_query_id']!r} is a {kind}, not a {name}",
                details={"field": "saved_query_id"},
            )
        data: dict[str, Any] = result
        return data
    analysis = FUNNEL if name == "funnel" else RETENTION
    answer = await analysis.answer(config[name], principal, sources.store, sources.answers)
    found: dict[str, Any] = answer.json()
    return found


async def _funnel(config: dict[str, Any], principal: Principal, sources: WidgetSources, _: Watermark) -> Computed:
    result = await _analysis_result("funnel", config, principal, sources)
    steps = [
        {
            "name": step.get("label") or step["event_type"],
            "count": step["count"],
            "conversion_rate": step["conversion_from_first"],
        }
        for step in result["steps"]
    ]
    data = {"kind": "funnel", "steps": steps, "overall_conversion_rate": result["overall_conversion"]}
    return data, _as_of(result.get("as_of"))


async def _retention(config: dict[str, Any], principal: Principal, sources: WidgetSources, _: Watermark) -> Computed:
    result = await _analysis_result("retention", config, principal, sources)
    periods = int(result["periods"])
    cohorts = []
    for cohort in result["cohorts"]:
        rates: list[float | None] = [1.0 if cohort["size"] else 0.0] + [None] * periods
        for cell in cohort["cells"]:
            if 0 < cell["offset"] <= periods:
                rates[cell["offset"]] = cell["rate"]
        cohorts.append({"cohort": cohort["cohort"], "size": cohort["size"], "rates": rates})
    data = {"kind": "retention", "periods": [str(i) for i in range(periods + 1)], "cohorts": cohorts}
    return data, _as_of(result.get("as_of"))


# --- system and imports --------------------------------------------------------------------------------


async def _system_health(
    config: dict[str, Any], principal: Principal, sources: WidgetSources, _: Watermark
) -> Computed:
    period = _period(sources, config)
    result = (await SystemReads(sources.analytics.system, sources.answers, principal).health(period)).json()
    services = result["services"]
    if config.get("service"):
        services = [s for s in services if s["service"] == config["service"]]
    checks = [
        {
            "name": s["service"],
            "status": s["status"],
            "detail": "; ".join(s["reasons"])
            or f"{s['requests']} requests, error rate {s['error_rate']:.2%}"
            + (f", availability {s['availability']:.2%}" if s.get("availability") is not None else ""),
        }
        for s in services
    ]
    status = result["status"] if not config.get("service") else (checks[0]["status"] if checks else "unknown")
    return {"kind": "status", "status": status, "checks": checks}, _as_of(result.get("as_of"))


async def _import_status(
    config: dict[str, Any], principal: Principal, sources: WidgetSources, _: Watermark
) -> Computed:
    period = _period(sources, config)
    reads = ImportReads(sources.analytics, sources.answers, principal)
    result = (await reads.import_sources(period, kind=config.get("job_kind"))).json()
    columns = [
        {"name": "source", "label": "Source", "type": "text"},
        {"name": "kind", "label": "Kind", "type": "text"},
        {"name": "jobs", "label": "Jobs", "type": "integer"},
        {"name": "completed", "label": "Completed", "type": "integer"},
        {"name": "failed", "label": "Failed", "type": "integer"},
        {"name": "running", "label": "Running", "type": "integer"},
        {"name": "stuck", "label": "Stuck", "type": "integer"},
        {"name": "success_rate", "label": "Success rate", "type": "percent"},
    ]
    rows = [
        [
            s["source"],
            s["kind"],
            s["current"]["jobs"],
            s["current"]["completed"],
            s["current"]["failed"],
            s["current"]["running"],
            s["current"]["stuck"],
            s["current"]["success_rate"],
        ]
        for s in result["sources"]
    ]
    return _table(columns, rows, "table", "source", "jobs"), _as_of(result.get("as_of"))


def _period(sources: WidgetSources, config: dict[str, Any]) -> Period:
    today = datetime.now(UTC).date()
    start, end = relative_dates(config.get("range", "last_7_days"), today)
    return sources.analytics.period(start, end)


Compute = Callable[[dict[str, Any], Principal, WidgetSources, Watermark], Awaitable[Computed]]

_COMPUTE: dict[str, Compute] = {
    "real_time_counter": _real_time_counter,
    "trending_content": _trending_content,
    "user_activity": _user_activity,
    "system_health": _system_health,
    "custom_metric": _custom_metric,
    "time_series": _time_series,
    "table": _table_widget,
    "funnel": _funnel,
    "retention": _retention,
    "top_content": _top_content,
    "import_status": _import_status,
}
assert set(_COMPUTE) == set(WIDGET_TYPES), "every widget type computes its data"
