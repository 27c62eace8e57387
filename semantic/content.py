"""Content analytics: ContentAnalytics for one or many contents, the bulk list, top performers, audience.

Every number comes from the content rollups through the compiler (or raw events where no rollup
can answer), except watch time, which semantic.playback reads from the content's own events. One
request runs a handful of grouped queries for all the contents it covers, never one per content;
where content_daily answers the totals, the same statement also brings the views by hour and by
place (its columns from migration 016) that the hourly distribution and top places need.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import BaseModel

from core.access import ALL_CONTENT, ContentScope
from core.enrichment import DEVICE_TYPES, TRAFFIC_SOURCES
from core.errors import AnalyticsError, InvalidRequest
from core.models import ContentAnalytics, utc_now
from semantic import scores
from semantic.answers import PinnedAnswer
from semantic.catalog import BREAKDOWN_DIMENSIONS
from semantic.compiler import CompiledQuery, Filter, MetricQuery, QueryRows, compile_query, run_query
from semantic.content_metadata import ContentMetadata, ContentMetadataStore
from semantic.content_scope import admitted, current_scope, require_in_scope, unknown_content, using_scope
from semantic.periods import Period
from semantic.playback import content_watch_seconds
from semantic.results import MetricChange, PeriodInfo, bucket_label, compare, period_buckets
from storage.events import EventStore

# The base metrics ContentAnalytics is built from.
_TOTALS = (
    "views",
    "unique_views",
    "playback_sessions",
    "completed_sessions",
    "completion_rate",
    "likes",
    "shares",
    "bookmarks",
    "comments",
    "interactions",
    "search_impressions",
    "search_clicks",
    "recommendation_impressions",
    "recommendation_clicks",
    *(f"{source}_views" for source in TRAFFIC_SOURCES),
    *(f"{device}_views" for device in DEVICE_TYPES),
)
# Metrics the bulk list and top-performing may rank by.
RANKING_METRICS = (
    "views",
    "unique_views",
    "completion_rate",
    "engagement_rate",
    "interactions",
    "likes",
    "shares",
    "bookmarks",
    "comments",
    "playback_sessions",
    "search_clicks",
    "recommendation_clicks",
    "search_ctr",
    "recommendation_ctr",
)
TOP_LOCATIONS = 10
# The places whose top values ContentAnalytics lists, and where content_daily keeps their views.
_PLACES = ("country", "region")
_PLACE_COLUMNS = (
    ("hour_views", "sumMap(hour_views)"),
    ("country_views", "sumMap(country_views)"),
    ("region_views", "sumMap(region_views)"),
)
_DAILY_ROLLUP = "content_daily"
# How long a replica reuses the most views of a window (the popularity score's reference).
MOST_VIEWS_SECONDS = 60.0
MAX_PAGE = 100
# Fields of ContentAnalytics compared with the previous period.
COMPARED_FIELDS = tuple(
    name
    for name, info in ContentAnalytics.model_fields.items()
    if info.annotation in (int, float, "int", "float") and name not in ("content_id",)
)


class ContentSeriesPoint(BaseModel):
    bucket: str
    views: int
    unique_views: int
    completion_rate: float
    interactions: int


class ContentAnalyticsReport(PinnedAnswer):
    content_id: str
    metadata: ContentMetadata | None
    period: PeriodInfo
    previous_period: PeriodInfo
    analytics: ContentAnalytics
    comparison: dict[str, MetricChange]
    series: list[ContentSeriesPoint]
    # The table that answered the totals: a rollup, or "events".
    source: str


class ContentListItem(BaseModel):
    content_id: str
    metadata: ContentMetadata | None
    analytics: ContentAnalytics
    comparison: dict[str, MetricChange]


class ContentPage(PinnedAnswer):
    period: PeriodInfo
    previous_period: PeriodInfo
    sort: str
    order: str
    total: int
    limit: int
    offset: int
    items: list[ContentListItem]
    source: str


class TopContentItem(BaseModel):
    rank: int
    content_id: str
    metadata: ContentMetadata | None
    value: float
    previous_value: float
    change_percent: float | None
    views: int
    unique_views: int


class TopPerforming(PinnedAnswer):
    period: PeriodInfo
    previous_period: PeriodInfo
    metric: str
    category: str | None
    content_type: str | None
    min_views: int
    items: list[TopContentItem]
    source: str


class AudienceSlice(BaseModel):
    value: str
    views: int
    unique_views: int
    share: float
    previous_views: int
    previous_share: float


class ContentAudience(PinnedAnswer):
    content_id: str
    period: PeriodInfo
    previous_period: PeriodInfo
    views: int
    unique_views: int
    comparison: dict[str, MetricChange]
    # traffic_source, country, region, device_type, browser, referrer_host -> slices by views ('' = not known).
    breakdowns: dict[str, list[AudienceSlice]]
    source: str


@dataclass(slots=True)
class ContentNumbers:
    """ContentAnalytics for the period and the previous one, and which table answered."""

    current: ContentAnalytics
    previous: ContentAnalytics
    series: list[ContentSeriesPoint]
    source: str
    # Whether the content had any activity in the period or the previous one.
    active: bool = True

    def comparison(self) -> dict[str, MetricChange]:
        return compare(_scalars(self.current), _scalars(self.previous))


def _scalars(analytics: ContentAnalytics) -> dict[str, float]:
    return {name: float(getattr(analytics, name)) for name in COMPARED_FIELDS}


def _top_places(views: dict[str, int]) -> dict[str, int]:
    """The TOP_LOCATIONS most viewed known places (not ''), most views first, ties by name."""
    known = sorted(((value, int(n)) for value, n in views.items() if value and n), key=lambda p: (-p[1], p[0]))
    return dict(known[:TOP_LOCATIONS])


async def _run_compiled(store: EventStore, compiled: CompiledQuery, extra: tuple[tuple[str, str], ...]) -> QueryRows:
    """``compiled`` run as run_query runs it, with ``extra`` (name, aggregate over the rollup's columns)
    computed beside its metrics."""
    sql = compiled.sql
    if extra:
        marker = f" FROM {compiled.source} "
        if sql.count(marker) != 1:
            raise ValueError(f"cannot add columns to a statement that does not read {compiled.source} once")
        columns = ", ".join(f"{expression} AS x_{name}" for name, expression in extra)
        sql = sql.replace(marker, f", {columns}{marker}")
    result = await store.query(sql, compiled.parameters)
    names = (*compiled.columns, *(name for name, _ in extra))
    rows = [dict(zip(names, row, strict=True)) for row in result.rows]
    if compiled.grouping_masks:
        for row in rows:
            row["grouping_set"] = compiled.grouping_masks[int(row["grouping_set"])]
    return QueryRows(rows=rows, source=compiled.source)


def content_filters(content_ids: list[str] | None = None, **metadata: str | None) -> tuple[Filter, ...]:
    filters = [Filter("content_id", tuple(content_ids))] if content_ids is not None else []
    filters += [Filter(name, (value,)) for name, value in metadata.items() if value]
    return tuple(filters)


class ContentAnalyticsService:
    def __init__(self, store: EventStore, metadata: ContentMetadataStore) -> None:
        self._store = store
        self._metadata = metadata
        self._most: dict[tuple[date, date, str, ContentScope], tuple[float, dict[str, int]]] = {}

    async def known(self, content_ids: list[str]) -> set[str]:
        """The ids that have events (in any rollup or raw) or metadata."""
        result = await self._store.query(
            "SELECT content_id FROM content_daily WHERE content_id IN {ids:Array(String)} GROUP BY content_id "
            "UNION DISTINCT SELECT content_id FROM content_metadata_updates WHERE content_id IN {ids:Array(String)} "
            "GROUP BY content_id "
            "UNION DISTINCT SELECT content_id FROM events WHERE content_id IN {ids:Array(String)} "
            "LIMIT 1 BY content_id",
            {"ids": list(content_ids)},
        )
        return {row[0] for row in result.rows}

    async def require_known(self, content_ids: list[str]) -> None:
        """404 for the first id never recorded, or (the same error) outside the request's content scope."""
        known = await self.known(content_ids)
        if not current_scope().unrestricted:
            known &= await admitted(self._store, content_ids)
        missing = [c for c in content_ids if c not in known]
        if missing:
            raise unknown_content(missing[0])

    async def report(self, content_id: str, period: Period) -> ContentAnalyticsReport:
        if current_scope().unrestricted:
            numbers, metadata = await asyncio.gather(
                self.compute([content_id], period, series=True), self._metadata.get_many([content_id])
            )
        else:
            # The scope check runs beside the computation rather than before it: a content outside the
            # scope fails the group (404, as if never recorded) and the computation is cancelled. No
            # number reaches the caller unless the check passed, so the one content's statements run
            # without the scope's condition (a content_metadata subquery in each); the popularity
            # baseline, the most views of any content, stays that of the in-scope content.
            scope = current_scope()
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(require_in_scope(self._store, [content_id]))
                    with using_scope(ALL_CONTENT):
                        computed = group.create_task(
                            self.compute([content_id], period, series=True, popularity_scope=scope)
                        )
                    described = group.create_task(self._metadata.get_many([content_id]))
            except* AnalyticsError as failed:
                raise failed.exceptions[0] from None
            numbers, metadata = computed.result(), described.result()
        found = numbers[content_id]
        if not found.active and content_id not in metadata:
            # No activity in either period: it may still be known (events at other times).
            await self.require_known([content_id])
        return ContentAnalyticsReport(
            content_id=content_id,
            metadata=metadata.get(content_id),
            period=PeriodInfo.of(period),
            previous_period=PeriodInfo.of(period.previous()),
            analytics=found.current,
            comparison=found.comparison(),
            series=found.series,
            source=found.source,
        )

    async def compute(
        self,
        content_ids: list[str],
        period: Period,
        *,
        series: bool = False,
        popularity_scope: ContentScope | None = None,
    ) -> dict[str, ContentNumbers]:
        """ContentAnalytics of each id for the period and the previous period, in a fixed number of queries.

        Popularity compares with the most viewed content of ``popularity_scope`` (by default the request's)."""
        previous = period.previous()
        only = content_filters(content_ids)
        # A daily series over both periods also gives the daily views the trend needs.
        daily_series = series and period.granularity == "day"
        totals_query = MetricQuery("content", _TOTALS, period, ("content_id", "period"), only, with_previous=True)
        if daily_series:
            # One pass over the daily states gives both the period totals and the days: reading the
            # exact-distinct states twice was a third of the report's cost.
            totals_query = MetricQuery(
                "content",
                _TOTALS,
                period,
                ("content_id", "period", "bucket"),
                only,
                with_previous=True,
                grouping_sets=(("content_id", "period"), ("content_id", "bucket")),
            )
        totals_sql = compile_query(totals_query)
        # content_daily also holds each content's views by UTC hour and by place (migration 016), and
        # it answers only where local days are UTC days: the totals statement then brings the
        # hourly distribution and top places too, instead of two statements of their own.
        with_places = totals_sql.source == _DAILY_ROLLUP
        queries: list[Any] = [
            _run_compiled(self._store, totals_sql, _PLACE_COLUMNS if with_places else ()),
            content_watch_seconds(self._store, content_ids, [period, previous]),
            self._most_views(period, current_scope() if popularity_scope is None else popularity_scope),
        ]
        if not with_places:
            queries += [
                run_query(self._store, MetricQuery("content", ("views",), period, ("content_id", "hour_of_day"), only)),
                run_query(
                    self._store,
                    MetricQuery(
                        "breakdown",
                        ("views",),
                        period,
                        ("content_id", "dimension", "value"),
                        (*only, Filter("dimension", _PLACES), Filter("value", ("",), exclude=True)),
                        order_by=(("views", True), ("value", False)),
                        limit_by=(TOP_LOCATIONS, ("content_id", "dimension")),
                    ),
                ),
            ]
        if not daily_series:
            days = MetricQuery("content", ("views",), period, ("content_id", "day"), only, with_previous=True)
            queries.append(run_query(self._store, days))
            if series:
                metrics = ("views", "unique_views", "completion_rate", "interactions")
                queries.append(
                    run_query(self._store, MetricQuery("content", metrics, period, ("content_id", "bucket"), only))
                )
        results = await asyncio.gather(*queries)
        totals, watch, most = results[:3]
        more = results[3:]
        if daily_series:
            total_rows = [row for row in totals.rows if row["grouping_set"] == 0]
            day_rows = series_rows = [row for row in totals.rows if row["grouping_set"] == 1]
        else:
            total_rows = totals.rows
        hourly: dict[str, dict[int, int]] = {}
        places: dict[tuple[str, str], dict[str, int]] = {}
        if with_places:
            for row in total_rows:
                if row["period"] == "current":
                    hourly[row["content_id"]] = {int(h): int(v) for h, v in row["hour_views"].items()}
                    for dimension, column in zip(_PLACES, ("country_views", "region_views"), strict=True):
                        places[(row["content_id"], dimension)] = _top_places(row[column])
        else:
            hours, locations = more[:2]
            more = more[2:]
            for row in hours.rows:
                hourly.setdefault(row["content_id"], {})[int(row["hour_of_day"])] = int(row["views"])
            for row in locations.rows:
                places.setdefault((row["content_id"], row["dimension"]), {})[row["value"]] = int(row["views"])
        if not daily_series:
            day_rows = more[0].rows
            series_rows = more[1].rows if series else []
        by_content: dict[str, dict[str, dict[str, Any]]] = {}
        for row in total_rows:
            by_content.setdefault(row["content_id"], {})[row["period"]] = row
        day_column = "bucket" if daily_series else "day"
        daily: dict[tuple[str, date], int] = {(r["content_id"], r[day_column]): int(r["views"]) for r in day_rows}
        points: dict[str, dict[str, ContentSeriesPoint]] = {}
        if series:
            for row in series_rows:
                label = bucket_label(row["bucket"], period)
                points.setdefault(row["content_id"], {})[label] = ContentSeriesPoint(
                    bucket=label,
                    views=row["views"],
                    unique_views=row["unique_views"],
                    completion_rate=row["completion_rate"],
                    interactions=row["interactions"],
                )
        now = utc_now()
        out: dict[str, ContentNumbers] = {}
        for content_id in content_ids:
            rows = by_content.get(content_id, {})
            current = self._analytics(
                content_id,
                period,
                rows.get("current", {}),
                watch.get((content_id, 0), 0.0),
                [daily.get((content_id, d), 0) for d in period.dates()],
                most.get("current", 0),
                now,
            )
            current.top_countries = places.get((content_id, "country"), {})
            current.top_regions = places.get((content_id, "region"), {})
            hours_of_content = hourly.get(content_id, {})
            current.hourly_distribution = {hour: hours_of_content.get(hour, 0) for hour in range(24)}
            before = self._analytics(
                content_id,
                previous,
                rows.get("previous", {}),
                watch.get((content_id, 1), 0.0),
                [daily.get((content_id, d), 0) for d in previous.dates()],
                most.get("previous", 0),
                now,
            )
            empty = ContentSeriesPoint(bucket="", views=0, unique_views=0, completion_rate=0.0, interactions=0)
            content_points = points.get(content_id, {})
            out[content_id] = ContentNumbers(
                current=current,
                previous=before,
                series=[
                    content_points.get(label) or empty.model_copy(update={"bucket": label})
                    for label in period_buckets(period)
                ]
                if series
                else [],
                source=totals.source,
                active=content_id in by_content,
            )
        return out

    async def _most_views(self, period: Period, scope: ContentScope) -> dict[str, int]:
        """The most views any content had, in the period and in the previous one (for popularity).

        It reads every content's rollup rows of the window, and it moves slowly, so each replica
        keeps it for MOST_VIEWS_SECONDS. Under a content scope it is the most of the in-scope content.
        """
        key = (period.start_date, period.end_date, period.timezone, scope)
        cached = self._most.get(key)
        if cached is not None and time.monotonic() - cached[0] < MOST_VIEWS_SECONDS:
            return cached[1]
        with using_scope(scope):
            query = MetricQuery("content", ("views",), period, ("content_id", "period"), with_previous=True)
            inner = compile_query(query)
        result = await self._store.query(
            f"SELECT d_period, max(m_views) FROM ({inner.sql}) GROUP BY d_period", inner.parameters
        )
        most = {row[0]: int(row[1]) for row in result.rows}
        if len(self._most) >= 256:
            self._most.clear()
        self._most[key] = (time.monotonic(), most)
        return most

    @staticmethod
    def _analytics(
        content_id: str,
        period: Period,
        row: dict[str, Any],
        watch_seconds: float,
        daily: list[int],
        most_views: int,
        now: Any,
    ) -> ContentAnalytics:
        def n(name: str) -> int:
            return int(row.get(name, 0))

        views, unique_views = n("views"), n("unique_views")
        completion_rate = float(row.get("completion_rate", 0.0))
        sessions = n("playback_sessions")
        return ContentAnalytics(
            content_id=content_id,
            date=period.end_date,
            total_views=views,
            unique_views=unique_views,
            average_view_duration=round(watch_seconds / sessions, 3) if sessions else 0.0,
            completion_rate=completion_rate,
            likes=n("likes"),
            shares=n("shares"),
            bookmarks=n("bookmarks"),
            comments=n("comments"),
            search_impressions=n("search_impressions"),
            search_clicks=n("search_clicks"),
            recommendation_impressions=n("recommendation_impressions"),
            recommendation_clicks=n("recommendation_clicks"),
            direct_traffic=n("direct_views"),
            search_traffic=n("search_views"),
            recommendation_traffic=n("recommendation_views"),
            external_traffic=n("external_views"),
            desktop_views=n("desktop_views"),
            mobile_views=n("mobile_views"),
            tablet_views=n("tablet_views"),
            daily_trend=scores.daily_trend(daily),
            popularity_score=scores.popularity(views, most_views),
            engagement_score=scores.content_engagement(views, n("interactions")),
            quality_score=scores.content_quality(completion_rate, n("likes"), n("bookmarks"), unique_views),
            calculated_at=now,
            last_updated=now,
        )

    async def page(
        self,
        period: Period,
        *,
        sort: str = "views",
        descending: bool = True,
        limit: int = 20,
        offset: int = 0,
        content_ids: list[str] | None = None,
        category: str | None = None,
        content_type: str | None = None,
        language: str | None = None,
    ) -> ContentPage:
        """Contents with activity in the period, ranked by ``sort``, one page of full ContentAnalytics."""
        if sort not in RANKING_METRICS:
            raise InvalidRequest(f"sort must be one of {', '.join(RANKING_METRICS)}", details={"field": "sort"})
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}", details={"field": "limit"})
        filters = content_filters(content_ids, category=category, content_type=content_type, language=language)
        ranked = MetricQuery(
            "content",
            (sort,),
            period,
            ("content_id",),
            filters,
            order_by=((sort, descending), ("content_id", False)),
            limit=limit,
            offset=offset,
        )
        counted = compile_query(MetricQuery("content", ("views",), period, ("content_id",), filters))
        ranking, total = await asyncio.gather(
            run_query(self._store, ranked),
            self._store.query(f"SELECT count() FROM ({counted.sql})", counted.parameters),
        )
        ids = [row["content_id"] for row in ranking.rows]
        numbers, metadata = await asyncio.gather(self.compute(ids, period), self._metadata.get_many(ids))
        return ContentPage(
            period=PeriodInfo.of(period),
            previous_period=PeriodInfo.of(period.previous()),
            sort=sort,
            order="desc" if descending else "asc",
            total=int(total.rows[0][0]),
            limit=limit,
            offset=offset,
            items=[
                ContentListItem(
                    content_id=cid,
                    metadata=metadata.get(cid),
                    analytics=numbers[cid].current,
                    comparison=numbers[cid].comparison(),
                )
                for cid in ids
            ],
            source=ranking.source,
        )

    async def top_performing(
        self,
        period: Period,
        *,
        metric: str = "views",
        limit: int = 10,
        category: str | None = None,
        content_type: str | None = None,
        min_views: int = 1,
    ) -> TopPerforming:
        if metric not in RANKING_METRICS:
            raise InvalidRequest(f"metric must be one of {', '.join(RANKING_METRICS)}", details={"field": "metric"})
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}", details={"field": "limit"})
        if min_views < 0:
            raise InvalidRequest("min_views must be 0 or more", details={"field": "min_views"})
        filters = content_filters(category=category, content_type=content_type)
        ranking = await run_query(
            self._store,
            MetricQuery(
                "content",
                (metric, "views", "unique_views"),
                period,
                ("content_id",),
                filters,
                order_by=((metric, True), ("content_id", False)),
                limit=limit,
                at_least=(("views", min_views),),
            ),
        )
        ids = [row["content_id"] for row in ranking.rows]
        earlier, metadata = await asyncio.gather(
            run_query(
                self._store, MetricQuery("content", (metric,), period.previous(), ("content_id",), content_filters(ids))
            ),
            self._metadata.get_many(ids),
        )
        before = {row["content_id"]: float(row[metric]) for row in earlier.rows}
        items = []
        for rank, row in enumerate(ranking.rows, start=1):
            change = MetricChange.of(float(row[metric]), before.get(row["content_id"], 0.0))
            items.append(
                TopContentItem(
                    rank=rank,
                    content_id=row["content_id"],
                    metadata=metadata.get(row["content_id"]),
                    value=change.current,
                    previous_value=change.previous,
                    change_percent=change.change_percent,
                    views=row["views"],
                    unique_views=row["unique_views"],
                )
            )
        return TopPerforming(
            period=PeriodInfo.of(period),
            previous_period=PeriodInfo.of(period.previous()),
            metric=metric,
            category=category,
            content_type=content_type,
            min_views=min_views,
            items=items,
            source=ranking.source,
        )

    async def audience(self, content_id: str, period: Period, *, limit: int = 20) -> ContentAudience:
        """Who views the content: views and unique viewers by traffic source, country, region, device, browser,
        referrer."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}", details={"field": "limit"})
        await self.require_known([content_id])
        only = content_filters([content_id])
        slices, totals = await asyncio.gather(
            run_query(
                self._store,
                MetricQuery(
                    "breakdown",
                    ("views", "unique_views"),
                    period,
                    ("period", "dimension", "value"),
                    only,
                    with_previous=True,
                ),
            ),
            run_query(
                self._store,
                MetricQuery("content", ("views", "unique_views"), period, ("period",), only, with_previous=True),
            ),
        )
        total = {row["period"]: row for row in totals.rows}
        now_views = int(total.get("current", {}).get("views", 0))
        before_views = int(total.get("previous", {}).get("views", 0))
        grouped: dict[str, dict[str, dict[str, dict[str, int]]]] = {}
        for row in slices.rows:
            grouped.setdefault(row["dimension"], {}).setdefault(row["value"], {})[row["period"]] = row
        breakdowns: dict[str, list[AudienceSlice]] = {}
        for dimension in BREAKDOWN_DIMENSIONS:
            values = []
            for value, by_period in grouped.get(dimension, {}).items():
                current = by_period.get("current", {})
                earlier = by_period.get("previous", {})
                views = int(current.get("views", 0))
                previous_views = int(earlier.get("views", 0))
                if not views:
                    continue
                values.append(
                    AudienceSlice(
                        value=value,
                        views=views,
                        unique_views=int(current.get("unique_views", 0)),
                        share=views / now_views if now_views else 0.0,
                        previous_views=previous_views,
                        previous_share=previous_views / before_views if before_views else 0.0,
                    )
                )
            values.sort(key=lambda s: (-s.views, s.value))
            breakdowns[dimension] = values[:limit]
        current_totals = total.get("current", {})
        previous_totals = total.get("previous", {})
        return ContentAudience(
            content_id=content_id,
            period=PeriodInfo.of(period),
            previous_period=PeriodInfo.of(period.previous()),
            views=now_views,
            unique_views=int(current_totals.get("unique_views", 0)),
            comparison=compare(
                {"views": now_views, "unique_views": int(current_totals.get("unique_views", 0))},
                {"views": before_views, "unique_views": int(previous_totals.get("unique_views", 0))},
            ),
            breakdowns=breakdowns,
            source=slices.source,
        )
