"""Import and media processing jobs as the import analytics read them: one row per job from the
``import_jobs`` rollup (migration 018), what each job is (status, duration, figures), the job list and
one job's timeline.

A job is the events naming one ``properties.job_id``; ``import_*`` events make a job of kind
``import``, ``processing_*`` events one of kind ``processing``. Its rollup rows are merged when read,
so the answer is the same whatever order its events arrived in, and in however many inserts:

- start: the first start event, else the job's first event; a job belongs to the windows its start
  falls in (every import answer counts the jobs started in its window);
- status: ``failed`` when its latest completion or failure event is a failure (a failure at the same
  instant as a completion wins), ``completed`` when it is a completion, otherwise ``stuck`` when its
  last event is older than the stuck threshold (ANALYTICS_IMPORT_STUCK_AFTER_MINUTES), else
  ``running``;
- duration: of a finished job, the largest ``duration_ms`` its completion or failure events report,
  else the time from its start to its end;
- records and quality figures: the largest value any of its events reports (events report the job's
  totals so far); null when none does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from core.errors import InvalidRequest, NotFound
from core.taxonomy import (
    IMPORT_COMPLETED,
    IMPORT_FAILED,
    IMPORT_STAGE_COMPLETED,
    IMPORT_STARTED,
    PROCESSING_COMPLETED,
    PROCESSING_FAILED,
    PROCESSING_STARTED,
)
from semantic.answers import PinnedAnswer
from semantic.periods import Period, utc_text
from semantic.results import PeriodInfo
from storage.events import EventStore

JOBS_TABLE = "import_jobs"
KINDS: tuple[str, ...] = ("import", "processing")
STATUSES: tuple[str, ...] = ("completed", "failed", "running", "stuck")
RECORD_FIGURES: tuple[str, ...] = ("records_total", "records_processed", "records_failed")
QUALITY_FIGURES: tuple[str, ...] = ("duplicates", "invalid_rows", "missing_fields", "transform_errors")
MAX_PAGE = 500

# How a job's events sort when they share an instant: start, stages, then its end.
_EVENT_ORDER = {
    IMPORT_STARTED: 0,
    PROCESSING_STARTED: 0,
    IMPORT_STAGE_COMPLETED: 1,
    IMPORT_COMPLETED: 2,
    PROCESSING_COMPLETED: 2,
    IMPORT_FAILED: 2,
    PROCESSING_FAILED: 2,
}


def check_kind(kind: str | None) -> tuple[str, ...]:
    """The kinds an answer covers: the one asked for, else every kind."""
    if kind is None:
        return KINDS
    if kind not in KINDS:
        raise InvalidRequest(f"kind must be one of {', '.join(KINDS)}", details={"field": "kind"})
    return (kind,)


def check_status(status: str | None) -> str | None:
    if status is not None and status not in STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(STATUSES)}", details={"field": "status"})
    return status


def check_source(source: str | None) -> str | None:
    if source is not None and not 1 <= len(source) <= 256:
        raise InvalidRequest("source must be 1 to 256 characters", details={"field": "source"})
    return source


def as_utc(moment: datetime) -> datetime:
    """An instant read from the store (naive values are UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def maybe_utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else as_utc(moment)


@dataclass(frozen=True, slots=True)
class JobScope:
    """Which jobs an answer reads, and the instant before which a job's last event makes it stuck."""

    kinds: tuple[str, ...]
    stuck_before: datetime
    source: str | None = None


def jobs_sql(
    params: dict[str, Any],
    scope: JobScope,
    *,
    window: tuple[datetime, datetime] | None = None,
    job_id: str | None = None,
    lists: tuple[str, ...] = (),
) -> str:
    """A derived table of merged jobs, one row each: job_id, kind, source, start, last_at, ended_at,
    status, duration_ms, the record and quality figures (null when not reported), failure_reason and
    failed_stage ('' unless failed), stages_completed, and the lists named in ``lists`` ("events":
    the job's events, "stage_runs": its (stage, duration_ms) pairs; unsorted). ``window`` keeps the
    jobs whose start is in [start, end). Binds into ``params``."""
    params["kinds"] = list(scope.kinds)
    params["stuck_before"] = utc_text(scope.stuck_before)
    inner_where = "kind IN {kinds:Array(String)}"
    if job_id is not None:
        params["job_id"] = job_id
        inner_where += " AND job_id = {job_id:String}"
    outer_where = ["1"]
    if window is not None:
        params["w_start"], params["w_end"] = utc_text(window[0]), utc_text(window[1])
        outer_where.append("start >= {w_start:DateTime64(3, 'UTC')} AND start < {w_end:DateTime64(3, 'UTC')}")
    if scope.source is not None:
        params["source"] = scope.source
        outer_where.append("source = {source:String}")
    figures = (*RECORD_FIGURES, *QUALITY_FIGURES)
    merged_figures = ", ".join(f"max({name}) AS m_{name}" for name in figures)
    figure_columns = ", ".join(f"m_{name} AS {name}" for name in figures)
    merged_lists = "".join(f", groupArrayArray({name}) AS m_{name}" for name in lists)
    list_columns = "".join(f", m_{name} AS {name}" for name in lists)
    return f"""(
        SELECT
            job_id, kind, m_source AS source, start, last_at, ended_at, status,
            if(ended_at IS NULL, NULL,
               ifNull(m_reported_ms,
                      toFloat64(greatest(toUnixTimestamp64Milli(ended_at) - toUnixTimestamp64Milli(start), 0))))
                AS duration_ms,
            {figure_columns},
            if(status = 'failed', m_last_failure.3, '') AS failure_reason,
            if(status = 'failed', m_last_failure.4, '') AS failed_stage,
            m_stages AS stages_completed{list_columns}
        FROM (
            SELECT
                *,
                ifNull(m_started, m_first) AS start,
                m_last AS last_at,
                multiIf(m_failed IS NOT NULL AND (m_completed IS NULL OR m_failed >= m_completed), 'failed',
                        m_completed IS NOT NULL, 'completed',
                        m_last < {{stuck_before:DateTime64(3, 'UTC')}}, 'stuck',
                        'running') AS status,
                multiIf(status = 'failed', m_failed, status = 'completed', m_completed, NULL) AS ended_at
            FROM (
                SELECT
                    job_id, kind,
                    max(source) AS m_source,
                    min(started_at) AS m_started,
                    min(first_at) AS m_first,
                    max(last_at) AS m_last,
                    max(completed_at) AS m_completed,
                    max(failed_at) AS m_failed,
                    max(duration_ms) AS m_reported_ms,
                    {merged_figures},
                    max(last_failure) AS m_last_failure,
                    sum(stages_completed) AS m_stages{merged_lists}
                FROM {JOBS_TABLE}
                WHERE {inner_where}
                GROUP BY job_id, kind
            )
        )
        WHERE {" AND ".join(outer_where)}
    )"""


def bucket_sql(column: str, period: Period) -> str:
    """The period's bucket an instant column falls in (local to {tz:String}): epoch seconds of the
    hour, else the local date of the day, the week's Monday or the month's first day."""
    local_day = f"toDate({column}, {{tz:String}})"
    return {
        "hour": f"toUnixTimestamp(toStartOfHour({column}, {{tz:String}}))",
        "day": local_day,
        "week": f"toMonday({local_day})",
        "month": f"toStartOfMonth({local_day})",
    }[period.granularity]


class ImportJob(BaseModel):
    """One job as it stands: what its events say once merged."""

    job_id: str
    kind: str = Field(description="import or processing")
    source: str = Field(description="properties.source; for a processing job without one, properties.kind")
    status: str = Field(description="completed, failed, running or stuck")
    started_at: datetime = Field(description="its first start event, else its first event")
    ended_at: datetime | None = Field(description="its completion or failure; null while it runs")
    last_event_at: datetime
    duration_ms: float | None = Field(description="reported by its end event, else end - start; null while it runs")
    records_total: int | None
    records_processed: int | None
    records_failed: int | None
    stages_completed: int
    failure_reason: str | None = Field(description="properties.failure_reason of its last failure (failed jobs)")
    failed_stage: str | None = Field(description="properties.stage of its last failure (failed jobs)")


_JOB_FIELDS = (
    "job_id",
    "kind",
    "source",
    "start",
    "ended_at",
    "last_at",
    "duration_ms",
    "records_total",
    "records_processed",
    "records_failed",
    "stages_completed",
    "status",
    "failure_reason",
    "failed_stage",
)
_JOB_COLUMNS = ", ".join(_JOB_FIELDS)


def _job(row: tuple[Any, ...]) -> ImportJob:
    (job_id, kind, source, start, ended, last, duration, total, processed, failed, stages, status, reason, stage) = row
    return ImportJob(
        job_id=job_id,
        kind=kind,
        source=source,
        status=status,
        started_at=as_utc(start),
        ended_at=maybe_utc(ended),
        last_event_at=as_utc(last),
        duration_ms=duration,
        records_total=total,
        records_processed=processed,
        records_failed=failed,
        stages_completed=int(stages),
        failure_reason=reason if status == "failed" else None,
        failed_stage=stage if status == "failed" else None,
    )


class JobFilters(BaseModel):
    source: str | None
    status: str | None
    kind: str | None


class ImportJobPage(PinnedAnswer):
    period: PeriodInfo
    filters: JobFilters
    # Jobs started in the period that pass every filter.
    total: int
    limit: int
    offset: int
    has_more: bool
    # Jobs of each status that pass the other filters (source, kind).
    statuses: dict[str, int]
    # Newest start first (then job id).
    jobs: list[ImportJob]
    stuck_after_minutes: int


async def list_jobs(
    store: EventStore,
    period: Period,
    *,
    stuck_before: datetime,
    stuck_after_minutes: int,
    source: str | None,
    status: str | None,
    kind: str | None,
    limit: int,
    offset: int,
) -> ImportJobPage:
    scope = JobScope(check_kind(kind), stuck_before, check_source(source))
    check_status(status)
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}", details={"field": "limit"})
    if offset < 0:
        raise InvalidRequest("offset must be 0 or more", details={"field": "offset"})
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    jobs = jobs_sql(params, scope, window=(period.start, period.end))
    status_filter = "1"
    if status is not None:
        params["status"] = status
        status_filter = "status = {status:String}"
    # The jobs of each status are counted over every job of the scope before the page is cut.
    counted = "".join(f", countIf(status = '{name}') OVER () AS n_{name}" for name in STATUSES)
    page = await store.query(
        f"""SELECT {_JOB_COLUMNS}, {", ".join(f"n_{name}" for name in STATUSES)}
        FROM (SELECT *{counted} FROM {jobs})
        WHERE {status_filter}
        ORDER BY start DESC, job_id, kind
        LIMIT {{limit:UInt32}} OFFSET {{offset:UInt64}}""",
        params,
    )
    width = len(STATUSES)
    if page.rows:
        statuses = dict(zip(STATUSES, (int(n) for n in page.rows[0][-width:]), strict=True))
    else:
        # Past the last page, or no job of the status: the counts come from their own statement.
        count_params: dict[str, Any] = {}
        counts = await store.query(
            f"SELECT status, count() FROM {jobs_sql(count_params, scope, window=(period.start, period.end))} "
            "GROUP BY status",
            count_params,
        )
        statuses = {name: 0 for name in STATUSES}
        statuses.update({str(name): int(n) for name, n in counts.rows})
    total = statuses[status] if status is not None else sum(statuses.values())
    jobs_found = [_job(row[:-width]) for row in page.rows]
    return ImportJobPage(
        period=PeriodInfo.of(period),
        filters=JobFilters(source=source, status=status, kind=kind),
        total=total,
        limit=limit,
        offset=offset,
        has_more=offset + len(jobs_found) < total,
        statuses=statuses,
        jobs=jobs_found,
        stuck_after_minutes=stuck_after_minutes,
    )


class JobEvent(BaseModel):
    """One event of a job's timeline."""

    at: datetime
    event_type: str
    stage: str | None
    # Since the job's start (negative for an event stamped before it).
    elapsed_ms: float
    duration_ms: float | None
    records_total: int | None
    records_processed: int | None
    records_failed: int | None
    duplicates: int | None
    invalid_rows: int | None
    missing_fields: int | None
    transform_errors: int | None
    failure_reason: str | None


class StageRun(BaseModel):
    """A stage the job finished or failed in, in timeline order."""

    stage: str
    outcome: str = Field(description="completed, or failed for the stage a failure event names")
    at: datetime
    duration_ms: float | None
    # The stage's duration over the job's (null without either).
    share_of_job_time: float | None
    records_processed: int | None
    records_failed: int | None


class JobQuality(BaseModel):
    duplicates: int | None
    invalid_rows: int | None
    missing_fields: int | None
    transform_errors: int | None


class ImportJobReport(PinnedAnswer):
    job: ImportJob
    quality: JobQuality
    stages: list[StageRun]
    timeline: list[JobEvent]
    stuck_after_minutes: int


def _job_event(event: dict[str, Any], start: datetime) -> JobEvent:
    at = as_utc(event["at"])
    return JobEvent(
        at=at,
        event_type=event["event_type"],
        stage=event["stage"] or None,
        elapsed_ms=(at - start).total_seconds() * 1000,
        duration_ms=event["duration_ms"],
        failure_reason=event["failure_reason"] if event["event_type"] in (IMPORT_FAILED, PROCESSING_FAILED) else None,
        **{name: event[name] for name in (*RECORD_FIGURES, *QUALITY_FIGURES)},
    )


def _stages(timeline: list[JobEvent], job_duration: float | None) -> list[StageRun]:
    runs = []
    for event in timeline:
        failed = event.event_type in (IMPORT_FAILED, PROCESSING_FAILED)
        if event.stage is None or (event.event_type != IMPORT_STAGE_COMPLETED and not failed):
            continue
        # A failure event's duration_ms is the job's; its stage's own time is not reported.
        duration = None if failed else event.duration_ms
        runs.append(
            StageRun(
                stage=event.stage,
                outcome="failed" if failed else "completed",
                at=event.at,
                duration_ms=duration,
                share_of_job_time=round(duration / job_duration, 6) if duration is not None and job_duration else None,
                records_processed=event.records_processed,
                records_failed=event.records_failed,
            )
        )
    return runs


async def job_report(
    store: EventStore, job_id: str, *, stuck_before: datetime, stuck_after_minutes: int
) -> ImportJobReport:
    """One job's summary, stages and timeline; NotFound naming it when no event names it."""
    params: dict[str, Any] = {}
    source = jobs_sql(params, JobScope(KINDS, stuck_before), job_id=job_id, lists=("events",))
    quality = ", ".join(QUALITY_FIGURES)
    result = await store.query(f"SELECT {_JOB_COLUMNS}, {quality}, events FROM {source} ORDER BY kind", params)
    if not result.rows:
        raise NotFound(
            f"import job {job_id!r} is unknown: no import or processing event names this job_id",
            details={"field": "job_id", "job_id": job_id},
        )
    # An id both kinds use names two jobs; the import is the one answered.
    row = result.rows[0]
    job = _job(row[: len(_JOB_FIELDS)])
    figures = row[len(_JOB_FIELDS) : -1]
    events = sorted(row[-1], key=lambda e: (as_utc(e["at"]), _EVENT_ORDER.get(e["event_type"], 1), e["id"]))
    timeline = [_job_event(e, job.started_at) for e in events]
    return ImportJobReport(
        job=job,
        quality=JobQuality(**dict(zip(QUALITY_FIGURES, figures, strict=True))),
        stages=_stages(timeline, job.duration_ms),
        timeline=timeline,
        stuck_after_minutes=stuck_after_minutes,
    )
