"""Journeys: what users did before and after viewing a content, one user's sessions, content-to-content transitions.

A journey step is a page a user saw, in the order of its session: a content_view ("content:<id>"),
a search_query ("search") or a page_view ("page"). Before the first step of a session is "entry",
after its last is "exit". Only events with a session_id take part; steps are ordered by time
(then event id) inside the period.

A session may hold thousands of steps (crawlers, scripts), so no statement here gathers a session
into one array or copies it per step: each step looks at its neighbours through window functions
(lagInFrame/leadInFrame over a frame of one row either side), and the per-session event lists of a
user journey keep at most MAX_EVENTS_PER_SESSION events while they are built. Each statement reads
only the columns it uses.

Steps are read from session_steps, a copy of them sorted by session and time (storage migration
015): a content's journey reads the ranges of its sessions alone, and transitions, which pair every
view of the window, take the rows in that order instead of sorting them first, so they hold one
session at a time. Raw events give the same answers (``source="events"``, which the tests compare).

Under a content scope, a content's journey leaves out the neighbouring steps on content outside the
scope (and the paths through them); its totals are the views of the content itself.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel

from core.errors import InvalidRequest
from core.taxonomy import CONTENT_VIEW, PAGE_TYPES, SEARCH_QUERY
from semantic.answers import PinnedAnswer
from semantic.catalog import USER_EVENT_SOURCES
from semantic.content import ContentAnalyticsService
from semantic.content_metadata import ContentMetadataStore
from semantic.content_scope import admitted, current_scope
from semantic.periods import Period, period_label, utc_text
from semantic.results import MetricChange, PeriodInfo
from semantic.users import UserAnalyticsService
from storage.event_keys import sql_list
from storage.events import EventStore

_STEP = (
    f"multiIf(event_type = '{CONTENT_VIEW}', concat('content:', content_key), "
    f"event_type = '{SEARCH_QUERY}', 'search', 'page')"
)
# A session's steps in order: by time, then by event id (events of the same millisecond).
_IN_SESSION = "PARTITION BY session_id ORDER BY timestamp, id"
# Window functions over session_steps take its rows in their stored order (its sort key is
# _IN_SESSION's), not sorted again: the statement then holds one session at a time, not the whole
# window, though on one thread. A statement's own SETTINGS; a query budget adds its clause after it
# (storage/query_budget.py).
_STORED_ORDER = "SETTINGS optimize_read_in_window_order = 1, query_plan_reuse_storage_ordering_for_window_functions = 1"
STEP_SOURCES = ("session_steps", "events")
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


class ContentJourney(PinnedAnswer):
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


class UserJourney(PinnedAnswer):
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


def _top_steps(counts: dict[str, list[int]], limit: int) -> list[tuple[str, list[int]]]:
    """The ``limit`` steps with the most views in the period (then by name), leaving out those with none."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1][0], item[0]))
    return [(step, views) for step, views in ranked if views[0]][:limit]


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def raw_session_rows(where: str) -> str:
    """The events under ``where`` that belong to a session, as (session_id, timestamp, id, event_type,
    content_key) rows, reading no other column.

    content_key is storage.event_keys.CONTENT_KEY for content_views (other events keep their
    content_id: no step reads theirs). It is computed in two parts: only the content_views without a
    content_id, a narrow range of the events sort key, read properties, the widest column.
    """
    columns = "session_id, timestamp, id, event_type"
    return f"""(
        SELECT {columns}, content_id AS content_key FROM events
        WHERE NOT (event_type = '{CONTENT_VIEW}' AND content_id = '') AND session_id != '' AND {where}
        UNION ALL
        SELECT {columns}, JSONExtractString(properties, 'content_id') AS content_key FROM events
        WHERE event_type = '{CONTENT_VIEW}' AND content_id = '' AND session_id != '' AND {where}
    )"""


def transitions_sql(source: str, window: str, label: str) -> str:
    """Consecutive views of different contents in one session: (from, to, count in period 0, count in period 1).

    ``source`` has session_id, timestamp, id, event_type and content_key; ``label`` names the period
    of a ``timestamp``. Each view is paired with the view before it in its session (A, A, B gives
    A -> B once), and the pair counts in the period of its second view.
    """
    return f"""
    SELECT from_id, to_id, countIf(lbl = '0') AS now, countIf(lbl = '1') AS before
    FROM (
        SELECT from_id, to_id, {label} AS lbl
        FROM (
            SELECT lagInFrame(content_key) OVER ({_IN_SESSION} ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS from_id,
                   content_key AS to_id, timestamp
            FROM (
                SELECT session_id, timestamp, id, content_key FROM {source}
                WHERE event_type = '{CONTENT_VIEW}' AND session_id != '' AND content_key != '' AND {window}
            )
        )
        -- The first view of a session has no view before it (lagInFrame gives '').
        WHERE from_id != '' AND from_id != to_id
    )
    GROUP BY from_id, to_id
    HAVING now > 0
    ORDER BY now DESC, from_id, to_id
    LIMIT {{transitions_limit:UInt32}}
    {_STORED_ORDER}"""


def session_steps(where: str, source: str = "session_steps") -> str:
    """The steps (content_view, search_query, page_view events with a session) under ``where``, as
    raw_session_rows gives them, from ``source`` (one of STEP_SOURCES): the session_steps copy or raw events."""
    if source == "session_steps":
        return f"(SELECT session_id, timestamp, id, event_type, content_key FROM session_steps WHERE {where})"
    if source == "events":
        return raw_session_rows(f"event_type IN {sql_list(PAGE_TYPES)} AND {where}")
    raise ValueError(f"unknown source of session steps: {source!r}")


def content_journey_sql(window: str, source: str = "session_steps") -> str:
    """(period label of the view, step before, step after, views) of the views of the content ``{cid}``.

    The steps are those of the sessions with a content_view of the content in ``window``; each step
    sees only the step before and the step after it in its session.
    """
    sessions = f"""SELECT session_id FROM events
        WHERE content_id = {{cid:String}} AND event_type = '{CONTENT_VIEW}' AND session_id != '' AND {window}"""
    steps = session_steps(f"{window} AND session_id IN ({sessions})", source)
    return f"""
    SELECT if(toUnixTimestamp64Milli(timestamp) >= {{split:Int64}}, '0', '1') AS lbl, before, after, count()
    FROM (
        SELECT timestamp, step,
               lagInFrame(step, 1, 'entry') OVER in_session AS before,
               leadInFrame(step, 1, 'exit') OVER in_session AS after
        FROM (SELECT session_id, timestamp, id, {_STEP} AS step FROM {steps})
        WINDOW in_session AS ({_IN_SESSION} ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING)
    )
    WHERE step = {{step:String}}
    GROUP BY lbl, before, after"""


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

    async def content_journey(
        self, content_id: str, period: Period, *, limit: int = 10, source: str = "session_steps"
    ) -> ContentJourney:
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
        result = await self._store.query(content_journey_sql(window, source), params)
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
        if not current_scope().unrestricted:
            before, after, paths = await self._in_scope(before, after, paths)
        # Only the steps shown need titles: a content in bot sessions has thousands of neighbours.
        top_before, top_after = _top_steps(before, limit), _top_steps(after, limit)
        shown = {step for step, _ in (*top_before, *top_after) if step.startswith("content:")}
        titles = await self._metadata.get_many(sorted(s.removeprefix("content:") for s in shown))

        def journey_steps(top: list[tuple[str, list[int]]]) -> list[JourneyStep]:
            out = []
            for step, (now, earlier) in top:
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
            return out

        return ContentJourney(
            content_id=content_id,
            period=PeriodInfo.of(period),
            previous_period=PeriodInfo.of(previous),
            views_in_sessions=totals[0],
            previous_views_in_sessions=totals[1],
            before=journey_steps(top_before),
            after=journey_steps(top_after),
            paths=[
                JourneyPath(before=b, after=a, views=n)
                for (b, a), n in sorted(paths.items(), key=lambda item: (-item[1], item[0]))[:limit]
            ],
        )

    async def _in_scope(
        self,
        before: dict[str, list[int]],
        after: dict[str, list[int]],
        paths: dict[tuple[str, str], int],
    ) -> tuple[dict[str, list[int]], dict[str, list[int]], dict[tuple[str, str], int]]:
        """The neighbouring steps without those on content outside the request's scope (and the paths
        through them); search, page, entry and exit steps stay."""
        named = {s.removeprefix("content:") for s in (*before, *after) if s.startswith("content:")}
        inside = await admitted(self._store, named)

        def shown(step: str) -> bool:
            return not step.startswith("content:") or step.removeprefix("content:") in inside

        return (
            {s: v for s, v in before.items() if shown(s)},
            {s: v for s, v in after.items() if shown(s)},
            {(b, a): n for (b, a), n in paths.items() if shown(b) and shown(a)},
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
            "transitions_limit": 10,
            "w_start": utc_text(previous.start),
            "w_end": utc_text(period.end),
        }
        label = period_label("timestamp", [period, previous], params)
        window = "timestamp >= {w_start:DateTime64(3, 'UTC')} AND timestamp < {w_end:DateTime64(3, 'UTC')}"
        # The user's events already carry the content key in content_id.
        user_rows = USER_EVENT_SOURCES[source]
        user_source = f"(SELECT session_id, timestamp, id, event_type, content_id AS content_key FROM {user_rows})"
        found, counts, moves = await asyncio.gather(
            self._store.query(
                # The first events of each session by (time, id), never more than MAX_EVENTS_PER_SESSION held.
                f"""SELECT session_id, min(timestamp) AS started, max(timestamp) AS ended, count() AS n,
                    groupArraySorted({MAX_EVENTS_PER_SESSION})(
                        (timestamp, id, toString(event_type), content_id, query, toString(device_type))
                    ) AS steps
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
