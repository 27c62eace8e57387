"""The daily content records of the batch job: the spec's ContentAnalytics of one content on one UTC day,
and the day's content performance rankings (the spec's ``store_content_analytics`` and
``update_content_rankings`` steps).

A record is what ``GET /api/v1/analytics/content/{id}`` answers for that day, from the same code
(``ContentAnalyticsService.compute``): one implementation of each metric, whichever way it is asked.
Popularity is relative to the most viewed content of the whole day, as for an unrestricted caller.

The performance score a ranking orders by is the mean of the popularity, engagement and quality scores
(each 0-100, semantic/scores.py); ties go to more views, then to the content id.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from core.access import ALL_CONTENT
from core.models import ContentAnalytics
from semantic.compiler import MetricQuery, run_query
from semantic.content import ContentAnalyticsService
from semantic.content_metadata import ContentMetadataStore
from semantic.periods import Period
from storage.aggregates import RECORD_COLUMNS
from storage.events import EventStore

# Ranked per ranking (overall, and within each category).
RANKING_SIZE = 100


def day_period(day: date) -> Period:
    return Period(day, day, "UTC", "day")


def performance_score(analytics: ContentAnalytics) -> float:
    return (analytics.popularity_score + analytics.engagement_score + analytics.quality_score) / 3


async def active_content(store: EventStore, day: date) -> list[str]:
    """The content with any views or interactions on ``day``, in id order."""
    rows = await run_query(
        store,
        MetricQuery(
            "content",
            ("views", "interactions"),
            day_period(day),
            ("content_id",),
            order_by=(("content_id", False),),
            skip_empty=True,
        ),
    )
    return [str(row["content_id"]) for row in rows.rows if row["content_id"]]


async def content_records(
    content: ContentAnalyticsService,
    metadata: ContentMetadataStore,
    day: date,
    content_ids: list[str],
    *,
    calculated_at: datetime,
) -> list[dict[str, Any]]:
    """The records of ``content_ids`` on ``day``, one per id, as column -> value."""
    if not content_ids:
        return []
    numbers = await content.compute(content_ids, day_period(day), popularity_scope=ALL_CONTENT)
    known = await metadata.get_many(content_ids)
    records = []
    for content_id in content_ids:
        analytics = numbers[content_id].current
        values = analytics.model_dump()
        values.update(
            day=day,
            category=getattr(known.get(content_id), "category", None),
            hourly_distribution={str(hour): views for hour, views in analytics.hourly_distribution.items()},
            performance_score=performance_score(analytics),
            calculated_at=calculated_at,
        )
        records.append({column: values[column] for column in RECORD_COLUMNS})
    return records


def rankings(records: list[dict[str, Any]], *, size: int = RANKING_SIZE) -> list[dict[str, Any]]:
    """The day's rankings: overall (category '') and within each category, best first."""
    ordered = sorted(records, key=lambda r: (-r["performance_score"], -r["total_views"], r["content_id"]))
    groups: dict[str, list[dict[str, Any]]] = {"": ordered}
    for record in ordered:
        if record["category"]:
            groups.setdefault(record["category"], []).append(record)
    ranked = []
    for category, members in groups.items():
        for rank, record in enumerate(members[:size], start=1):
            ranked.append(
                {
                    "day": record["day"],
                    "category": category,
                    "rank": rank,
                    "content_id": record["content_id"],
                    "performance_score": record["performance_score"],
                    "total_views": record["total_views"],
                }
            )
    return ranked
