"""Search and discovery: queries, zero-result queries, clicks and their positions, search -> view
conversion, and recommendation impressions -> clicks.

Definitions (see docs/metrics.md):
- a search is a search_query event; its query is properties.query, trimmed and lower-cased; it has
  zero results when properties.results_count is 0;
- a click is a search_result_click; click-through rate = clicks / searches (per query: clicks whose
  properties.query is that query); properties.position (1 = first result) gives the click position;
- conversion: a search (with a session_id) converts when the same session has a content_view
  within ``conversion_minutes`` after it; rate = converted searches / searches with a session;
- recommendations: recommendation_impression and recommendation_click events naming a content
  (content_id or properties.content_id); rate = clicks / impressions.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel

from core.errors import InvalidRequest
from core.taxonomy import CONTENT_VIEW, SEARCH_QUERY
from semantic.answers import PinnedAnswer
from semantic.compiler import Filter, MetricQuery, run_query
from semantic.content_metadata import ContentMetadataStore
from semantic.periods import Period, bounds_ms, period_label, utc_text
from semantic.results import MetricChange, PeriodInfo, compare
from storage.event_keys import sql_list
from storage.events import EventStore

MAX_ROWS = 100
_TOTALS = ("searches", "searchers", "zero_result_searches", "zero_result_rate", "clicks", "ctr", "results")
_DISCOVERY = (
    "search_impressions",
    "search_clicks",
    "search_ctr",
    "recommendation_impressions",
    "recommendation_clicks",
    "recommendation_ctr",
)


class SearchOverview(PinnedAnswer):
    period: PeriodInfo
    previous_period: PeriodInfo
    searches: int
    searchers: int
    zero_result_searches: int
    zero_result_rate: float
    average_results: float
    clicks: int
    click_through_rate: float
    average_click_position: float | None
    # Clicks by result position (1 = first); clicks without a position are left out.
    click_positions: dict[int, int]
    searches_with_session: int
    converted_searches: int
    conversion_rate: float
    conversion_minutes: int
    search_impressions: int
    search_clicks: int
    search_impression_ctr: float
    recommendation_impressions: int
    recommendation_clicks: int
    recommendation_ctr: float
    comparison: dict[str, MetricChange]
    source: str


class QueryStats(BaseModel):
    query: str
    searches: int
    searchers: int
    zero_result_searches: int
    clicks: int
    click_through_rate: float
    average_results: float
    previous_searches: int


class TopQueries(PinnedAnswer):
    period: PeriodInfo
    previous_period: PeriodInfo
    queries: list[QueryStats]
    source: str


class RecommendedContent(BaseModel):
    content_id: str
    title: str | None
    impressions: int
    clicks: int
    click_through_rate: float
    previous_clicks: int


class RecommendationReport(PinnedAnswer):
    period: PeriodInfo
    previous_period: PeriodInfo
    impressions: int
    clicks: int
    click_through_rate: float
    comparison: dict[str, MetricChange]
    contents: list[RecommendedContent]
    source: str


def _utc_day(epoch_ms: int) -> date:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).date()


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_ROWS:
        raise InvalidRequest(f"limit must be between 1 and {MAX_ROWS}", details={"field": "limit"})
    return limit


class SearchAnalyticsService:
    def __init__(self, store: EventStore, metadata: ContentMetadataStore, *, conversion_minutes: int = 30) -> None:
        self._store = store
        self._metadata = metadata
        self._conversion_minutes = conversion_minutes

    async def overview(self, period: Period) -> SearchOverview:
        previous = period.previous()
        # The longest statement first: a statement that starts alone may use every core.
        conversion, totals, positions, discovery = await asyncio.gather(
            self.conversion([period, previous]),
            run_query(self._store, MetricQuery("search", _TOTALS, period, ("period",), with_previous=True)),
            run_query(
                self._store, MetricQuery("search", ("clicks",), period, ("click_position",), at_least=(("clicks", 1),))
            ),
            run_query(self._store, MetricQuery("content", _DISCOVERY, period, ("period",), with_previous=True)),
        )
        rows = {r["period"]: r for r in totals.rows}
        found = {r["period"]: r for r in discovery.rows}
        clicks_at = {int(r["click_position"]): int(r["clicks"]) for r in positions.rows if int(r["click_position"]) > 0}
        placed = sum(clicks_at.values())

        def figures(key: str, index: int) -> dict[str, float]:
            row, more = rows.get(key, {}), found.get(key, {})
            searches = int(row.get("searches", 0))
            sessions, converted = conversion[index]
            return {
                "searches": searches,
                "searchers": int(row.get("searchers", 0)),
                "zero_result_searches": int(row.get("zero_result_searches", 0)),
                "zero_result_rate": float(row.get("zero_result_rate", 0.0)),
                "average_results": int(row.get("results", 0)) / searches if searches else 0.0,
                "clicks": int(row.get("clicks", 0)),
                "click_through_rate": float(row.get("ctr", 0.0)),
                "searches_with_session": sessions,
                "converted_searches": converted,
                "conversion_rate": converted / sessions if sessions else 0.0,
                "search_impressions": int(more.get("search_impressions", 0)),
                "search_clicks": int(more.get("search_clicks", 0)),
                "search_impression_ctr": float(more.get("search_ctr", 0.0)),
                "recommendation_impressions": int(more.get("recommendation_impressions", 0)),
                "recommendation_clicks": int(more.get("recommendation_clicks", 0)),
                "recommendation_ctr": float(more.get("recommendation_ctr", 0.0)),
            }

        now, before = figures("current", 0), figures("previous", 1)
        return SearchOverview(
            period=PeriodInfo.of(period),
            previous_period=PeriodInfo.of(previous),
            average_click_position=round(sum(p * c for p, c in clicks_at.items()) / placed, 4) if placed else None,
            click_positions=dict(sorted(clicks_at.items())),
            conversion_minutes=self._conversion_minutes,
            comparison=compare(now, before),
            source=totals.source,
            **now,
        )

    async def conversion(self, periods: list[Period], *, route: str = "auto") -> list[tuple[int, int]]:
        """(searches with a session, converted searches) for each period.

        Reads session_searches, where each row holds a session's searches of one UTC day and every
        view that can convert them; ``route="raw"`` groups the events by session instead (the parity
        tests compare both).
        """
        if route == "raw":
            return await self._conversion_from_events(periods)
        bounds = bounds_ms(periods)
        params: dict[str, Any] = {
            "d_from": _utc_day(min(start for start, _ in bounds)),
            # The day of the last millisecond of the window, included (a window may be empty at the epoch).
            "d_to": _utc_day(max(max(end for _, end in bounds) - 1, 0)),
            "window_ms": self._conversion_minutes * 60_000,
        }
        labels = []
        for index, (start, end) in enumerate(bounds):
            params[f"p{index}s"], params[f"p{index}e"] = start, end
            labels.append(f"s >= {{p{index}s:Int64}} AND s < {{p{index}e:Int64}}, {index}")
        result = await self._store.query(
            f"""SELECT lbl, count(), countIf(converted)
            FROM (
                SELECT multiIf({", ".join(labels)}, -1) AS lbl,
                       arrayExists(v -> v > s AND v <= s + {{window_ms:Int64}}, views) AS converted
                FROM (
                    SELECT searches, views FROM session_searches FINAL
                    WHERE day >= {{d_from:Date}} AND day <= {{d_to:Date}} AND notEmpty(searches)
                )
                ARRAY JOIN searches AS s
            )
            WHERE lbl >= 0
            GROUP BY lbl""",
            params,
        )
        found = {int(lbl): (int(total), int(converted)) for lbl, total, converted in result.rows}
        return [found.get(i, (0, 0)) for i in range(len(periods))]

    async def _conversion_from_events(self, periods: list[Period]) -> list[tuple[int, int]]:
        window_ms = self._conversion_minutes * 60_000
        params: dict[str, Any] = {
            "w_start": utc_text(min(p.start for p in periods)),
            "w_end": utc_text(max(p.end for p in periods)),
            "window_ms": window_ms,
        }
        label = period_label("search_time", periods, params)
        result = await self._store.query(
            f"""SELECT lbl, count(), countIf(converted)
            FROM (
                SELECT fromUnixTimestamp64Milli(s, 'UTC') AS search_time, {label} AS lbl,
                       arrayExists(v -> v > s AND v <= s + {{window_ms:Int64}}, views) AS converted
                FROM (
                    SELECT groupArrayIf(ms, event_type = '{SEARCH_QUERY}') AS searches,
                           groupArrayIf(ms, event_type = '{CONTENT_VIEW}') AS views
                    FROM (
                        SELECT session_id, event_type, toUnixTimestamp64Milli(timestamp) AS ms
                        FROM events
                        WHERE event_type IN {sql_list((SEARCH_QUERY, CONTENT_VIEW))} AND session_id != ''
                          AND timestamp >= {{w_start:DateTime64(3, 'UTC')}}
                          AND timestamp < {{w_end:DateTime64(3, 'UTC')}} + toIntervalMillisecond({{window_ms:Int64}})
                    )
                    GROUP BY session_id
                    HAVING length(searches) > 0
                )
                ARRAY JOIN searches AS s
            )
            WHERE lbl != ''
            GROUP BY lbl""",
            params,
        )
        found = {int(lbl): (int(total), int(converted)) for lbl, total, converted in result.rows}
        return [found.get(i, (0, 0)) for i in range(len(periods))]

    async def _queries(
        self,
        period: Period,
        metrics: tuple[str, ...],
        order: str,
        limit: int,
        at_least: tuple[tuple[str, float], ...] = (),
    ) -> TopQueries:
        ranking = await run_query(
            self._store,
            MetricQuery(
                "search",
                metrics,
                period,
                ("query",),
                (Filter("query", ("",), exclude=True),),
                order_by=((order, True), ("query", False)),
                limit=_limit(limit),
                at_least=at_least,
            ),
        )
        names = tuple(row["query"] for row in ranking.rows)
        earlier = (
            await run_query(
                self._store,
                MetricQuery("search", ("searches",), period.previous(), ("query",), (Filter("query", names),)),
            )
            if names
            else None
        )
        before = {row["query"]: int(row["searches"]) for row in earlier.rows} if earlier else {}
        return TopQueries(
            period=PeriodInfo.of(period),
            previous_period=PeriodInfo.of(period.previous()),
            queries=[
                QueryStats(
                    query=row["query"],
                    searches=row["searches"],
                    searchers=row["searchers"],
                    zero_result_searches=row["zero_result_searches"],
                    clicks=row["clicks"],
                    click_through_rate=row["ctr"],
                    average_results=row["results"] / row["searches"] if row["searches"] else 0.0,
                    previous_searches=before.get(row["query"], 0),
                )
                for row in ranking.rows
            ],
            source=ranking.source,
        )

    async def top_queries(self, period: Period, *, limit: int = 20) -> TopQueries:
        return await self._queries(
            period, ("searches", "searchers", "zero_result_searches", "clicks", "ctr", "results"), "searches", limit
        )

    async def zero_result_queries(self, period: Period, *, limit: int = 20) -> TopQueries:
        return await self._queries(
            period,
            ("searches", "searchers", "zero_result_searches", "clicks", "ctr", "results"),
            "zero_result_searches",
            limit,
            at_least=(("zero_result_searches", 1),),
        )

    async def recommendations(self, period: Period, *, limit: int = 20) -> RecommendationReport:
        previous = period.previous()
        metrics = ("recommendation_impressions", "recommendation_clicks", "recommendation_ctr")
        totals, ranking = await asyncio.gather(
            run_query(self._store, MetricQuery("content", metrics, period, ("period",), with_previous=True)),
            run_query(
                self._store,
                MetricQuery(
                    "content",
                    metrics,
                    period,
                    ("content_id",),
                    order_by=(
                        ("recommendation_clicks", True),
                        ("recommendation_impressions", True),
                        ("content_id", False),
                    ),
                    limit=_limit(limit),
                    at_least=(("recommendation_impressions", 1),),
                ),
            ),
        )
        ids = [row["content_id"] for row in ranking.rows]
        earlier, titles = await asyncio.gather(
            run_query(
                self._store,
                MetricQuery(
                    "content",
                    ("recommendation_clicks",),
                    previous,
                    ("content_id",),
                    (Filter("content_id", tuple(ids)),),
                ),
            ),
            self._metadata.get_many(ids),
        )
        before = {row["content_id"]: int(row["recommendation_clicks"]) for row in earlier.rows}
        rows = {row["period"]: row for row in totals.rows}

        def figures(key: str) -> dict[str, float]:
            row = rows.get(key, {})
            return {
                "impressions": int(row.get("recommendation_impressions", 0)),
                "clicks": int(row.get("recommendation_clicks", 0)),
                "click_through_rate": float(row.get("recommendation_ctr", 0.0)),
            }

        now = figures("current")
        return RecommendationReport(
            period=PeriodInfo.of(period),
            previous_period=PeriodInfo.of(previous),
            impressions=int(now["impressions"]),
            clicks=int(now["clicks"]),
            click_through_rate=now["click_through_rate"],
            comparison=compare(now, figures("previous")),
            contents=[
                RecommendedContent(
                    content_id=row["content_id"],
                    title=titles[row["content_id"]].title if row["content_id"] in titles else None,
                    impressions=row["recommendation_impressions"],
                    clicks=row["recommendation_clicks"],
                    click_through_rate=row["recommendation_ctr"],
                    previous_clicks=before.get(row["content_id"], 0),
                )
                for row in ranking.rows
            ],
            source=ranking.source,
        )
