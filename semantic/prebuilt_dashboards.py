"""The dashboards every installation starts with: executive, content operations, performance monitoring.

The executive board refreshes every two seconds on a wall screen, so its figures are ones the rollups
answer (views, viewers, playback sessions, completion rate); figures read from raw events (watch time)
belong on boards that refresh less often.

Made on first start (semantic/dashboards.py ``ensure_prebuilt``), once whichever replica starts first,
public (everyone who may read dashboards sees them; each widget still answers by the viewer's role and
content scope) and owned by the system, so only admins change them. Each is made once: one an admin
deleted is not made again.
"""

from __future__ import annotations

from typing import Any

from semantic.self_telemetry import SERVICE

SYSTEM_OWNER = "system"


def _kpi(metric: str, x: int, y: int, title: str) -> dict[str, Any]:
    """A KPI of the last 7 days with its change against the 7 days before."""
    return {
        "widget_type": "custom_metric",
        "title": title,
        "config": {
            "query": {"metrics": [metric], "date_range": {"relative": "last_7_days"}, "compare_to": "previous_period"}
        },
        "layout": {"x": x, "y": y, "w": 3, "h": 2},
    }


PREBUILT: dict[str, dict[str, Any]] = {
    "executive": {
        "name": "Executive",
        "description": "Live audience, what is trending now, and the week's key figures against the week before",
        "refresh_interval_seconds": 2,
        "theme": "dark",
        "widgets": [
            {
                "widget_type": "real_time_counter",
                "title": "Active users now",
                "config": {"metric": "active_users_5m"},
                "layout": {"x": 0, "y": 0, "w": 3, "h": 2},
            },
            {
                "widget_type": "real_time_counter",
                "title": "Events per second",
                "config": {"metric": "events_per_second"},
                "layout": {"x": 3, "y": 0, "w": 3, "h": 2},
            },
            {
                "widget_type": "real_time_counter",
                "title": "Views in the last hour",
                "config": {"metric": "views", "window": "1h"},
                "layout": {"x": 6, "y": 0, "w": 3, "h": 2},
            },
            {
                "widget_type": "real_time_counter",
                "title": "Active sessions now",
                "config": {"metric": "active_sessions_5m"},
                "layout": {"x": 9, "y": 0, "w": 3, "h": 2},
            },
            _kpi("views", 0, 2, "Views, last 7 days"),
            _kpi("unique_viewers", 3, 2, "Unique viewers, last 7 days"),
            _kpi("playback_sessions", 6, 2, "Plays, last 7 days"),
            _kpi("completion_rate", 9, 2, "Completion rate, last 7 days"),
            {
                "widget_type": "trending_content",
                "title": "Trending now",
                "config": {"window": "1h", "limit": 10},
                "layout": {"x": 0, "y": 4, "w": 5, "h": 6},
            },
            {
                "widget_type": "time_series",
                "title": "Views and viewers, last 30 days",
                "config": {"metrics": ["views", "unique_viewers"], "range": "last_30_days", "granularity": "day"},
                "layout": {"x": 5, "y": 4, "w": 7, "h": 6},
            },
        ],
    },
    "content_operations": {
        "name": "Content operations",
        "description": "Top content, completion, traffic sources, searches that found nothing, and imports",
        "refresh_interval_seconds": 30,
        "theme": "light",
        "widgets": [
            {
                "widget_type": "top_content",
                "title": "Top content, last 7 days",
                "config": {"metric": "views", "range": "last_7_days", "limit": 10},
                "layout": {"x": 0, "y": 0, "w": 6, "h": 6},
            },
            {
                "widget_type": "table",
                "title": "Completion by category",
                "config": {
                    "metrics": ["completion_rate", "playback_sessions"],
                    "dimensions": ["category"],
                    "order_by": "playback_sessions",
                    "range": "last_7_days",
                    "limit": 10,
                    "chart": "bar",
                },
                "layout": {"x": 6, "y": 0, "w": 6, "h": 6},
            },
            {
                "widget_type": "table",
                "title": "Traffic sources",
                "config": {
                    "metrics": ["views"],
                    "dimensions": ["traffic_source"],
                    "range": "last_7_days",
                    "limit": 8,
                    "chart": "pie",
                },
                "layout": {"x": 0, "y": 6, "w": 4, "h": 5},
            },
            {
                "widget_type": "table",
                "title": "Searches with no results",
                "config": {
                    "metrics": ["zero_result_searches", "searches"],
                    "dimensions": ["search_query"],
                    "order_by": "zero_result_searches",
                    "range": "last_7_days",
                    "limit": 10,
                },
                "layout": {"x": 4, "y": 6, "w": 4, "h": 5},
            },
            {
                "widget_type": "import_status",
                "title": "Imports, last 7 days",
                "config": {"range": "last_7_days"},
                "layout": {"x": 8, "y": 6, "w": 4, "h": 5},
            },
        ],
    },
    "performance_monitoring": {
        "name": "Performance monitoring",
        "description": "Service health, errors and latency of the platform's services, and this service's ingest lag",
        "refresh_interval_seconds": 10,
        "theme": "dark",
        "widgets": [
            {
                "widget_type": "system_health",
                "title": "Service health today",
                "config": {"range": "today"},
                "layout": {"x": 0, "y": 0, "w": 4, "h": 5},
            },
            {
                "widget_type": "real_time_counter",
                "title": "Ingest lag of this service",
                "config": {"metric": "ingest_lag_seconds"},
                "layout": {"x": 4, "y": 0, "w": 4, "h": 2},
            },
            {
                "widget_type": "custom_metric",
                "title": "Requests to this service today",
                "config": {
                    "query": {
                        "metrics": ["api_requests"],
                        "filters": [{"dimension": "service", "op": "in", "values": [SERVICE]}],
                        "date_range": {"relative": "today"},
                        "compare_to": "previous_period",
                    }
                },
                "layout": {"x": 8, "y": 0, "w": 4, "h": 2},
            },
            {
                "widget_type": "time_series",
                "title": "Errors by service, last 7 days",
                "config": {
                    "metrics": ["server_error_requests"],
                    "breakdown": "service",
                    "range": "last_7_days",
                    "granularity": "hour",
                    "chart": "stacked_bar",
                },
                "layout": {"x": 4, "y": 2, "w": 8, "h": 5},
            },
            {
                "widget_type": "time_series",
                "title": "Response time p95 by service (ms), last 7 days",
                "config": {
                    "metrics": ["response_time_p95"],
                    "breakdown": "service",
                    "range": "last_7_days",
                    "granularity": "hour",
                },
                "layout": {"x": 0, "y": 7, "w": 12, "h": 5},
            },
        ],
    },
}
