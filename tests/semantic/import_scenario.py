"""Hand-built import and processing job events, and the import analytics worked out from them in Python.

``scenario()`` builds jobs meant to fire each optimization rule and jobs meant not to, plus the awkward
cases (a job with no start event, a retried job, a numeric job id, figures that are not numbers).
``reference_jobs`` reads the events back the way docs/imports.md defines a job, knowing nothing of how
the scenario was built: the expectations of the tests come from there and from plain Python below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pyarrow as pa

from semantic.periods import Period
from storage.events import EVENT_SCHEMA

PERIOD = Period(date(2025, 3, 10), date(2025, 3, 16))
# The clock of the service in these tests: jobs silent since before 22:00 on the period's last day are stuck.
NOW = datetime(2025, 3, 16, 23, 0, tzinfo=UTC)
STUCK_MINUTES = 60

STARTED = {"import": "import_started", "processing": "processing_started"}
COMPLETED = {"import": "import_completed", "processing": "processing_completed"}
FAILED = {"import": "import_failed", "processing": "processing_failed"}
JOB_TYPES = {*STARTED.values(), *COMPLETED.values(), *FAILED.values(), "import_stage_completed"}
FIGURES = (
    "records_total",
    "records_processed",
    "records_failed",
    "duplicates",
    "invalid_rows",
    "missing_fields",
    "transform_errors",
)
QUALITY = ("duplicates", "invalid_rows", "missing_fields", "transform_errors")


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    event_type: str
    at: datetime
    properties: dict[str, Any]


def table(events: list[Event]) -> pa.Table:
    n = len(events)
    columns: dict[str, Any] = {name: [""] * n for name in EVENT_SCHEMA.names}
    columns.update(
        id=[e.id for e in events],
        event_type=[e.event_type for e in events],
        event_category=["import"] * n,
        timestamp=[e.at for e in events],
        properties=[orjson.dumps(e.properties).decode() for e in events],
        processed_at=[datetime(2025, 6, 1, tzinfo=UTC)] * n,
    )
    return pa.Table.from_pydict(columns, schema=EVENT_SCHEMA)


def at(day: int, clock: str, month: int = 3) -> datetime:
    hours, minutes = (int(part) for part in clock.split(":"))
    return datetime(2025, month, day, hours, minutes, tzinfo=UTC)


@dataclass
class Builder:
    events: list[Event] = field(default_factory=list)

    def add(self, event_type: str, moment: datetime, **properties: Any) -> None:
        self.events.append(Event(f"ev-{len(self.events):04d}", event_type, moment, properties))

    def job(
        self,
        job_id: str,
        source: str,
        start: datetime,
        stages: tuple[tuple[str, int], ...] = (("fetch", 2000), ("parse", 2000), ("store", 2000)),
        *,
        outcome: str | None = "completed",
        records: int = 1000,
        failed_records: int = 10,
        quality: dict[str, int] | None = None,
        reason: str = "",
        failed_stage: str = "",
        end_after_ms: int = 500,
        report_duration: bool = True,
    ) -> None:
        """An import job: started, its stages one after another, then its outcome (None: it goes on)."""
        props = {"job_id": job_id, "source": source}
        self.add("import_started", start, records_total=records, **props)
        moment = start
        for index, (stage, duration) in enumerate(stages):
            moment += timedelta(milliseconds=duration)
            # Running totals: the last stage has processed what the job reports at its end.
            done = (records - failed_records) * (index + 1) // len(stages)
            self.add(
                "import_stage_completed", moment, stage=stage, duration_ms=duration, records_processed=done, **props
            )
        if outcome is None:
            return
        end = moment + timedelta(milliseconds=end_after_ms)
        total_ms = (end - start) / timedelta(milliseconds=1)
        figures: dict[str, Any] = {"records_processed": records - failed_records, "records_failed": failed_records}
        figures.update(quality or {})
        if report_duration:
            figures["duration_ms"] = total_ms
        if outcome == "completed":
            self.add("import_completed", end, **figures, **props)
        else:
            self.add("import_failed", end, failure_reason=reason, stage=failed_stage, **figures, **props)


def scenario() -> list[Event]:
    b = Builder()
    # alpha: one stage takes most of each run (slow_stage fires); jobs one after another, two of them
    # touching (no overlap); steady throughput and no failures.
    slow = (("fetch", 1000), ("parse", 8000), ("store", 1000))
    for day, month in ((12, 2), (14, 2), (16, 2), (18, 2), (20, 2), (4, 3), (6, 3), (8, 3)):
        b.job(f"alpha-b{day}-{month}", "alpha", at(day, "06:00", month), slow)
    for i in range(6):
        b.job(f"alpha-{i}", "alpha", at(10 + i, "08:00"), slow, quality={"duplicates": 3, "invalid_rows": 2})
    # Starts the instant alpha-0 ends (08:00:10.5): touching, not overlapping.
    b.job("alpha-touch", "alpha", at(10, "08:00") + timedelta(milliseconds=10_500), slow)
    # beta: balanced stages (no slow_stage); failure rate 1 in 10 before, 5 in 10 now (failure_rate_rise).
    for i in range(10):
        failed = i == 0
        b.job(
            f"beta-b{i}",
            "beta",
            at(11, "09:00", 2) + timedelta(days=2 * i),
            outcome="failed" if failed else "completed",
            reason="timeout",
            failed_stage="fetch",
        )
    for i in range(10):
        reason, stage = ("timeout", "fetch") if i < 3 else ("schema mismatch", "parse")
        b.job(
            f"beta-{i}",
            "beta",
            at(10 + i % 7, f"{10 + i}:00"),
            outcome="failed" if i < 5 else "completed",
            reason=reason if i < 5 else "",
            failed_stage=stage if i < 5 else "",
            quality={"transform_errors": i, "missing_fields": 1},
        )
    # A beta job running while alpha-2 runs: different sources do not overlap.
    b.job("beta-cross", "beta", at(12, "08:00") + timedelta(seconds=2))
    # gamma: half its throughput before (throughput_drop); no stage dominates.
    for i in range(4):
        b.job(f"gamma-b{i}", "gamma", at(10 + i, "12:00", 2), (("fetch", 3500), ("parse", 3250), ("store", 3000)))
        b.job(f"gamma-{i}", "gamma", at(10 + i, "12:00"), (("fetch", 7000), ("parse", 6500), ("store", 5500)))
    # theta: 20 % slower only (no throughput_drop).
    theta_before = (("fetch", 3000), ("parse", 3000), ("store", 4000))
    theta_now = (("fetch", 3750), ("parse", 3750), ("store", 5000))
    for i in range(3):
        b.job(f"theta-b{i}", "theta", at(20 + i, "12:00", 2), theta_before, end_after_ms=0)
        b.job(f"theta-{i}", "theta", at(11 + i, "12:00"), theta_now, end_after_ms=0)
    # delta: delta-2 starts while delta-1 runs (overlapping_jobs); delta-3 after both; one stage only
    # (no slow_stage however long it is).
    b.job("delta-1", "delta", at(12, "10:00"), (("load", 1_800_000),))
    b.job("delta-2", "delta", at(12, "10:10"), (("load", 600_000),))
    b.job("delta-3", "delta", at(12, "11:00"), (("load", 60_000),))
    # epsilon: one job stuck since 10:05 on the 15th (stuck_jobs), one still running at 22:40 on the 16th.
    b.job("epsilon-stuck", "epsilon", at(15, "10:00"), (("fetch", 300_000),), outcome=None)
    b.job("epsilon-running", "epsilon", at(16, "22:30"), (("fetch", 600_000),), outcome=None)
    # eta: every job failed, but too few to compare (no failure_rate_rise).
    b.job("eta-b0", "eta", at(1, "07:00"))
    for i in range(2):
        b.job(f"eta-{i}", "eta", at(14, f"0{i}:00"), outcome="failed", reason="auth", failed_stage="fetch")
    # Awkward cases.
    # No start event: the job starts at its first event.
    b.add(
        "import_stage_completed", at(13, "15:00"), job_id="late-start", source="omega", stage="fetch", duration_ms=900
    )
    b.add("import_completed", at(13, "15:01"), job_id="late-start", source="omega", records_processed=70)
    # Failed, then retried under the same id and completed: completed; its reason is not shown.
    b.add("import_started", at(13, "16:00"), job_id="retried", source="omega")
    b.add("import_failed", at(13, "16:05"), job_id="retried", source="omega", failure_reason="flaky", stage="fetch")
    b.add("import_completed", at(13, "16:30"), job_id="retried", source="omega")
    # Completed and failed at the same instant: failed; its duration from the timestamps.
    b.add("import_started", at(13, "17:00"), job_id="tie", source="omega")
    b.add("import_completed", at(13, "17:10"), job_id="tie", source="omega")
    b.add("import_failed", at(13, "17:10"), job_id="tie", source="omega", failure_reason="disk full", stage="store")
    # A numeric job id; figures that are not JSON numbers or are negative; the source only on its start.
    b.add("import_started", at(14, "18:00"), job_id=4242, source="omega", records_total="900")
    b.add("import_stage_completed", at(14, "18:01"), job_id=4242, stage="fetch", duration_ms="60", records_failed=-5)
    b.add("import_completed", at(14, "18:02"), job_id=4242, records_processed=880, duplicates=True)
    # Not job events, or events naming no job: left out.
    b.add("content_view", at(14, "18:03"), job_id="not-a-job", source="omega")
    b.add("import_started", at(14, "18:04"), source="omega")
    # Media processing jobs: their source is properties.source, else properties.kind.
    b.add("processing_started", at(11, "09:00"), job_id="media-1", kind="transcode")
    b.add("processing_completed", at(11, "09:02"), job_id="media-1", kind="transcode", duration_ms=120_000)
    b.add("processing_started", at(11, "10:00"), job_id="media-2", kind="transcode")
    b.add(
        "processing_failed",
        at(11, "10:01"),
        job_id="media-2",
        kind="transcode",
        failure_reason="codec unsupported",
        duration_ms=60_000,
    )
    b.add("processing_started", at(12, "10:00"), job_id="media-3", kind="thumbnail", source="uploads")
    b.add("processing_completed", at(12, "10:00"), job_id="media-3", kind="thumbnail", source="uploads")
    # An import and a processing job that share an id are two jobs.
    b.add("import_started", at(15, "09:00"), job_id="shared-id", source="omega")
    b.add("import_completed", at(15, "09:05"), job_id="shared-id", source="omega")
    b.add("processing_started", at(15, "09:00"), job_id="shared-id", kind="transcode")
    b.add("processing_completed", at(15, "09:01"), job_id="shared-id", kind="transcode")
    return b.events


# ---- the jobs, read back from the events -------------------------------------------------------


def _number(value: Any) -> float | None:
    """A figure as docs/imports.md counts it: JSON numbers only (not booleans)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _job_id(value: Any) -> str:
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return str(value)
    return value if isinstance(value, str) else ""


@dataclass
class RefJob:
    job_id: str
    kind: str
    source: str
    start: datetime
    last_at: datetime
    ended_at: datetime | None
    status: str
    duration_ms: float | None
    figures: dict[str, int | None]
    failure_reason: str
    failed_stage: str
    stages_completed: int
    stage_runs: list[tuple[str, float]]
    events: list[Event]

    def figure(self, name: str) -> int:
        return self.figures[name] or 0


def reference_jobs(events: list[Event], now: datetime = NOW, stuck_minutes: int = STUCK_MINUTES) -> list[RefJob]:
    grouped: dict[tuple[str, str], list[Event]] = {}
    for event in events:
        if event.event_type not in JOB_TYPES:
            continue
        job_id = _job_id(event.properties.get("job_id"))
        if not job_id:
            continue
        kind = "processing" if event.event_type.startswith("processing_") else "import"
        grouped.setdefault((job_id, kind), []).append(event)
    jobs = []
    for (job_id, kind), job_events in grouped.items():
        sources = []
        for e in job_events:
            named = e.properties.get("source") or (e.properties.get("kind") if kind == "processing" else "")
            if isinstance(named, str) and named:
                sources.append(named)
        starts = [e.at for e in job_events if e.event_type == STARTED[kind]]
        start = min(starts) if starts else min(e.at for e in job_events)
        last = max(e.at for e in job_events)
        completed = max((e.at for e in job_events if e.event_type == COMPLETED[kind]), default=None)
        failures = sorted((e for e in job_events if e.event_type == FAILED[kind]), key=lambda e: (e.at, e.id))
        failed = failures[-1].at if failures else None
        if failed is not None and (completed is None or failed >= completed):
            status, ended = "failed", failed
        elif completed is not None:
            status, ended = "completed", completed
        else:
            status, ended = ("stuck" if last < now - timedelta(minutes=stuck_minutes) else "running"), None
        reported = [
            v
            for e in job_events
            if e.event_type in (COMPLETED[kind], FAILED[kind])
            and (v := _number(e.properties.get("duration_ms"))) is not None
        ]
        duration = None
        if ended is not None:
            duration = max(max(reported), 0.0) if reported else max((ended - start) / timedelta(milliseconds=1), 0.0)
        figures: dict[str, int | None] = {}
        for name in FIGURES:
            values = [v for e in job_events if (v := _number(e.properties.get(name))) is not None]
            figures[name] = int(max(max(values), 0)) if values else None
        runs = []
        for e in job_events:
            stage, duration_ms = e.properties.get("stage"), _number(e.properties.get("duration_ms"))
            if (
                e.event_type == "import_stage_completed"
                and isinstance(stage, str)
                and stage
                and duration_ms is not None
            ):
                runs.append((stage, max(duration_ms, 0.0)))
        jobs.append(
            RefJob(
                job_id=job_id,
                kind=kind,
                source=max(sources) if sources else "",
                start=start,
                last_at=last,
                ended_at=ended,
                status=status,
                duration_ms=duration,
                figures=figures,
                failure_reason=(failures[-1].properties.get("failure_reason") or "") if status == "failed" else "",
                failed_stage=(failures[-1].properties.get("stage") or "") if status == "failed" else "",
                stages_completed=sum(1 for e in job_events if e.event_type == "import_stage_completed"),
                stage_runs=runs,
                events=job_events,
            )
        )
    return jobs


def started_in(jobs: list[RefJob], start: datetime, end: datetime) -> list[RefJob]:
    return [j for j in jobs if start <= j.start < end]


# ---- plain statistics -----------------------------------------------------------------------------


def quantile(values: list[float], level: float) -> float | None:
    """Linear interpolation between the closest ranks (R-7, Excel's PERCENTILE.INC)."""
    if not values:
        return None
    ordered = sorted(values)
    h = (len(ordered) - 1) * level
    low = math.floor(h)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (h - low) * (ordered[high] - ordered[low])


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def job_figures(jobs: list[RefJob]) -> dict[str, Any]:
    completed = [j for j in jobs if j.status == "completed"]
    failed = [j for j in jobs if j.status == "failed"]
    timed = [j for j in completed if j.duration_ms and j.figures["records_processed"] is not None]
    seconds = sum(j.duration_ms or 0 for j in timed) / 1000
    durations = [j.duration_ms for j in jobs if j.duration_ms is not None]
    return {
        "jobs": len(jobs),
        "completed": len(completed),
        "failed": len(failed),
        "running": sum(1 for j in jobs if j.status == "running"),
        "stuck": sum(1 for j in jobs if j.status == "stuck"),
        "success_rate": ratio(len(completed), len(completed) + len(failed)),
        "failure_rate": ratio(len(failed), len(completed) + len(failed)),
        "records_total": sum(j.figure("records_total") for j in jobs),
        "records_processed": sum(j.figure("records_processed") for j in jobs),
        "records_failed": sum(j.figure("records_failed") for j in jobs),
        "throughput_records_per_second": sum(j.figure("records_processed") for j in timed) / seconds
        if seconds
        else None,
        "average_duration_ms": sum(durations) / len(durations) if durations else None,
        "duration_p50_ms": quantile(durations, 0.5),
        "duration_p95_ms": quantile(durations, 0.95),
    }


def quality_figures(jobs: list[RefJob]) -> dict[str, Any]:
    sums = {
        name: sum(j.figure(name) for j in jobs) for name in ("records_total", "records_processed", "records_failed")
    }
    quality = {name: sum(j.figure(name) for j in jobs) for name in QUALITY}
    issues = sum(quality.values())
    return {
        "jobs": len(jobs),
        **sums,
        **quality,
        "issues": issues,
        "issue_rate": ratio(issues, sums["records_total"]),
        "failed_record_rate": ratio(sums["records_failed"], sums["records_total"]),
    }


def bucket_of(moment: datetime, period: Period) -> str:
    local = moment.astimezone(ZoneInfo(period.timezone))
    if period.granularity == "hour":
        return local.replace(minute=0, second=0, microsecond=0).isoformat()
    day = local.date()
    if period.granularity == "week":
        day -= timedelta(days=day.weekday())
    elif period.granularity == "month":
        day = day.replace(day=1)
    return day.isoformat()
