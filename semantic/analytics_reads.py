"""The content, user and search analytics reads, answered through the result cache.

The REST routes (serve_app/routes/content.py, users.py, search.py) and the GraphQL fields
(graphql_schema/content.py, users.py, search.py) ask each read by the same method here, so one
question makes one cache entry whichever transport asks it. A read's key is its kind and a request
made of every argument its answer is computed from, after defaults: the resolved period (so "today"
is in the key, which never outlives its day), the content or user id, and each option. Answers are
``PinnedAnswer``s: they say the watermark they were computed at (``as_of``).

An error of the computation (an unknown content or user, a bad option) reaches the caller as it was
raised and is not cached.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from core.access import Principal
from semantic.analytics import Analytics
from semantic.answers import Answers, PinnedAnswer
from semantic.periods import Period
from semantic.result_cache import CachedAnswer


class AnsweringServices(Protocol):
    """What a transport holds that the reads need (a replica's Services, the GraphQL context)."""

    @property
    def analytics(self) -> Analytics: ...

    @property
    def answers(self) -> Answers: ...


def _normalized(value: Any) -> Any:
    """An argument as the cache key holds it: plain JSON values."""
    if isinstance(value, Period):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


class AnalyticsReads:
    """The reads of one caller (its role is part of every key)."""

    def __init__(self, analytics: Analytics, answers: Answers, principal: Principal | None) -> None:
        self._analytics = analytics
        self._answers = answers
        self._principal = principal

    @classmethod
    def of(cls, services: AnsweringServices, principal: Principal | None) -> AnalyticsReads:
        return cls(services.analytics, services.answers, principal)

    async def _answer(
        self, kind: str, compute: Callable[..., Awaitable[PinnedAnswer]], **arguments: Any
    ) -> CachedAnswer:
        # The request is made of exactly the arguments the computation gets: nothing it depends on
        # can be left out of the key.
        request = {name: _normalized(value) for name, value in arguments.items()}
        return await self._answers.answer(kind, request, self._principal, lambda _watermark: compute(**arguments))

    # ---- content ----------------------------------------------------------------------------

    async def content_list(
        self,
        period: Period,
        *,
        sort: str,
        descending: bool,
        limit: int,
        offset: int,
        content_ids: list[str] | None,
        category: str | None,
        content_type: str | None,
        language: str | None,
    ) -> CachedAnswer:
        return await self._answer(
            "content.list",
            self._analytics.content.page,
            period=period,
            sort=sort,
            descending=descending,
            limit=limit,
            offset=offset,
            content_ids=content_ids,
            category=category,
            content_type=content_type,
            language=language,
        )

    async def top_performing(
        self,
        period: Period,
        *,
        metric: str,
        limit: int,
        category: str | None,
        content_type: str | None,
        min_views: int,
    ) -> CachedAnswer:
        return await self._answer(
            "content.top_performing",
            self._analytics.content.top_performing,
            period=period,
            metric=metric,
            limit=limit,
            category=category,
            content_type=content_type,
            min_views=min_views,
        )

    async def content_comparison(self, content_ids: list[str], period: Period, *, lifecycle_days: int) -> CachedAnswer:
        return await self._answer(
            "content.comparison",
            self._analytics.comparison.compare,
            content_ids=content_ids,
            period=period,
            lifecycle_days=lifecycle_days,
        )

    async def content_report(self, content_id: str, period: Period) -> CachedAnswer:
        return await self._answer(
            "content.report", self._analytics.content.report, content_id=content_id, period=period
        )

    async def content_insights(self, content_id: str, period: Period) -> CachedAnswer:
        return await self._answer(
            "content.insights", self._analytics.insights.insights, content_id=content_id, period=period
        )

    async def content_audience(self, content_id: str, period: Period, *, limit: int) -> CachedAnswer:
        return await self._answer(
            "content.audience", self._analytics.content.audience, content_id=content_id, period=period, limit=limit
        )

    async def content_journey(self, content_id: str, period: Period, *, limit: int) -> CachedAnswer:
        return await self._answer(
            "content.journey",
            self._analytics.journeys.content_journey,
            content_id=content_id,
            period=period,
            limit=limit,
        )

    # ---- users ------------------------------------------------------------------------------

    async def users_overview(self, period: Period) -> CachedAnswer:
        return await self._answer("users.overview", self._analytics.users.overview, period=period)

    async def user_segments(
        self,
        period: Period,
        *,
        power_min_share: float | None,
        regular_min_share: float | None,
        churn_inactive_days: int | None,
    ) -> CachedAnswer:
        # The configured thresholds fill those left out, so the key names the rules actually applied.
        segments = self._analytics.segments
        rules = segments.rules(power_min_share, regular_min_share, churn_inactive_days)
        return await self._answer("users.segments", segments.segments, period=period, rules=rules)

    async def user_cohorts(self, period: Period) -> CachedAnswer:
        return await self._answer("users.cohorts", self._analytics.retention.cohorts, period=period)

    async def user_retention(self, period: Period) -> CachedAnswer:
        return await self._answer("users.retention", self._analytics.retention.retention, period=period)

    async def behavior_patterns(self, period: Period, *, transitions: int) -> CachedAnswer:
        return await self._answer(
            "users.behavior_patterns", self._analytics.behavior.patterns, period=period, transitions=transitions
        )

    async def user_report(self, user_id: str, period: Period) -> CachedAnswer:
        return await self._answer("users.report", self._analytics.users.report, user_id=user_id, period=period)

    async def user_journey(self, user_id: str, period: Period, *, sessions: int) -> CachedAnswer:
        return await self._answer(
            "users.journey", self._analytics.journeys.user_journey, user_id=user_id, period=period, sessions=sessions
        )

    async def user_preferences(self, user_id: str, period: Period) -> CachedAnswer:
        return await self._answer(
            "users.preferences", self._analytics.users.preferences, user_id=user_id, period=period
        )

    # ---- search -----------------------------------------------------------------------------

    async def search_overview(self, period: Period) -> CachedAnswer:
        return await self._answer("search.overview", self._analytics.search.overview, period=period)

    async def top_search_queries(self, period: Period, *, limit: int) -> CachedAnswer:
        return await self._answer("search.queries", self._analytics.search.top_queries, period=period, limit=limit)

    async def zero_result_queries(self, period: Period, *, limit: int) -> CachedAnswer:
        return await self._answer(
            "search.zero_results", self._analytics.search.zero_result_queries, period=period, limit=limit
        )

    async def recommendations(self, period: Period, *, limit: int) -> CachedAnswer:
        return await self._answer(
            "search.recommendations", self._analytics.search.recommendations, period=period, limit=limit
        )
