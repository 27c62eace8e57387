"""One user's numbers for UserAnalytics, from one plain read of that user's events.

A user has few events (the busiest of 10M generated events has ~1,600), and for so few rows
chDB's planning of each aggregate query cost more than the rows: four queries took ~40 ms, one
read plus this module ~12. The definitions are the ones the rollups use:
- counts per period, by the instant of each event (half-open periods, as semantic.periods);
- a session (session_id, when set) starts at its first event; its duration is its last event minus
  its first; a bounce has one event; a return visit is any session but the user's first ever;
- watch time from storage.playback_rollup.pieces_of, the numpy twin of the rollup's SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from semantic.catalog import PAGE_TYPES, USER_EVENT_SOURCES, VIEW
from semantic.periods import Period
from storage.events import EventStore
from storage.playback_rollup import EVENT_TYPES as PLAYBACK_TYPES
from storage.playback_rollup import pieces_of

_COUNTED = {
    VIEW: "views",
    "content_complete": "completions",
    "search_query": "searches",
    "content_share": "shares",
    "content_bookmark": "bookmarks",
    "content_comment": "comments",
    "content_like": "likes",
}
_PAGES = frozenset(PAGE_TYPES)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_QUARTER_MS = 900_000


def _instant(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


@dataclass(slots=True)
class PeriodNumbers:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys((*_COUNTED.values(), "pages"), 0))
    content_viewed: dict[str, int] = field(default_factory=dict)
    active_days: set[date] = field(default_factory=set)
    devices: dict[str, int] = field(default_factory=dict)
    browsers: dict[str, int] = field(default_factory=dict)
    sessions: int = 0
    session_ms: int = 0
    bounces: int = 0
    return_visits: int = 0
    watch_ms: int = 0


@dataclass(slots=True)
class UserNumbers:
    # One entry per period asked for, in order.
    periods: list[PeriodNumbers]
    first_event: datetime
    last_event: datetime


async def read_user_numbers(
    store: EventStore, user_id: str, periods: list[Period], *, source: str = "events_by_user"
) -> UserNumbers | None:
    """The user's numbers in each period; None when the user has no events at all."""
    table = await store.query_arrow(
        f"""SELECT toUnixTimestamp64Milli(timestamp) AS at_ms, event_type, content_id, session_id, id,
                   duration_seconds, toString(device_type) AS device, toString(browser) AS browser
        FROM {USER_EVENT_SOURCES[source]}""",
        {"user": user_id},
    )
    if not table.num_rows:
        return None
    at = table.column("at_ms").to_numpy().astype(np.int64)
    types = table.column("event_type")
    out = []
    for period in periods:
        start, end = int(period.start.timestamp() * 1000), int(period.end.timestamp() * 1000)
        inside = (at >= start) & (at < end)
        numbers = PeriodNumbers()
        if inside.any():
            _count_period(numbers, table.filter(pa.array(inside)), period)
        out.append(numbers)
    _count_sessions(out, periods, at, table.column("session_id"))
    playback = table.filter(pc.is_in(types, value_set=pa.array(PLAYBACK_TYPES)))
    # The playback session key of semantic.catalog.SESSION_KEY, for this one user.
    sessions = playback.column("session_id")
    keyed = pa.table(
        {
            "content_key": playback.column("content_id"),
            "session_key": pc.if_else(pc.equal(sessions, ""), f"user:{user_id}", sessions),
            "at_ms": playback.column("at_ms"),
            "event_type": playback.column("event_type"),
            "id": playback.column("id"),
            "duration_seconds": playback.column("duration_seconds"),
        }
    )
    pieces = pieces_of(keyed)
    opened, closed = pieces.column("opened_ms").to_numpy(), pieces.column("closed_ms").to_numpy()
    watch = pieces.column("watch_ms").to_numpy()
    for numbers, period in zip(out, periods, strict=True):
        start, end = int(period.start.timestamp() * 1000), int(period.end.timestamp() * 1000)
        numbers.watch_ms = int(watch[(opened >= start) & (closed < end)].sum())
    return UserNumbers(periods=out, first_event=_instant(int(at.min())), last_event=_instant(int(at.max())))


def _value_counts(column: pa.ChunkedArray) -> dict[str, int]:
    counts = pc.value_counts(column.filter(pc.not_equal(column, ""))).to_pylist()
    return {row["values"]: int(row["counts"]) for row in counts}


def _count_period(numbers: PeriodNumbers, rows: pa.Table, period: Period) -> None:
    """The counts of one period's rows (the periods do not overlap)."""
    by_type = _value_counts(rows.column("event_type"))
    for event_type, name in _COUNTED.items():
        numbers.counts[name] += by_type.get(event_type, 0)
    numbers.counts["pages"] = sum(by_type.get(t, 0) for t in _PAGES)
    views = rows.filter(pc.equal(rows.column("event_type"), VIEW)).column("content_id")
    numbers.content_viewed = _value_counts(views)
    # Every zone's offset is a whole number of quarter hours, so a local date holds for a quarter hour.
    quarters = np.unique(rows.column("at_ms").to_numpy() // _QUARTER_MS)
    numbers.active_days = {_instant(int(q) * _QUARTER_MS).astimezone(period.zone).date() for q in quarters}
    numbers.devices = _value_counts(rows.column("device"))
    numbers.browsers = _value_counts(rows.column("browser"))


def _count_sessions(
    out: list[PeriodNumbers], periods: list[Period], at: np.ndarray, session_ids: pa.ChunkedArray
) -> None:
    """Sessions by the period they started in; a return visit is any but the user's first session ever."""
    with_session = pc.not_equal(session_ids, "").to_numpy(zero_copy_only=False)
    if not with_session.any():
        return
    code = pc.dictionary_encode(session_ids.filter(pa.array(with_session)).combine_chunks()).indices.to_numpy()
    times = at[with_session]
    n = int(code.max()) + 1
    started = np.full(n, np.iinfo(np.int64).max, np.int64)
    ended = np.full(n, np.iinfo(np.int64).min, np.int64)
    np.minimum.at(started, code, times)
    np.maximum.at(ended, code, times)
    events = np.bincount(code, minlength=n)
    first_start = started.min()
    for numbers, period in zip(out, periods, strict=True):
        start, end = int(period.start.timestamp() * 1000), int(period.end.timestamp() * 1000)
        here = (started >= start) & (started < end)
        numbers.sessions = int(here.sum())
        numbers.session_ms = int((ended[here] - started[here]).sum())
        numbers.bounces = int((events[here] == 1).sum())
        numbers.return_visits = int((started[here] > first_start).sum())
