"""What each built-in report type shows: its KPIs, its tables (each one analytics query over the public
catalog) and its charts.

Every table is an ``analyticsQuery`` (semantic/analytics_query.py), so a report's numbers are the API's
numbers for the same query, the caller's role is checked metric by metric, and a content scope narrows
what the content family can narrow and refuses the rest (users, search, system, imports).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.access import Operation
from semantic.report_document import ChartType


@dataclass(frozen=True, slots=True)
class TableSpec:
    name: str
    title: str
    dimensions: tuple[str, ...]
    # None: the report's chosen metrics (its KPIs).
    metrics: tuple[str, ...] | None = None
    order_by: tuple[tuple[str, str], ...] = ()
    # None: the report's top_n (visualization_config), else the table's own row cap.
    limit: int | None = None
    chart: ChartType | None = None
    # For charts: the dimension on x, and for a heatmap the series dimension.
    x: str | None = None
    series: str | None = None
    # The table whose chart the report's chart_type replaces.
    primary: bool = False


@dataclass(frozen=True, slots=True)
class Template:
    report_type: str
    title: str
    # The operation a principal needs to create or generate the report.
    operation: Operation
    # The metrics the report may show (filters.metrics chooses among them); the first ones are the default.
    metrics: tuple[str, ...]
    default_metrics: tuple[str, ...]
    # The dimensions filters may name.
    filters: frozenset[str]
    tables: tuple[TableSpec, ...] = field(default_factory=tuple)


def _series(title: str) -> TableSpec:
    return TableSpec(
        name="series",
        title=title,
        dimensions=("bucket",),
        order_by=(("bucket", "asc"),),
        limit=10_000,
        chart=ChartType.LINE,
        x="bucket",
        primary=True,
    )


def _top(name: str, title: str, dimension: str, metric: str, chart: ChartType = ChartType.BAR) -> TableSpec:
    return TableSpec(
        name=name, title=title, dimensions=(dimension,), order_by=((metric, "desc"),), chart=chart, x=dimension
    )


def _heatmap(metric: str) -> TableSpec:
    return TableSpec(
        name="hour_by_weekday",
        title="By hour of day and weekday",
        dimensions=("weekday", "hour_of_day"),
        metrics=(metric,),
        order_by=(("weekday", "asc"), ("hour_of_day", "asc")),
        limit=7 * 24,
        chart=ChartType.HEATMAP,
        x="hour_of_day",
        series="weekday",
    )


_CONTENT_FILTERS = frozenset(
    {
        "content_id",
        "category",
        "content_type",
        "language",
        "author",
        "country",
        "region",
        "device_type",
        "traffic_source",
        "event_type",
    }
)

TEMPLATES: dict[str, Template] = {
    "content_performance": Template(
        report_type="content_performance",
        title="Content performance",
        operation=Operation.READ_CONTENT_ANALYTICS,
        metrics=(
            "views",
            "unique_viewers",
            "completion_rate",
            "watch_time_seconds",
            "plays",
            "completes",
            "likes",
            "shares",
            "bookmarks",
            "comments",
        ),
        default_metrics=("views", "unique_viewers", "completion_rate", "watch_time_seconds"),
        filters=_CONTENT_FILTERS,
        tables=(
            _series("Per period"),
            TableSpec(
                name="top_content",
                title="Top content",
                dimensions=("content_id",),
                order_by=(("views", "desc"),),
                chart=ChartType.BAR,
                x="content_id",
            ),
            TableSpec(
                name="categories",
                title="By category",
                dimensions=("category",),
                metrics=("views", "unique_viewers"),
                order_by=(("views", "desc"),),
            ),
            TableSpec(
                name="devices",
                title="By device",
                dimensions=("device_type",),
                metrics=("views",),
                order_by=(("views", "desc"),),
                chart=ChartType.PIE,
                x="device_type",
            ),
            TableSpec(
                name="countries",
                title="By country",
                dimensions=("country",),
                metrics=("views", "unique_viewers"),
                order_by=(("views", "desc"),),
            ),
            _heatmap("views"),
        ),
    ),
    "user_engagement": Template(
        report_type="user_engagement",
        title="User engagement",
        operation=Operation.READ_USER_ANALYTICS,
        metrics=("users", "sessions", "events"),
        default_metrics=("users", "sessions", "events"),
        filters=frozenset({"country", "region", "device_type", "browser", "os", "traffic_source", "event_type"}),
        tables=(
            _series("Per period"),
            _top("countries", "By country", "country", "users"),
            TableSpec(
                name="devices",
                title="By device",
                dimensions=("device_type",),
                metrics=("users",),
                order_by=(("users", "desc"),),
                chart=ChartType.PIE,
                x="device_type",
            ),
            _top("event_types", "By event type", "event_type", "events", chart=ChartType.TABLE),
            _heatmap("events"),
        ),
    ),
    "system_health": Template(
        report_type="system_health",
        title="System health",
        operation=Operation.READ_SYSTEM_ANALYTICS,
        metrics=(
            "api_requests",
            "errors",
            "error_rate",
            "latency_p50",
            "latency_p95",
            "latency_p99",
            "availability",
            "response_time_avg",
            "cache_hit_rate",
        ),
        default_metrics=("api_requests", "error_rate", "latency_p95", "availability"),
        filters=frozenset({"service", "endpoint", "method", "status", "instance"}),
        tables=(
            _series("Per period"),
            _top("endpoints", "By endpoint", "endpoint", "api_requests"),
            _top("services", "By service", "service", "api_requests", chart=ChartType.TABLE),
            _top("statuses", "By status", "status", "api_requests", chart=ChartType.PIE),
        ),
    ),
    "import_summary": Template(
        report_type="import_summary",
        title="Import summary",
        operation=Operation.READ_IMPORT_ANALYTICS,
        metrics=(
            "imports_started",
            "imports_completed",
            "imports_failed",
            "import_success_rate",
            "import_records_processed",
            "import_records_failed",
            "import_duplicates",
            "import_invalid_rows",
        ),
        default_metrics=("imports_started", "imports_completed", "imports_failed", "import_records_processed"),
        filters=frozenset({"import_source", "job_kind", "import_stage", "failure_reason"}),
        tables=(
            _series("Per period"),
            _top("sources", "By source", "import_source", "imports_started"),
            TableSpec(
                name="failures",
                title="Failures by reason",
                dimensions=("failure_reason",),
                metrics=("imports_failed", "import_records_failed"),
                order_by=(("imports_failed", "desc"),),
                chart=ChartType.TABLE,
            ),
        ),
    ),
    "search_analytics": Template(
        report_type="search_analytics",
        title="Search analytics",
        operation=Operation.READ_SEARCH_ANALYTICS,
        metrics=("searches", "zero_result_searches", "zero_result_rate", "search_clicks", "search_ctr"),
        default_metrics=("searches", "zero_result_rate", "search_clicks", "search_ctr"),
        filters=frozenset({"search_query", "country", "device_type", "traffic_source"}),
        tables=(
            _series("Per period"),
            _top("top_queries", "Top queries", "search_query", "searches"),
            TableSpec(
                name="zero_result_queries",
                title="Queries without results",
                dimensions=("search_query",),
                metrics=("zero_result_searches",),
                order_by=(("zero_result_searches", "desc"),),
                chart=ChartType.TABLE,
            ),
        ),
    ),
}

# A custom report reads a saved query; it needs whatever that query needs.
CUSTOM_OPERATION = Operation.READ_SAVED_QUERIES
DEFAULT_TOP_N = 20


def required_operation(report_type: str) -> Operation:
    template = TEMPLATES.get(report_type)
    return template.operation if template is not None else CUSTOM_OPERATION
