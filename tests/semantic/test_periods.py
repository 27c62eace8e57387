"""semantic/periods.py (and the REST window parameters, serve_app/periods.py): a date the store
cannot hold is refused naming its parameter, and nothing derived from a valid period, its previous
period included, hands ClickHouse a date or instant it cannot hold."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from core.errors import InvalidRequest
from semantic.compiler import MetricQuery, Route, compile_query, run_query
from semantic.periods import EPOCH, MAX_DATE, MIN_DATE, Period, resolve_period
from serve_app.periods import analytics_period
from storage.events import ClickHouseEvents
from tests.semantic.conftest import InProcessStore, open_store

ZONES = ("UTC", "Asia/Tokyo", "Pacific/Kiritimati", "Etc/GMT+12")  # +9, +14, -12


def _resolve(start: date | None, end: date | None, **options: Any) -> Period:
    return resolve_period(start, end, default_days=30, max_days=366, **options)


@pytest.mark.parametrize(
    ("start", "end", "options", "field"),
    [
        (None, date(33, 1, 1), {}, "end_date"),
        (None, date(1, 1, 1), {}, "end_date"),
        (None, date(794, 12, 10), {"granularity": "week"}, "end_date"),
        (None, date(1969, 12, 31), {}, "end_date"),
        (None, date(2106, 1, 1), {}, "end_date"),
        (None, date(9999, 12, 31), {"timezone": "Asia/Tokyo"}, "end_date"),
        (date(1, 1, 1), date(1970, 1, 5), {}, "start_date"),
        (date(1969, 12, 31), date(1970, 1, 5), {"granularity": "hour"}, "start_date"),
        (date(2106, 1, 1), date(2106, 1, 2), {}, "start_date"),
        (date(2105, 12, 1), date(2106, 1, 1), {}, "end_date"),
    ],
)
def test_a_date_the_store_cannot_hold_is_refused_naming_it(
    start: date | None, end: date | None, options: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        _resolve(start, end, **options)
    assert refused.value.details == {"field": field}
    bad = start if field == "start_date" else end
    assert refused.value.message == (
        f"{field} {bad.isoformat() if bad else ''} is outside the dates the store can hold: 1970-01-01 to 2105-12-31"
    )


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize(
    ("start", "end"),
    [(MIN_DATE, MIN_DATE), (MAX_DATE, MAX_DATE), (MIN_DATE, date(1970, 12, 31)), (date(2105, 1, 1), MAX_DATE)],
)
def test_the_edge_dates_are_accepted(start: date, end: date, zone: str) -> None:
    period = _resolve(start, end, timezone=zone)
    assert (period.start_date, period.end_date, period.timezone) == (start, end, zone)
    assert period.days == (end - start).days + 1


def test_defaults_never_reach_before_1970() -> None:
    assert _resolve(None, date(1970, 1, 10)).start_date == MIN_DATE
    assert _resolve(None, None, today=date(1970, 1, 3)) == Period(MIN_DATE, date(1970, 1, 3))
    assert _resolve(None, date(1970, 2, 1)).start_date == date(1970, 1, 3)  # 30 days, all after 1970


def test_the_previous_period_keeps_its_dates_and_its_instants_start_at_the_epoch() -> None:
    whole = Period(MIN_DATE, date(1970, 1, 30)).previous()
    assert (whole.start_date, whole.end_date) == (date(1969, 12, 2), date(1969, 12, 31))
    # Wholly before 1970: the empty range at the epoch.
    assert whole.start == whole.end == EPOCH
    part = Period(date(1970, 1, 3), date(1970, 1, 10)).previous()
    assert (part.start_date, part.end_date) == (date(1969, 12, 26), date(1970, 1, 2))
    assert (part.start, part.end) == (EPOCH, datetime(1970, 1, 3, tzinfo=UTC))
    # East of UTC, 1970-01-01 starts before the epoch: cut there; west, it starts after it.
    assert Period(MIN_DATE, MIN_DATE, "Asia/Tokyo").start == EPOCH
    assert Period(MIN_DATE, MIN_DATE, "Etc/GMT+12").start == datetime(1970, 1, 1, 12, tzinfo=UTC)
    # The latest instant any period can have is inside ClickHouse's DateTime (to 2106-02-07 06:28:15).
    assert Period(MAX_DATE, MAX_DATE, "Etc/GMT+12").end == datetime(2106, 1, 1, 12, tzinfo=UTC)


# --- against ClickHouse ------------------------------------------------------------------------

# Placeholders of the types that cannot hold every date: the engine would silently clamp or wrap.
_NARROW_PLACEHOLDER = re.compile(r"\{(\w+):(Date|DateTime\('UTC'\))\}")


@pytest.fixture(scope="module")
def store(chdb_dir: Path) -> Iterator[ClickHouseEvents]:
    events = open_store(chdb_dir, f"periods_{secrets.token_hex(4)}")
    yield events
    events.close()


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("granularity", ["day", "week", "month"])
@pytest.mark.parametrize("route", ["raw", "auto"])
@pytest.mark.parametrize(("start", "end"), [(MIN_DATE, date(1970, 1, 20)), (date(2105, 12, 1), MAX_DATE)])
async def test_edge_periods_and_their_previous_ones_run_within_the_engine_range(
    store: ClickHouseEvents, zone: str, granularity: str, route: Route, start: date, end: date
) -> None:
    period = _resolve(start, end, timezone=zone, granularity=granularity)
    query = MetricQuery("content", ("views",), period, ("period", "bucket"), with_previous=True, route=route)
    compiled = compile_query(query)
    narrow = _NARROW_PLACEHOLDER.findall(compiled.sql)
    for name, kind in narrow:
        # Each value comes back unchanged from the engine: it is inside the type's range.
        (echoed,) = store.query(f"SELECT toString({{v:{kind}}})", {"v": compiled.parameters[name]}).rows[0]
        assert echoed == compiled.parameters[name], (name, kind)
    result = await run_query(InProcessStore(store), query)
    assert all(row["m_views"] == 0 for row in result.rows)


# --- the REST parameters (serve_app/periods.py) ------------------------------------------------


def _services() -> Any:
    def period(start: date | None, end: date | None, granularity: str, timezone: str) -> Period:
        return resolve_period(start, end, granularity=granularity, timezone=timezone, default_days=30, max_days=366)

    return SimpleNamespace(analytics=SimpleNamespace(period=period))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"end_date": date(33, 1, 1)}, "end_date"),
        ({"end_date": date(1, 1, 1)}, "end_date"),
        ({"granularity": "week", "end_date": date(794, 12, 10)}, "end_date"),
        ({"window": "7d", "end_date": date(1, 1, 1)}, "end_date"),
        ({"window": "90d", "end_date": date(9999, 12, 31)}, "end_date"),
        ({"start_date": date(1, 1, 7), "end_date": date(1970, 1, 2)}, "start_date"),
    ],
)
async def test_rest_window_parameters_refuse_dates_out_of_range(params: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        await analytics_period(_services(), **{"granularity": "day", "timezone": "UTC", "window": None, **params})
    assert refused.value.details == {"field": field}


async def test_a_rest_window_counts_back_no_further_than_1970() -> None:
    period = await analytics_period(
        _services(), start_date=None, end_date=date(1970, 1, 3), granularity="day", timezone="UTC", window="7d"
    )
    assert (period.start_date, period.end_date) == (MIN_DATE, date(1970, 1, 3))
