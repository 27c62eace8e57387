"""Widget definitions are checked on save (semantic/dashboard_widgets.py, semantic/dashboard_definitions.py):
defaults filled in, and every mistake a 400 naming the widget's field."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import InvalidRequest
from semantic.dashboard_definitions import DashboardUpdate, parse_widget, parse_widgets
from semantic.dashboard_widgets import WIDGET_TYPES, catalog, check_config, check_layout
from semantic.prebuilt_dashboards import PREBUILT
from semantic.public_catalog import DIMENSIONS, METRICS
from storage.dashboards import NewWidget


def refused(item: Any, columns: int = 12) -> str:
    with pytest.raises(InvalidRequest) as caught:
        parse_widget(item, "widgets[3]", columns)
    details = caught.value.details
    assert isinstance(details, dict)
    field: str = details["field"]
    assert field in caught.value.message or caught.value.message
    return field


def test_defaults_are_filled_in_and_layout_defaults_to_the_types_size() -> None:
    widget = parse_widget({"widget_type": "time_series"}, "widgets[0]", 12)
    assert widget.title == "Time series"
    assert widget.config == {
        "metrics": ["views"],
        "range": "last_30_days",
        "granularity": "day",
        "breakdown_limit": 5,
        "chart": "line",
    }
    assert widget.layout == {"x": 0, "y": 0, "w": 6, "h": 4}
    counter = parse_widget({"widget_type": "real_time_counter", "title": " Live "}, "", 2)
    assert counter.title == "Live" and counter.layout["w"] == 2


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"widget_type": "gauge"}, "widgets[3].widget_type"),
        ({}, "widgets[3].widget_type"),
        ({"widget_type": "table", "colour": 1}, "widgets[3].colour"),
        ({"widget_type": "table", "config": []}, "widgets[3].config"),
        ({"widget_type": "table", "config": {"metrics": ["views", "nope"]}}, "widgets[3].config.metrics[1]"),
        ({"widget_type": "table", "config": {"metrics": ["views", "views"]}}, "widgets[3].config.metrics"),
        ({"widget_type": "table", "config": {"dimensions": ["bucket"]}}, "widgets[3].config.dimensions[0]"),
        ({"widget_type": "table", "config": {"order_by": "country"}}, "widgets[3].config.order_by"),
        ({"widget_type": "table", "config": {"limit": 0}}, "widgets[3].config.limit"),
        ({"widget_type": "table", "config": {"limit": True}}, "widgets[3].config.limit"),
        ({"widget_type": "table", "config": {"chart": "radar"}}, "widgets[3].config.chart"),
        (
            {"widget_type": "table", "config": {"filters": [{"dimension": "colour", "values": ["x"]}]}},
            "widgets[3].config.filters[0].dimension",
        ),
        ({"widget_type": "trending_content", "config": {"limit": 51}}, "widgets[3].config.limit"),
        ({"widget_type": "real_time_counter", "config": {"metric": "sales"}}, "widgets[3].config.metric"),
        ({"widget_type": "top_content", "config": {"category": ""}}, "widgets[3].config.category"),
        ({"widget_type": "funnel", "config": {}}, "widgets[3].config.saved_query_id"),
        (
            {"widget_type": "funnel", "config": {"saved_query_id": "sq_1", "funnel": {}}},
            "widgets[3].config.saved_query_id",
        ),
        (
            {"widget_type": "funnel", "config": {"funnel": {"steps": [{"event_type": "content_view"}]}}},
            "widgets[3].config.funnel.steps",
        ),
        (
            {"widget_type": "custom_metric", "config": {"query": {"metrics": ["views"], "limit": -1}}},
            "widgets[3].config.query.limit",
        ),
        ({"widget_type": "table", "title": 5}, "widgets[3].title"),
        ({"widget_type": "table", "title": "x" * 201}, "widgets[3].title"),
        ({"widget_type": "table", "layout": {"x": -1}}, "widgets[3].layout.x"),
        ({"widget_type": "table", "layout": {"h": 25}}, "widgets[3].layout.h"),
        ({"widget_type": "table", "layout": {"x": 8, "w": 6}}, "widgets[3].layout.w"),
        ({"widget_type": "table", "layout": {"depth": 1}}, "widgets[3].layout.depth"),
        ({"widget_type": "table", "layout": [1, 2]}, "widgets[3].layout"),
    ],
)
def test_every_mistake_names_its_field(item: dict[str, Any], field: str) -> None:
    assert refused(item) == field


def test_a_partial_update_keeps_what_it_does_not_name() -> None:
    current = NewWidget(
        "table",
        "Views",
        {"metrics": ["views"], "dimensions": ["country"]},
        {"x": 0, "y": 0, "w": 6, "h": 4},
        id="wdg_1",
    )
    moved = parse_widget({"layout": {"x": 6, "y": 2, "w": 6, "h": 3}}, "", 12, current=current)
    assert moved.id == "wdg_1" and moved.title == "Views" and moved.config["dimensions"] == ["country"]
    assert moved.layout == {"x": 6, "y": 2, "w": 6, "h": 3}
    # Another type starts from that type's defaults, not the old config.
    other = parse_widget({"widget_type": "top_content"}, "", 12, current=current)
    assert other.config["metric"] == "views" and "dimensions" not in other.config


def test_update_bodies() -> None:
    assert DashboardUpdate.parse({"name": "x"}).changes() == {"name": "x"}
    assert DashboardUpdate.parse({"is_public": True, "version": 3}).changes() == {"is_public": True}
    with pytest.raises(Exception, match="give at least one of"):
        DashboardUpdate.parse({"version": 2})
    with pytest.raises(Exception, match="must not be null"):
        DashboardUpdate.parse({"name": None})


def test_the_catalog_describes_every_type_and_names_only_real_metrics() -> None:
    listed = catalog()
    assert [t["type"] for t in listed["widget_types"]] == list(WIDGET_TYPES)
    assert {m["name"] for m in listed["metrics"]} == set(METRICS)
    assert {d["name"] for d in listed["dimensions"]} == set(DIMENSIONS) - {"bucket"}
    for kind in WIDGET_TYPES.values():
        # Every type saves with its defaults alone (a one_of type once one of its fields is given).
        config: dict[str, Any] = {}
        if kind.one_of:
            config = {"saved_query_id": "sq_x"}
        assert check_config(kind, config, "config") is not None
        assert check_layout(None, 12, "layout", kind.default_layout)["w"] == kind.default_layout[0]


def test_the_prebuilt_dashboards_are_valid() -> None:
    for definition in PREBUILT.values():
        widgets = parse_widgets(definition["widgets"], 12)
        assert len(widgets) == len(definition["widgets"])
        cells = set()
        for widget in widgets:
            layout = widget.layout
            for x in range(layout["x"], layout["x"] + layout["w"]):
                for y in range(layout["y"], layout["y"] + layout["h"]):
                    assert (x, y) not in cells, (definition["name"], widget.title)
                    cells.add((x, y))
