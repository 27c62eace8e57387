"""One user's numbers for UserAnalytics, from one plain read of that user's events.

A user has few events (the busiest of 10M generated events has ~1,600), and for so few rows
chDB's planning of each aggregate query cost more than the rows: four queries took ~40 ms, one
read plus this module ~10. The definitions are the ones the rollups use:
- counts per period, by the instant of each event (half-open periods, as semantic.periods);
- a session (session_id, when set) starts at its first event; its duration is its last event minus
  its first; a bounce has one event; a return visit is any session but the user's first ever;
- watch time from storage.playback_rollup.pieces_of, the Python twin of the rollup's SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from core.taxonomy import (
    CONTENT_BOOKMARK,
    CONTENT_COMMENT,
    CONTENT_COMPLETE,
    CONTENT_LIKE,
    CONTENT_SHARE,
    CONTENT_VIEW,
    PAGE_TYPES,
    PLAYBACK_EVENT_TYPES,
    SEARCH_QUERY,
)
from semantic.catalog import USER_EVENT_SOURCES
from semantic.periods import QUARTER_HOUR_MS, Period, bounds_ms
from semantic.playback import watch_by_period
from storage.events import EventStore
from storage.playback_rollup import pieces_of

_COUNTED = {
    CONTENT_VIEW: "views",
    CONTENT_COMPLETE: "completions",
    SEARCH_QUERY: "searches",
    CONTENT_SHARE: "shares",
    CONTENT_BOOKMARK: "bookmarks",
    CONTENT_COMMENT: "comments",
    CONTENT_LIKE: "likes",
}
_PAGES = frozenset(PAGE_TYPES)
_PLAYBACK = frozenset(PLAYBACK_EVENT_TYPES)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
    watch_seconds: float = 0.0


@dataclass(slots=True)
class UserNumbers:
    # One entry per period asked for, in order.
    periods: list[PeriodNumbers]
    first_event: datetime
    last_event: datetime


def _index(bounds: list[tuple[int, int]], ms: int) -> int | None:
    for index, (start, end) in enumerate(bounds):
        if start <= ms < end:
            return index
    return None


async def read_user_numbers(
    store: EventStore, user_id: str, periods: list[Period], *, source: str = "events_by_user"
) -> UserNumbers | None:
    """The user's numbers in each period; None when the user has no events at all."""
    result = await store.query(
        f"""SELECT toUnixTimestamp64Milli(timestamp), event_type, content_id, session_id, id, duration_seconds,
                   toString(device_type), toString(browser)
        FROM {USER_EVENT_SOURCES[source]}""",
        {"user": user_id},
    )
    if not result.rows:
        return None
    bounds = bounds_ms(periods)
    out = [PeriodNumbers() for _ in periods]
    sessions: dict[str, list[int]] = {}  # session_id -> [first ms, last ms, events]
    playback: list[tuple[Any, str, int, str, str, float]] = []
    local_days: dict[int, date] = {}
    first = last = result.rows[0][0]
    for ms, event_type, content_id, session_id, event_id, duration, device, browser in result.rows:
        first, last = min(first, ms), max(last, ms)
        if session_id:
            seen = sessions.get(session_id)
            if seen is None:
                sessions[session_id] = [ms, ms, 1]
            else:
                seen[0], seen[1], seen[2] = min(seen[0], ms), max(seen[1], ms), seen[2] + 1
        if event_type in _PLAYBACK:
            # The playback session key of storage.event_keys.SESSION_KEY, for this one user.
            playback.append((content_id, session_id or f"user:{user_id}", ms, event_type, event_id, duration))
        index = _index(bounds, ms)
        if index is None:
            continue
        numbers = out[index]
        name = _COUNTED.get(event_type)
        if name is not None:
            numbers.counts[name] += 1
        if event_type in _PAGES:
            numbers.counts["pages"] += 1
        if event_type == CONTENT_VIEW and content_id:
            numbers.content_viewed[content_id] = numbers.content_viewed.get(content_id, 0) + 1
        # A local date holds for a whole quarter hour (semantic.periods.QUARTER_HOUR_MS).
        quarter = ms // QUARTER_HOUR_MS
        day = local_days.get(quarter)
        if day is None:
            day = local_days[quarter] = _instant(quarter * QUARTER_HOUR_MS).astimezone(periods[index].zone).date()
        numbers.active_days.add(day)
        if device:
            numbers.devices[device] = numbers.devices.get(device, 0) + 1
        if browser:
            numbers.browsers[browser] = numbers.browsers.get(browser, 0) + 1
    first_start = min((s[0] for s in sessions.values()), default=0)
    for started, ended, events in sessions.values():
        index = _index(bounds, started)
        if index is None:
            continue
        numbers = out[index]
        numbers.sessions += 1
        numbers.session_ms += ended - started
        numbers.bounces += events == 1
        numbers.return_visits += started > first_start
    # Summed over all the user's content: one key for every piece.
    pieces = [(None, opened, closed, ms) for _, opened, closed, ms in pieces_of(playback)]
    for (_, index), seconds in watch_by_period(pieces, bounds).items():
        out[index].watch_seconds = seconds
    return UserNumbers(
        periods=out,
        first_event=_instant(first),
        last_event=_instant(last),
    )
