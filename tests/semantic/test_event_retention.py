"""Retention between two events on real chDB, against a Python reference over the same rows: cohorts
by the first start event's bucket, returns per offset (offset 0 only after that first start), the
range's end cutting later cohorts short, day/week/month buckets in the request's timezone, filters,
anonymous events, an empty answer, and seeded random users."""

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
from semantic.event_retention import RetentionRequest, RetentionResult, run_retention
from semantic.freshness import Watermark
from storage.events import ClickHouseEvents
from tests.semantic.conftest import InProcessStore, open_store
from tests.semantic.test_funnels import Row, event_table

VIEW, PLAY, LOGIN = "content_view", "content_play", "user_login"
# Monday 2026-03-02 .. Sunday 2026-03-29: four whole weeks.
RANGE = {"start_date": "2026-03-02", "end_date": "2026-03-29"}


@pytest.fixture(scope="module")
def events(chdb_dir: Path) -> Iterator[ClickHouseEvents]:
    store = open_store(chdb_dir, f"event_retention_{secrets.token_hex(4)}")
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
    local = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone)) + timedelta(hours=hour)
    return local.astimezone(UTC)


D = date(2026, 3, 2)


def d(days: int) -> date:
    return D + timedelta(days=days)


# --- the reference ------------------------------------------------------------------------------


def bucket_of(day: date, bucket: str) -> date:
    if bucket == "week":
        return day - timedelta(days=day.weekday())
    if bucket == "month":
        return day.replace(day=1)
    return day


def offset(cohort: date, other: date, bucket: str) -> int:
    if bucket == "month":
        return (other.year - cohort.year) * 12 + other.month - cohort.month
    days = (other - cohort).days
    return days // 7 if bucket == "week" else days


def reference(
    rows: Sequence[Row],
    *,
    start_type: str,
    return_type: str,
    bucket: str,
    periods: int,
    first_day: date,
    last_day: date,
    zone: str = "UTC",
    start_countries: tuple[str, ...] | None = None,
) -> tuple[dict[date, tuple[int, dict[int, int]]], list[tuple[int, int, int]]]:
    """{cohort: (size, {offset: returned})} with every offset a cohort has, and the curve's
    (offset, returned, eligible)."""
    tz = ZoneInfo(zone)
    by_user: dict[str, list[tuple[datetime, date, Row]]] = {}
    for row in rows:
        local = row.timestamp.astimezone(tz).date()
        if row.user_id and first_day <= local <= last_day:
            by_user.setdefault(row.user_id, []).append((row.timestamp, local, row))
    buckets = sorted({bucket_of(first_day + timedelta(days=i), bucket) for i in range((last_day - first_day).days + 1)})
    last_bucket = buckets[-1]
    cohorts: dict[date, tuple[int, dict[int, int]]] = {}
    for events in by_user.values():
        starts = [
            (moment, day)
            for moment, day, row in events
            if row.event_type == start_type and (start_countries is None or row.country in start_countries)
        ]
        if not starts:
            continue
        first_moment, first_day_local = min(starts)
        cohort = bucket_of(first_day_local, bucket)
        returned: set[int] = set()
        for moment, day, row in events:
            if row.event_type != return_type:
                continue
            k = offset(cohort, bucket_of(day, bucket), bucket)
            if k >= 1 or (k == 0 and moment > first_moment):
                returned.add(k)
        span = min(periods, offset(cohort, last_bucket, bucket))
        size, cells = cohorts.get(cohort, (0, {k: 0 for k in range(span + 1)}))
        for k in returned:
            if k <= span:
                cells[k] += 1
        cohorts[cohort] = (size + 1, cells)
    curve = []
    for k in range(min(periods, len(buckets) - 1) + 1):
        having = [(size, cells) for size, cells in cohorts.values() if k in cells]
        curve.append((k, sum(cells[k] for _, cells in having), sum(size for size, _ in having)))
    return cohorts, curve


def request(**body: Any) -> RetentionRequest:
    return RetentionRequest.parse({"date_range": RANGE, **body}).resolved()


def assert_matches(result: RetentionResult, expected: Any) -> None:
    cohorts, curve = expected
    got = {
        date.fromisoformat(c.cohort): (c.size, {cell.offset: cell.users for cell in c.cells}) for c in result.cohorts
    }
    assert got == cohorts
    for c in result.cohorts:
        for cell in c.cells:
            assert cell.rate == pytest.approx(cell.users / c.size)
    assert [(p.offset, p.returned_users, p.eligible_users) for p in result.curve] == curve
    for p in result.curve:
        assert p.rate == pytest.approx(p.returned_users / p.eligible_users if p.eligible_users else 0.0)


# --- cases ----------------------------------------------------------------------------------------


async def test_weekly_cohorts_and_returns(load: Any) -> None:
    rows = [
        # a: starts in week 0, plays in weeks 0 (after the start), 1 and 3.
        Row(at(d(0)), LOGIN, "a"),
        Row(at(d(0), 13), PLAY, "a"),
        Row(at(d(8)), PLAY, "a"),
        Row(at(d(22)), PLAY, "a"),
        # b: plays before logging in (same week): not a return at offset 0; starts again in week 1.
        Row(at(d(1), 9), PLAY, "b"),
        Row(at(d(1), 10), LOGIN, "b"),
        Row(at(d(7)), LOGIN, "b"),
        Row(at(d(14)), PLAY, "b"),
        # c: first start in week 2; a play in week 1 is before the cohort.
        Row(at(d(9)), PLAY, "c"),
        Row(at(d(15)), LOGIN, "c"),
        Row(at(d(16)), PLAY, "c"),
        # Anonymous: no user, never counted.
        Row(at(d(0)), LOGIN, session_id="s"),
        Row(at(d(8)), PLAY, session_id="s"),
    ]
    result = await run_retention(
        load(rows), request(start_event={"event_type": LOGIN}, return_event={"event_type": PLAY})
    )
    # By hand: cohort 03-02 = {a, b}: offset 0 a; 1 a; 2 b; 3 a. Cohort 03-16 = {c}: offset 0 c.
    by_cohort = {c.cohort: (c.size, [cell.users for cell in c.cells]) for c in result.cohorts}
    assert by_cohort == {"2026-03-02": (2, [1, 1, 1, 1]), "2026-03-16": (1, [1, 0])}
    assert [(p.offset, p.returned_users, p.eligible_users) for p in result.curve] == [
        (0, 2, 3),
        (1, 1, 3),
        (2, 1, 2),
        (3, 1, 2),
    ]
    assert result.bucket == "week" and result.periods == 8
    assert_matches(
        result,
        reference(rows, start_type=LOGIN, return_type=PLAY, bucket="week", periods=8, first_day=d(0), last_day=d(27)),
    )


async def test_same_event_as_start_and_return(load: Any) -> None:
    rows = [
        Row(at(d(0)), VIEW, "once"),
        Row(at(d(0)), VIEW, "twice"),
        Row(at(d(0), 14), VIEW, "twice"),
        Row(at(d(1)), VIEW, "next_day"),
        Row(at(d(2)), VIEW, "next_day"),
    ]
    result = await run_retention(
        load(rows),
        request(start_event={"event_type": VIEW}, return_event={"event_type": VIEW}, bucket="day", periods=3),
    )
    cells = {c.cohort: [cell.users for cell in c.cells] for c in result.cohorts}
    # The first view is the start, never its own return.
    assert cells == {"2026-03-02": [1, 0, 0, 0], "2026-03-03": [0, 1, 0, 0]}
    assert_matches(
        result,
        reference(rows, start_type=VIEW, return_type=VIEW, bucket="day", periods=3, first_day=d(0), last_day=d(27)),
    )


async def test_later_cohorts_have_fewer_cells_and_returns_stop_at_the_range(load: Any) -> None:
    rows = [
        Row(at(d(20)), LOGIN, "late"),
        Row(at(d(27), 23.5), PLAY, "late"),
        Row(at(d(28)), PLAY, "late"),  # after the range
        Row(at(d(-1)), LOGIN, "early"),  # before the range: cohort by the first start inside it
        Row(at(d(3)), LOGIN, "early"),
        Row(at(d(10)), PLAY, "early"),
    ]
    result = await run_retention(
        load(rows), request(start_event={"event_type": LOGIN}, return_event={"event_type": PLAY}, periods=2)
    )
    cells = {c.cohort: [cell.users for cell in c.cells] for c in result.cohorts}
    assert cells == {"2026-03-02": [0, 1, 0], "2026-03-16": [0, 1]}
    assert_matches(
        result,
        reference(rows, start_type=LOGIN, return_type=PLAY, bucket="week", periods=2, first_day=d(0), last_day=d(27)),
    )


async def test_days_in_the_request_timezone(load: Any) -> None:
    zone = "America/New_York"
    rows = [
        # 23:30 on 03-02 in New York is 03-03 in UTC.
        Row(at(d(0), 23.5, zone), LOGIN, "ny"),
        Row(at(d(1), 0.5, zone), PLAY, "ny"),
        Row(at(d(2), 23.9, zone), PLAY, "ny"),
    ]
    body = {
        "date_range": {"start_date": "2026-03-02", "end_date": "2026-03-08"},
        "timezone": zone,
        "start_event": {"event_type": LOGIN},
        "return_event": {"event_type": PLAY},
        "bucket": "day",
        "periods": 5,
    }
    result = await run_retention(load(rows), RetentionRequest.parse(body).resolved())
    cells = {c.cohort: [cell.users for cell in c.cells] for c in result.cohorts}
    assert cells == {"2026-03-02": [0, 1, 1, 0, 0, 0]}
    assert_matches(
        result,
        reference(
            rows, start_type=LOGIN, return_type=PLAY, bucket="day", periods=5, first_day=d(0), last_day=d(6), zone=zone
        ),
    )


async def test_monthly_buckets(load: Any) -> None:
    rows = [
        Row(at(date(2026, 1, 31)), LOGIN, "m"),
        Row(at(date(2026, 2, 1)), PLAY, "m"),
        Row(at(date(2026, 4, 30)), PLAY, "m"),
        Row(at(date(2026, 3, 15)), LOGIN, "n"),
    ]
    body = {
        "date_range": {"start_date": "2026-01-15", "end_date": "2026-04-30"},
        "start_event": {"event_type": LOGIN},
        "return_event": {"event_type": PLAY},
        "bucket": "month",
        "periods": 12,
    }
    result = await run_retention(load(rows), RetentionRequest.parse(body).resolved())
    cells = {c.cohort: [cell.users for cell in c.cells] for c in result.cohorts}
    assert cells == {"2026-01-01": [0, 1, 0, 1], "2026-03-01": [0, 0]}
    assert_matches(
        result,
        reference(
            rows,
            start_type=LOGIN,
            return_type=PLAY,
            bucket="month",
            periods=12,
            first_day=date(2026, 1, 15),
            last_day=date(2026, 4, 30),
        ),
    )


async def test_start_filters(load: Any) -> None:
    rows = [
        Row(at(d(0)), LOGIN, "de", country="DE"),
        Row(at(d(7)), PLAY, "de"),
        Row(at(d(0)), LOGIN, "fr", country="FR"),
        Row(at(d(8)), LOGIN, "fr", country="DE"),
        Row(at(d(15)), PLAY, "fr"),
    ]
    result = await run_retention(
        load(rows),
        request(
            start_event={"event_type": LOGIN, "filters": [{"dimension": "country", "value": "DE"}]},
            return_event={"event_type": PLAY},
        ),
    )
    assert_matches(
        result,
        reference(
            rows,
            start_type=LOGIN,
            return_type=PLAY,
            bucket="week",
            periods=8,
            first_day=d(0),
            last_day=d(27),
            start_countries=("DE",),
        ),
    )
    assert {c.cohort: c.size for c in result.cohorts} == {"2026-03-02": 1, "2026-03-09": 1}


async def test_empty_answer(load: Any) -> None:
    result = await run_retention(
        load([Row(at(d(0)), PLAY, "p")]), request(start_event={"event_type": LOGIN}, return_event={"event_type": PLAY})
    )
    assert result.cohorts == []
    assert [(p.returned_users, p.eligible_users, p.rate) for p in result.curve] == [(0, 0, 0.0)] * 4


async def test_as_of(load: Any) -> None:
    mark = Watermark(stored_seq=1, fed_seq=1, as_of_ms=1_772_400_000_000)
    result = await run_retention(
        load([]), request(start_event={"event_type": LOGIN}, return_event={"event_type": PLAY}), mark
    )
    assert result.as_of == mark.as_of


@pytest.mark.parametrize("seed", range(8))
async def test_random_users_match_the_reference(load: Any, seed: int) -> None:
    rng = random.Random(seed)
    rows = [
        Row(at(d(rng.randint(-3, 30)), rng.uniform(0, 24)), rng.choice([LOGIN, PLAY, VIEW]), f"u{rng.randint(0, 15)}")
        for _ in range(150)
    ]
    bucket = rng.choice(["day", "week", "month"])
    periods = rng.randint(1, 6)
    start, back = rng.choice([(LOGIN, PLAY), (VIEW, VIEW), (PLAY, LOGIN)])
    result = await run_retention(
        load(rows),
        request(start_event={"event_type": start}, return_event={"event_type": back}, bucket=bucket, periods=periods),
    )
    assert_matches(
        result,
        reference(
            rows, start_type=start, return_type=back, bucket=bucket, periods=periods, first_day=d(0), last_day=d(27)
        ),
    )


# --- the request ------------------------------------------------------------------------------------


INJECTION = "x'); DROP TABLE events; --"


async def test_injection_strings_are_bound(load: Any, events: ClickHouseEvents) -> None:
    rows = [Row(at(d(0)), LOGIN, INJECTION, country=INJECTION), Row(at(d(8)), PLAY, INJECTION, country=INJECTION)]
    body = {
        "start_event": {"event_type": LOGIN, "filters": [{"dimension": "country", "value": INJECTION}]},
        "return_event": {"event_type": PLAY, "filters": [{"dimension": "user_id", "op": "contains", "value": "DROP"}]},
    }
    result = await run_retention(load(rows), request(**body))
    assert [c.size for c in result.cohorts] == [1]
    assert result.cohorts[0].cells[1].users == 1
    for bad in (
        {**body, "start_event": {"event_type": INJECTION}},
        {**body, "return_event": {"event_type": PLAY, "filters": [{"dimension": INJECTION, "value": "x"}]}},
        {**body, "bucket": INJECTION},
        {**body, "timezone": INJECTION},
    ):
        with pytest.raises(InvalidRequest):
            request(**bad)
    assert events.query("SELECT count() FROM events").rows[0][0] == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"return_event": {"event_type": PLAY}}, "start_event"),
        ({"start_event": {"event_type": "Login"}, "return_event": {"event_type": PLAY}}, "start_event.event_type"),
        ({"start_event": {"event_type": LOGIN}, "return_event": {"event_type": PLAY}, "bucket": "hour"}, "bucket"),
        ({"start_event": {"event_type": LOGIN}, "return_event": {"event_type": PLAY}, "periods": 0}, "periods"),
        ({"start_event": {"event_type": LOGIN}, "return_event": {"event_type": PLAY}, "periods": 53}, "periods"),
        (
            {
                "start_event": {"event_type": LOGIN},
                "return_event": {"event_type": PLAY},
                "bucket": "month",
                "periods": 13,
            },
            "periods",
        ),
        (
            {
                "start_event": {"event_type": LOGIN},
                "return_event": {"event_type": PLAY},
                "bucket": "day",
                "periods": 91,
            },
            "periods",
        ),
        (
            {
                "start_event": {"event_type": LOGIN},
                "return_event": {"event_type": PLAY},
                "date_range": {"start_date": "2025-01-01", "end_date": "2026-03-01"},
            },
            "date_range.start_date",
        ),
        ({"start_event": {"event_type": LOGIN}, "return_event": {"event_type": PLAY}, "extra": 1}, "extra"),
    ],
)
def test_validation_errors_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        RetentionRequest.parse(body).resolved(today=date(2026, 3, 4))
    assert caught.value.status == 400
    assert caught.value.details["field"] == field, caught.value.details


def test_the_default_range_gives_the_first_cohort_every_period() -> None:
    today = date(2026, 3, 4)  # a Wednesday
    body = {"start_event": {"event_type": LOGIN}, "return_event": {"event_type": PLAY}}
    weekly = RetentionRequest.parse({**body, "periods": 12}).resolved(today=today)
    assert weekly.date_range is not None
    assert (weekly.date_range.start_date, weekly.date_range.end_date) == (date(2025, 12, 8), today)
    monthly = RetentionRequest.parse({**body, "bucket": "month", "periods": 12}).resolved(today=today)
    assert monthly.date_range is not None and monthly.date_range.start_date == date(2025, 3, 1)
    daily = RetentionRequest.parse({**body, "bucket": "day"}).resolved(today=today)
    assert daily.date_range is not None and daily.date_range.start_date == today - timedelta(days=14)
