"""Plain-language findings about one content in a period, each backed by the numbers behind it.

Rules (thresholds below; each finding only when its numbers are large enough to mean something):
- completion vs category: the completion rate against the median of the contents of the same
  category that had playback sessions in the period (the content itself included), when they differ
  by at least COMPLETION_GAP (under a content scope, the category's in-scope contents);
- views change: views against the previous period, when they moved by at least VIEWS_CHANGE;
- traffic source shift: the source whose share of views moved most against the previous period,
  when it moved by at least SOURCE_SHIFT;
- peak hour: the hour of day (in the request's timezone) with the most views and its share;
- device mix: a device type bringing at least DEVICE_MAJORITY of views.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from pydantic import BaseModel

from core.enrichment import TRAFFIC_SOURCES
from semantic.answers import PinnedAnswer
from semantic.compiler import MetricQuery, compile_query, run_query
from semantic.content import ContentAnalyticsService, content_filters
from semantic.content_metadata import ContentMetadataStore
from semantic.periods import Period
from semantic.results import PeriodInfo
from storage.events import EventStore

COMPLETION_GAP = 0.10
VIEWS_CHANGE = 0.20
SOURCE_SHIFT = 0.10
DEVICE_MAJORITY = 0.60
# Below this many views in a period, shares and changes are noise: no finding.
MIN_VIEWS = 5
MIN_PLAYBACK_SESSIONS = 5


class Insight(BaseModel):
    kind: str
    severity: Literal["positive", "negative", "info"]
    message: str
    data: dict[str, Any]


class ContentInsights(PinnedAnswer):
    content_id: str
    period: PeriodInfo
    previous_period: PeriodInfo
    insights: list[Insight]


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%"


class ContentInsightsService:
    def __init__(self, store: EventStore, content: ContentAnalyticsService, metadata: ContentMetadataStore) -> None:
        self._store = store
        self._content = content
        self._metadata = metadata

    async def insights(self, content_id: str, period: Period) -> ContentInsights:
        await self._content.require_known([content_id])
        numbers, metadata, sources = await asyncio.gather(
            self._content.compute([content_id], period),
            self._metadata.get(content_id),
            run_query(
                self._store,
                MetricQuery(
                    "content",
                    tuple(f"{s}_views" for s in TRAFFIC_SOURCES),
                    period,
                    ("period",),
                    content_filters([content_id]),
                    with_previous=True,
                ),
            ),
        )
        found = numbers[content_id]
        current, previous = found.current, found.previous
        insights: list[Insight] = []
        category = metadata.category if metadata else None
        if category:
            insight = await self._completion_vs_category(current.completion_rate, category, period, content_id)
            if insight:
                insights.append(insight)
        if previous.total_views >= MIN_VIEWS and current.total_views >= MIN_VIEWS:
            change = (current.total_views - previous.total_views) / previous.total_views
            if abs(change) >= VIEWS_CHANGE:
                insights.append(
                    Insight(
                        kind="views_change",
                        severity="positive" if change > 0 else "negative",
                        message=f"Views {'rose' if change > 0 else 'fell'} {_pct(abs(change))} against the previous "
                        f"period ({current.total_views} against {previous.total_views}).",
                        data={
                            "views": current.total_views,
                            "previous_views": previous.total_views,
                            "change": round(change, 4),
                        },
                    )
                )
        shift = self._source_shift({row["period"]: row for row in sources.rows})
        if shift:
            insights.append(shift)
        if current.total_views >= MIN_VIEWS:
            hour, views = max(current.hourly_distribution.items(), key=lambda item: (item[1], -item[0]))
            share = views / current.total_views
            insights.append(
                Insight(
                    kind="peak_hour",
                    severity="info",
                    message=f"Views peak at {hour:02d}:00-{(hour + 1) % 24:02d}:00 ({period.timezone}), "
                    f"with {_pct(share)} of the period's views.",
                    data={"hour": hour, "views": views, "share": round(share, 4), "timezone": period.timezone},
                )
            )
            devices = {"desktop": current.desktop_views, "mobile": current.mobile_views, "tablet": current.tablet_views}
            device, device_views = max(devices.items(), key=lambda item: item[1])
            if device_views / current.total_views >= DEVICE_MAJORITY:
                insights.append(
                    Insight(
                        kind="device_mix",
                        severity="info",
                        message=f"{_pct(device_views / current.total_views)} of views come from {device} devices.",
                        data={
                            "device_type": device,
                            "views": device_views,
                            "share": round(device_views / current.total_views, 4),
                        },
                    )
                )
        return ContentInsights(
            content_id=content_id,
            period=PeriodInfo.of(period),
            previous_period=PeriodInfo.of(period.previous()),
            insights=insights,
        )

    async def _completion_vs_category(
        self, rate: float, category: str, period: Period, content_id: str
    ) -> Insight | None:
        peers = compile_query(
            MetricQuery(
                "content",
                ("completion_rate", "playback_sessions"),
                period,
                ("content_id",),
                content_filters(category=category),
                at_least=(("playback_sessions", 1),),
            )
        )
        result = await self._store.query(
            f"SELECT quantileExactInclusive(0.5)(m_completion_rate), count(), "
            f"sumIf(m_playback_sessions, d_content_id = {{subject:String}}) FROM ({peers.sql})",
            {**peers.parameters, "subject": content_id},
        )
        median, count, sessions = result.rows[0]
        if not count or sessions < MIN_PLAYBACK_SESSIONS:
            return None
        gap = rate - float(median)
        if abs(gap) < COMPLETION_GAP:
            return None
        direction = "above" if gap > 0 else "below"
        return Insight(
            kind="completion_vs_category",
            severity="positive" if gap > 0 else "negative",
            message=f"Completion rate is {_pct(rate)}, {abs(100 * gap):.0f} points {direction} the median of "
            f"'{category}' content ({_pct(float(median))} over {count} titles).",
            data={
                "completion_rate": rate,
                "category": category,
                "category_median": float(median),
                "category_titles": int(count),
                "gap": round(gap, 4),
            },
        )

    @staticmethod
    def _source_shift(rows: dict[str, dict[str, Any]]) -> Insight | None:
        now = {s: int(rows.get("current", {}).get(f"{s}_views", 0)) for s in TRAFFIC_SOURCES}
        before = {s: int(rows.get("previous", {}).get(f"{s}_views", 0)) for s in TRAFFIC_SOURCES}
        now_total, before_total = sum(now.values()), sum(before.values())
        if now_total < MIN_VIEWS or before_total < MIN_VIEWS:
            return None
        shifts = {s: now[s] / now_total - before[s] / before_total for s in TRAFFIC_SOURCES}
        source = max(TRAFFIC_SOURCES, key=lambda s: (abs(shifts[s]), s))
        if abs(shifts[source]) < SOURCE_SHIFT:
            return None
        share, earlier = now[source] / now_total, before[source] / before_total
        return Insight(
            kind="traffic_source_shift",
            severity="info",
            message=f"{source.capitalize()} traffic brought {_pct(share)} of views, "
            f"{'up' if shifts[source] > 0 else 'down'} from {_pct(earlier)} in the previous period.",
            data={"traffic_source": source, "share": round(share, 4), "previous_share": round(earlier, 4)},
        )
