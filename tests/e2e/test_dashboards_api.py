"""Dashboards end to end through the running service: definitions and widgets over REST and GraphQL, every
widget type's data checked against numbers computed here from the events sent, permissions, versions,
caching, and the dashboardUpdates subscription over a real websocket.

The dataset is this module's own: contents of a module-unique category viewed, played and completed by a
few users over the last days, so every widget filtered to that category has an exact expected answer.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from serve_app import runtime
from tests.e2e.principals import make_principals
from tests.e2e.test_subscriptions import ingest, next_data, subscribe

pytestmark = pytest.mark.e2e

API = "/api/v1/analytics"
DASHBOARDS = f"{API}/dashboards"
WIDGETS = f"{API}/widgets"
NOW = datetime.now(UTC)


@dataclass
class World:
    p: str
    events: list[dict[str, Any]] = field(default_factory=list)
    clients: dict[str, httpx.Client] = field(default_factory=dict)
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def category(self) -> str:
        return f"{self.p}-cat"

    def c(self, name: str) -> str:
        return f"{self.p}-{name}"

    def count(self, event_type: str) -> Counter[str]:
        return Counter(e["content_id"] for e in self.events if e["event_type"] == event_type)


def build_world(p: str) -> World:
    world = World(p)
    # Over the last three days (yesterday and before: inside last_7_days whatever the hour), c1 is viewed
    # 6 times, c2 4 times, c3 once; users u0..u2 view, some play, fewer complete.
    n = 0
    for name, views in (("c1", 6), ("c2", 4), ("c3", 1)):
        for i in range(views):
            day = NOW.date() - timedelta(days=1 + i % 3)
            at = datetime.combine(day, datetime.min.time(), UTC).replace(hour=10, minute=n % 60)
            user = f"{p}-u{i % 3}"
            world.events.append(
                {
                    "id": f"{p}-v{n}",
                    "event_type": "content_view",
                    "timestamp": at.isoformat(),
                    "user_id": user,
                    "session_id": f"{user}-{day}",
                    "content_id": world.c(name),
                }
            )
            if i % 2 == 0:
                world.events.append(
                    {
                        "id": f"{p}-p{n}",
                        "event_type": "content_play",
                        "timestamp": (at + timedelta(seconds=5)).isoformat(),
                        "user_id": user,
                        "session_id": f"{user}-{day}",
                        "content_id": world.c(name),
                    }
                )
            if i % 4 == 0:
                world.events.append(
                    {
                        "id": f"{p}-c{n}",
                        "event_type": "content_complete",
                        "timestamp": (at + timedelta(seconds=50)).isoformat(),
                        "user_id": user,
                        "session_id": f"{user}-{day}",
                        "content_id": world.c(name),
                    }
                )
            n += 1
    return world


@pytest.fixture(scope="module")
def world(client_for: Any, admin: httpx.Client, service: runtime.RunningService) -> Iterator[World]:
    w = build_world(f"db{secrets.token_hex(4)}")
    ingest_client = client_for("service")
    response = ingest_client.post(f"{API}/events/batch", json={"events": w.events})
    assert response.status_code == 200 and response.json()["accepted"] == len(w.events), response.text
    for name, title in (("c1", "نشرة الأخبار"), ("c2", "Match of the day"), ("c3", "Quiet hour")):
        put = ingest_client.put(f"{API}/content-metadata/{w.c(name)}", json={"title": title, "category": w.category})
        assert put.status_code == 200, put.text
    w.keys, w.clients = make_principals(
        admin,
        service.base_url,
        w.p,
        (
            ("owner", "analyst", None),
            ("other analyst", "analyst", None),
            ("viewer", "viewer", None),
            ("manager", "content_manager", None),
            ("scoped viewer", "viewer", {"content_ids": [w.c("c2")]}),
        ),
    )
    service.settle_rollups()
    yield w
    for client in w.clients.values():
        client.close()


def category_filter(world: World) -> list[dict[str, Any]]:
    return [{"dimension": "category", "op": "in", "values": [world.category]}]


def every_widget(world: World) -> list[dict[str, Any]]:
    """One widget of every type, each filtered to the module's own content where it can be."""
    ids = [world.c("c1"), world.c("c2"), world.c("c3")]
    return [
        {
            "widget_type": "real_time_counter",
            "title": "c1 views (24h)",
            "config": {"metric": "views", "window": "24h", "content_id": world.c("c1")},
        },
        {"widget_type": "trending_content", "config": {"window": "24h", "limit": 50}},
        {"widget_type": "user_activity", "config": {"range": "last_7_days"}},
        {"widget_type": "system_health", "config": {"range": "today"}},
        {
            "widget_type": "custom_metric",
            "title": "Views of the category",
            "config": {
                "query": {
                    "metrics": ["views"],
                    "filters": category_filter(world),
                    "date_range": {"relative": "last_7_days"},
                }
            },
        },
        {
            "widget_type": "time_series",
            "title": "Daily views",
            "config": {"metrics": ["views", "plays"], "range": "last_7_days", "filters": category_filter(world)},
        },
        {
            "widget_type": "table",
            "title": "Views by content",
            "config": {
                "metrics": ["views"],
                "dimensions": ["content_id"],
                "filters": category_filter(world),
                "limit": 10,
            },
        },
        {
            "widget_type": "funnel",
            "title": "View to complete",
            "config": {
                "funnel": {
                    "steps": [
                        {
                            "event_type": "content_view",
                            "filters": [{"dimension": "content_id", "op": "in", "values": ids}],
                        },
                        {
                            "event_type": "content_play",
                            "filters": [{"dimension": "content_id", "op": "in", "values": ids}],
                        },
                        {
                            "event_type": "content_complete",
                            "filters": [{"dimension": "content_id", "op": "in", "values": ids}],
                        },
                    ],
                    "date_range": {"relative": "last_7_days"},
                }
            },
        },
        {
            "widget_type": "retention",
            "title": "Returning viewers",
            "config": {
                "retention": {
                    "start_event": {
                        "event_type": "content_view",
                        "filters": [{"dimension": "content_id", "op": "in", "values": ids}],
                    },
                    "return_event": {
                        "event_type": "content_view",
                        "filters": [{"dimension": "content_id", "op": "in", "values": ids}],
                    },
                    "bucket": "day",
                    "periods": 3,
                }
            },
        },
        {
            "widget_type": "top_content",
            "title": "Top of the category",
            "config": {"metric": "views", "category": world.category, "limit": 5},
        },
        {"widget_type": "import_status", "config": {"range": "last_7_days"}},
    ]


def create(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(DASHBOARDS, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def by_title(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {w["title"]: w for w in data["widgets"]}


def test_every_widget_type_answers_what_the_events_say(world: World) -> None:
    owner = world.clients["owner"]
    dashboard = create(owner, {"name": f"{world.p} all widgets", "widgets": every_widget(world)})
    assert dashboard["version"] == 1 and dashboard["can_edit"] is True
    assert [w["widget_type"] for w in dashboard["widgets"]] == [w["widget_type"] for w in every_widget(world)] or len(
        dashboard["widgets"]
    ) == 11
    response = owner.get(f"{DASHBOARDS}/{dashboard['id']}/data")
    assert response.status_code == 200, response.text
    data = response.json()
    widgets = by_title(data)
    assert data["as_of"] is not None and data["version"] == 1
    for widget in data["widgets"]:
        assert widget["error"] is None, widget
        assert widget["refreshed_at"]

    views = world.count("content_view")
    plays = world.count("content_play")
    completes = world.count("content_complete")
    assert widgets["c1 views (24h)"]["data"]["kind"] == "counter"
    # The live 24 h window counts the c1 views of the last 24 hours.
    cutoff = NOW - timedelta(hours=24)
    expected_live = sum(
        1
        for e in world.events
        if e["event_type"] == "content_view"
        and e["content_id"] == world.c("c1")
        and datetime.fromisoformat(e["timestamp"]) >= cutoff
    )
    assert widgets["c1 views (24h)"]["data"]["value"] == expected_live

    assert widgets["Views of the category"]["data"] == {
        "kind": "counter",
        "label": "Views",
        "value": sum(views.values()),
        "unit": "count",
        "previous": None,
        "change_percent": None,
    }
    series = widgets["Daily views"]["data"]
    assert series["kind"] == "series"
    by_day: Counter[str] = Counter(e["timestamp"][:10] for e in world.events if e["event_type"] == "content_view")
    views_series = next(s for s in series["series"] if s["name"] == "views")
    got = {x[:10]: v for x, v in zip(series["x"], views_series["values"], strict=True) if v}
    assert got == dict(by_day)
    plays_series = next(s for s in series["series"] if s["name"] == "plays")
    assert sum(plays_series["values"]) == sum(plays.values())

    table = widgets["Views by content"]["data"]
    assert table["kind"] == "table"
    assert {row[0]: row[1] for row in table["rows"]} == dict(views)
    assert [row[1] for row in table["rows"]] == sorted(views.values(), reverse=True)

    top = widgets["Top of the category"]["data"]
    assert [row[1] for row in top["rows"]] == [world.c("c1"), world.c("c2"), world.c("c3")]
    assert top["rows"][0][0] == "نشرة الأخبار" and top["rows"][0][2] == views[world.c("c1")]

    funnel = widgets["View to complete"]["data"]
    assert funnel["kind"] == "funnel"
    viewers = {e["user_id"] for e in world.events if e["event_type"] == "content_view"}
    assert funnel["steps"][0]["count"] == len(viewers)
    assert [s["name"] for s in funnel["steps"]] == ["content_view", "content_play", "content_complete"]

    retention = widgets["Returning viewers"]["data"]
    assert retention["kind"] == "retention" and retention["periods"] == ["0", "1", "2", "3"]
    cohort_sizes = sum(c["size"] for c in retention["cohorts"])
    assert cohort_sizes == len(viewers)

    trending = next(w for w in data["widgets"] if w["widget_type"] == "trending_content")["data"]
    assert trending["kind"] == "table"
    health = next(w for w in data["widgets"] if w["widget_type"] == "system_health")["data"]
    assert health["kind"] == "status" and health["status"] in {"up", "degraded", "down", "unknown"}
    activity = next(w for w in data["widgets"] if w["widget_type"] == "user_activity")["data"]
    assert activity["kind"] == "series" and {s["name"] for s in activity["series"]} == {"users", "sessions"}
    imports = next(w for w in data["widgets"] if w["widget_type"] == "import_status")["data"]
    assert imports["kind"] == "table" and imports["columns"][0]["name"] == "source"
    assert completes  # the dataset has completions for the funnel's last step
    assert funnel["steps"][2]["count"] == len(
        {e["user_id"] for e in world.events if e["event_type"] == "content_complete"}
    )


def test_data_is_computed_once_per_interval_and_cached(world: World) -> None:
    owner = world.clients["owner"]
    dashboard = create(
        owner,
        {"name": f"{world.p} cached", "refresh_interval_seconds": 60, "widgets": every_widget(world)[4:7]},
    )
    # Within one interval (both replicas share the cache), the second answer is the first one's.
    for _ in range(3):
        started = time.time()
        first = owner.get(f"{DASHBOARDS}/{dashboard['id']}/data")
        second = owner.get(f"{DASHBOARDS}/{dashboard['id']}/data")
        assert first.status_code == second.status_code == 200
        if int(started) // 60 == int(time.time()) // 60:
            break
    assert second.headers["X-Cache"] == "hit"
    assert second.json()["refreshed_at"] == first.json()["refreshed_at"]
    reread = owner.get(f"{DASHBOARDS}/{dashboard['id']}").json()
    assert reread["last_refreshed_at"] is not None


def test_a_widget_the_viewer_may_not_read_carries_its_error_and_the_others_show(world: World) -> None:
    owner = world.clients["owner"]
    widgets = every_widget(world)
    dashboard = create(
        owner,
        {"name": f"{world.p} shared", "shared_with_roles": ["viewer"], "widgets": [widgets[2], widgets[4], widgets[9]]},
    )
    viewer = world.clients["viewer"]
    seen = viewer.get(f"{DASHBOARDS}/{dashboard['id']}")
    assert seen.status_code == 200 and seen.json()["can_edit"] is False
    data = viewer.get(f"{DASHBOARDS}/{dashboard['id']}/data").json()
    by_type = {w["widget_type"]: w for w in data["widgets"]}
    assert by_type["user_activity"]["data"] is None
    assert by_type["user_activity"]["error"]["code"] == "forbidden"
    assert "read user analytics" in by_type["user_activity"]["error"]["message"]
    assert by_type["custom_metric"]["error"] is None
    assert by_type["custom_metric"]["data"]["value"] == sum(world.count("content_view").values())
    assert by_type["top_content"]["error"] is None

    # A viewer may not change it; another analyst may not even see it.
    assert viewer.put(f"{DASHBOARDS}/{dashboard['id']}", json={"name": "mine"}).status_code == 403
    other = world.clients["other analyst"]
    assert other.get(f"{DASHBOARDS}/{dashboard['id']}").status_code == 404
    assert other.get(f"{DASHBOARDS}/{dashboard['id']}/data").status_code == 404
    widget_id = dashboard["widgets"][0]["id"]
    assert other.get(f"{WIDGETS}/{widget_id}").status_code == 404
    assert other.put(f"{WIDGETS}/{widget_id}", json={"title": "x"}).status_code == 404
    assert other.delete(f"{WIDGETS}/{widget_id}").status_code == 404
    listed = {d["id"] for d in other.get(DASHBOARDS).json()["items"]}
    assert dashboard["id"] not in listed


def test_a_scoped_viewer_sees_only_its_content(world: World) -> None:
    owner = world.clients["owner"]
    widgets = every_widget(world)
    dashboard = create(owner, {"name": f"{world.p} scoped", "is_public": True, "widgets": [widgets[6], widgets[9]]})
    data = world.clients["scoped viewer"].get(f"{DASHBOARDS}/{dashboard['id']}/data").json()
    table = next(w for w in data["widgets"] if w["widget_type"] == "table")
    assert table["error"] is None, table
    assert [row[0] for row in table["data"]["rows"]] == [world.c("c2")]
    top = next(w for w in data["widgets"] if w["widget_type"] == "top_content")
    assert [row[1] for row in top["data"]["rows"]] == [world.c("c2")]


def test_a_bad_widget_is_refused_naming_its_field(world: World) -> None:
    owner = world.clients["owner"]
    cases = [
        ({"widget_type": "sparkline"}, "widgets[0].widget_type"),
        (
            {"widget_type": "table", "config": {"metrics": ["viewz"], "dimensions": ["country"]}},
            "widgets[0].config.metrics[0]",
        ),
        (
            {"widget_type": "table", "config": {"metrics": ["views"], "dimensions": ["colour"]}},
            "widgets[0].config.dimensions[0]",
        ),
        ({"widget_type": "time_series", "config": {"metrics": ["views"], "colour": "red"}}, "widgets[0].config.colour"),
        (
            {"widget_type": "time_series", "config": {"metrics": ["views"], "range": "forever"}},
            "widgets[0].config.range",
        ),
        (
            {"widget_type": "real_time_counter", "config": {"metric": "views", "window": "2h"}},
            "widgets[0].config.window",
        ),
        ({"widget_type": "top_content", "layout": {"x": 10, "w": 4}}, "widgets[0].layout.w"),
        ({"widget_type": "custom_metric", "config": {}}, "widgets[0].config.saved_query_id"),
        (
            {"widget_type": "custom_metric", "config": {"query": {"metrics": ["viewz"]}}},
            "widgets[0].config.query.metrics[0]",
        ),
    ]
    for widget, field_name in cases:
        response = owner.post(DASHBOARDS, json={"name": f"{world.p} bad", "widgets": [widget]})
        assert response.status_code in (400, 422), (widget, response.text)
        body = response.json()
        details = body.get("details")
        named = details.get("field") if isinstance(details, dict) else details[0]["field"]
        assert named == field_name, (widget, body)
    # A good widget beside a bad one is not saved either, and nothing half-made is left.
    before = owner.get(DASHBOARDS).json()["total"]
    response = owner.post(
        DASHBOARDS, json={"name": f"{world.p} half", "widgets": [every_widget(world)[4], {"widget_type": "nope"}]}
    )
    assert response.status_code == 400 and response.json()["details"]["field"] == "widgets[1].widget_type"
    assert owner.get(DASHBOARDS).json()["total"] == before
    # A viewer may not create dashboards; a content manager may not put user analytics on one.
    assert world.clients["viewer"].post(DASHBOARDS, json={"name": "v"}).status_code == 403
    refused = world.clients["manager"].post(
        DASHBOARDS, json={"name": "m", "widgets": [{"widget_type": "time_series", "config": {"metrics": ["users"]}}]}
    )
    assert refused.status_code == 403 and refused.json()["details"]["field"] == "widgets[0].config.metrics[0]"


def test_widgets_versions_and_restore(world: World) -> None:
    owner = world.clients["owner"]
    dashboard = create(owner, {"name": f"{world.p} versions", "widgets": [every_widget(world)[4]]})
    did = dashboard["id"]
    added = owner.post(
        WIDGETS,
        json={
            "dashboard_id": did,
            "widget_type": "top_content",
            "title": "Top",
            "config": {"category": world.category},
            "layout": {"x": 6, "y": 0, "w": 6, "h": 4},
        },
    )
    assert added.status_code == 201, added.text
    widget = added.json()
    assert widget["layout"] == {"x": 6, "y": 0, "w": 6, "h": 4} and widget["config"]["metric"] == "views"
    got = owner.get(f"{WIDGETS}/{widget['id']}")
    assert got.status_code == 200 and got.json()["data"]["data"]["rows"][0][1] == world.c("c1")
    moved = owner.put(f"{WIDGETS}/{widget['id']}", json={"layout": {"x": 0, "y": 4, "w": 12, "h": 5}})
    assert moved.status_code == 200 and moved.json()["config"]["category"] == world.category
    bad = owner.put(f"{WIDGETS}/{widget['id']}", json={"config": {"metric": "viewz"}})
    assert bad.status_code == 400 and bad.json()["details"]["field"] == "config.metric"
    renamed = owner.put(f"{DASHBOARDS}/{did}", json={"name": f"{world.p} renamed", "version": 3})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["version"] == 4
    stale = owner.put(f"{DASHBOARDS}/{did}", json={"name": "late", "version": 3})
    assert stale.status_code == 409 and stale.json()["details"]["current_version"] == 4
    assert owner.delete(f"{WIDGETS}/{widget['id']}").status_code == 204
    versions = owner.get(f"{DASHBOARDS}/{did}/versions").json()
    assert [v["version"] for v in versions["items"]] == [5, 4, 3, 2, 1]
    assert [v["widget_count"] for v in versions["items"]] == [1, 2, 2, 2, 1]
    restored = owner.post(f"{DASHBOARDS}/{did}/versions/3/restore")
    assert restored.status_code == 200, restored.text
    body = restored.json()
    assert body["version"] == 6 and body["name"] == f"{world.p} versions"
    assert {w["id"] for w in body["widgets"]} >= {widget["id"]}
    assert next(w for w in body["widgets"] if w["id"] == widget["id"])["layout"]["w"] == 12
    assert owner.post(f"{DASHBOARDS}/{did}/versions/99/restore").status_code == 400
    assert owner.delete(f"{DASHBOARDS}/{did}").status_code == 204
    assert owner.get(f"{DASHBOARDS}/{did}").status_code == 404


def test_prebuilt_dashboards_are_there_and_answer(world: World, admin: httpx.Client) -> None:
    listed = admin.get(DASHBOARDS, params={"limit": 200}).json()["items"]
    prebuilt = {d["prebuilt"]: d for d in listed if d["prebuilt"]}
    assert set(prebuilt) == {"executive", "content_operations", "performance_monitoring"}
    for dashboard in prebuilt.values():
        data = admin.get(f"{DASHBOARDS}/{dashboard['id']}/data")
        assert data.status_code == 200, data.text
        for widget in data.json()["widgets"]:
            assert widget["error"] is None, (dashboard["prebuilt"], widget)
    # A viewer sees them too; the performance board's system health is not for viewers.
    viewer = world.clients["viewer"]
    seen = {d["prebuilt"] for d in viewer.get(DASHBOARDS).json()["items"] if d["prebuilt"]}
    assert seen == set(prebuilt)
    performance = viewer.get(f"{DASHBOARDS}/{prebuilt['performance_monitoring']['id']}/data").json()
    errors = {w["widget_type"]: w["error"] for w in performance["widgets"]}
    assert errors["system_health"]["code"] == "forbidden"
    assert viewer.put(f"{DASHBOARDS}/{prebuilt['executive']['id']}", json={"name": "x"}).status_code == 403


def test_graphql_shares_the_rules(world: World, service: runtime.RunningService) -> None:
    owner = world.clients["owner"]
    mutation = "mutation($input: JSON!) { createDashboard(input: $input) { id version widgets { id widgetType } } }"
    bad = owner.post(
        "/graphql",
        json={"query": mutation, "variables": {"input": {"name": "g", "widgets": [{"widget_type": "nope"}]}}},
    ).json()
    assert bad["errors"][0]["extensions"]["details"]["field"] == "widgets[0].widget_type"
    made = owner.post(
        "/graphql",
        json={
            "query": mutation,
            "variables": {"input": {"name": f"{world.p} gql", "widgets": [every_widget(world)[4]]}},
        },
    ).json()
    dashboard_id = made["data"]["createDashboard"]["id"]
    data = owner.post(
        "/graphql",
        json={
            "query": "query($id: String!) { dashboardData(id: $id) { asOf widgets { widgetType data error } } }",
            "variables": {"id": dashboard_id},
        },
    ).json()
    widget = data["data"]["dashboardData"]["widgets"][0]
    assert widget["error"] is None and widget["data"]["value"] == sum(world.count("content_view").values())


UPDATES = (
    "subscription($id: String!) { dashboardUpdates(dashboardId: $id) "
    "{ dashboardId version refreshedAt removedWidgetIds widgets { widgetId widgetType asOf data error digest } } }"
)


async def next_update(ws: Any, timeout: float) -> dict[str, Any]:
    update: dict[str, Any] = (await next_data(ws, timeout))["dashboardUpdates"]
    return update


async def test_subscribers_get_only_the_widgets_that_changed(
    world: World, service: runtime.RunningService, role_keys: dict[str, str]
) -> None:
    owner = world.clients["owner"]
    live_id = world.c("live")
    dashboard = create(
        owner,
        {
            "name": f"{world.p} live",
            "refresh_interval_seconds": 1,
            "shared_with_roles": ["viewer"],
            "widgets": [
                {
                    "widget_type": "real_time_counter",
                    "title": "live views",
                    "config": {"metric": "views", "window": "5m", "content_id": live_id},
                },
                every_widget(world)[4],
            ],
        },
    )
    live_widget = next(w["id"] for w in dashboard["widgets"] if w["widget_type"] == "real_time_counter")
    viewers = [
        await subscribe(service.base_url, role_keys["viewer"], UPDATES, {"id": dashboard["id"]}) for _ in range(3)
    ]
    try:
        firsts = [await next_update(ws, 60) for ws in viewers]
        for first in firsts:
            assert len(first["widgets"]) == 2 and first["version"] == dashboard["version"]
            live = next(w for w in first["widgets"] if w["widgetId"] == live_widget)
            assert live["data"]["value"] == 0
        now = datetime.now(UTC)
        events = [
            {
                "id": f"{live_id}-{i}",
                "event_type": "content_view",
                "timestamp": now.isoformat(),
                "content_id": live_id,
                "user_id": f"{world.p}-lu{i}",
            }
            for i in range(3)
        ]
        sent_at = await ingest(service.base_url, role_keys["service"], events)
        for ws in viewers:
            while True:
                update = await next_update(ws, 30)
                # Only the widget whose data changed is sent; the query widget's data did not change.
                assert {w["widgetId"] for w in update["widgets"]} <= {live_widget}, update
                live = next((w for w in update["widgets"] if w["widgetId"] == live_widget), None)
                if live is not None and live["data"]["value"] == 3:
                    break
        assert time.monotonic() - sent_at < 15
        # An edit is a new version: every widget again, the removed one named.
        removed = next(w["id"] for w in dashboard["widgets"] if w["id"] != live_widget)
        assert owner.delete(f"{WIDGETS}/{removed}").status_code == 204
        update = await next_update(viewers[0], 30)
        while update["version"] == dashboard["version"]:
            update = await next_update(viewers[0], 30)
        assert update["removedWidgetIds"] == [removed]
        assert [w["widgetId"] for w in update["widgets"]] == [live_widget]
        # Unshared: the subscription ends with the stranger's 404.
        assert owner.put(f"{DASHBOARDS}/{dashboard['id']}", json={"shared_with_roles": []}).status_code == 200
        deadline = time.monotonic() + 30
        while True:
            message = orjson.loads(await asyncio.wait_for(viewers[1].recv(), max(0.1, deadline - time.monotonic())))
            if message["type"] == "next" and "errors" in message["payload"]:
                assert message["payload"]["errors"][0]["extensions"]["code"] == "not_found"
                break
            if message["type"] == "error":
                assert "not_found" in orjson.dumps(message).decode() or "404" in orjson.dumps(message).decode()
                break
    finally:
        for ws in viewers:
            await ws.close()


def test_kpis_asked_together_answer_as_each_alone(world: World) -> None:
    owner = world.clients["owner"]
    base = {
        "filters": category_filter(world),
        "date_range": {"relative": "last_7_days"},
        "compare_to": "previous_period",
    }
    widgets = [
        {"widget_type": "custom_metric", "title": name, "config": {"query": {**base, "metrics": [name]}}}
        for name in ("views", "unique_viewers", "playback_sessions", "users")
    ]
    dashboard = create(owner, {"name": f"{world.p} kpis", "shared_with_roles": ["viewer"], "widgets": widgets})
    for who in ("owner", "viewer"):
        client = world.clients[who]
        data = by_title(client.get(f"{DASHBOARDS}/{dashboard['id']}/data").json())
        for name in ("views", "unique_viewers", "playback_sessions"):
            alone = world.clients["owner"].post(f"{API}/query", json={**base, "metrics": [name]}).json()
            shown = data[name]["data"]
            assert shown["value"] == alone["totals"][name], (who, name)
            assert shown["previous"] == alone["compare_totals"][name]["value"], (who, name)
        # A metric the viewer may not use fails its own widget only.
        if who == "viewer":
            assert data["users"]["error"]["code"] == "forbidden" and data["views"]["error"] is None
        else:
            assert data["users"]["error"] is None
    assert data["views"]["data"]["value"] == sum(world.count("content_view").values())
