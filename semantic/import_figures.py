"""Figures over many jobs: per source (/imports/sources), data quality (/imports/quality) and trends
(/imports/trends), each against the previous period of the same length.

Every figure counts the jobs started in its window (semantic/import_jobs.py says what a job, its
status, duration and figures are):

- success rate = completed / (completed + failed) jobs, failure rate = failed / (completed + failed),
  both 0 when no job finished;
- throughput = records processed / seconds, over the completed jobs that report records_processed
  and took some time (null without any);
- duration quantiles: ``quantileExactInclusive`` over the durations of the finished jobs, exact, with
  linear interpolation between the closest ranks (null without any);
- records and quality figures: sums over the jobs (a job that reports none adds 0); issues =
  duplicates + invalid_rows + missing_fields + transform_errors; issue rate = issues / records_total
  and failed record rate = records_failed / records_total (0 when no job reports records_total).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from semantic.answers import PinnedAnswer
from semantic.import_jobs import QUALITY_FIGURES, JobScope, bucket_sql, check_kind, check_source, jobs_sql
from semantic.periods import Period, utc_text
from semantic.results import MetricChange, PeriodInfo, bucket_label, compare, period_buckets
from storage.events import EventStore

_ISSUES = " + ".join(f"ifNull({name}, 0)" for name in QUALITY_FIGURES)
_THROUGHPUT_JOB = "status = 'completed' AND duration_ms > 0 AND records_processed IS NOT NULL"


def _aggregates(columns: dict[str, str]) -> str:
    # Named f_<name>: an alias equal to a job column would stand for the aggregate inside the others.
    return ", ".join(f"{expression} AS f_{name}" for name, expression in columns.items())


# One group's job figures, named like JobFigures' fields (and the throughput's two parts).
_JOB_FIGURES = _aggregates(
    {
        "jobs": "count()",
        "completed": "countIf(status = 'completed')",
        "failed": "countIf(status = 'failed')",
        "running": "countIf(status = 'running')",
        "stuck": "countIf(status = 'stuck')",
        "records_total": "sum(ifNull(records_total, 0))",
        "records_processed": "sum(ifNull(records_processed, 0))",
        "records_failed": "sum(ifNull(records_failed, 0))",
        "throughput_records": f"sumIf(records_processed, {_THROUGHPUT_JOB})",
        "throughput_ms": f"sumIf(duration_ms, {_THROUGHPUT_JOB})",
        "average_duration_ms": "avg(duration_ms)",
        "duration_p50_ms": "quantileExactInclusive(0.5)(duration_ms)",
        "duration_p95_ms": "quantileExactInclusive(0.95)(duration_ms)",
    }
)
_QUALITY_FIGURES = _aggregates(
    {
        "jobs": "count()",
        **{
            name: f"sum(ifNull({name}, 0))"
            for name in ("records_total", "records_processed", "records_failed", *QUALITY_FIGURES)
        },
        "issues": f"sum({_ISSUES})",
    }
)
# The figures compared against the previous period.
COMPARED_JOB_FIGURES = (
    "jobs",
    "completed",
    "failed",
    "success_rate",
    "failure_rate",
    "records_processed",
    "records_failed",
    "throughput_records_per_second",
)
COMPARED_QUALITY_FIGURES = ("records_total", "records_failed", *QUALITY_FIGURES, "issues", "issue_rate")


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


class JobFigures(BaseModel):
    jobs: int
    completed: int
    failed: int
    running: int
    stuck: int
    success_rate: float
    failure_rate: float
    records_total: int
    records_processed: int
    records_failed: int
    throughput_records_per_second: float | None
    average_duration_ms: float | None
    duration_p50_ms: float | None
    duration_p95_ms: float | None

    @classmethod
    def of(cls, row: dict[str, Any] | None) -> JobFigures:
        row = row or {}
        completed, failed = int(row.get("completed", 0)), int(row.get("failed", 0))
        seconds = float(row.get("throughput_ms") or 0) / 1000
        return cls(
            jobs=int(row.get("jobs", 0)),
            completed=completed,
            failed=failed,
            running=int(row.get("running", 0)),
            stuck=int(row.get("stuck", 0)),
            success_rate=_ratio(completed, completed + failed),
            failure_rate=_ratio(failed, completed + failed),
            records_total=int(row.get("records_total", 0)),
            records_processed=int(row.get("records_processed", 0)),
            records_failed=int(row.get("records_failed", 0)),
            throughput_records_per_second=int(row.get("throughput_records") or 0) / seconds if seconds else None,
            average_duration_ms=row.get("average_duration_ms"),
            duration_p50_ms=row.get("duration_p50_ms"),
            duration_p95_ms=row.get("duration_p95_ms"),
        )

    def compared(self) -> dict[str, float]:
        values = self.model_dump()
        return {name: float(values[name] or 0) for name in COMPARED_JOB_FIGURES}


class QualityFigures(BaseModel):
    jobs: int
    records_total: int
    records_processed: int
    records_failed: int
    duplicates: int
    invalid_rows: int
    missing_fields: int
    transform_errors: int
    issues: int
    issue_rate: float
    failed_record_rate: float

    @classmethod
    def of(cls, row: dict[str, Any] | None) -> QualityFigures:
        row = row or {}
        counts = {
            name: int(row.get(name, 0))
            for name in ("jobs", "records_total", "records_processed", "records_failed", *QUALITY_FIGURES, "issues")
        }
        return cls(
            **counts,
            issue_rate=_ratio(counts["issues"], counts["records_total"]),
            failed_record_rate=_ratio(counts["records_failed"], counts["records_total"]),
        )

    def compared(self) -> dict[str, float]:
        values = self.model_dump()
        return {name: float(values[name]) for name in COMPARED_QUALITY_FIGURES}


def _two_periods(params: dict[str, Any], period: Period) -> tuple[tuple[datetime, datetime], str]:
    """The window covering the period and the one before it, and SQL labelling a job's start
    'current' or 'previous'."""
    previous = period.previous()
    params["current_start"] = utc_text(period.start)
    label = "if(start >= {current_start:DateTime64(3, 'UTC')}, 'current', 'previous')"
    return (previous.start, period.end), label


def _by_label(rows: list[dict[str, Any]], *keys: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {tuple(row[k] for k in ("label", *keys)): row for row in rows}


class FailureRatePoint(BaseModel):
    bucket: str
    finished: int
    failed: int
    failure_rate: float


class SourcePerformance(BaseModel):
    kind: str
    source: str
    current: JobFigures
    previous: JobFigures
    comparison: dict[str, MetricChange]
    # Failure rate by bucket of the period (buckets without finished jobs have 0).
    failure_rate_trend: list[FailureRatePoint]


class ImportSources(PinnedAnswer):
    period: PeriodInfo
    previous_period: PeriodInfo
    kind: str | None
    # Sources with jobs started in the period, most jobs first.
    sources: list[SourcePerformance]


class QualityBySource(BaseModel):
    kind: str
    source: str
    current: QualityFigures
    previous: QualityFigures


class QualityPoint(BaseModel):
    bucket: str
    figures: QualityFigures


class ImportQuality(PinnedAnswer):
    period: PeriodInfo
    previous_period: PeriodInfo
    source: str | None
    kind: str | None
    totals: QualityFigures
    comparison: dict[str, MetricChange]
    sources: list[QualityBySource]
    series: list[QualityPoint]


class TrendPoint(BaseModel):
    bucket: str
    figures: JobFigures


class ImportTrends(PinnedAnswer):
    period: PeriodInfo
    previous_period: PeriodInfo
    source: str | None
    kind: str | None
    totals: JobFigures
    previous_totals: JobFigures
    comparison: dict[str, MetricChange]
    # Every bucket of the period, in order (empty buckets have zeros).
    series: list[TrendPoint]


Sets = tuple[tuple[str, ...], ...]


class ImportFigures:
    """The per-source, quality and trend reads over the merged jobs: one statement each, so the jobs
    are merged once per answer."""

    def __init__(self, store: EventStore) -> None:
        self._store = store

    async def _grouped(
        self, period: Period, scope: JobScope, figures: str, sets: Sets
    ) -> dict[tuple[str, ...], list[dict[str, Any]]]:
        """``figures`` of the jobs started in the period and in the previous one, labelled 'current'
        and 'previous', for each grouping set (of kind, source, bucket): the rows of each set, under
        its keys in alphabetical order."""
        params: dict[str, Any] = {"tz": period.timezone}
        window, label = _two_periods(params, period)
        jobs = jobs_sql(params, scope, window=window)
        columns = {"kind": "kind", "source": "source", "bucket": bucket_sql("start", period)}
        keys = sorted({key for keys in sets for key in keys})
        selected = ", ".join([f"{label} AS g_label", *(f"{columns[key]} AS g_{key}" for key in keys)])
        # grouping(k) is 0 where k is one of the row's set's keys.
        flags = "".join(f", grouping(g_{key}) AS n_{key}" for key in keys)
        grouping = ", ".join("(" + ", ".join(["g_label", *(f"g_{key}" for key in keys_of)]) + ")" for keys_of in sets)
        result = await self._store.query(
            f"SELECT {selected}{flags}, {figures} FROM {jobs} GROUP BY GROUPING SETS ({grouping})", params
        )
        rows: dict[tuple[str, ...], list[dict[str, Any]]] = {tuple(sorted(keys_of)): [] for keys_of in sets}
        for found in result.dicts():
            in_set = tuple(key for key in keys if found[f"n_{key}"] == 0)
            # Keys come back as g_<key>, figures as f_<name>.
            rows[in_set].append({name[2:]: value for name, value in found.items() if name[:2] in ("g_", "f_")})
        return rows

    async def sources(self, period: Period, *, kind: str | None, stuck_before: datetime) -> ImportSources:
        scope = JobScope(check_kind(kind), stuck_before)
        grouped = await self._grouped(period, scope, _JOB_FIGURES, (("kind", "source"), ("bucket", "kind", "source")))
        found = _by_label(grouped[("kind", "source")], "kind", "source")
        trend: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        for row in grouped[("bucket", "kind", "source")]:
            if row["label"] == "current":
                trend.setdefault((row["kind"], row["source"]), {})[bucket_label(row["bucket"], period)] = row
        labels = period_buckets(period)
        sources = []
        for (label, source_kind, source), row in found.items():
            if label != "current":
                continue
            now = JobFigures.of(row)
            before = JobFigures.of(found.get(("previous", source_kind, source)))
            points = []
            for bucket in labels:
                figures = JobFigures.of(trend.get((source_kind, source), {}).get(bucket))
                points.append(
                    FailureRatePoint(
                        bucket=bucket,
                        finished=figures.completed + figures.failed,
                        failed=figures.failed,
                        failure_rate=figures.failure_rate,
                    )
                )
            sources.append(
                SourcePerformance(
                    kind=source_kind,
                    source=source,
                    current=now,
                    previous=before,
                    comparison=compare(now.compared(), before.compared()),
                    failure_rate_trend=points,
                )
            )
        sources.sort(key=lambda s: (-s.current.jobs, s.kind, s.source))
        return ImportSources(
            period=PeriodInfo.of(period),
            previous_period=PeriodInfo.of(period.previous()),
            kind=kind,
            sources=sources,
        )

    async def quality(
        self, period: Period, *, source: str | None, kind: str | None, stuck_before: datetime
    ) -> ImportQuality:
        scope = JobScope(check_kind(kind), stuck_before, check_source(source))
        grouped = await self._grouped(period, scope, _QUALITY_FIGURES, (("kind", "source"), (), ("bucket",)))
        found = _by_label(grouped[("kind", "source")], "kind", "source")
        sources = [
            QualityBySource(
                kind=row_kind,
                source=row_source,
                current=QualityFigures.of(row),
                previous=QualityFigures.of(found.get(("previous", row_kind, row_source))),
            )
            for (label, row_kind, row_source), row in found.items()
            if label == "current"
        ]
        sources.sort(key=lambda s: (-s.current.issues, -s.current.jobs, s.kind, s.source))
        overall = {row["label"]: row for row in grouped[()]}
        now, before = QualityFigures.of(overall.get("current")), QualityFigures.of(overall.get("previous"))
        per_bucket = {
            bucket_label(row["bucket"], period): row for row in grouped[("bucket",)] if row["label"] == "current"
        }
        return ImportQuality(
            period=PeriodInfo.of(period),
            previous_period=PeriodInfo.of(period.previous()),
            source=source,
            kind=kind,
            totals=now,
            comparison=compare(now.compared(), before.compared()),
            sources=sources,
            series=[
                QualityPoint(bucket=bucket, figures=QualityFigures.of(per_bucket.get(bucket)))
                for bucket in period_buckets(period)
            ],
        )

    async def trends(
        self, period: Period, *, source: str | None, kind: str | None, stuck_before: datetime
    ) -> ImportTrends:
        scope = JobScope(check_kind(kind), stuck_before, check_source(source))
        grouped = await self._grouped(period, scope, _JOB_FIGURES, ((), ("bucket",)))
        overall = {row["label"]: row for row in grouped[()]}
        now, before = JobFigures.of(overall.get("current")), JobFigures.of(overall.get("previous"))
        per_bucket = {
            bucket_label(row["bucket"], period): row for row in grouped[("bucket",)] if row["label"] == "current"
        }
        return ImportTrends(
            period=PeriodInfo.of(period),
            previous_period=PeriodInfo.of(period.previous()),
            source=source,
            kind=kind,
            totals=now,
            previous_totals=before,
            comparison=compare(now.compared(), before.compared()),
            series=[
                TrendPoint(bucket=bucket, figures=JobFigures.of(per_bucket.get(bucket)))
                for bucket in period_buckets(period)
            ],
        )
