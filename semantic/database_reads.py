"""The database performance read, answered through the result cache: the REST route
(serve_app/routes/database.py) and the GraphQL field (graphql_schema/database.py) ask it by the same
method, so one question makes one cache entry whichever transport asks it (the rules of
semantic/analytics_reads.py). The slow threshold is part of the key: an answer computed under another
setting is never served.
"""

from __future__ import annotations

from core.access import Principal
from semantic.analytics_reads import AnalyticsReads, AnsweringServices
from semantic.periods import Period
from semantic.result_cache import CachedAnswer


class DatabaseReads(AnalyticsReads):
    @classmethod
    def of(cls, services: AnsweringServices, principal: Principal | None) -> DatabaseReads:
        return cls(services.analytics, services.answers, principal)

    async def database_performance(self, period: Period, *, service: str | None, limit: int, sort: str) -> CachedAnswer:
        performance = self._analytics.database_performance
        return await self._answer(
            "database.performance",
            performance.performance,
            period=period,
            service=service,
            limit=limit,
            sort=sort,
            slow_query_ms=performance.slow_query_ms,
        )
