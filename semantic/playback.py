"""Watch time from play / pause / complete events, per playback session.

The pieces of watch time are defined in storage/playback_rollup.py: for each content and playback
session (semantic.catalog.SESSION_KEY), each pause or complete right after a play or resume (in
time order) is a piece from the one to the other; a session with no play or resume event at all
counts the ``duration_seconds`` its content_view events reported instead (articles, or clients
that report durations). A period counts the pieces that open and close inside it, so a segment
across the period's edge is not counted.

Content watch time reads ``playback_hourly`` when every period starts and ends on a whole UTC
hour (every timezone with a whole-hour offset), and the content's events otherwise; both give the
same number. A user's watch time always reads the user's own events.
"""

from __future__ import annotations

from typing import Any

from semantic.catalog import SESSION_KEY, USER_EVENT_SOURCES, sql_list
from semantic.periods import Period, period_label, utc_text
from storage.events import EventStore
from storage.playback_rollup import EVENT_TYPES, TABLE, event_rows, pieces_sql


def _on_whole_hours(periods: list[Period]) -> bool:
    return all(t.minute == 0 and t.second == 0 and t.microsecond == 0 for p in periods for t in (p.start, p.end))


def _in_periods(opened: str, closed: str, periods: list[Period], params: dict[str, Any]) -> tuple[str, str]:
    """(filter keeping what opens and closes in one of the periods, the label of that period)."""
    params["w_start"] = utc_text(min(p.start for p in periods))
    params["w_end"] = utc_text(max(p.end for p in periods))
    label = period_label(opened, periods, params)
    keep = (
        f"{opened} >= {{w_start:DateTime64(3, 'UTC')}} AND {closed} < {{w_end:DateTime64(3, 'UTC')}} "
        f"AND {label} = {period_label(closed, periods, params)} AND {label} != ''"
    )
    return keep, label


def _by_period(pieces: str, periods: list[Period], params: dict[str, Any], *, group: str) -> str:
    """Watch seconds per (group, period label) of raw pieces (opened_ms / closed_ms)."""
    opened, closed = "fromUnixTimestamp64Milli(opened_ms, 'UTC')", "fromUnixTimestamp64Milli(closed_ms, 'UTC')"
    keep, label = _in_periods(opened, closed, periods, params)
    return f"SELECT {group}, {label} AS grp, sum(watch_ms) / 1000 FROM ({pieces}) WHERE {keep} GROUP BY {group}, grp HAVING sum(watch_ms) != 0"


async def content_watch_seconds(
    store: EventStore, content_ids: list[str], periods: list[Period], *, route: str = "auto"
) -> dict[tuple[str, int], float]:
    """{(content_id, period index): watch seconds} for the given contents and periods (which must not overlap).

    ``route="raw"`` reads events even where the rollup could answer (the parity tests compare both).
    """
    if not content_ids:
        return {}
    params: dict[str, Any] = {"ids": content_ids}
    if route == "auto" and _on_whole_hours(periods):
        keep, label = _in_periods("opened_hour", "closed_hour", periods, params)
        sql = (
            f"SELECT content_id, {label} AS grp, sum(watch_ms) / 1000 FROM {TABLE} "
            f"WHERE content_id IN {{ids:Array(String)}} AND {keep} GROUP BY content_id, grp "
            "HAVING sum(watch_ms) != 0"
        )
    else:
        rows = event_rows("(content_id IN {ids:Array(String)} OR content_id = '') AND content_key IN {ids:Array(String)}")
        sql = _by_period(pieces_sql(rows), periods, params, group="content_key")
    result = await store.query(sql, params)
    return {(str(content_id), int(grp)): float(seconds) for content_id, grp, seconds in result.rows}


async def user_watch_seconds(
    store: EventStore, user_id: str, periods: list[Period], *, source: str = "events_by_user"
) -> dict[int, float]:
    """{period index: watch seconds} of one user, summed over every content and session of the user's events."""
    params: dict[str, Any] = {"user": user_id}
    rows = f"""(
        SELECT content_id AS content_key, {SESSION_KEY} AS session_key, timestamp, event_type, id, duration_seconds
        FROM {USER_EVENT_SOURCES[source]}
        WHERE event_type IN {sql_list(EVENT_TYPES)}
    )"""
    result = await store.query(_by_period(pieces_sql(rows), periods, params, group="'all'"), params)
    return {int(grp): float(seconds) for _, grp, seconds in result.rows}
