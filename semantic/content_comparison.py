"""Side-by-side content comparison, and each content's lifecycle curve against its category.

The lifecycle curve is cumulative views by age: age 0 is the UTC day of published_at, age n the
n-th day after. A content's curve runs to its age at the end of the period (at most
``lifecycle_days``). The category curve is, for each age, the median of the cumulative views of
every content of the same category (the compared one included) that had reached that age by the
end of the period. Contents without published_at or category get no curve. Under a content scope the
category's contents are its in-scope ones.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel

from core.errors import InvalidRequest
from core.models import ContentAnalytics
from semantic.answers import PinnedAnswer
from semantic.content import ContentAnalyticsService
from semantic.content_metadata import ContentMetadata, ContentMetadataStore
from semantic.content_scope import binder, current_scope, metadata_scope_condition
from semantic.periods import Period
from semantic.results import MetricChange, PeriodInfo
from storage.events import EventStore

MAX_COMPARED = 10
MAX_LIFECYCLE_DAYS = 90

# Per content (cid) published at pub: cumulative views at each age 0..reached age, from content_daily.
_CURVES = """
SELECT cid, age, arraySum(arrayMap((a, v) -> if(a <= age, v, 0), ages, views)) AS cumulative
FROM (
    SELECT p.cid AS cid, p.pub AS pub,
           groupArrayIf(dateDiff('day', p.pub, d.day), d.day >= p.pub AND d.day <= p.pub + {max_age:UInt32}) AS ages,
           groupArrayIf(d.views, d.day >= p.pub AND d.day <= p.pub + {max_age:UInt32}) AS views
    FROM (
        SELECT content_id AS cid, toDate(published_at) AS pub
        FROM content_metadata
        WHERE __PEERS__ AND published_at IS NOT NULL AND toDate(published_at) <= {as_of:Date}
    ) AS p
    LEFT JOIN (
        SELECT content_id, day, sum(views) AS views
        FROM content_daily
        WHERE content_id IN (SELECT content_id FROM content_metadata WHERE __PEERS__) AND day <= {as_of:Date}
        GROUP BY content_id, day
    ) AS d ON d.content_id = p.cid
    GROUP BY cid, pub
)
ARRAY JOIN range(0, toUInt32(least({max_age:UInt32}, dateDiff('day', pub, {as_of:Date})) + 1)) AS age
"""


class LifecyclePoint(BaseModel):
    age_days: int
    cumulative_views: int
    category_median: float | None
    # Contents of the category that had reached this age.
    category_titles: int


class Lifecycle(BaseModel):
    published_at: str
    category: str
    age_days: int
    points: list[LifecyclePoint]
    # Cumulative views at the current age divided by the category median there (None without a median).
    vs_category_median: float | None


class ComparedContent(BaseModel):
    content_id: str
    metadata: ContentMetadata | None
    analytics: ContentAnalytics
    comparison: dict[str, MetricChange]
    lifecycle: Lifecycle | None


class ContentComparison(PinnedAnswer):
    period: PeriodInfo
    previous_period: PeriodInfo
    lifecycle_days: int
    items: list[ComparedContent]


class ContentComparisonService:
    def __init__(self, store: EventStore, content: ContentAnalyticsService, metadata: ContentMetadataStore) -> None:
        self._store = store
        self._content = content
        self._metadata = metadata

    async def compare(self, content_ids: list[str], period: Period, *, lifecycle_days: int = 30) -> ContentComparison:
        ids = list(dict.fromkeys(c.strip() for c in content_ids if c.strip()))
        if not 1 <= len(ids) <= MAX_COMPARED:
            raise InvalidRequest(
                f"ids must name 1 to {MAX_COMPARED} contents, comma-separated", details={"field": "ids"}
            )
        if not 1 <= lifecycle_days <= MAX_LIFECYCLE_DAYS:
            raise InvalidRequest(
                f"lifecycle_days must be between 1 and {MAX_LIFECYCLE_DAYS}", details={"field": "lifecycle_days"}
            )
        await self._content.require_known(ids)
        numbers, metadata = await asyncio.gather(self._content.compute(ids, period), self._metadata.get_many(ids))
        categories = sorted({m.category for m in metadata.values() if m.category and m.published_at})
        medians, curves = await asyncio.gather(
            asyncio.gather(*(self._category_medians(c, period, lifecycle_days) for c in categories)),
            self._curves(ids, period, lifecycle_days),
        )
        by_category = dict(zip(categories, medians, strict=True))
        items = []
        for cid in ids:
            meta = metadata.get(cid)
            lifecycle = None
            if meta and meta.category and meta.published_at and meta.published_at.date() <= period.end_date:
                median = by_category[meta.category]
                own = curves.get(cid, {})
                points = [
                    LifecyclePoint(
                        age_days=age,
                        cumulative_views=value,
                        category_median=median.get(age, (None, 0))[0],
                        category_titles=median.get(age, (None, 0))[1],
                    )
                    for age, value in sorted(own.items())
                ]
                last = points[-1] if points else None
                lifecycle = Lifecycle(
                    published_at=meta.published_at.isoformat(),
                    category=meta.category,
                    age_days=last.age_days if last else 0,
                    points=points,
                    vs_category_median=(
                        round(last.cumulative_views / last.category_median, 4)
                        if last and last.category_median
                        else None
                    ),
                )
            items.append(
                ComparedContent(
                    content_id=cid,
                    metadata=meta,
                    analytics=numbers[cid].current,
                    comparison=numbers[cid].comparison(),
                    lifecycle=lifecycle,
                )
            )
        return ContentComparison(
            period=PeriodInfo.of(period),
            previous_period=PeriodInfo.of(period.previous()),
            lifecycle_days=lifecycle_days,
            items=items,
        )

    async def _curves(self, ids: list[str], period: Period, max_age: int) -> dict[str, dict[int, int]]:
        sql = _CURVES.replace("__PEERS__", "content_id IN {ids:Array(String)}")
        result = await self._store.query(sql, {"ids": ids, "max_age": max_age, "as_of": period.end_date})
        out: dict[str, dict[int, int]] = {}
        for cid, age, cumulative in result.rows:
            out.setdefault(cid, {})[int(age)] = int(cumulative)
        return out

    async def _category_medians(self, category: str, period: Period, max_age: int) -> dict[int, tuple[float, int]]:
        params: dict[str, Any] = {"category": category, "max_age": max_age, "as_of": period.end_date}
        peers = "category = {category:String}"
        scope = current_scope()
        if not scope.unrestricted:
            # The median of the category's in-scope contents only.
            peers += f" AND {metadata_scope_condition(binder(params, 'scope'), scope)}"
        sql = (
            "SELECT age, quantileExactInclusive(0.5)(cumulative), count() FROM ("
            + _CURVES.replace("__PEERS__", peers)
            + ") GROUP BY age"
        )
        result = await self._store.query(sql, params)
        return {int(age): (float(median), int(count)) for age, median, count in result.rows}
