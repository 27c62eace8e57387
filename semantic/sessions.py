"""Sessions: count, duration, bounce and pages, and the session length distribution.

A session is a session_id: it starts at its first event and lasts until its last event, and it
belongs to the period its first event falls in (with all its events, even those after the period
ends). A bounce is a session with exactly one event. Events without a session_id are in no session.

Only events from a day before the window to a day after it are read, so the numbers are exact for
sessions shorter than a day (a longer one is cut there). session_rollup is partitioned by the
month of a session's last event, so the read skips older history; raw events give the same numbers
(the parity test checks).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from core.taxonomy import PAGE_TYPES
from semantic.periods import Period, period_label, utc_text
from storage.event_keys import sql_list
from storage.events import EventStore

MAX_SESSION = timedelta(days=1)
_BOUNDS = "{s_from:DateTime64(3, 'UTC')}", "{s_to:DateTime64(3, 'UTC')}"
SESSION_SOURCES: dict[str, str] = {
    "session_rollup": (
        "(SELECT session_id, max(user_id) AS s_user, min(started) AS s_started, max(ended) AS s_ended, "
        "sum(events) AS s_events, sum(pages) AS s_pages FROM session_rollup "
        f"WHERE ended >= {_BOUNDS[0]} AND started < {_BOUNDS[1]} GROUP BY session_id)"
    ),
    "events": (
        "(SELECT session_id, max(user_id) AS s_user, min(timestamp) AS s_started, max(timestamp) AS s_ended, "
        f"count() AS s_events, countIf(event_type IN {sql_list(PAGE_TYPES)}) AS s_pages FROM events "
        f"WHERE session_id != '' AND timestamp >= {_BOUNDS[0]} AND timestamp < {_BOUNDS[1]} GROUP BY session_id)"
    ),
}


def _bounds(periods: list[Period], params: dict[str, Any]) -> None:
    params["s_from"] = utc_text(min(p.start for p in periods) - MAX_SESSION)
    params["s_to"] = utc_text(max(p.end for p in periods) + MAX_SESSION)


# Upper bounds (seconds) of the session length buckets; the last bucket is open.
LENGTH_BUCKETS: tuple[tuple[str, float], ...] = (
    ("<1m", 60),
    ("1-5m", 300),
    ("5-15m", 900),
    ("15-30m", 1800),
    ("30-60m", 3600),
    ("60m+", float("inf")),
)


class SessionStats(BaseModel):
    sessions: int = 0
    total_duration: float = 0.0
    average_duration: float = 0.0
    bounces: int = 0
    bounce_rate: float = 0.0
    pages: int = 0
    pages_per_session: float = 0.0


async def session_stats(
    store: EventStore, periods: list[Period], *, source: str = "session_rollup"
) -> list[SessionStats]:
    """Stats of the sessions that started in each period, in the order given."""
    params: dict[str, Any] = {}
    _bounds(periods, params)
    label = period_label("s_started", periods, params)
    result = await store.query(
        f"""SELECT lbl, count(), sum(duration), countIf(s_events = 1), sum(s_pages)
        FROM (
            SELECT {label} AS lbl, dateDiff('millisecond', s_started, s_ended) / 1000 AS duration, s_events, s_pages
            FROM {SESSION_SOURCES[source]}
        )
        WHERE lbl != ''
        GROUP BY lbl""",
        params,
    )
    found = {int(row[0]): row for row in result.rows}
    out = []
    for index in range(len(periods)):
        _, sessions, total, bounces, pages = found.get(index, (index, 0, 0.0, 0, 0))
        sessions = int(sessions)
        out.append(
            SessionStats(
                sessions=sessions,
                total_duration=round(float(total), 3),
                average_duration=round(float(total) / sessions, 3) if sessions else 0.0,
                bounces=int(bounces),
                bounce_rate=int(bounces) / sessions if sessions else 0.0,
                pages=int(pages),
                pages_per_session=int(pages) / sessions if sessions else 0.0,
            )
        )
    return out


async def length_distribution(
    store: EventStore, periods: list[Period], *, source: str = "session_rollup"
) -> list[dict[str, int]]:
    """For each period, sessions started in it by length bucket ("<1m", "1-5m", ..., "60m+"), every bucket present."""
    params: dict[str, Any] = {}
    _bounds(periods, params)
    label = period_label("s_started", periods, params)
    conditions = ", ".join(f"duration < {bound}, '{name}'" for name, bound in LENGTH_BUCKETS[:-1])
    result = await store.query(
        f"""SELECT lbl, multiIf({conditions}, '{LENGTH_BUCKETS[-1][0]}') AS bucket, count()
        FROM (
            SELECT {label} AS lbl, dateDiff('millisecond', s_started, s_ended) / 1000 AS duration
            FROM {SESSION_SOURCES[source]}
        )
        WHERE lbl != ''
        GROUP BY lbl, bucket""",
        params,
    )
    counts = {(int(lbl), str(name)): int(count) for lbl, name, count in result.rows}
    return [{name: counts.get((index, name), 0) for name, _ in LENGTH_BUCKETS} for index in range(len(periods))]
