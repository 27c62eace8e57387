"""Repeated query bodies skip parsing and resolving, per role, until the next local midnight."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from core.access import Role
from core.errors import Forbidden, InvalidRequest
from semantic import analytics_query
from semantic.analytics_query import AnalyticsQueryService, RecentQueries
from semantic.result_cache import request_fingerprint


class NoStore:
    async def query(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        raise AssertionError("resolving a query runs no SQL")


class CountingParse:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, body: bytes) -> Any:
        self.calls += 1
        return orjson.loads(body)


BODY = orjson.dumps({"metrics": ["views"], "dimensions": ["country"], "date_range": {"relative": "last_7_days"}})


def test_a_repeated_body_is_parsed_once_per_role() -> None:
    service = AnalyticsQueryService(NoStore())  # type: ignore[arg-type]
    recent, parse = RecentQueries(service), CountingParse()
    first, print1 = recent.get(BODY, Role.ANALYST, parse)
    again, print2 = recent.get(BODY, Role.ANALYST, parse)
    assert parse.calls == 1 and again is first and print1 == print2
    # The fingerprint is the resolved request's: concrete dates, not "last_7_days".
    assert first.date_range is not None and first.date_range.start_date is not None
    assert print1 == request_fingerprint(
        service.resolve(analytics_query.AnalyticsQueryRequest.parse(orjson.loads(BODY)))
    )
    recent.get(BODY, Role.VIEWER, parse)
    assert parse.calls == 2


def test_errors_are_raised_every_time_and_never_kept() -> None:
    recent, parse = RecentQueries(AnalyticsQueryService(NoStore())), CountingParse()  # type: ignore[arg-type]
    users = orjson.dumps({"metrics": ["users"]})
    for _ in range(2):
        with pytest.raises(Forbidden):
            recent.get(users, Role.VIEWER, parse)
    with pytest.raises(InvalidRequest):
        recent.get(orjson.dumps({"metrics": ["nope"]}), Role.ADMIN, parse)
    assert parse.calls == 3


def test_an_entry_ends_at_the_next_midnight_of_the_request_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    recent, parse = RecentQueries(AnalyticsQueryService(NoStore())), CountingParse()  # type: ignore[arg-type]
    recent.get(BODY, Role.ADMIN, parse)
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    after_midnight = datetime.combine(tomorrow, datetime.min.time(), UTC).timestamp() + 1
    monkeypatch.setattr(time, "time", lambda: after_midnight)
    recent.get(BODY, Role.ADMIN, parse)
    assert parse.calls == 2


def test_the_oldest_entry_goes_when_full() -> None:
    recent, parse = RecentQueries(AnalyticsQueryService(NoStore()), max_entries=2), CountingParse()  # type: ignore[arg-type]
    bodies = [orjson.dumps({"metrics": ["views"], "limit": n}) for n in (1, 2, 3)]
    for body in bodies:
        recent.get(body, Role.ADMIN, parse)
    recent.get(bodies[2], Role.ADMIN, parse)
    assert parse.calls == 3
    recent.get(bodies[0], Role.ADMIN, parse)
    assert parse.calls == 4
