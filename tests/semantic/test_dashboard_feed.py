"""semantic/dashboard_feed.py's logic with a stand-in for the dashboard service (the real service and
websockets are tested end to end in tests/e2e/test_dashboards_api.py): viewers of one dashboard and scope
share one computation per tick, each is sent only what changed, an edit resends everything, and a
dashboard that disappears ends the subscriptions with 404."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from core.access import ContentScope, Principal, Role
from core.errors import NotFound
from semantic.dashboard_feed import DashboardFeeds, DashboardUpdate
from semantic.dashboards import DashboardData
from semantic.widget_data import WidgetData, digest_of

NOW = datetime(2026, 1, 1, tzinfo=UTC)
VIEWER = Principal(key_id="key_v", name="v", role=Role.VIEWER)
OTHER_VIEWER = Principal(key_id="key_w", name="w", role=Role.VIEWER)
SCOPED = Principal(key_id="key_s", name="s", role=Role.VIEWER, scope=ContentScope.of(content_ids=["c1"]))


@dataclass
class Board:
    id: str
    version: int
    refresh_interval_seconds: int
    widgets: dict[str, int]


class FakeRepository:
    def __init__(self, service: FakeService) -> None:
        self._service = service

    async def get(self, dashboard_id: str) -> Board | None:
        return self._service.board


class FakeService:
    def __init__(self) -> None:
        self.board: Board | None = Board("dsh_1", 1, 1, {"w1": 0, "w2": 0})
        self.dashboards = FakeRepository(self)
        self.computed: list[str] = []

    async def get(self, dashboard_id: str, principal: Principal) -> Board:
        if self.board is None:
            raise NotFound("dashboard does not exist or is not visible to you")
        return self.board

    async def data(self, board: Board, principal: Principal) -> DashboardData:
        self.computed.append(principal.key_id)
        widgets = []
        for widget_id, value in board.widgets.items():
            data = {"kind": "counter", "value": value}
            widgets.append(
                WidgetData(
                    widget_id=widget_id,
                    widget_type="real_time_counter",
                    title=widget_id,
                    as_of=NOW,
                    refreshed_at=NOW,
                    data=data,
                    digest=digest_of(data, None),
                )
            )
        return DashboardData(dashboard_id=board.id, version=board.version, refreshed_at=NOW, as_of=NOW, widgets=widgets)


async def take(updates: Any, count: int, timeout: float = 5) -> list[DashboardUpdate]:
    return [await asyncio.wait_for(anext(updates), timeout) for _ in range(count)]


async def test_viewers_of_one_scope_share_one_computation_per_tick_and_get_only_changes() -> None:
    service = FakeService()
    feeds = DashboardFeeds(service, idle_seconds=0.1)  # type: ignore[arg-type]
    streams = [feeds.updates("dsh_1", p) for p in (VIEWER, OTHER_VIEWER, VIEWER)]
    firsts = [(await take(s, 1))[0] for s in streams]
    for first in firsts:
        assert [w.widget_id for w in first.widgets] == ["w1", "w2"] and first.version == 1
    assert feeds.feeds() == 1
    assert service.board is not None
    service.board.widgets["w2"] = 7
    seconds = [(await take(s, 1))[0] for s in streams]
    for second in seconds:
        assert [w.widget_id for w in second.widgets] == ["w2"] and second.widgets[0].data == {
            "kind": "counter",
            "value": 7,
        }
    # One feed computed each tick once, whoever of the same role and scope watches.
    assert len(service.computed) <= 3
    # An edit (a new version) sends every widget again, and names the removed one.
    service.board = replace(service.board, version=2, widgets={"w2": 7})
    edited = [(await take(s, 1))[0] for s in streams]
    for update in edited:
        assert update.version == 2 and [w.widget_id for w in update.widgets] == ["w2"]
        assert update.removed_widget_ids == ["w1"]
    for stream in streams:
        await stream.aclose()


async def test_another_scope_gets_its_own_feed() -> None:
    service = FakeService()
    feeds = DashboardFeeds(service, idle_seconds=0.1)  # type: ignore[arg-type]
    a, b = feeds.updates("dsh_1", VIEWER), feeds.updates("dsh_1", SCOPED)
    await take(a, 1)
    await take(b, 1)
    assert feeds.feeds() == 2
    assert set(service.computed) == {"key_v", "key_s"}
    await a.aclose()
    await b.aclose()
    # Without subscribers the feeds stop.
    await asyncio.sleep(1.5)
    assert feeds.feeds() == 0


async def test_a_dashboard_that_goes_away_ends_its_subscriptions_with_404() -> None:
    service = FakeService()
    feeds = DashboardFeeds(service, idle_seconds=0.1)  # type: ignore[arg-type]
    stream = feeds.updates("dsh_1", VIEWER)
    await take(stream, 1)
    service.board = None
    with pytest.raises(NotFound):
        await take(stream, 1)
    with pytest.raises(NotFound):
        await take(feeds.updates("dsh_1", VIEWER), 1)
