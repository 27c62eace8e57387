"""The users overview against numbers made in Python from the generated rows: distinct users of the
period, the previous one and their last week and 30 days, new and returning users, DAU and the
series, from user_daily where its UTC days are the local days and from raw events elsewhere."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from semantic.periods import Period
from semantic.sessions import session_stats
from semantic.users import UserAnalyticsService
from storage.events import ClickHouseEvents
from tests.semantic.conftest import InProcessStore, open_store
from tests.semantic.generator import generate

START = datetime(2025, 3, 1, tzinfo=UTC)
DAYS = 70


@pytest.fixture(scope="module")
def data(chdb_dir: Path) -> Iterator[tuple[InProcessStore, list[tuple[str, datetime]]]]:
    store: ClickHouseEvents = open_store(chdb_dir, f"overview_{secrets.token_hex(4)}")
    # Users who arrive from 2025-04-05 on: new users in the later periods.
    later = generate(6_000, start=START + timedelta(days=35), days=DAYS - 35, seed=24, prefix="n", users=4_000)
    table = pa.concat_tables([generate(30_000, start=START, days=DAYS, seed=23, prefix="o", users=900), later])
    # Two inserts: user_daily holds rows of the same (day, user) in two parts until they merge.
    store.insert(table.slice(0, 20_000), "overview-1")
    store.insert(table.slice(20_000), "overview-2")
    rows = [
        (user, moment.astimezone(UTC))
        for user, moment in zip(table.column("user_id").to_pylist(), table.column("timestamp").to_pylist(), strict=True)
        if user
    ]
    yield InProcessStore(store), rows
    store.close()


def _users_in(rows: list[tuple[str, datetime]], start: datetime, end: datetime) -> set[str]:
    return {user for user, moment in rows if start <= moment < end}


def _window(period: Period, days: int) -> Period:
    return period.shifted(period.end_date - timedelta(days=days - 1), period.end_date)


def _expected(rows: list[tuple[str, datetime]], period: Period) -> dict[str, object]:
    previous = period.previous()
    first: dict[str, datetime] = {}
    for user, moment in rows:
        first[user] = min(first.get(user, moment), moment)

    def figures(p: Period) -> dict[str, object]:
        active = _users_in(rows, p.start, p.end)
        new = {user for user, moment in first.items() if p.start <= moment < p.end}
        zone = p.zone
        per_day = sum(
            len(
                _users_in(rows, *(datetime.combine(day + timedelta(days=k), datetime.min.time(), zone) for k in (0, 1)))
            )
            for day in p.dates()
        )
        return {
            "active": len(active),
            "new": len(new),
            "wau": len(_users_in(rows, _window(p, 7).start, p.end)),
            "mau": len(_users_in(rows, _window(p, 30).start, p.end)),
            "dau": round(per_day / p.days, 4),
        }

    return {"current": figures(period), "previous": figures(previous)}


@pytest.mark.parametrize(
    ("tz", "granularity", "start", "end", "source"),
    [
        ("UTC", "day", date(2025, 4, 10), date(2025, 5, 9), "user_daily"),
        ("UTC", "week", date(2025, 4, 20), date(2025, 5, 9), "user_daily"),
        # Shorter than a week and a month: the windows reach before the period.
        ("UTC", "day", date(2025, 4, 30), date(2025, 5, 3), "user_daily"),
        # Local days are not UTC days: raw events.
        ("Asia/Kolkata", "day", date(2025, 4, 10), date(2025, 5, 9), "events"),
    ],
)
async def test_overview_counts_every_window_as_python_does(
    data: tuple[InProcessStore, list[tuple[str, datetime]]],
    tz: str,
    granularity: str,
    start: date,
    end: date,
    source: str,
) -> None:
    store, rows = data
    period = Period(start, end, tz, granularity)  # type: ignore[arg-type]
    overview = await UserAnalyticsService(store).overview(period)
    expected = _expected(rows, period)
    now, before = expected["current"], expected["previous"]
    assert isinstance(now, dict) and isinstance(before, dict)
    assert overview.source == source
    got = {
        "active": overview.active_users,
        "new": overview.new_users,
        "wau": overview.wau,
        "mau": overview.mau,
        "dau": overview.dau,
    }
    assert got == now
    assert overview.returning_users == now["active"] - now["new"]
    assert now["new"] and now["active"] > now["new"] and before["active"]
    previous = {
        name: overview.comparison[key].previous
        for name, key in (
            ("active", "active_users"),
            ("new", "new_users"),
            ("wau", "wau"),
            ("mau", "mau"),
            ("dau", "dau"),
        )
    }
    assert previous == {name: float(value) for name, value in before.items()}  # type: ignore[arg-type]
    sessions = await session_stats(store, [period, period.previous()])
    assert overview.sessions == sessions[0]
    assert overview.comparison["sessions"].previous == sessions[1].sessions
    # The series: the distinct users of each bucket.
    series = {point.bucket: point.active_users for point in overview.series}
    zone = period.zone
    for label, users in series.items():
        first_day = date.fromisoformat(label)
        days = 7 if granularity == "week" else 1
        bucket_start = max(datetime.combine(first_day, datetime.min.time(), zone), period.start)
        bucket_end = min(datetime.combine(first_day + timedelta(days=days), datetime.min.time(), zone), period.end)
        assert users == len(_users_in(rows, bucket_start, bucket_end)), label
    assert sum(series.values()) > 0


async def test_a_period_with_nothing_before_it_compares_with_zeros(
    data: tuple[InProcessStore, list[tuple[str, datetime]]],
) -> None:
    store, rows = data
    overview = await UserAnalyticsService(store).overview(Period(date(2025, 3, 1), date(2025, 3, 10)))
    assert overview.comparison["active_users"].previous == 0.0
    # Everyone active in the first days of the data is new.
    assert (
        overview.new_users
        == overview.active_users
        == len(_users_in(rows, datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 11, tzinfo=UTC)))
    )
