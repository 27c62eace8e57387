"""Database performance (semantic/database_performance.py, migration 019) on real chDB, against figures
worked out here from the statements the test built: per database and in total, against the previous
period, the series, the slowest statements in each order, from the rollup and from raw events (a zone
with a half-hour offset), filtered by service; and an upgraded database fills the rollup from the events
it holds and takes later ones once."""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import pyarrow as pa
import pytest

from core.errors import InvalidRequest
from semantic.database_performance import STATEMENT_SORTS, DatabasePerformance, DatabasePerformanceService
from semantic.periods import Period
from storage.events import EVENT_SCHEMA, ClickHouseEvents
from tests.semantic.conftest import InProcessStore, create_statements, open_store, release_before

MIGRATION = "019_database_statements.sql"
SLOW_MS = 50.0
START = datetime(2025, 5, 1, tzinfo=UTC)
DAYS = 24
DATABASES = ("clickhouse", "postgres", "redis")
SHAPES = {
    "clickhouse": [("select", f"SELECT count() FROM events WHERE content_id = ? AND k = {k}") for k in range(5)],
    "postgres": [
        ("select", "SELECT id FROM api_keys WHERE key_hash = ?"),
        ("update", "UPDATE saved_queries SET x = ?"),
    ],
    "redis": [("get", "GET auth:?"), ("set", "SET result:?")],
}


@dataclass(frozen=True, slots=True)
class Statement:
    at: datetime
    service: str
    database: str
    operation: str
    fingerprint: str
    # Hundredths of a millisecond, so the JSON number and the figures here are the same double.
    centi_ms: int
    rows: int | None = None
    error: str | None = None

    @property
    def duration_ms(self) -> float:
        return self.centi_ms / 100


def _statements(seed: int, n: int) -> list[Statement]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        database = DATABASES[int(rng.choice(3, p=[0.5, 0.3, 0.2]))]
        operation, fingerprint = SHAPES[database][int(rng.integers(len(SHAPES[database])))]
        # Ties on purpose: a small set of durations repeats, and some sit exactly on the threshold.
        centi = int(rng.choice([100, 250, 5000, 5001, 12_345])) if i % 7 == 0 else int(rng.lognormal(6.5, 1.3))
        out.append(
            Statement(
                at=START + timedelta(milliseconds=int(rng.integers(0, DAYS * 86_400_000))),
                service="analytics" if i % 5 else "search-service",
                database=database,
                operation=operation,
                fingerprint=fingerprint,
                centi_ms=centi,
                rows=int(rng.integers(0, 40)) if database != "postgres" else None,
                error="TimeoutError" if i % 31 == 0 else None,
            )
        )
    # Redis only in the second half of May: absent from a May 16-24 period's previous period.
    return [s for s in out if s.database != "redis" or s.at >= datetime(2025, 5, 16, tzinfo=UTC)]


def _edges() -> list[Statement]:
    """Statements on the windows' edges (UTC and Asia/Kolkata midnights)."""
    kolkata = ZoneInfo("Asia/Kolkata")
    out = []
    for day in (date(2025, 5, 16), date(2025, 5, 18), date(2025, 5, 25)):
        for zone in (UTC, kolkata):
            midnight = datetime.combine(day, time(0), zone).astimezone(UTC)
            for delta, centi in ((timedelta(0), 7_000), (timedelta(milliseconds=-1), 3_000)):
                out.append(Statement(midnight + delta, "analytics", "clickhouse", "select", "SELECT ?", centi, rows=1))
    return out


def _table(statements: list[Statement], prefix: str, noise: bool = True) -> pa.Table:
    rows: list[dict[str, Any]] = []
    for i, s in enumerate(statements):
        properties: dict[str, Any] = {
            "service": s.service,
            "database": s.database,
            "operation": s.operation,
            "fingerprint": s.fingerprint,
            "duration_ms": s.duration_ms,
        }
        if s.rows is not None:
            properties["rows"] = s.rows
        if s.error is not None:
            properties["error"] = s.error
        rows.append({"id": f"{prefix}-{i}", "event_type": "database_query", "at": s.at, "properties": properties})
    if noise:
        # Not statements: another event type with a duration, a duration that is text, none at all.
        at = datetime(2025, 5, 20, 12, tzinfo=UTC)
        for i, (event_type, properties) in enumerate(
            [
                ("api_request", {"service": "analytics", "duration_ms": 900.0}),
                ("database_query", {"database": "clickhouse", "fingerprint": "SELECT ?", "duration_ms": "900"}),
                ("database_query", {"database": "clickhouse", "fingerprint": "SELECT ?"}),
            ]
        ):
            rows.append({"id": f"{prefix}-noise-{i}", "event_type": event_type, "at": at, "properties": properties})
    n = len(rows)
    columns: dict[str, Any] = {name: [""] * n for name in EVENT_SCHEMA.names}
    columns.update(
        id=[r["id"] for r in rows],
        event_type=[r["event_type"] for r in rows],
        event_category=["system"] * n,
        timestamp=[r["at"] for r in rows],
        properties=[orjson.dumps(r["properties"]).decode() for r in rows],
        processed_at=[datetime(2025, 6, 1, tzinfo=UTC)] * n,
    )
    return pa.table(columns, schema=EVENT_SCHEMA)


# ---- the figures, worked out here ------------------------------------------------------------------


def _p95(values: list[float]) -> float:
    """Linear interpolation between the closest ranks (numpy's default, Excel's PERCENTILE.INC)."""
    ordered = sorted(values)
    h = (len(ordered) - 1) * 0.95
    low = math.floor(h)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (h - low) * (ordered[high] - ordered[low])


def _figures(group: list[Statement], slow: float) -> dict[str, Any]:
    durations = [s.duration_ms for s in group]
    # Summed exactly, as the answer's whole hundredths of a millisecond are.
    total = sum(s.centi_ms for s in group) / 100
    n = len(durations)
    slow_count = sum(1 for d in durations if d > slow)
    return {
        "statements": n,
        "total_ms": total,
        "average_ms": total / n if n else None,
        "p95_ms": _p95(durations) if n else None,
        "max_ms": max(durations) if n else None,
        "slow_statements": slow_count,
        "slow_share": slow_count / n if n else 0.0,
        "failed_statements": sum(1 for s in group if s.error),
        "rows": sum(s.rows or 0 for s in group),
    }


def _within(statements: list[Statement], period: Period, service: str | None = None) -> list[Statement]:
    return [s for s in statements if period.start <= s.at < period.end and (service is None or s.service == service)]


def _bucket(moment: datetime, period: Period) -> str:
    local = moment.astimezone(period.zone)
    if period.granularity == "hour":
        return local.replace(minute=0, second=0, microsecond=0).isoformat()
    day = local.date()
    if period.granularity == "week":
        day -= timedelta(days=day.weekday())
    elif period.granularity == "month":
        day = day.replace(day=1)
    return day.isoformat()


def _same(actual: Any, expected: Any) -> None:
    """Equal, numbers to the answer's rounding (3 decimals)."""
    if isinstance(expected, dict):
        assert set(actual) >= set(expected), (actual, expected)
        for key, value in expected.items():
            _same(actual[key], value)
    elif isinstance(expected, float):
        assert actual == pytest.approx(expected, abs=1.5e-3), (actual, expected)
    else:
        assert actual == expected


def _check(answer: DatabasePerformance, statements: list[Statement], period: Period, **options: Any) -> None:
    service = options.get("service")
    limit, sort, slow = options.get("limit", 10), options.get("sort", "p95_ms"), options.get("slow", SLOW_MS)
    current, previous = _within(statements, period, service), _within(statements, period.previous(), service)
    body = answer.model_dump()
    _same(body["totals"], _figures(current, slow))
    for name in ("statements", "average_ms", "p95_ms", "slow_statements"):
        now, then = _figures(current, slow)[name] or 0.0, _figures(previous, slow)[name] or 0.0
        _same(body["comparison"][name], {"current": float(now), "previous": float(then)})

    seen = sorted({s.database for s in current + previous})
    assert [d["database"] for d in body["databases"]] == seen
    for stats in body["databases"]:
        mine = [s for s in current if s.database == stats["database"]]
        before = [s for s in previous if s.database == stats["database"]]
        _same(stats, _figures(mine, slow))
        _same(stats["comparison"]["statements"], {"current": float(len(mine)), "previous": float(len(before))})

    active = sorted({s.database for s in current})
    hours = range(int((period.end - period.start) / timedelta(hours=1)))
    buckets = list(dict.fromkeys(_bucket(period.start + timedelta(hours=h), period) for h in hours))
    assert [(p["bucket"], p["database"]) for p in body["series"]] == [(b, d) for b in buckets for d in active]
    for point in body["series"]:
        group = [s for s in current if s.database == point["database"] and _bucket(s.at, period) == point["bucket"]]
        figures = _figures(group, slow)
        _same(point, {k: figures[k] for k in ("statements", "average_ms", "p95_ms", "slow_statements")})

    groups: dict[tuple[str, str, str, str], list[Statement]] = {}
    for s in current:
        groups.setdefault((s.service, s.database, s.operation, s.fingerprint), []).append(s)
    # Highest first; ties by database, operation, fingerprint, service.
    ranked = sorted(
        groups.items(),
        key=lambda item: (-_figures(item[1], slow)[sort], item[0][1], item[0][2], item[0][3], item[0][0]),
    )[:limit]
    assert [(r["service"], r["database"], r["operation"], r["fingerprint"]) for r in body["slowest"]] == [
        key for key, _ in ranked
    ]
    for row, (_, group) in zip(body["slowest"], ranked, strict=True):
        _same(row, _figures(group, slow))


# ---- the tests -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def statements() -> list[Statement]:
    return _statements(11, 2_500) + _edges()


@pytest.fixture(scope="module")
def store(chdb_dir: Path, statements: list[Statement]) -> Iterator[ClickHouseEvents]:
    events = open_store(chdb_dir, f"database_performance_{secrets.token_hex(4)}")
    table = _table(statements, "dq")
    # Two inserts: the rollup holds rows of one key in two parts until they merge.
    events.insert(table.slice(0, 1_200), "dq-1")
    events.insert(table.slice(1_200), "dq-2")
    yield events
    events.close()


@pytest.fixture(scope="module")
def service(store: ClickHouseEvents) -> DatabasePerformanceService:
    return DatabasePerformanceService(InProcessStore(store), slow_query_ms=SLOW_MS)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("period", "source"),
    [
        (Period(date(2025, 5, 16), date(2025, 5, 24)), "database_statements"),
        (Period(date(2025, 5, 12), date(2025, 5, 24), "Europe/Berlin", "week"), "database_statements"),
        (Period(date(2025, 5, 17), date(2025, 5, 18), "Asia/Kolkata", "hour"), "events"),
        (Period(date(2025, 5, 1), date(2025, 5, 31), "America/New_York", "month"), "database_statements"),
    ],
)
async def test_figures_per_database_in_total_and_over_time(
    service: DatabasePerformanceService, statements: list[Statement], period: Period, source: str
) -> None:
    answer = await service.performance(period)
    assert answer.source == source
    assert answer.slow_query_ms == SLOW_MS and answer.service is None
    _check(answer, statements, period)


@pytest.mark.parametrize("sort", STATEMENT_SORTS)
async def test_the_slowest_statements_in_each_order(
    service: DatabasePerformanceService, statements: list[Statement], sort: str
) -> None:
    period = Period(date(2025, 5, 16), date(2025, 5, 24))
    answer = await service.performance(period, sort=sort, limit=4)
    assert answer.sort == sort and len(answer.slowest) == 4
    _check(answer, statements, period, sort=sort, limit=4)


async def test_one_service_and_another_threshold(
    service: DatabasePerformanceService, statements: list[Statement]
) -> None:
    period = Period(date(2025, 5, 10), date(2025, 5, 24), "UTC", "day")
    answer = await service.performance(period, service="search-service", slow_query_ms=20.0, limit=100)
    assert answer.service == "search-service" and answer.slow_query_ms == 20.0
    assert {row.service for row in answer.slowest} == {"search-service"}
    _check(answer, statements, period, service="search-service", slow=20.0, limit=100)


async def test_the_rollup_gives_what_raw_events_give(service: DatabasePerformanceService) -> None:
    for period in (
        Period(date(2025, 5, 16), date(2025, 5, 24)),
        Period(date(2025, 5, 12), date(2025, 5, 24), "Europe/Berlin", "week"),
        Period(date(2025, 5, 16), date(2025, 5, 17), "UTC", "hour"),
    ):
        rollup = await service.performance(period, limit=20)
        raw = await service.performance(period, limit=20, route="raw")
        assert (rollup.source, raw.source) == ("database_statements", "events")
        assert rollup.model_dump(exclude={"source"}) == raw.model_dump(exclude={"source"})


async def test_a_window_without_statements(service: DatabasePerformanceService) -> None:
    answer = await service.performance(Period(date(2025, 1, 1), date(2025, 1, 7)))
    assert answer.totals.statements == 0 and answer.totals.p95_ms is None and answer.totals.average_ms is None
    assert answer.databases == [] and answer.series == [] and answer.slowest == []
    assert answer.comparison["statements"].current == 0


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"sort": "fingerprint"}, "sort"),
        ({"service": ""}, "service"),
    ],
)
async def test_bad_options_name_the_parameter(
    service: DatabasePerformanceService, options: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidRequest) as raised:
        await service.performance(Period(date(2025, 5, 16), date(2025, 5, 24)), **options)
    assert raised.value.details == {"field": field}


@pytest.fixture
def open_old(chdb_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], ClickHouseEvents]:
    return release_before(MIGRATION, chdb_dir, monkeypatch)


async def test_an_upgraded_database_fills_the_rollup_and_takes_later_events_once(
    chdb_dir: Path, open_old: Callable[[str], ClickHouseEvents]
) -> None:
    database = f"database_upgrade_{secrets.token_hex(4)}"
    before, after = _statements(21, 600), _statements(22, 400)
    old = open_old(database)
    old.insert(_table(before, "old"), "old")
    assert not old.query("EXISTS TABLE database_statements").rows[0][0]
    old.close()

    store = open_store(chdb_dir, database)
    service = DatabasePerformanceService(InProcessStore(store), slow_query_ms=SLOW_MS)  # type: ignore[arg-type]
    period = Period(date(2025, 5, 1), date(2025, 5, 24))
    _check(await service.performance(period, limit=100), before, period, limit=100)
    store.insert(_table(after, "new", noise=False), "new")
    _check(await service.performance(period, limit=100), before + after, period, limit=100)

    fresh_name = f"database_fresh_{secrets.token_hex(4)}"
    fresh = open_store(chdb_dir, fresh_name)
    upgraded_schema, fresh_schema = create_statements(store, database), create_statements(fresh, fresh_name)
    for name in ("database_statements", "database_statements_mv"):
        assert upgraded_schema[name] == fresh_schema[name]
    fresh.close()
    store.close()
