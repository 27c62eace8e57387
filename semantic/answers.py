"""Every analytics answer goes through here: pinned to the current data watermark, served from the result
cache when the same question was answered at the same watermark, for the same scope: the caller's
role and content scope (a scoped principal's answers are computed for its scope and never share an entry
with another scope's; kinds that cannot apply a scope refuse it, semantic/content_scope.py).

Transports (REST routes, GraphQL resolvers, reports, dashboards) call ``Answers.answer`` with the
kind of analysis, the normalized request and a function that computes the answer at a watermark.
An answer model that is a ``PinnedAnswer`` gets its ``as_of`` here, from the watermark its cache key
was made with, so what an answer says of its freshness and what it is cached under never differ.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from pydantic import BaseModel, Field

from core.access import ContentScope, Principal
from semantic.content_scope import check_answer_kind, current_scope, scope_digest, using_scope
from semantic.freshness import Watermark, WatermarkTracker
from semantic.result_cache import CachedAnswer, Question, ResultCache

Compute = Callable[[Watermark], Awaitable[BaseModel]]


class PinnedAnswer(BaseModel):
    """An analytics answer that says how fresh it is: the data watermark it was computed at."""

    as_of: datetime | None = Field(
        default=None,
        description="every event acknowledged before this instant is counted (the data watermark); "
        "null when the answer was not pinned to one",
    )


def content_scope_of(principal: Principal | None) -> ContentScope:
    """The content scope an answer for ``principal`` is computed for: the principal's own, else the
    request's (semantic/content_scope.py)."""
    return principal.scope if principal is not None else current_scope()


def scope_of(principal: Principal | None) -> str:
    """What of the caller an answer may depend on: the role (what its catalog allows) and, when it has
    one, its content scope (unrestricted callers keep the key they always had)."""
    role = f"role={principal.role.value}" if principal is not None else "role=none"
    content = content_scope_of(principal)
    return role if content.unrestricted else f"{role};content={scope_digest(content)}"


class Answers:
    def __init__(self, results: ResultCache, watermarks: WatermarkTracker) -> None:
        self._results = results
        self._watermarks = watermarks

    async def watermark(self) -> Watermark:
        return await self._watermarks.current()

    async def answer(
        self,
        kind: str,
        request: Question,
        principal: Principal | None,
        compute: Compute,
        *,
        at: Watermark | None = None,
    ) -> CachedAnswer:
        """The answer at the current watermark, or at ``at`` (a report pins every table to one)."""
        content = content_scope_of(principal)
        check_answer_kind(kind, content)
        watermark = at if at is not None else await self._watermarks.current()

        async def pinned() -> BaseModel:
            # Computed for the scope the key names, whatever the task's own scope is.
            with using_scope(content):
                result = await compute(watermark)
            if isinstance(result, PinnedAnswer):
                return result.model_copy(update={"as_of": watermark.as_of})
            return result

        return await self._results.answer(kind, request, scope_of(principal), watermark, pinned)

    async def answer_per_interval(
        self,
        kind: str,
        request: Question,
        principal: Principal | None,
        compute: Callable[[], Awaitable[BaseModel]],
        *,
        interval_seconds: float,
        now: float,
    ) -> CachedAnswer:
        """The answer computed at most once per ``interval_seconds`` for one scope, whatever the data did
        meanwhile (a dashboard refreshes on its interval; what ``compute`` asks of the analytics is pinned
        to watermarks by its own calls). Many callers in one interval share one computation."""
        content = content_scope_of(principal)
        check_answer_kind(kind, content)
        tick = int(now // interval_seconds)

        async def scoped() -> BaseModel:
            with using_scope(content):
                return await compute()

        return await self._results.answer_at(kind, request, scope_of(principal), f"tick.{tick}", scoped)

    async def close(self) -> None:
        await self._watermarks.close()
