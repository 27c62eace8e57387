"""Live dashboard updates: the ``dashboardUpdates`` subscription's source in one replica.

One feed per dashboard and viewer scope (role and content scope: what the data depends on) computes the
dashboard once per refresh interval (through ``DashboardService.data``, so replicas share it through the
result cache too) and wakes its subscribers; each subscriber is sent only the widgets whose data changed
since what it was last sent (a slow one skips states, never queues them). The first update carries every
widget; after an edit (a new version) every widget again, with the ids of removed widgets. A feed stops
a while after its last subscriber left. The dashboard is read again on every tick: a subscriber who may no
longer see it (unshared, deleted) gets the same 404 as a stranger and its subscription ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel

from core.access import Principal
from core.errors import AnalyticsError
from semantic.answers import scope_of
from semantic.dashboards import DashboardData, DashboardService
from semantic.widget_data import WidgetData
from storage.dashboards import dashboard_not_found

log = logging.getLogger(__name__)

# How long a feed outlives its last subscriber (a page reload subscribes again at once).
IDLE_SECONDS = 10.0
# A feed whose computation failed tries again after this long.
RETRY_SECONDS = 1.0


class DashboardUpdate(BaseModel):
    dashboard_id: str
    version: int
    refreshed_at: datetime
    widgets: list[WidgetData]
    removed_widget_ids: list[str] = []


@dataclass(slots=True)
class _State:
    seq: int
    data: DashboardData | None
    error: AnalyticsError | None = None


@dataclass(slots=True)
class _Feed:
    dashboard_id: str
    principal: Principal
    subscribers: int = 0
    state: _State | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def publish(self, state: _State) -> None:
        self.state = state
        self.changed.set()
        self.changed = asyncio.Event()

    async def next_state(self, after: int) -> _State:
        while self.state is None or self.state.seq <= after:
            await self.changed.wait()
        return self.state


class DashboardFeeds:
    def __init__(self, service: DashboardService, *, idle_seconds: float = IDLE_SECONDS) -> None:
        self._service = service
        self._feeds: dict[tuple[str, str], _Feed] = {}
        self._idle_seconds = idle_seconds

    def feeds(self) -> int:
        return len(self._feeds)

    async def updates(self, dashboard_id: str, principal: Principal) -> AsyncIterator[DashboardUpdate]:
        """The dashboard's updates for ``principal``: NotFound at once when it may not see it."""
        await self._service.get(dashboard_id, principal)
        key = (dashboard_id, scope_of(principal))
        feed = self._feeds.get(key)
        if feed is None:
            feed = self._feeds[key] = _Feed(dashboard_id, principal)
        feed.subscribers += 1
        if feed.task is None or feed.task.done():
            feed.task = asyncio.get_running_loop().create_task(self._run(key, feed))
        sent: dict[str, str] = {}
        sent_version: int | None = None
        seen = -1
        try:
            while True:
                state = await feed.next_state(seen)
                seen = state.seq
                if state.error is not None:
                    raise state.error
                data = state.data
                assert data is not None
                if data.version != sent_version and sent_version is not None:
                    # Edited: may this subscriber still see it (a change of sharing is an edit too)?
                    await self._service.get(dashboard_id, principal)
                widgets = [w for w in data.widgets if data.version != sent_version or sent.get(w.widget_id) != w.digest]
                current = {w.widget_id for w in data.widgets}
                removed = sorted(widget_id for widget_id in sent if widget_id not in current)
                if widgets or removed or data.version != sent_version:
                    yield DashboardUpdate(
                        dashboard_id=data.dashboard_id,
                        version=data.version,
                        refreshed_at=data.refreshed_at,
                        widgets=widgets,
                        removed_widget_ids=removed,
                    )
                sent = {w.widget_id: w.digest for w in data.widgets}
                sent_version = data.version
        finally:
            feed.subscribers -= 1

    async def _run(self, key: tuple[str, str], feed: _Feed) -> None:
        seq = 0
        idle_since: float | None = None
        try:
            while True:
                if feed.subscribers <= 0:
                    # Nobody to compute for: wait a while for a new subscriber, then stop.
                    idle_since = idle_since or time.monotonic()
                    if time.monotonic() - idle_since > self._idle_seconds:
                        return
                    await asyncio.sleep(min(self._idle_seconds, RETRY_SECONDS))
                    continue
                idle_since = None
                try:
                    dashboard = await self._service.dashboards.get(feed.dashboard_id)
                    if dashboard is None:
                        seq += 1
                        feed.publish(_State(seq, None, dashboard_not_found(feed.dashboard_id)))
                        return
                    data = await self._service.data(dashboard, feed.principal)
                except Exception:  # noqa: BLE001 - a widget's own errors never get here; a store outage may
                    log.warning("dashboard %s could not be computed; trying again", feed.dashboard_id, exc_info=True)
                    await asyncio.sleep(RETRY_SECONDS)
                    continue
                seq += 1
                feed.publish(_State(seq, data))
                interval = dashboard.refresh_interval_seconds
                await asyncio.sleep(interval - (time.time() % interval) + 0.001)
        finally:
            if self._feeds.get(key) is feed:
                del self._feeds[key]
