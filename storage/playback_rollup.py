"""Watch time as pieces, kept per content and hour in ``playback_hourly``.

A playback session (semantic.catalog.SESSION_KEY) of one content yields pieces of watch time:
- if it has a play or resume event at all, one piece per pause or complete whose previous
  event, among the session's play / resume / pause / complete events in (time, id) order, is a
  play or resume: from the opener to the closer;
- otherwise, one piece per content_view, of the ``duration_seconds`` it reported (articles, or
  clients that report durations), at the view's time.

A period's watch time is the sum of the pieces that open and close inside it. Pieces depend on a
session's whole history, so no view over one insert can make them; instead the rollup feed
(storage/rollup_feed.py) adds, for each fed range of inserts, the pieces of every session the
range touches minus the pieces those sessions had before it. The sums are then additive per
(content, hour opened, hour closed), and periods that start and end on whole hours read them.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from semantic.catalog import (
    CONTENT_KEY,
    DURATION_SECONDS,
    SEGMENT_CLOSERS,
    SEGMENT_OPENERS,
    SESSION_KEY,
    VIEW,
    sql_list,
)

TABLE = "playback_hourly"
EVENT_TYPES = (VIEW, *SEGMENT_OPENERS, *SEGMENT_CLOSERS)

_SEGMENT_SET = frozenset((*SEGMENT_OPENERS, *SEGMENT_CLOSERS))
_SEGMENT_TYPES = sql_list((*SEGMENT_OPENERS, *SEGMENT_CLOSERS))
_OPENERS = sql_list(SEGMENT_OPENERS)
HOUR_MS = 3_600_000


def pieces_sql(rows: str) -> str:
    """(content_key, opened_ms, closed_ms, watch_ms) per piece, over ``rows`` with columns
    content_key, session_key, timestamp, event_type, id, duration_seconds."""
    # ``at``: the session's segment times in order; ``opens``: whether each (in (time, id) order) opens one.
    return f"""
SELECT content_key, piece.1 AS opened_ms, piece.2 AS closed_ms, piece.3 AS watch_ms
FROM (
    SELECT
        content_key, session_key,
        groupArrayIf(toUnixTimestamp64Milli(timestamp), event_type IN {_SEGMENT_TYPES}) AS times,
        arraySort(times) AS at,
        arraySort((opener, t, i) -> (t, i), groupArrayIf(event_type IN {_OPENERS}, event_type IN {_SEGMENT_TYPES}),
                  times, groupArrayIf(id, event_type IN {_SEGMENT_TYPES})) AS opens,
        if(has(opens, 1),
           arrayMap(i -> (at[i - 1], at[i], at[i] - at[i - 1]),
                    arrayFilter(i -> opens[i] = 0 AND opens[i - 1] = 1, range(2, length(at) + 1))),
           groupArrayIf((toUnixTimestamp64Milli(timestamp), toUnixTimestamp64Milli(timestamp),
                         toInt64(round(duration_seconds * 1000))), event_type = '{VIEW}')) AS pieces
    FROM {rows}
    GROUP BY content_key, session_key
)
ARRAY JOIN pieces AS piece"""


def pieces_of(events: pa.Table) -> pa.Table:
    """The same pieces as pieces_sql, with numpy, for one user's events (few enough to hold here).

    ``events`` has columns content_key, session_key, at_ms, event_type, id, duration_seconds; the
    result has content_key, opened_ms, closed_ms, watch_ms. For a user's few rows, the SQL's
    planning cost more than the rows."""
    n = events.num_rows
    types = events.column("event_type")
    segment = _flags(types, _SEGMENT_SET)
    opener = _flags(types, SEGMENT_OPENERS)
    view = _flags(types, (VIEW,))
    at = events.column("at_ms").to_numpy().astype(np.int64)
    # A playback session is (content, session): one integer per pair, then (time, id) order inside it.
    content = _codes(events.column("content_key"))
    session = _codes(events.column("session_key"))
    group = content * (int(session.max(initial=0)) + 1) + session
    # Arrow orders strings by their bytes, as ClickHouse does.
    id_rank = pc.rank(events.column("id"), sort_keys="ascending", tiebreaker="dense").to_numpy().astype(np.int64)
    played = np.zeros(int(group.max(initial=0)) + 1, bool)
    played[group[segment & opener]] = True
    # Segment events in (group, time, id) order: a piece closes where an opener is followed by a
    # non-opener of the same group.
    s = np.flatnonzero(segment)
    s = s[np.lexsort((id_rank[s], at[s], group[s]))]
    closes = np.flatnonzero((group[s[1:]] == group[s[:-1]]) & opener[s[:-1]] & ~opener[s[1:]]) + 1
    first, second = s[closes - 1], s[closes]
    # A group that never played counts its views' reported durations (rounded half to even, as
    # ClickHouse's round() on Float64 and Python's round()).
    views = np.flatnonzero(view & ~played[group])
    duration = events.column("duration_seconds").to_numpy(zero_copy_only=False).astype(np.float64)
    keys = events.column("content_key")
    return pa.table(
        {
            "content_key": pa.concat_arrays([keys.take(first).combine_chunks(), keys.take(views).combine_chunks()])
            if n
            else pa.array([], keys.type),
            "opened_ms": np.concatenate([at[first], at[views]]),
            "closed_ms": np.concatenate([at[second], at[views]]),
            "watch_ms": np.concatenate([at[second] - at[first], np.round(duration[views] * 1000).astype(np.int64)]),
        }
    )


def _flags(column: pa.ChunkedArray, values: tuple[str, ...] | frozenset[str]) -> np.ndarray:
    return pc.is_in(column, value_set=pa.array(sorted(values), pa.string())).to_numpy(zero_copy_only=False)


def _codes(column: pa.ChunkedArray) -> np.ndarray:
    return pc.dictionary_encode(column.combine_chunks()).indices.to_numpy(zero_copy_only=False).astype(np.int64)


def event_rows(condition: str) -> str:
    """The playback rows of ``events`` matching ``condition`` (over content_key, session_key and the columns)."""
    return f"""(
    SELECT content_key, session_key, timestamp, event_type, id, duration_seconds
    FROM (
        SELECT timestamp, event_type, id, stored_seq, content_id,
               {CONTENT_KEY} AS content_key, {SESSION_KEY} AS session_key,
               if(event_type = '{VIEW}', {DURATION_SECONDS}, 0) AS duration_seconds
        FROM events
        WHERE event_type IN {sql_list(EVENT_TYPES)}
    )
    WHERE {condition}
)"""


def _hourly(pieces: str, signed: str = "watch_ms") -> str:
    return f"""
SELECT content_key AS content_id,
       toDateTime(intDiv(opened_ms, {HOUR_MS}) * 3600, 'UTC') AS opened_hour,
       toDateTime(intDiv(closed_ms, {HOUR_MS}) * 3600, 'UTC') AS closed_hour,
       sum({signed}) AS watch_ms
FROM ({pieces})
GROUP BY content_id, opened_hour, closed_hour
HAVING watch_ms != 0
ORDER BY content_id, opened_hour, closed_hour"""


def backfill_sql() -> str:
    """The pieces of every stored event, for a new ``playback_hourly`` (migration 011)."""
    return (
        f"INSERT INTO {TABLE} (content_id, opened_hour, closed_hour, watch_ms) {_hourly(pieces_sql(event_rows('1')))}"
    )


def delta_sql() -> str:
    """What inserts {f}..{l} change: the touched sessions' pieces through {l} minus those before {f}."""
    touched = f"""
        SELECT DISTINCT {CONTENT_KEY} AS content_key, {SESSION_KEY} AS session_key
        FROM events
        WHERE stored_seq BETWEEN {{f:UInt64}} AND {{l:UInt64}} AND event_type IN {sql_list(EVENT_TYPES)}"""
    of_touched = (
        "(content_id = '' OR content_id IN (SELECT content_key FROM touched)) "
        "AND (content_key, session_key) IN (SELECT content_key, session_key FROM touched)"
    )
    after = pieces_sql(event_rows(f"stored_seq <= {{l:UInt64}} AND {of_touched}"))
    before = pieces_sql(event_rows(f"stored_seq < {{f:UInt64}} AND {of_touched}"))
    signed = f"SELECT *, 1 AS sign FROM ({after}) UNION ALL SELECT *, -1 AS sign FROM ({before})"
    return (
        f"INSERT INTO {TABLE} (content_id, opened_hour, closed_hour, watch_ms) "
        f"WITH touched AS ({touched}) {_hourly(signed, 'sign * watch_ms')}"
    )
