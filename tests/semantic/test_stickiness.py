"""Stickiness on real chDB, against a Python reference over the same rows: active days per user per
week or month (windows cut at the range's edges), the ratios, days in the request's timezone,
filters, anonymous events, an empty answer and seeded random users."""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from core.errors import InvalidRequest
from semantic.stickiness import StickinessRequest, StickinessResult, run_stickiness
from storage.events import ClickHouseEvents
from tests.semantic.conftest import InProcessStore, open_store
from tests.semantic.test_funnels import Row, event_table

VIEW, PLAY = "content_view", "content_play"
# Wednesday 2026-03-04 .. Tuesday 2026-03-17: a cut week, a whole week, a cut week.
RANGE = {"start_date": "2026-03-04", "end_date": "2026-03-17"}
FIRST, LAST = date(2026, 3, 4), date(2026, 3, 17)


@pytest.fixture(scope="module")
def events(chdb_dir: Path) -> Iterator[ClickHouseEvents]:
    store = open_store(chdb_dir, f"stickiness_{secrets.token_hex(4)}")
    yield store
    store.close()


@pytest.fixture
def load(events: ClickHouseEvents) -> Any:
    def loaded(rows: Sequence[Row]) -> InProcessStore:
        events.query("TRUNCATE TABLE events")
        if rows:
            events.insert_raw(event_table(rows), secrets.token_hex(8))
        return InProcessStore(events)

    return loaded


def at(day: date, hour: float = 12, zone: str = "UTC") -> datetime:
    return (datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone)) + timedelta(hours=hour)).astimezone(UTC)


def reference(
    rows: Sequence[Row],
    event_type: str,
    window: str,
    *,
    first: date = FIRST,
    last: date = LAST,
    zone: str = "UTC",
    countries: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    def window_of(day: date) -> date:
        return day - timedelta(days=day.weekday()) if window == "week" else day.replace(day=1)

    active: dict[str, set[date]] = {}
    for row in rows:
        day = row.timestamp.astimezone(ZoneInfo(zone)).date()
        wanted = row.user_id and row.event_type == event_type and first <= day <= last
        if wanted and (countries is None or row.country in countries):
            active.setdefault(row.user_id, set()).add(day)
    days_in: dict[date, int] = {}
    for i in range((last - first).days + 1):
        w = window_of(first + timedelta(days=i))
        days_in[w] = days_in.get(w, 0) + 1
    windows = []
    for w, days in days_in.items():
        per_user = [sum(1 for day in user_days if window_of(day) == w) for user_days in active.values()]
        per_user = [n for n in per_user if n]
        distribution = [sum(1 for n in per_user if n == k) for k in range(1, days + 1)]
        average = sum(per_user) / len(per_user) if per_user else 0.0
        windows.append((w.isoformat(), days, len(per_user), distribution, average, average / days))
    user_days = sum(len(v) for v in active.values())
    daily = user_days / ((last - first).days + 1)
    return {
        "windows": windows,
        "active_users": len(active),
        "daily": daily,
        "ratio": daily / len(active) if active else 0.0,
    }


def answer(result: StickinessResult) -> dict[str, Any]:
    return {
        "windows": [
            (w.window, w.days, w.active_users, [d.users for d in w.distribution], w.average_active_days, w.ratio)
            for w in result.windows
        ],
        "active_users": result.active_users,
        "daily": result.average_daily_active_users,
        "ratio": result.ratio,
    }


def rounded(value: Any) -> Any:
    """Floats to 9 places, inside lists, tuples and dicts: the two sides divide in other orders."""
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, list | tuple):
        return [rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    return value


def request(**body: Any) -> StickinessRequest:
    return StickinessRequest.parse({"date_range": RANGE, **body}).resolved()


async def test_weekly_active_days(load: Any) -> None:
    rows = [
        # a: Wed and Thu of the first (cut) week, twice on Monday of the second, and Tuesday 03-17.
        Row(at(date(2026, 3, 4)), VIEW, "a"),
        Row(at(date(2026, 3, 5)), VIEW, "a"),
        Row(at(date(2026, 3, 9), 8), VIEW, "a"),
        Row(at(date(2026, 3, 9), 20), VIEW, "a"),
        Row(at(date(2026, 3, 17)), VIEW, "a"),
        # b: every day of the second week.
        *[Row(at(date(2026, 3, 9) + timedelta(days=i)), VIEW, "b") for i in range(7)],
        # Outside the range, another event type, no user: none counts.
        Row(at(date(2026, 3, 3)), VIEW, "c"),
        Row(at(date(2026, 3, 18)), VIEW, "c"),
        Row(at(date(2026, 3, 10)), PLAY, "c"),
        Row(at(date(2026, 3, 10)), VIEW, session_id="s"),
    ]
    result = await run_stickiness(load(rows), request(event={"event_type": VIEW}))
    # By hand: week of 03-02 (5 days in range): a on 2; week of 03-09: a on 1, b on 7; week of 03-16 (2 days): a on 1.
    shown = [(w.window, w.days, w.active_users, [d.users for d in w.distribution]) for w in result.windows]
    assert shown == [
        ("2026-03-02", 5, 1, [0, 1, 0, 0, 0]),
        ("2026-03-09", 7, 2, [1, 0, 0, 0, 0, 0, 1]),
        ("2026-03-16", 2, 1, [1, 0]),
    ]
    assert result.windows[1].average_active_days == 4.0
    assert result.windows[1].ratio == pytest.approx(4 / 7)
    assert result.active_users == 2
    assert result.average_daily_active_users == pytest.approx(11 / 14)
    assert result.ratio == pytest.approx(11 / 14 / 2)
    assert rounded(answer(result)) == rounded(reference(rows, VIEW, "week"))


async def test_monthly_windows_in_the_request_timezone(load: Any) -> None:
    zone = "Asia/Riyadh"
    rows = [
        # 23:30 UTC on 02-28 is 03-01 in Riyadh.
        Row(datetime(2026, 2, 28, 23, 30, tzinfo=UTC), VIEW, "r"),
        Row(at(date(2026, 3, 1), 1, zone), VIEW, "r"),
        Row(at(date(2026, 3, 31), 23, zone), VIEW, "r"),
        Row(at(date(2026, 2, 27), 12, zone), VIEW, "q"),
    ]
    body = {"date_range": {"start_date": "2026-02-15", "end_date": "2026-03-31"}, "timezone": zone}
    result = await run_stickiness(
        load(rows), StickinessRequest.parse({**body, "event": {"event_type": VIEW}, "window": "month"}).resolved()
    )
    shown = [(w.window, w.days, [d.users for d in w.distribution if d.users]) for w in result.windows]
    assert shown == [("2026-02-01", 14, [1]), ("2026-03-01", 31, [1])]
    assert result.windows[1].distribution[1].users == 1  # r on two days of March
    assert rounded(answer(result)) == rounded(
        reference(rows, VIEW, "month", first=date(2026, 2, 15), last=date(2026, 3, 31), zone=zone)
    )


async def test_filters(load: Any) -> None:
    rows = [Row(at(date(2026, 3, 5)), VIEW, "de", country="DE"), Row(at(date(2026, 3, 5)), VIEW, "fr", country="FR")]
    result = await run_stickiness(
        load(rows),
        request(event={"event_type": VIEW, "filters": [{"dimension": "country", "op": "neq", "value": "FR"}]}),
    )
    assert result.active_users == 1
    assert rounded(answer(result)) == rounded(reference(rows, VIEW, "week", countries=("DE",)))


async def test_empty_answer(load: Any) -> None:
    result = await run_stickiness(load([]), request(event={"event_type": VIEW}))
    assert result.active_users == 0 and result.ratio == 0.0 and result.average_daily_active_users == 0.0
    assert [(w.active_users, w.ratio, sum(d.users for d in w.distribution)) for w in result.windows] == [
        (0, 0.0, 0)
    ] * 3


@pytest.mark.parametrize("seed", range(8))
async def test_random_users_match_the_reference(load: Any, seed: int) -> None:
    rng = random.Random(seed)
    rows = [
        Row(
            at(FIRST + timedelta(days=rng.randint(-2, 15)), rng.uniform(0, 24)),
            rng.choice([VIEW, PLAY]),
            f"u{rng.randint(0, 12)}",
        )
        for _ in range(120)
    ]
    window = rng.choice(["week", "month"])
    result = await run_stickiness(load(rows), request(event={"event_type": VIEW}, window=window))
    assert rounded(answer(result)) == rounded(reference(rows, VIEW, window))


INJECTION = "x'); DROP TABLE events; --"


async def test_injection_strings_are_refused_or_bound(load: Any, events: ClickHouseEvents) -> None:
    rows = [Row(at(date(2026, 3, 5)), VIEW, INJECTION, country=INJECTION)]
    result = await run_stickiness(
        load(rows), request(event={"event_type": VIEW, "filters": [{"dimension": "country", "value": INJECTION}]})
    )
    assert result.active_users == 1
    for bad in ({"event": {"event_type": INJECTION}}, {"event": {"event_type": VIEW}, "window": INJECTION}):
        with pytest.raises(InvalidRequest):
            request(**bad)
    assert events.query("SELECT count() FROM events").rows[0][0] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "event"),
        ({"event": {}}, "event.event_type"),
        ({"event": {"event_type": VIEW}, "window": "day"}, "window"),
        (
            {"event": {"event_type": VIEW, "filters": [{"dimension": "status", "op": "gt", "value": "many"}]}},
            "event.filters[0]",
        ),
        ({"event": {"event_type": VIEW}, "date_range": {"relative": "last_decade"}}, "date_range.relative"),
    ],
)
def test_validation_errors_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        StickinessRequest.parse(body).resolved()
    assert caught.value.status == 400
    assert caught.value.details["field"] == field, caught.value.details


def test_relative_ranges_resolve_in_the_request_timezone() -> None:
    resolved = StickinessRequest.parse(
        {"event": {"event_type": VIEW}, "date_range": {"relative": "last_week"}}
    ).resolved(today=date(2026, 3, 12))
    assert resolved.date_range is not None
    assert (resolved.date_range.start_date, resolved.date_range.end_date) == (date(2026, 3, 2), date(2026, 3, 8))
