"""The kinds of saved queries and how each is checked and answered: the registry
semantic/saved_queries.py takes. A saved definition is the request body of its kind's own route,
answered the same way (through the result cache, at the current watermark)."""

from __future__ import annotations

from typing import Any

from core.access import Principal
from semantic.analysis_kinds import ANALYSES, AnalysisKind
from semantic.analytics import Analytics
from semantic.analytics_query import AnalyticsQueryRequest
from semantic.answers import Answers
from semantic.saved_queries import SavedKind
from storage.events import EventStore


def _query_definition(definition: dict[str, Any]) -> dict[str, Any]:
    request = AnalyticsQueryRequest.parse(definition)
    request.check()
    # A page position belongs to one run, not to the definition.
    return request.model_copy(update={"cursor": None}).model_dump(mode="json", exclude_none=True)


def saved_kinds(analytics: Analytics, answers: Answers, store: EventStore) -> dict[str, SavedKind]:
    async def run_query(definition: dict[str, Any], principal: Principal) -> Any:
        service = analytics.query
        resolved = service.resolve(AnalyticsQueryRequest.parse(definition))
        service.check_role(resolved, principal.role)
        answer = await answers.answer(
            "analytics_query", resolved, principal, lambda watermark: service.run(resolved, principal.role, watermark)
        )
        return answer.json()

    def analysis(kind: AnalysisKind) -> SavedKind:
        async def run(definition: dict[str, Any], principal: Principal) -> Any:
            return (await kind.answer(definition, principal, store, answers)).json()

        def validate(definition: dict[str, Any]) -> dict[str, Any]:
            return kind.parse(definition).model_dump(mode="json", exclude_none=True)

        return SavedKind(validate=validate, run=run)

    return {
        "query": SavedKind(validate=_query_definition, run=run_query),
        **{name: analysis(kind) for name, kind in ANALYSES.items()},
    }
