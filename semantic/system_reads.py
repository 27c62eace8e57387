"""The system analytics reads, answered through the result cache.

The REST routes (serve_app/routes/system.py) and the GraphQL fields (graphql_schema/system.py) ask
each read by the same method here, so one question makes one cache entry whichever transport asks it
(as semantic/analytics_reads.py does for content, users and search). A read's key is its kind and
every argument its answer is computed from, after defaults; answers say their ``as_of``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from core.access import Principal
from semantic.analytics_reads import AnsweringServices
from semantic.answers import Answers, PinnedAnswer
from semantic.periods import Period
from semantic.result_cache import CachedAnswer
from semantic.system import SystemAnalyticsService


class SystemReads:
    """The system reads of one caller (its role is part of every key)."""

    def __init__(self, system: SystemAnalyticsService, answers: Answers, principal: Principal | None) -> None:
        self._system = system
        self._answers = answers
        self._principal = principal

    @classmethod
    def of(cls, services: AnsweringServices, principal: Principal | None) -> SystemReads:
        return cls(services.analytics.system, services.answers, principal)

    async def _answer(
        self, kind: str, compute: Callable[..., Awaitable[PinnedAnswer]], period: Period, **options: Any
    ) -> CachedAnswer:
        request = {"period": period.to_dict(), **options}
        return await self._answers.answer(kind, request, self._principal, lambda _watermark: compute(period, **options))

    async def health(self, period: Period) -> CachedAnswer:
        return await self._answer("system.health", self._system.health, period)

    async def performance(self, period: Period, *, service: str | None) -> CachedAnswer:
        return await self._answer("system.performance", self._system.performance, period, service=service)

    async def errors(self, period: Period, *, service: str | None, limit: int) -> CachedAnswer:
        return await self._answer("system.errors", self._system.errors, period, service=service, limit=limit)

    async def usage(self, period: Period, *, service: str | None) -> CachedAnswer:
        return await self._answer("system.usage", self._system.usage, period, service=service)

    async def services(
        self,
        period: Period,
        *,
        service: str | None,
        limit: int,
        offset: int,
        order: Literal["asc", "desc"],
    ) -> CachedAnswer:
        return await self._answer(
            "system.services",
            self._system.services,
            period,
            service=service,
            limit=limit,
            offset=offset,
            order=order,
        )

    async def endpoints(
        self, period: Period, *, service: str | None, sort: str, limit: int, offset: int
    ) -> CachedAnswer:
        return await self._answer(
            "system.endpoints",
            self._system.endpoints,
            period,
            service=service,
            sort=sort,
            limit=limit,
            offset=offset,
        )
