"""Journeys: what users did before and after viewing a content, one user's sessions, content-to-content transitions.

A journey step is a page a user saw, in the order of its session: a content_view ("content:<id>"),
a search_query ("search") or a page_view ("page"). Before the first step of a session is "entry",
after its last is "exit". Only events with a session_id take part; steps are ordered by time
(then event id) inside the period.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel

from core.errors import InvalidRequest
from core.taxonomy import CONTENT_VIEW, PAGE_TYPES, SEARCH_QUERY
from semantic.catalog import USER_EVENT_SOURCES
from semantic.content import ContentAnalyticsService
from semantic.content_metadata import ContentMetadataStore
from semantic.periods import Period, period_label, utc_text
from semantic.results import MetricChange, PeriodInfo
from semantic.users import UserAnalyticsService
from storage.event_keys import CONTENT_KEY, sql_list
from storage.events import EventStore

_STEP = (
    f"multiIf(event_type = '{CONTENT_VIEW}', concat('content:', content_key), "
    f"event_type = '{SEARCH_QUERY}', 'search', 'page')"
)
StepKind = Literal["content", "search", "page", "entry", "exit"]
_STEP_KINDS: dict[str, StepKind] = {"search": "search", "page": "page", "entry": "entry", "exit": "exit"}
MAX_STEPS = 20
MAX_SESSIONS = 100
MAX_EVENTS_PER_SESSION = 200


class JourneyStep(BaseModel):
    step: str
    kind: StepKind
    content_id: str | None
    title: str | None
    views: int
    share: float
    previous_views: int


class JourneyPath(BaseModel):
    before: str
    after: str
    views: int


class ContentJourney(BaseModel):
    content_id: str
    period: PeriodInfo
    previous_period: PeriodInfo
    # Views of the content that belong to a session (the others have no before and after).
    views_in_sessions: int
    previous_views_in_sessions: int
    before: list[JourneyStep]
    after: list[JourneyStep]
    paths: list[JourneyPath]


class Transition(BaseModel):
    from_content_id: str
    to_content_id: str
    from_title: str | None
    to_title: str | None
    count: int
    previous_count: int


class UserEvent(BaseModel):
    timestamp: datetime
    id: str
    event_type: str
    content_id: str | None
    title: str | None
    query: str | None
    device_type: str | None


class UserSession(BaseModel):
    session_id: str | None
    started: datetime
    ended: datetime
    duration_seconds: float
    events: list[UserEvent]
    truncated: bool


class UserJourney(BaseModel):
    user_id: str
    period: PeriodInfo
    previous_period: PeriodInfo
    sessions_in_period: int
    events_in_period: int
    comparison: dict[str, MetricChange]
    # Newest first; events without a session_id are grouped under session_id null.
    sessions: list[UserSession]
    transitions: list[Transition]


def _kind(step: str) -> StepKind:
    return "content" if step.startswith("content:") else _STEP_KINDS[step]


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def transitions_sql(source: str, window: str, label: str) -> str:
    """Consecutive views of different contents in one session: (from, to, count in period 0, count in period 1)."""
    return f"""
    SELECT seq[i - 1].3 AS from_id, seq[i].3 AS to_id, countIf(seq[i].4 = '0') AS now, countIf(seq[i].4 = '1') AS before
    FROM (
        SELECT arraySort(x -> (x.1, x.2), groupArray((timestamp, id, content_key, lbl))) AS seq
        FROM (
            SELECT session_id, timestamp, id, content_key, {label} AS lbl
            FROM {source}
            WHERE event_type = '{CONTENT_VIEW}' AND session_id != '' AND content_key != '' AND {window}
        )
        GROUP BY session_id
    )
    ARRAY JOIN arrayEnumerate(seq) AS i
    WHERE i > 1 AND seq[i - 1].3 != seq[i].3
    GROUP BY from_id, to_id
    HAVING now > 0
    ORDER BY now DESC, from_id, to_id
    LIMIT {{transitions_limit:UInt32}}"""


class JourneyService:
    def __init__(
        self,
        store: EventStore,
        content: ContentAnalyticsService,
        users: UserAnalyticsService,
        metadata: ContentMetadataStore,
    ) -> None:
        self._store = store
        self._content = content
        self._users = users
        self._metadata = metadata

    async def content_journey(self, content_id: str, period: Period, *, limit: int = 10) -> ContentJourney:
        if not 1 <= limit <= MAX_STEPS:
            raise InvalidRequest(f"limit must be between 1 and {MAX_STEPS}", details={"field": "limit"})
        await self._content.require_known([content_id])
        previous = period.previous()
        params: dict[str, Any] = {
            "cid": content_id,
            "step": f"content:{content_id}",
            "w_start": utc_text(previous.start),
            "w_end": utc_text(period.end),
            "split": int(period.start.timestamp() * 1000),
        }
        window = "timestamp >= {w_start:DateTime64(3, 'UTC')} AND timestamp < {w_end:DateTime64(3, 'UTC')}"
        result = await self._store.query(
            f"""SELECT if(seq[i].1 >= {{split:Int64}}, '0', '1') AS lbl,
                       if(i = 1, 'entry', seq[i - 1].2) AS before,
                       if(i = length(seq), 'exit', seq[i + 1].2) AS after, count()
            FROM (
                SELECT arraySort(x -> (x.1, x.3), groupArray((toUnixTimestamp64Milli(timestamp), step, id))) AS seq
                FROM (
                    SELECT session_id, timestamp, id, {_STEP} AS step
                    FROM (
                        SELECT *, {CONTENT_KEY} AS content_key FROM events
                        WHERE event_type IN {sql_list(PAGE_TYPES)} AND {window}
                    )
                    WHERE session_id IN (
                        SELECT session_id FROM events
                        WHERE content_id = {{cid:String}} AND event_type = '{CONTENT_VIEW}' AND session_id != ''
                          AND {window}
                    )
                )
                GROUP BY session_id
            )
            ARRAY JOIN arrayEnumerate(seq) AS i
            WHERE seq[i].2 = {{step:String}}
            GROUP BY lbl, before, after""",
            params,
        )
        before: dict[str, list[int]] = {}
        after: dict[str, list[int]] = {}
        paths: dict[tuple[str, str], int] = {}
        totals = [0, 0]
        for lbl, step_before, step_after, count in result.rows:
            index = int(lbl)
            totals[index] += int(count)
            before.setdefault(step_before, [0, 0])[index] += int(count)
            after.setdefault(step_after, [0, 0])[index] += int(count)
            if index == 0:
                paths[(step_before, step_after)] = paths.get((step_before, step_after), 0) + int(count)
        steps = {s for s in (*before, *after) if s.startswith("content:")}
        titles = await self._metadata.get_many([s.removeprefix("content:") for s in steps])

        def ranked(counts: dict[str, list[int]]) -> list[JourneyStep]:
            out = []
            for step, (now, earlier) in sorted(counts.items(), key=lambda item: (-item[1][0], item[0])):
                if not now:
                    continue
                cid = step.removeprefix("content:") if step.startswith("content:") else None
                meta = titles.get(cid) if cid else None
                out.append(
                    JourneyStep(
                        step=step,
                        kind=_kind(step),
                        content_id=cid,
                        title=meta.title if meta else None,
                        views=now,
                        share=now / totals[0] if totals[0] else 0.0,
                        previous_views=earlier,
                    )
                )
            return out[:limit]

        return ContentJourney(
            content_id=content_id,
            period=PeriodInfo.of(period),
            previous_period=PeriodInfo.of(previous),
            views_in_sessions=totals[0],
            previous_views_in_sessions=totals[1],
            before=ranked(before),
            after=ranked(after),
            paths=[
                JourneyPath(before=b, after=a, views=n)
                for (b, a), n in sorted(paths.items(), key=lambda item: (-item[1], item[0]))[:limit]
            ],
        )

    async def user_journey(
        self, user_id: str, period: Period, *, sessions: int = 20, source: str = "events_by_user"
    ) -> UserJourney:
        if not 1 <= sessions <= MAX_SESSIONS:
            raise InvalidRequest(f"sessions must be between 1 and {MAX_SESSIONS}", details={"field": "sessions"})
        await self._users.require_known(user_id, source)
        previous = period.previous()
        params: dict[str, Any] = {
            "user": user_id,
            "limit": sessions,
            "per_session": MAX_EVENTS_PER_SESSION,
            "transitions_limit": 10,
            "w_start": utc_text(previous.start),
            "w_end": utc_text(period.end),
        }
        label = period_label("timestamp", [period, previous], params)
        window = "timestamp >= {w_start:DateTime64(3, 'UTC')} AND timestamp < {w_end:DateTime64(3, 'UTC')}"
        user_source = f"(SELECT *, content_id AS content_key FROM {USER_EVENT_SOURCES[source]})"
        found, counts, moves = await asyncio.gather(
            self._store.query(
                f"""SELECT session_id, min(timestamp) AS started, max(timestamp) AS ended, count() AS n,
                    arraySlice(arraySort(x -> (x.1, x.2), groupArray((timestamp, id, toString(event_type), content_id,
                                                                     query, toString(device_type)))),
                               1, {{per_session:UInt32}}) AS steps
                FROM {USER_EVENT_SOURCES[source]}
                WHERE {label} = '0'
                GROUP BY session_id
                ORDER BY started DESC, session_id
                LIMIT {{limit:UInt32}}""",
                params,
            ),
            self._store.query(
                f"""SELECT lbl, uniqExactIf(session_id, session_id != ''), count()
                FROM (SELECT {label} AS lbl, session_id FROM {USER_EVENT_SOURCES[source]})
                WHERE lbl != '' GROUP BY lbl""",
                params,
            ),
            self._store.query(transitions_sql(user_source, window, label), params),
        )
        ids = {row[3] for session in found.rows for row in session[4] if row[3]}
        ids |= {r[0] for r in moves.rows} | {r[1] for r in moves.rows}
        titles = await self._metadata.get_many(sorted(ids))
        by_period = {int(row[0]): (int(row[1]), int(row[2])) for row in counts.rows}
        now = by_period.get(0, (0, 0))
        earlier = by_period.get(1, (0, 0))
        out_sessions = []
        for session_id, started, ended, n, steps in found.rows:
            out_sessions.append(
                UserSession(
                    session_id=session_id or None,
                    started=_utc(started),
                    ended=_utc(ended),
                    duration_seconds=round((ended - started).total_seconds(), 3),
                    truncated=int(n) > len(steps),
                    events=[
                        UserEvent(
                            timestamp=_utc(ts),
                            id=event_id,
                            event_type=event_type,
                            content_id=cid or None,
                            title=titles[cid].title if cid in titles else None,
                            query=query or None,
                            device_type=device or None,
                        )
                        for ts, event_id, event_type, cid, query, device in steps
                    ],
                )
            )
        return UserJourney(
            user_id=user_id,
            period=PeriodInfo.of(period),
            previous_period=PeriodInfo.of(previous),
            sessions_in_period=now[0],
            events_in_period=now[1],
            comparison={"sessions": MetricChange.of(now[0], earlier[0]), "events": MetricChange.of(now[1], earlier[1])},
            sessions=out_sessions,
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
        )
