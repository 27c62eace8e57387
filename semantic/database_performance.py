"""Database performance: the statements recorded as ``database_query`` events (the service's own, see
semantic/self_telemetry.py, and any a platform service sends), per database, over a window.

Definitions (docs/system.md, "Database performance"):
- a statement is a ``database_query`` event with a numeric ``properties.duration_ms``, taken to the
  hundredth of a millisecond (the service records its own so); its database, operation, fingerprint
  and service are those properties ('' when absent);
- per database and for all databases together: statements, their total and average time, the 95th
  percentile of their times (exact, linear interpolation between the closest ranks, as
  ``quantileExactInclusive``), the longest, how many were slow (``duration_ms`` above
  ``slow_query_ms``, Settings), how many failed (``properties.error`` present) and the rows they
  reported (``properties.rows``); each against the previous period of the same length;
- a series per database by the period's granularity, every bucket present (zeros where none ran);
- the slowest statements: per (service, database, operation, fingerprint), the same figures, ordered
  by ``sort`` (p95 by default), ``limit`` of them.

Answers come from the ``database_statements`` rollup (migration 019), which keeps one row per distinct
duration, so each figure equals the raw events' (the quantile weighted by the counts). A time zone
whose offset in the window is not a whole number of hours does not align with its hourly rows: those
windows are read from raw events.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, Literal, get_args

from pydantic import BaseModel

from core.errors import InvalidRequest
from core.taxonomy import DATABASE_QUERY
from semantic.answers import PinnedAnswer
from semantic.periods import Period, period_label, utc_text
from semantic.results import MetricChange, PeriodInfo, bucket_label, period_buckets
from storage.events import EventStore

# Database performance names the statements and their shapes: for those who run the platform.

StatementSort = Literal["p95_ms", "average_ms", "max_ms", "total_ms", "statements", "slow_statements"]
STATEMENT_SORTS: tuple[str, ...] = get_args(StatementSort)
MAX_STATEMENTS = 100
MAX_SERVICE_CHARS = 256
ROLLUP = "database_statements"
RAW = "events"

_NUMBER_TYPES = "('Int64', 'UInt64', 'Double')"
_ROLLUP_SOURCE = f"""(
    SELECT
        hour AS t, service, database, operation, fingerprint, duration_ms,
        statements AS n, row_count AS rows_n, failed AS failed_n
    FROM {ROLLUP}
    WHERE hour >= {{lo:DateTime64(3, 'UTC')}} AND hour < {{hi:DateTime64(3, 'UTC')}} /*service*/
)"""
_RAW_SOURCE = f"""(
    SELECT t, service, database, operation, fingerprint, duration_ms, n, rows_n, failed_n
    FROM (
        SELECT
            timestamp AS t,
            JSONExtractString(properties, 'service') AS service,
            JSONExtractString(properties, 'database') AS database,
            JSONExtractString(properties, 'operation') AS operation,
            JSONExtractString(properties, 'fingerprint') AS fingerprint,
            round(greatest(JSONExtractFloat(properties, 'duration_ms'), 0), 2) AS duration_ms,
            toUInt64(1) AS n,
            toUInt64(greatest(JSONExtractInt(properties, 'rows'), 0)) AS rows_n,
            toUInt64(JSONHas(properties, 'error')) AS failed_n
        FROM events
        WHERE event_type = '{DATABASE_QUERY}'
          AND timestamp >= {{lo:DateTime64(3, 'UTC')}} AND timestamp < {{hi:DateTime64(3, 'UTC')}}
          AND JSONType(properties, 'duration_ms') IN {_NUMBER_TYPES}
    )
    WHERE 1 /*service*/
)"""
# The figures of a group of statements, over source rows (each row: ``n`` statements of one duration).
# The source's columns are named apart from these aliases, which ClickHouse would otherwise read in
# their place inside the other aggregates. Times add up in whole hundredths of a millisecond: an integer
# sum is the same in whatever order the rows come, from the rollup or from raw events.
_FIGURES = """
    sum(n) AS statements,
    sum(toInt64(round(duration_ms * 100)) * n) AS total_centi_ms,
    max(duration_ms) AS max_ms,
    quantileExactWeightedInterpolated(0.95)(duration_ms, n) AS p95_ms,
    sumIf(n, duration_ms > {slow:Float64}) AS slow_statements,
    sum(failed_n) AS failed_statements,
    sum(rows_n) AS row_count"""
_SORT_SQL = {
    "p95_ms": "p95_ms",
    "average_ms": "total_centi_ms / statements",
    "max_ms": "max_ms",
    "total_ms": "total_centi_ms",
    "statements": "statements",
    "slow_statements": "slow_statements",
}


class StatementFigures(BaseModel):
    statements: int
    total_ms: float
    # None without statements.
    average_ms: float | None
    p95_ms: float | None
    max_ms: float | None
    slow_statements: int
    # slow_statements / statements (0 without statements).
    slow_share: float
    failed_statements: int
    rows: int


class DatabaseStats(StatementFigures):
    database: str
    # statements, average_ms, p95_ms and slow_statements against the previous period.
    comparison: dict[str, MetricChange]


class DatabaseSeriesPoint(BaseModel):
    bucket: str
    database: str
    statements: int
    average_ms: float | None
    p95_ms: float | None
    slow_statements: int


class StatementStats(StatementFigures):
    service: str
    database: str
    operation: str
    fingerprint: str


class DatabasePerformance(PinnedAnswer):
    period: PeriodInfo
    previous_period: PeriodInfo
    slow_query_ms: float
    # The service the statements were limited to (None: every service's).
    service: str | None
    # Every database together, and against the previous period.
    totals: StatementFigures
    comparison: dict[str, MetricChange]
    databases: list[DatabaseStats]
    series: list[DatabaseSeriesPoint]
    sort: str
    slowest: list[StatementStats]
    source: str


_COMPARED = ("statements", "average_ms", "p95_ms", "slow_statements")
_EMPTY = {
    "statements": 0,
    "total_centi_ms": 0,
    "max_ms": None,
    "p95_ms": None,
    "slow_statements": 0,
    "failed_statements": 0,
    "row_count": 0,
}


def _ms(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def _figures(row: dict[str, Any]) -> StatementFigures:
    statements = int(row["statements"])
    total = int(row["total_centi_ms"] or 0) / 100
    slow = int(row["slow_statements"])
    return StatementFigures(
        statements=statements,
        total_ms=round(total, 3),
        average_ms=round(total / statements, 3) if statements else None,
        p95_ms=_ms(row["p95_ms"]) if statements else None,
        max_ms=_ms(row["max_ms"]) if statements else None,
        slow_statements=slow,
        slow_share=round(slow / statements, 6) if statements else 0.0,
        failed_statements=int(row["failed_statements"]),
        rows=int(row["row_count"]),
    )


def _comparison(current: StatementFigures, previous: StatementFigures) -> dict[str, MetricChange]:
    def value(figures: StatementFigures, name: str) -> float:
        return float(getattr(figures, name) or 0.0)

    return {name: MetricChange.of(value(current, name), value(previous, name)) for name in _COMPARED}


def check_options(limit: int, sort: str, service: str | None) -> None:
    """InvalidRequest naming the option that is out of range."""
    if not 1 <= limit <= MAX_STATEMENTS:
        raise InvalidRequest(f"limit must be between 1 and {MAX_STATEMENTS}", details={"field": "limit"})
    if sort not in STATEMENT_SORTS:
        raise InvalidRequest(f"sort must be one of {', '.join(STATEMENT_SORTS)}", details={"field": "sort"})
    if service is not None and not 1 <= len(service) <= MAX_SERVICE_CHARS:
        raise InvalidRequest(f"service must be 1 to {MAX_SERVICE_CHARS} characters", details={"field": "service"})


def rollup_answers(period: Period) -> bool:
    """Whether the hourly rollup can answer ``period`` and its previous one: every UTC offset the zone
    has in them is a whole number of hours, so local days and hours are unions of UTC hours."""
    offsets = period.utc_offsets() | period.previous().utc_offsets()
    return all(offset % timedelta(hours=1) == timedelta(0) for offset in offsets)


class DatabasePerformanceService:
    def __init__(self, store: EventStore, *, slow_query_ms: float) -> None:
        self._store = store
        self.slow_query_ms = slow_query_ms

    async def performance(
        self,
        period: Period,
        *,
        service: str | None = None,
        limit: int = 10,
        sort: str = "p95_ms",
        slow_query_ms: float | None = None,
        route: Literal["auto", "raw"] = "auto",
    ) -> DatabasePerformance:
        """``slow_query_ms``: the slow threshold (None: the configured one). ``route="raw"`` reads raw
        events even where the rollup could answer (the tests compare the two)."""
        check_options(limit, sort, service)
        slow = self.slow_query_ms if slow_query_ms is None else float(slow_query_ms)
        previous = period.previous()
        rollup = route == "auto" and rollup_answers(period)
        source = _ROLLUP_SOURCE if rollup else _RAW_SOURCE
        by_period, series, slowest = await asyncio.gather(
            self._by_period(source, period, previous, service, slow),
            self._series(source, period, service, slow),
            self._slowest(source, period, service, slow, limit, sort),
        )
        empty = _figures(_EMPTY)
        current = by_period.get(("0", None), empty)
        before = by_period.get(("1", None), empty)
        databases = sorted({database for (_, database) in by_period if database is not None})
        stats = []
        for database in databases:
            now = by_period.get(("0", database), empty)
            then = by_period.get(("1", database), empty)
            stats.append(DatabaseStats(database=database, comparison=_comparison(now, then), **now.model_dump()))
        in_period = [s.database for s in stats if s.statements]
        return DatabasePerformance(
            period=PeriodInfo.of(period),
            previous_period=PeriodInfo.of(previous),
            slow_query_ms=slow,
            service=service,
            totals=current,
            comparison=_comparison(current, before),
            databases=stats,
            series=_full_series(series, in_period, period),
            sort=sort,
            slowest=slowest,
            source=ROLLUP if rollup else RAW,
        )

    @staticmethod
    def _params(lo: Period, hi: Period, service: str | None, slow: float) -> dict[str, Any]:
        params: dict[str, Any] = {"lo": utc_text(lo.start), "hi": utc_text(hi.end), "slow": slow}
        if service is not None:
            params["service"] = service
        return params

    @staticmethod
    def _source(source: str, service: str | None) -> str:
        return source.replace("/*service*/", "AND service = {service:String}" if service is not None else "")

    async def _by_period(
        self, source: str, period: Period, previous: Period, service: str | None, slow: float
    ) -> dict[tuple[str, str | None], StatementFigures]:
        params = self._params(previous, period, service, slow)
        label = period_label("t", [period, previous], params)
        sql = f"""
SELECT label, database, grouping(database) AS every_database, {_FIGURES}
FROM (SELECT {label} AS label, * FROM {self._source(source, service)})
WHERE label != ''
GROUP BY GROUPING SETS ((label, database), (label))"""
        result = await self._store.query(sql, params)
        out: dict[tuple[str, str | None], StatementFigures] = {}
        for row in result.dicts():
            database = None if row["every_database"] else str(row["database"])
            out[(str(row["label"]), database)] = _figures(row)
        return out

    async def _series(self, source: str, period: Period, service: str | None, slow: float) -> list[DatabaseSeriesPoint]:
        params = self._params(period, period, service, slow)
        params["tz"] = period.timezone
        sql = f"""
SELECT {_bucket(period.granularity)} AS bucket, database, {_FIGURES}
FROM {self._source(source, service)}
GROUP BY bucket, database"""
        result = await self._store.query(sql, params)
        points = []
        for row in result.dicts():
            figures = _figures(row)
            points.append(
                DatabaseSeriesPoint(
                    bucket=bucket_label(row["bucket"], period),
                    database=str(row["database"]),
                    statements=figures.statements,
                    average_ms=figures.average_ms,
                    p95_ms=figures.p95_ms,
                    slow_statements=figures.slow_statements,
                )
            )
        return points

    async def _slowest(
        self, source: str, period: Period, service: str | None, slow: float, limit: int, sort: str
    ) -> list[StatementStats]:
        params = self._params(period, period, service, slow)
        params["limit"] = limit
        sql = f"""
SELECT service, database, operation, fingerprint, {_FIGURES}
FROM {self._source(source, service)}
GROUP BY service, database, operation, fingerprint
ORDER BY {_SORT_SQL[sort]} DESC, database, operation, fingerprint, service
LIMIT {{limit:UInt32}}"""
        result = await self._store.query(sql, params)
        return [
            StatementStats(
                service=str(row["service"]),
                database=str(row["database"]),
                operation=str(row["operation"]),
                fingerprint=str(row["fingerprint"]),
                **_figures(row).model_dump(),
            )
            for row in result.dicts()
        ]


def _bucket(granularity: str) -> str:
    if granularity == "hour":
        return "toUnixTimestamp(toStartOfHour(t, {tz:String}))"
    day = "toDate(t, {tz:String})"
    if granularity == "week":
        return f"toMonday({day})"
    if granularity == "month":
        return f"toStartOfMonth({day})"
    return day


def _full_series(points: list[DatabaseSeriesPoint], databases: list[str], period: Period) -> list[DatabaseSeriesPoint]:
    """Every bucket of the period for every database with statements in it, in bucket order."""
    found = {(p.bucket, p.database): p for p in points}
    out = []
    for bucket in period_buckets(period):
        for database in databases:
            point = found.get((bucket, database))
            out.append(
                point
                if point is not None
                else DatabaseSeriesPoint(
                    bucket=bucket, database=database, statements=0, average_ms=None, p95_ms=None, slow_statements=0
                )
            )
    return out
