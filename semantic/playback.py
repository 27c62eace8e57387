"""Watch time from play / pause / complete events, per playback session.

For each content and playback session (semantic.catalog.SESSION_KEY), the session's
content_play / content_resume / content_pause / content_complete events inside the period are put
in time order; every pause or complete whose previous event in that order is a play or resume adds
the time between the two. A session with no play or resume event at all counts the
``duration_seconds`` its content_view events reported instead (articles, or clients that report
durations). Segments that cross the period's edge are not counted.

This needs the order of events inside a session, which no additive rollup keeps, so it always
reads events; the sort key (content_id, event_type, timestamp) and events_by_user keep that read
to the content's or the user's own rows.
"""

from __future__ import annotations

from typing import Any

from semantic.catalog import (
    CONTENT_KEY,
    DURATION_SECONDS,
    SEGMENT_CLOSERS,
    SEGMENT_OPENERS,
    SESSION_KEY,
    USER_EVENT_SOURCES,
    VIEW,
    sql_list,
)
from semantic.periods import Period, period_label, utc_text
from storage.events import EventStore

_TYPES = (VIEW, *SEGMENT_OPENERS, *SEGMENT_CLOSERS)


# Over rows (grp, content_key, session_key, timestamp, event_type, id, duration_seconds): watch seconds per grp.
_WATCH_TIME = f"""
SELECT grp, sum(watch_seconds) AS watch_seconds
FROM (
    SELECT
        grp, content_key, session_key,
        arraySort(x -> (x.1, x.3), groupArrayIf((toUnixTimestamp64Milli(timestamp), toString(event_type), id),
                                               event_type IN {sql_list((*SEGMENT_OPENERS, *SEGMENT_CLOSERS))})) AS seq,
        countIf(event_type IN {sql_list(SEGMENT_OPENERS)}) > 0 AS played,
        sumIf(duration_seconds, event_type = '{VIEW}') AS reported_seconds,
        if(played,
           arraySum(arrayMap(i -> if(seq[i].2 IN {sql_list(SEGMENT_CLOSERS)} AND seq[i - 1].2 IN {sql_list(SEGMENT_OPENERS)},
                                     seq[i].1 - seq[i - 1].1, 0), range(2, length(seq) + 1))) / 1000,
           reported_seconds) AS watch_seconds
    FROM __SOURCE__
    GROUP BY grp, content_key, session_key
)
GROUP BY grp
"""


def _window(periods: list[Period], params: dict[str, Any]) -> tuple[str, str]:
    """(time filter over all periods, label naming each row's period: '0', '1', ...)."""
    params["w_start"] = utc_text(min(p.start for p in periods))
    params["w_end"] = utc_text(max(p.end for p in periods))
    window = "timestamp >= {w_start:DateTime64(3, 'UTC')} AND timestamp < {w_end:DateTime64(3, 'UTC')}"
    return window, period_label("timestamp", periods, params)


async def content_watch_seconds(
    store: EventStore, content_ids: list[str], periods: list[Period]
) -> dict[tuple[str, int], float]:
    """{(content_id, period index): watch seconds} for the given contents and periods (which must not overlap)."""
    if not content_ids:
        return {}
    params: dict[str, Any] = {"ids": content_ids}
    window, label = _window(periods, params)
    source = f"""(
        SELECT concat(content_key, '|', {label}) AS grp, content_key, session_key, timestamp, event_type, id, duration_seconds
        FROM (
            SELECT timestamp, event_type, id,
                   {CONTENT_KEY} AS content_key, {SESSION_KEY} AS session_key, {DURATION_SECONDS} AS duration_seconds
            FROM events
            WHERE event_type IN {sql_list(_TYPES)} AND {window}
              AND (content_id IN {{ids:Array(String)}} OR content_id = '')
        )
        WHERE content_key IN {{ids:Array(String)}}
    )"""
    result = await store.query(_WATCH_TIME.replace("__SOURCE__", source), params)
    out: dict[tuple[str, int], float] = {}
    for grp, seconds in result.rows:
        content_id, _, index = str(grp).rpartition("|")
        out[(content_id, int(index))] = float(seconds)
    return out


async def user_watch_seconds(
    store: EventStore, user_id: str, periods: list[Period], *, source: str = "events_by_user"
) -> dict[int, float]:
    """{period index: watch seconds} of one user, summed over every content and session."""
    params: dict[str, Any] = {"user": user_id}
    window, label = _window(periods, params)
    rows = f"""
        SELECT timestamp, event_type, id, content_id AS content_key, {SESSION_KEY} AS session_key, duration_seconds
        FROM {USER_EVENT_SOURCES[source]}
        WHERE event_type IN {sql_list(_TYPES)} AND {window}"""
    wrapped = (
        f"(SELECT {label} AS grp, content_key, session_key, timestamp, event_type, id, duration_seconds FROM ({rows}))"
    )
    result = await store.query(_WATCH_TIME.replace("__SOURCE__", wrapped), params)
    return {int(grp): float(seconds) for grp, seconds in result.rows}
