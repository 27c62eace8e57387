"""The batch jobs' runs and records in PostgreSQL (asyncpg): migrations 008_daily_aggregates.sql,
009_search_daily_records.sql and 010_system_hourly_records.sql.

A day's records are replaced as a whole in one transaction (the day's rows deleted, the new ones copied
in), so a re-run of a day never duplicates a record and readers never see half of a day.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg

# The record's columns, in the table's order (storage/migrations/postgres/008_daily_aggregates.sql).
RECORD_COLUMNS = (
    "day",
    "content_id",
    "category",
    "total_views",
    "unique_views",
    "average_view_duration",
    "completion_rate",
    "likes",
    "shares",
    "bookmarks",
    "comments",
    "search_impressions",
    "search_clicks",
    "recommendation_impressions",
    "recommendation_clicks",
    "direct_traffic",
    "search_traffic",
    "recommendation_traffic",
    "external_traffic",
    "desktop_views",
    "mobile_views",
    "tablet_views",
    "top_countries",
    "top_regions",
    "hourly_distribution",
    "daily_trend",
    "popularity_score",
    "engagement_score",
    "quality_score",
    "performance_score",
    "calculated_at",
)
# The day's search record, in the table's order (009_search_daily_records.sql).
SEARCH_RECORD_COLUMNS = (
    "day",
    "searches",
    "searchers",
    "zero_result_searches",
    "zero_result_rate",
    "average_results",
    "clicks",
    "click_through_rate",
    "average_click_position",
    "click_positions",
    "searches_with_session",
    "converted_searches",
    "conversion_rate",
    "conversion_minutes",
    "search_impressions",
    "search_clicks",
    "search_impression_ctr",
    "recommendation_impressions",
    "recommendation_clicks",
    "recommendation_ctr",
    "calculated_at",
)
# Each service-hour's system record, in the table's order (010_system_hourly_records.sql).
SYSTEM_RECORD_COLUMNS = (
    "day",
    "hour",
    "service_name",
    "request_count",
    "success_count",
    "error_count",
    "average_response_time",
    "cpu_usage_avg",
    "memory_usage_avg",
    "disk_usage_avg",
    "endpoint_stats",
    "status_code_distribution",
    "db_query_count",
    "db_avg_query_time",
    "db_slow_queries",
    "cache_hits",
    "cache_misses",
    "cache_hit_rate",
    "external_api_calls",
    "external_api_errors",
    "external_avg_response_time",
    "calculated_at",
)
_RUN_COLUMNS = (
    "id, job, day, engine, trigger, requested_by, status, started_at, finished_at, as_of, partitions, records, error"
)
_JSON_COLUMNS = frozenset(
    {
        "top_countries",
        "top_regions",
        "hourly_distribution",
        "click_positions",
        "endpoint_stats",
        "status_code_distribution",
    }
)
RANKING_COLUMNS = ("day", "category", "rank", "content_id", "performance_score", "total_views")


@dataclass(frozen=True, slots=True)
class AggregationRun:
    id: str
    job: str
    day: date
    engine: str
    trigger: str
    requested_by: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    as_of: datetime | None
    partitions: int | None
    records: dict[str, int]
    error: str | None

    @property
    def seconds(self) -> float | None:
        """How long it ran (None while running)."""
        return (self.finished_at - self.started_at).total_seconds() if self.finished_at else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "job": self.job,
            "day": self.day.isoformat(),
            "engine": self.engine,
            "trigger": self.trigger,
            "requested_by": self.requested_by,
            "status": self.status,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "seconds": self.seconds,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "partitions": self.partitions,
            "records": self.records,
            "error": self.error,
        }


def new_run_id() -> str:
    return "agg_" + secrets.token_hex(12)


class AggregateStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def start_run(self, day: date, *, engine: str, trigger: str, requested_by: str) -> AggregationRun:
        row = await self._pool.fetchrow(
            "INSERT INTO aggregation_runs (id, job, day, engine, trigger, requested_by) "
            f"VALUES ($1, 'daily', $2, $3, $4, $5) RETURNING {_RUN_COLUMNS}",
            new_run_id(),
            day,
            engine,
            trigger,
            requested_by,
        )
        return _run(row)

    async def claim_scheduled(self, day: date) -> AggregationRun | None:
        """The scheduled run of ``day``, started here; None when one was started before (by any scheduler)."""
        row = await self._pool.fetchrow(
            "INSERT INTO aggregation_runs (id, job, day, engine, trigger, requested_by) "
            "VALUES ($1, 'daily', $2, 'ray', 'schedule', 'schedule') "
            "ON CONFLICT (day) WHERE trigger = 'schedule' DO NOTHING "
            f"RETURNING {_RUN_COLUMNS}",
            new_run_id(),
            day,
        )
        return _run(row) if row else None

    async def fail_run(self, run_id: str, error: str) -> None:
        await self._pool.execute(
            "UPDATE aggregation_runs SET status = 'failed', finished_at = now(), error = $2 WHERE id = $1",
            run_id,
            error[:2000],
        )

    async def replace_day(
        self,
        run_id: str,
        day: date,
        records: list[dict[str, Any]],
        ranked: list[dict[str, Any]],
        search: dict[str, Any],
        system: list[dict[str, Any]],
        *,
        as_of: datetime | None,
        partitions: int,
    ) -> AggregationRun:
        """The day's content records, rankings, search record and system records replaced by these, and the
        run completed, in one transaction."""
        # table -> (its columns, the day's rows): each replaced the same way.
        tables: dict[str, tuple[tuple[str, ...], list[dict[str, Any]]]] = {
            "content_analytics_daily": (RECORD_COLUMNS, records),
            "content_rankings_daily": (RANKING_COLUMNS, ranked),
            "search_analytics_daily": (SEARCH_RECORD_COLUMNS, [search]),
            "system_analytics_hourly": (SYSTEM_RECORD_COLUMNS, system),
        }
        async with self._pool.acquire() as conn, conn.transaction():
            # One writer per day at a time: runs of the same day queue here instead of interleaving.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('daily_aggregates'), $1)", day.toordinal())
            for table, (columns, rows) in tables.items():
                await conn.execute(f"DELETE FROM {table} WHERE day = $1", day)
                if rows:
                    await conn.copy_records_to_table(
                        table,
                        columns=[*columns, "run_id"],
                        records=[(*(_cell(c, r[c]) for c in columns), run_id) for r in rows],
                    )
            row = await conn.fetchrow(
                "UPDATE aggregation_runs SET status = 'completed', finished_at = now(), as_of = $2, partitions = $3, "
                f"records = $4::jsonb WHERE id = $1 RETURNING {_RUN_COLUMNS}",
                run_id,
                as_of,
                partitions,
                json.dumps({table: len(rows) for table, (_, rows) in tables.items()}),
            )
        return _run(row)

    async def runs(self, *, limit: int, offset: int, day: date | None = None) -> tuple[list[AggregationRun], int]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_RUN_COLUMNS} FROM aggregation_runs WHERE ($1::date IS NULL OR day = $1) "
                "ORDER BY started_at DESC, id DESC LIMIT $2 OFFSET $3",
                day,
                limit,
                offset,
            )
            total = await conn.fetchval(
                "SELECT count(*) FROM aggregation_runs WHERE ($1::date IS NULL OR day = $1)", day
            )
        return [_run(r) for r in rows], int(total)

    async def run(self, run_id: str) -> AggregationRun | None:
        if not 0 < len(run_id) <= 100 or "\x00" in run_id:
            return None  # no stored id looks like this (PostgreSQL text cannot even hold a NUL)
        row = await self._pool.fetchrow(f"SELECT {_RUN_COLUMNS} FROM aggregation_runs WHERE id = $1", run_id)
        return _run(row) if row else None

    async def records(self, day: date) -> list[dict[str, Any]]:
        rows = await self._pool.fetch(
            f"SELECT {', '.join(RECORD_COLUMNS)} FROM content_analytics_daily WHERE day = $1 ORDER BY content_id", day
        )
        return [{c: json.loads(r[c]) if c in _JSON_COLUMNS else r[c] for c in RECORD_COLUMNS} for r in rows]

    async def rankings(self, day: date) -> list[dict[str, Any]]:
        rows = await self._pool.fetch(
            f"SELECT {', '.join(RANKING_COLUMNS)} FROM content_rankings_daily WHERE day = $1 ORDER BY category, rank",
            day,
        )
        return [dict(r) for r in rows]


def _cell(column: str, value: Any) -> Any:
    return json.dumps(value) if column in _JSON_COLUMNS else value


def _run(row: asyncpg.Record) -> AggregationRun:
    records = row["records"]
    return AggregationRun(
        id=row["id"],
        job=row["job"],
        day=row["day"],
        engine=row["engine"],
        trigger=row["trigger"],
        requested_by=row["requested_by"],
        status=row["status"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        as_of=row["as_of"],
        partitions=row["partitions"],
        records=json.loads(records) if isinstance(records, str) else records,
        error=row["error"],
    )
