"""The widget types of dashboards: what each shows, the fields of its configuration, and their checks.

A widget's ``config`` is an object of its type's fields. It is checked when the widget is saved, so a
dashboard never breaks on a typo later: an unknown widget type, field, metric, dimension or option is a
400 naming it (``widgets[2].config.metric``). ``GET /api/v1/analytics/widget-types`` lists the types
and fields, which the web dashboard builds its forms from.

Each type has a ``kind``, the shape of its data (semantic/widget_data.py): counter, series, table,
funnel, retention or status.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from core.access import Operation
from core.errors import AnalyticsError, InvalidRequest, ValidationFailed
from semantic.analytics_query import AnalyticsQueryRequest, RelativeRange
from semantic.event_retention import RetentionRequest
from semantic.funnels import FunnelRequest
from semantic.public_catalog import DIMENSIONS, METRICS

FieldType = Literal[
    "metric",
    "metrics",
    "dimension",
    "dimensions",
    "select",
    "integer",
    "text",
    "saved_query",
    "query",
    "funnel",
    "retention",
]
Kind = Literal["counter", "series", "table", "funnel", "retention", "status"]

RANGES: tuple[str, ...] = get_args(RelativeRange)
GRANULARITIES = ("hour", "day", "week", "month")
LIVE_WINDOWS = ("5m", "1h", "24h")
# Live figures a real-time counter may show: the global ones, and the counts of one window.
LIVE_GLOBAL_METRICS = ("events_per_second", "events_last_60s", "active_users_5m", "active_sessions_5m")
LIVE_WINDOW_METRICS = (
    "events",
    "views",
    "unique_users",
    "plays",
    "completions",
    "shares",
    "bookmarks",
    "searches",
    "watch_time_seconds",
    "unique_sessions",
)
# How far the data watermark trails the clock: this service's own ingest lag.
INGEST_LAG = "ingest_lag_seconds"
LIVE_METRICS = (*LIVE_GLOBAL_METRICS, *LIVE_WINDOW_METRICS, INGEST_LAG)
MAX_TEXT = 200
MAX_LIST = 10
MAX_TITLE = 200
MAX_GRID_ROWS = 24
MAX_Y = 10_000


@dataclass(frozen=True, slots=True)
class WidgetField:
    name: str
    label: str
    type: FieldType
    required: bool = False
    default: Any = None
    options: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    description: str = ""
    # For a saved_query field: the saved query kinds it accepts.
    saved_kinds: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "required": self.required,
            "default": self.default,
            "options": list(self.options),
            "min": self.minimum,
            "max": self.maximum,
            "description": self.description,
        }


@dataclass(frozen=True, slots=True)
class WidgetType:
    name: str
    label: str
    description: str
    kind: Kind
    fields: tuple[WidgetField, ...]
    # The operation a caller needs to see its data, besides the checks of the analytics it reads.
    operation: Operation | None = None
    default_layout: tuple[int, int] = (6, 4)
    # Fields of which exactly one must be given (a saved query or an inline definition).
    one_of: tuple[str, ...] = ()
    charts: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.name,
            "label": self.label,
            "description": self.description,
            "kind": self.kind,
            "operation": self.operation.value if self.operation else None,
            "default_layout": {"w": self.default_layout[0], "h": self.default_layout[1]},
            "one_of": list(self.one_of),
            "fields": [f.to_dict() for f in self.fields],
        }


def _range(default: str = "last_7_days") -> WidgetField:
    return WidgetField("range", "Date range", "select", default=default, options=RANGES)


def _granularity(default: str = "day") -> WidgetField:
    return WidgetField("granularity", "Granularity", "select", default=default, options=GRANULARITIES)


def _chart(*options: str) -> WidgetField:
    return WidgetField("chart", "Chart", "select", default=options[0], options=options)


_LIMIT = WidgetField("limit", "Rows", "integer", default=10, minimum=1, maximum=100)
_CATEGORY = WidgetField("category", "Category", "text", description="only content of this category")
_FILTERS = WidgetField(
    "filters",
    "Filters",
    "query",
    description="analytics query filters: a list of {dimension, op, values} (docs/queries.md)",
)

WIDGET_TYPES: dict[str, WidgetType] = {
    t.name: t
    for t in (
        WidgetType(
            "real_time_counter",
            "Live counter",
            "One live figure: events per second, active users, a window's count, or the ingest lag",
            "counter",
            (
                WidgetField(
                    "metric", "Figure", "select", required=True, default="active_users_5m", options=LIVE_METRICS
                ),
                WidgetField("window", "Window", "select", default="1h", options=LIVE_WINDOWS),
                WidgetField("content_id", "Content id", "text", description="one content item's live counters"),
            ),
            operation=Operation.READ_REALTIME_ANALYTICS,
            default_layout=(3, 2),
        ),
        WidgetType(
            "trending_content",
            "Trending content",
            "The live trending ranking of a window",
            "table",
            (
                WidgetField("window", "Window", "select", default="1h", options=LIVE_WINDOWS),
                WidgetField("limit", "Items", "integer", default=10, minimum=1, maximum=50),
                _CATEGORY,
                _chart("table", "bar"),
            ),
            operation=Operation.READ_REALTIME_ANALYTICS,
            default_layout=(4, 6),
        ),
        WidgetType(
            "user_activity",
            "User activity",
            "Active users, sessions and events over time",
            "series",
            (
                WidgetField("metrics", "Metrics", "metrics", default=["users", "sessions"]),
                _range("last_30_days"),
                _granularity(),
                _chart("line", "bar", "area"),
            ),
            operation=Operation.READ_USER_ANALYTICS,
        ),
        WidgetType(
            "system_health",
            "System health",
            "Each platform service's health: error rate, availability, latest check",
            "status",
            (_range("today"), WidgetField("service", "Service", "text", description="one service only")),
            operation=Operation.READ_SYSTEM_ANALYTICS,
            default_layout=(4, 4),
        ),
        WidgetType(
            "custom_metric",
            "Custom metric",
            "A saved or inline analytics query: one figure (with change) without dimensions, else a table "
            "or, by period, a series",
            "counter",
            (
                WidgetField("saved_query_id", "Saved query", "saved_query", saved_kinds=("query",)),
                WidgetField("query", "Query", "query", description="an analyticsQuery body (docs/queries.md)"),
                _chart("auto", "line", "bar", "table", "pie"),
            ),
            default_layout=(3, 2),
            one_of=("saved_query_id", "query"),
        ),
        WidgetType(
            "time_series",
            "Time series",
            "Metrics by period, optionally one line per value of a dimension",
            "series",
            (
                WidgetField("metrics", "Metrics", "metrics", required=True, default=["views"]),
                _range("last_30_days"),
                _granularity(),
                WidgetField("breakdown", "Split by", "dimension", description="one series per top value"),
                WidgetField("breakdown_limit", "Series", "integer", default=5, minimum=1, maximum=10),
                _FILTERS,
                _chart("line", "bar", "stacked_bar", "area"),
            ),
        ),
        WidgetType(
            "table",
            "Table",
            "Metrics by dimensions, ordered and limited",
            "table",
            (
                WidgetField("metrics", "Metrics", "metrics", required=True, default=["views"]),
                WidgetField("dimensions", "Dimensions", "dimensions", required=True, default=["country"]),
                _range(),
                WidgetField("order_by", "Order by", "metric", description="descending; the first metric by default"),
                _LIMIT,
                _FILTERS,
                _chart("table", "bar", "pie"),
            ),
        ),
        WidgetType(
            "funnel",
            "Funnel",
            "A saved or inline funnel: each step's count and conversion",
            "funnel",
            (
                WidgetField("saved_query_id", "Saved funnel", "saved_query", saved_kinds=("funnel",)),
                WidgetField("funnel", "Funnel", "funnel", description="a funnel body (docs/analyses.md)"),
            ),
            operation=Operation.RUN_ANALYTICAL_QUERIES,
            one_of=("saved_query_id", "funnel"),
        ),
        WidgetType(
            "retention",
            "Retention",
            "A saved or inline retention analysis: cohorts and their return rates",
            "retention",
            (
                WidgetField("saved_query_id", "Saved retention", "saved_query", saved_kinds=("retention",)),
                WidgetField("retention", "Retention", "retention", description="a retention body (docs/analyses.md)"),
            ),
            operation=Operation.RUN_ANALYTICAL_QUERIES,
            default_layout=(6, 5),
            one_of=("saved_query_id", "retention"),
        ),
        WidgetType(
            "top_content",
            "Top content",
            "The content with the most of a metric, with titles",
            "table",
            (
                WidgetField("metric", "Metric", "metric", default="views"),
                _range(),
                _LIMIT,
                _CATEGORY,
                _chart("table", "bar"),
            ),
            default_layout=(4, 6),
        ),
        WidgetType(
            "import_status",
            "Imports",
            "Import and media jobs by source: jobs, completed, failed, running, stuck, success rate",
            "table",
            (_range(), WidgetField("job_kind", "Job kind", "select", options=("import", "media"))),
            operation=Operation.READ_IMPORT_ANALYTICS,
            default_layout=(6, 4),
        ),
    )
}


def widget_type(name: Any, field_name: str) -> WidgetType:
    found = WIDGET_TYPES.get(name) if isinstance(name, str) else None
    if found is None:
        raise InvalidRequest(
            f"unknown widget type {str(name)[:80]!r}; widget types: {', '.join(WIDGET_TYPES)}",
            details={"field": field_name},
        )
    return found


def check_config(kind: WidgetType, config: Any, where: str) -> dict[str, Any]:
    """The config with its defaults filled in; InvalidRequest naming ``<where>.<field>`` otherwise."""
    if not isinstance(config, dict):
        raise InvalidRequest(f"{where} must be an object", details={"field": where})
    fields = {f.name: f for f in kind.fields}
    for name in config:
        if name not in fields:
            raise InvalidRequest(
                f"unknown field {str(name)[:80]!r} for a {kind.name} widget; its fields: {', '.join(fields)}",
                details={"field": f"{where}.{name}"},
            )
    if kind.one_of:
        given = [name for name in kind.one_of if config.get(name) is not None]
        if len(given) != 1:
            raise InvalidRequest(
                f"a {kind.name} widget needs exactly one of {' or '.join(kind.one_of)}",
                details={"field": f"{where}.{kind.one_of[0]}"},
            )
    checked: dict[str, Any] = {}
    for spec in kind.fields:
        value = config.get(spec.name)
        if value is None:
            if spec.required and spec.default is None:
                raise InvalidRequest(f"{spec.name} is required", details={"field": f"{where}.{spec.name}"})
            if spec.default is not None and spec.name not in kind.one_of:
                checked[spec.name] = spec.default
            continue
        checked[spec.name] = _check_value(spec, value, f"{where}.{spec.name}")
    return checked


def _check_value(spec: WidgetField, value: Any, path: str) -> Any:
    if spec.type == "select":
        if value not in spec.options:
            raise InvalidRequest(
                f"unknown {spec.name} {str(value)[:80]!r}; one of: {', '.join(spec.options)}", details={"field": path}
            )
        return value
    if spec.type == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidRequest(f"{spec.name} must be an integer", details={"field": path})
        low, high = spec.minimum or 0, spec.maximum or 2**31 - 1
        if not low <= value <= high:
            raise InvalidRequest(f"{spec.name} must be between {low} and {high}", details={"field": path})
        return value
    if spec.type in ("text", "saved_query"):
        if not isinstance(value, str) or not value or len(value) > MAX_TEXT or "\x00" in value:
            raise InvalidRequest(f"{spec.name} must be a text of 1 to {MAX_TEXT} characters", details={"field": path})
        return value
    if spec.type == "metric":
        return _metric(value, path)
    if spec.type == "dimension":
        return _dimension(value, path)
    if spec.type in ("metrics", "dimensions"):
        if not isinstance(value, list) or not value or len(value) > MAX_LIST:
            raise InvalidRequest(f"{spec.name} must be a list of 1 to {MAX_LIST} names", details={"field": path})
        check = _metric if spec.type == "metrics" else _dimension
        names = [check(item, f"{path}[{index}]") for index, item in enumerate(value)]
        if len(set(names)) != len(names):
            raise InvalidRequest(f"{spec.name} names one more than once", details={"field": path})
        return names
    if spec.name == "filters":
        return _filters(value, path)
    return _definition(spec, value, path)


def _metric(value: Any, path: str) -> str:
    if not isinstance(value, str) or value not in METRICS:
        raise InvalidRequest(
            f"unknown metric {str(value)[:80]!r}; GET /api/v1/analytics/catalog lists the metrics",
            details={"field": path},
        )
    return value


def _dimension(value: Any, path: str) -> str:
    if not isinstance(value, str) or value not in DIMENSIONS or value == "bucket":
        raise InvalidRequest(
            f"unknown dimension {str(value)[:80]!r}; GET /api/v1/analytics/catalog lists the dimensions",
            details={"field": path},
        )
    return value


def _filters(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidRequest("filters must be a list of {dimension, op, values}", details={"field": path})
    try:
        AnalyticsQueryRequest.parse({"metrics": ["views"], "filters": value})
    except AnalyticsError as exc:
        raise _nested(exc, path, "filters") from exc
    return value


_DEFINITIONS: dict[str, Any] = {"query": AnalyticsQueryRequest, "funnel": FunnelRequest, "retention": RetentionRequest}


def _definition(spec: WidgetField, value: Any, path: str) -> dict[str, Any]:
    """An inline analytics query, funnel or retention body, parsed as its own endpoint parses it."""
    if not isinstance(value, dict):
        raise InvalidRequest(f"{spec.name} must be an object", details={"field": path})
    try:
        request = _DEFINITIONS[spec.type].parse(value)
        if spec.type != "query":
            request.resolved()
    except AnalyticsError as exc:
        raise _nested(exc, path) from exc
    return value


def _nested(exc: AnalyticsError, path: str, strip: str | None = None) -> InvalidRequest:
    """The error of a nested body, with its field named from the widget's config."""
    inner: str | None = None
    if isinstance(exc, ValidationFailed) and exc.errors:
        inner = exc.errors[0].field
        message = exc.errors[0].message
    else:
        details = exc.details if isinstance(exc.details, dict) else {}
        inner = details.get("field") if isinstance(details.get("field"), str) else None
        message = exc.message
    if inner and strip and inner.startswith(strip):
        inner = inner[len(strip) :].lstrip(".")
    field_path = f"{path}.{inner}" if inner and not inner.startswith("[") else f"{path}{inner or ''}"
    return InvalidRequest(f"{field_path}: {message}", details={"field": field_path})


def check_layout(value: Any, columns: int, where: str, default: tuple[int, int]) -> dict[str, int]:
    """The grid position and size: x, y (cells from the top left), w, h; InvalidRequest naming the field."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise InvalidRequest(f"{where} must be an object of x, y, w, h", details={"field": where})
    for name in value:
        if name not in ("x", "y", "w", "h"):
            raise InvalidRequest(
                f"unknown layout field {str(name)[:40]!r}; x, y, w, h", details={"field": f"{where}.{name}"}
            )
    width = min(default[0], columns)
    layout = {
        "x": value.get("x", 0),
        "y": value.get("y", 0),
        "w": value.get("w", width),
        "h": value.get("h", default[1]),
    }
    limits = {"x": (0, columns - 1), "y": (0, MAX_Y), "w": (1, columns), "h": (1, MAX_GRID_ROWS)}
    for name, (low, high) in limits.items():
        item = layout[name]
        if isinstance(item, bool) or not isinstance(item, int) or not low <= item <= high:
            raise InvalidRequest(
                f"{name} must be an integer from {low} to {high}", details={"field": f"{where}.{name}"}
            )
    if layout["x"] + layout["w"] > columns:
        raise InvalidRequest(
            f"the widget does not fit the grid: x + w must be at most {columns}", details={"field": f"{where}.w"}
        )
    return layout


def catalog() -> dict[str, Any]:
    """What GET /widget-types answers: the types, and the metrics and dimensions a field may name."""
    return {
        "widget_types": [t.to_dict() for t in WIDGET_TYPES.values()],
        "metrics": [{"name": n, "label": n.replace("_", " ").capitalize(), "unit": m.unit} for n, m in METRICS.items()],
        "dimensions": [{"name": n, "label": n.replace("_", " ").capitalize()} for n in DIMENSIONS if n != "bucket"],
        "ranges": list(RANGES),
        "live_metrics": list(LIVE_METRICS),
    }
