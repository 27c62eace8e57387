"""Watch time from play / pause / complete events, per playback session.

The pieces of watch time are defined in storage/playback_rollup.py: for each content and playback
session (storage.event_keys.SESSION_KEY), each pause or complete right after a play or resume (in
time order) is a piece from the one to the other; a session with no play or resume event at all
counts the ``duration_seconds`` its content_view events reported instead (articles, or clients
that report durations). A period counts the pieces that open and close inside it, so a segment
across the period's edge is not counted.

Content watch time reads ``playback_hourly`` when every period starts and ends on a whole UTC
hour (every timezone with a whole-hour offset), and the content's events otherwise; both give the
same number. A user's watch time is made in Python from the user's own events
(semantic/user_events.py).
"""

from __future__ import annotations

from typing import Any

from semantic.periods import QUARTER_HOUR_MS, Period, bounds_ms
from storage.events import EventStore
from storage.playback_rollup import HOUR_MS, TABLE, event_rows, pieces_sql

# Period bounds fall on quarter hours (else, in principle, on any millisecond).
_GRAINS_MS = (HOUR_MS, QUARTER_HOUR_MS, 60_000, 1_000, 1)


def _grain(bounds: list[tuple[int, int]]) -> int:
    """The coarsest time bucket whose edges include every period bound."""
    return next(g for g in _GRAINS_MS if all(b % g == 0 for pair in bounds for b in pair))


def watch_by_period(rows: list[tuple], bounds: list[tuple[int, int]]) -> dict[tuple[Any, int], float]:
    """Sums rows (key, opened at ms, closed at ms, watch ms) into {(key, period index): seconds}: a piece
    counts in the period it opens and closes in.

    Rows may be pieces or buckets of them whose edges include the period bounds: a piece opens and
    closes in a period exactly when its buckets' starts do."""
    totals: dict[tuple[Any, int], int] = {}
    for key, opened, closed, ms in rows:
        for index, (start, end) in enumerate(bounds):
            if start <= opened and closed < end:
                totals[(key, index)] = totals.get((key, index), 0) + int(ms)
                break
    return {key: ms / 1000 for key, ms in totals.items() if ms}


def _bucketed_pieces(pieces: str, group: str, grain: int) -> str:
    return f"""
SELECT {group} AS key, intDiv(opened_ms, {grain}) * {grain} AS opened, intDiv(closed_ms, {grain}) * {grain} AS closed,
       sum(watch_ms) AS ms
FROM ({pieces})
WHERE opened_ms >= {{w_start:Int64}} AND closed_ms < {{w_end:Int64}}
GROUP BY key, opened, closed"""


async def content_watch_seconds(
    store: EventStore, content_ids: list[str], periods: list[Period], *, route: str = "auto"
) -> dict[tuple[str, int], float]:
    """{(content_id, period index): watch seconds} for the given contents and periods (which must not overlap).

    ``route="raw"`` reads events even where the rollup could answer (the parity tests compare both).
    """
    if not content_ids:
        return {}
    bounds = bounds_ms(periods)
    params: dict[str, Any] = {
        "ids": content_ids,
        "w_start": min(b[0] for b in bounds),
        "w_end": max(b[1] for b in bounds),
    }
    grain = _grain(bounds)
    if route == "auto" and grain == HOUR_MS:
        sql = f"""
            SELECT content_id, toUnixTimestamp(opened_hour) * 1000, toUnixTimestamp(closed_hour) * 1000, sum(watch_ms)
            FROM {TABLE}
            WHERE content_id IN {{ids:Array(String)}}
              AND opened_hour >= fromUnixTimestamp64Milli({{w_start:Int64}}, 'UTC')
              AND closed_hour < fromUnixTimestamp64Milli({{w_end:Int64}}, 'UTC')
            GROUP BY content_id, opened_hour, closed_hour"""
    else:
        rows = event_rows(
            "(content_id IN {ids:Array(String)} OR content_id = '') AND content_key IN {ids:Array(String)}"
        )
        sql = _bucketed_pieces(pieces_sql(rows), "content_key", grain)
    result = await store.query(sql, params)
    return watch_by_period(result.rows, bounds)
