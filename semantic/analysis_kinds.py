"""The behaviour analyses by name: their request and result models and how each is answered.

One table for the REST routes, the GraphQL fields and saved queries, so each analysis is parsed,
checked against the caller's role and answered (through the result cache, at the data watermark)
the same way whichever way it is asked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from core.access import Principal
from semantic.analysis_request import AnalysisRequest
from semantic.answers import Answers
from semantic.event_retention import RetentionRequest, RetentionResult, run_retention
from semantic.freshness import Watermark
from semantic.funnels import FunnelRequest, FunnelResult, run_funnel
from semantic.paths import PathsRequest, PathsResult, run_paths
from semantic.result_cache import CachedAnswer
from semantic.stickiness import StickinessRequest, StickinessResult, run_stickiness
from storage.events import EventStore

Runner = Callable[[EventStore, Any, Watermark | None], Awaitable[BaseModel]]


@dataclass(frozen=True, slots=True)
class AnalysisKind:
    # The name saved queries and the result cache know it by.
    name: str
    request: type[AnalysisRequest]
    result: type[BaseModel]
    run: Runner

    def parse(self, body: Any) -> AnalysisRequest:
        """The request as asked (relative ranges kept): 400 naming the field when it is wrong."""
        return self.request.parse(body)

    async def answer(self, body: Any, principal: Principal, store: EventStore, answers: Answers) -> CachedAnswer:
        request = self.parse(body).resolved()
        request.check_role(principal.role)
        return await answers.answer(
            self.name, request, principal, lambda watermark: self.run(store, request, watermark)
        )


FUNNEL = AnalysisKind("funnel", FunnelRequest, FunnelResult, run_funnel)
RETENTION = AnalysisKind("retention", RetentionRequest, RetentionResult, run_retention)
PATHS = AnalysisKind("paths", PathsRequest, PathsResult, run_paths)
STICKINESS = AnalysisKind("stickiness", StickinessRequest, StickinessResult, run_stickiness)

ANALYSES: dict[str, AnalysisKind] = {kind.name: kind for kind in (FUNNEL, RETENTION, PATHS, STICKINESS)}
