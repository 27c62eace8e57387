"""Behavior patterns across all users: when they watch, how long sessions last, what they watch next.

- hour of day and day of week: content views by local hour (0-23) and ISO weekday (1 = Monday) in
  the request's timezone, from the content rollups;
- session lengths: sessions started in the period by length bucket (semantic.sessions);
- next-content transitions: pairs of consecutive content_views of different contents in one
  session (A, A, B counts A -> B once), the most frequent first (semantic.journeys.transitions_sql,
  over the session-ordered copy of the steps).
"""

from __future__ import annotations

import asyncio
from typing import Any

from core.errors import InvalidRequest
from core.taxonomy import CONTENT_VIEW
from semantic.answers import PinnedAnswer
from semantic.compiler import MetricQuery, run_query
from semantic.content_metadata import ContentMetadataStore
from semantic.journeys import Transition, session_steps, transitions_sql
from semantic.periods import Period, period_label, utc_text
from semantic.results import PeriodInfo
from semantic.sessions import length_distribution
from storage.events import EventStore

MAX_TRANSITIONS = 100


class BehaviorPatterns(PinnedAnswer):
    period: PeriodInfo
    previous_period: PeriodInfo
    views_by_hour: dict[int, int]
    previous_views_by_hour: dict[int, int]
    views_by_weekday: dict[int, int]
    previous_views_by_weekday: dict[int, int]
    session_lengths: dict[str, int]
    previous_session_lengths: dict[str, int]
    transitions: list[Transition]
    source: str


class BehaviorService:
    def __init__(self, store: EventStore, metadata: ContentMetadataStore) -> None:
        self._store = store
        self._metadata = metadata

    async def patterns(
        self, period: Period, *, transitions: int = 20, steps_source: str = "session_steps"
    ) -> BehaviorPatterns:
        if not 1 <= transitions <= MAX_TRANSITIONS:
            raise InvalidRequest(
                f"transitions must be between 1 and {MAX_TRANSITIONS}", details={"field": "transitions"}
            )
        previous = period.previous()
        params: dict[str, Any] = {
            "transitions_limit": transitions,
            "w_start": utc_text(previous.start),
            "w_end": utc_text(period.end),
        }
        label = period_label("timestamp", [period, previous], params)
        window = "timestamp >= {w_start:DateTime64(3, 'UTC')} AND timestamp < {w_end:DateTime64(3, 'UTC')}"
        views = session_steps(f"event_type = '{CONTENT_VIEW}' AND {window}", steps_source)
        hours, weekdays, (lengths, lengths_before), moves = await asyncio.gather(
            run_query(
                self._store, MetricQuery("content", ("views",), period, ("period", "hour_of_day"), with_previous=True)
            ),
            run_query(
                self._store, MetricQuery("content", ("views",), period, ("period", "weekday"), with_previous=True)
            ),
            length_distribution(self._store, [period, previous]),
            self._store.query(transitions_sql(views, window, label), params),
        )

        def spread(rows: list[dict[str, Any]], key: str, which: str, keys: range) -> dict[int, int]:
            found = {int(r[key]): int(r["views"]) for r in rows if r["period"] == which}
            return {k: found.get(k, 0) for k in keys}

        ids = sorted({r[0] for r in moves.rows} | {r[1] for r in moves.rows})
        titles = await self._metadata.get_many(ids)
        return BehaviorPatterns(
            period=PeriodInfo.of(period),
            previous_period=PeriodInfo.of(previous),
            views_by_hour=spread(hours.rows, "hour_of_day", "current", range(24)),
            previous_views_by_hour=spread(hours.rows, "hour_of_day", "previous", range(24)),
            views_by_weekday=spread(weekdays.rows, "weekday", "current", range(1, 8)),
            previous_views_by_weekday=spread(weekdays.rows, "weekday", "previous", range(1, 8)),
            session_lengths=lengths,
            previous_session_lengths=lengths_before,
            transitions=[
                Transition(
                    from_content_id=a,
                    to_content_id=b,
                    from_title=titles[a].title if a in titles else None,
                    to_title=titles[b].title if b in titles else None,
                    count=int(c),
                    previous_count=int(p),
                )
                for a, b, c, p in moves.rows
            ],
            source=hours.source,
        )
