"""Rule-based recommendations for imports and processing jobs (/imports/optimization), each with the
figures that made it fire.

Every rule looks at the jobs started in the period, per job kind and source (semantic/import_jobs.py
says what a job, its status, duration and figures are); the two that compare a source against its
own baseline read the jobs started in the ``BASELINE_PERIODS`` periods of the same length before it.

- ``slow_stage``: the source's slowest stage (highest average ``duration_ms`` of its
  import_stage_completed events) takes at least ``SLOW_STAGE_MIN_SHARE`` of a typical run through
  its stages (the sum of every stage's average), over at least two stages and ``SLOW_STAGE_MIN_RUNS``
  runs of that stage;
- ``failure_rate_rise``: the source's failure rate (failed / finished jobs) is at least
  ``FAILURE_RISE_MIN_POINTS`` above its baseline rate and at least ``FAILURE_RISE_MIN_RATIO`` times
  it, with at least ``FAILURE_RISE_MIN_JOBS`` finished jobs in the period and in the baseline;
- ``overlapping_jobs``: a job of the source started while another of its jobs was still running
  (a job runs from its start to its end, or to its last event while it has not ended; touching
  spans do not overlap);
- ``stuck_jobs``: jobs of the source that are stuck (no end, and nothing reported for
  ANALYTICS_IMPORT_STUCK_AFTER_MINUTES);
- ``throughput_drop``: the source's throughput (records processed per second of completed jobs) is
  at most ``1 - THROUGHPUT_DROP_MIN`` of its baseline throughput, with at least
  ``THROUGHPUT_MIN_JOBS`` such jobs in the period and in the baseline.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from semantic.answers import PinnedAnswer
from semantic.import_jobs import JobScope, as_utc, check_kind, jobs_sql
from semantic.periods import Period, utc_text
from semantic.results import PeriodInfo
from storage.events import EventStore

BASELINE_PERIODS = 4
SLOW_STAGE_MIN_SHARE = 0.5
SLOW_STAGE_MIN_RUNS = 3
FAILURE_RISE_MIN_POINTS = 0.10
FAILURE_RISE_MIN_RATIO = 1.5
FAILURE_RISE_MIN_JOBS = 5
THROUGHPUT_DROP_MIN = 0.3
THROUGHPUT_MIN_JOBS = 3
# The jobs each recommendation names at most.
MAX_LISTED_JOBS = 20

SEVERITIES = ("high", "medium", "low")
RULES: dict[str, tuple[str, str, dict[str, float]]] = {
    "stuck_jobs": (
        "high",
        "jobs that started and reported nothing more for the stuck threshold, without completing or failing",
        {},
    ),
    "failure_rate_rise": (
        "high",
        "a source's failure rate rose against its own baseline (the periods before)",
        {
            "min_points": FAILURE_RISE_MIN_POINTS,
            "min_ratio": FAILURE_RISE_MIN_RATIO,
            "min_finished_jobs": FAILURE_RISE_MIN_JOBS,
            "baseline_periods": BASELINE_PERIODS,
        },
    ),
    "throughput_drop": (
        "medium",
        "a source's throughput (records per second of completed jobs) fell against its own baseline",
        {"min_drop": THROUGHPUT_DROP_MIN, "min_jobs": THROUGHPUT_MIN_JOBS, "baseline_periods": BASELINE_PERIODS},
    ),
    "overlapping_jobs": (
        "medium",
        "jobs of one source that ran at the same time",
        {},
    ),
    "slow_stage": (
        "low",
        "the slowest stage of a source takes most of a run through its stages",
        {"min_share": SLOW_STAGE_MIN_SHARE, "min_runs": SLOW_STAGE_MIN_RUNS},
    ),
}


class Recommendation(BaseModel):
    rule: str
    severity: str
    kind: str
    source: str
    title: str
    recommendation: str
    # The figures the rule fired on (each rule's keys are in docs/imports.md).
    evidence: dict[str, Any]


class RuleSummary(BaseModel):
    rule: str
    severity: str
    description: str
    thresholds: dict[str, float]
    fired: int


class ImportOptimization(PinnedAnswer):
    period: PeriodInfo
    baseline_period: PeriodInfo
    kind: str | None
    stuck_after_minutes: int
    rules: list[RuleSummary]
    # Most severe first, then by rule, kind and source.
    recommendations: list[Recommendation]


def baseline_of(period: Period) -> Period:
    """The ``BASELINE_PERIODS`` periods of the period's length just before it, as one period."""
    end = period.start_date - timedelta(days=1)
    return period.shifted(end - timedelta(days=BASELINE_PERIODS * period.days - 1), end)


def _recommend(rule: str, kind: str, source: str, title: str, advice: str, evidence: dict[str, Any]) -> Recommendation:
    return Recommendation(
        rule=rule,
        severity=RULES[rule][0],
        kind=kind,
        source=source,
        title=title,
        recommendation=advice,
        evidence=evidence,
    )


def _rate(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


class ImportOptimizer:
    def __init__(self, store: EventStore) -> None:
        self._store = store

    async def recommendations(
        self, period: Period, *, kind: str | None, stuck_before: datetime, now: datetime, stuck_after_minutes: int
    ) -> ImportOptimization:
        scope = JobScope(check_kind(kind), stuck_before)
        baseline = baseline_of(period)
        against, stages, per_job = await asyncio.gather(
            self._against_baseline(period, baseline, scope),
            self._slow_stages(period, scope),
            self._overlaps_and_stuck(period, scope, now, stuck_after_minutes),
        )
        found = [*against, *stages, *per_job]
        rank = {name: i for i, name in enumerate(RULES)}
        found.sort(key=lambda r: (SEVERITIES.index(r.severity), rank[r.rule], r.kind, r.source))
        return ImportOptimization(
            period=PeriodInfo.of(period),
            baseline_period=PeriodInfo.of(baseline),
            kind=kind,
            stuck_after_minutes=stuck_after_minutes,
            rules=[
                RuleSummary(
                    rule=name,
                    severity=severity,
                    description=description,
                    thresholds={
                        **thresholds,
                        **({"stuck_after_minutes": stuck_after_minutes} if name == "stuck_jobs" else {}),
                    },
                    fired=sum(1 for r in found if r.rule == name),
                )
                for name, (severity, description, thresholds) in RULES.items()
            ],
            recommendations=found,
        )

    async def _against_baseline(self, period: Period, baseline: Period, scope: JobScope) -> list[Recommendation]:
        params: dict[str, Any] = {"current_start": utc_text(period.start)}
        jobs = jobs_sql(params, scope, window=(baseline.start, period.end))
        timed = "status = 'completed' AND duration_ms > 0 AND records_processed IS NOT NULL"
        result = await self._store.query(
            f"""SELECT start >= {{current_start:DateTime64(3, 'UTC')}} AS is_current, kind, source,
                   countIf(status IN ('completed', 'failed')), countIf(status = 'failed'),
                   countIf({timed}), sumIf(records_processed, {timed}), sumIf(duration_ms, {timed})
            FROM {jobs}
            GROUP BY is_current, kind, source""",
            params,
        )
        figures: dict[tuple[str, str], dict[bool, tuple[int, int, int, int, float]]] = {}
        for is_current, job_kind, source, finished, failed, timed_jobs, records, ms in result.rows:
            figures.setdefault((job_kind, source), {})[bool(is_current)] = (
                int(finished),
                int(failed),
                int(timed_jobs),
                int(records or 0),
                float(ms or 0),
            )
        window = {"baseline_start": baseline.start_date.isoformat(), "baseline_end": baseline.end_date.isoformat()}
        out = []
        for (job_kind, source), by_label in sorted(figures.items()):
            if True not in by_label or False not in by_label:
                continue
            finished, failed, timed_jobs, records, ms = by_label[True]
            b_finished, b_failed, b_timed, b_records, b_ms = by_label[False]
            rate, b_rate = _rate(failed, finished), _rate(b_failed, b_finished)
            if (
                finished >= FAILURE_RISE_MIN_JOBS
                and b_finished >= FAILURE_RISE_MIN_JOBS
                and rate - b_rate >= FAILURE_RISE_MIN_POINTS
                and rate >= FAILURE_RISE_MIN_RATIO * b_rate
            ):
                out.append(
                    _recommend(
                        "failure_rate_rise",
                        job_kind,
                        source,
                        f"{source}: failure rate {rate:.0%} against {b_rate:.0%} before",
                        "look at this source's failures (/imports/failures?source=...) and at what changed on its side",
                        {
                            "failed_jobs": failed,
                            "finished_jobs": finished,
                            "failure_rate": round(rate, 6),
                            "baseline_failed_jobs": b_failed,
                            "baseline_finished_jobs": b_finished,
                            "baseline_failure_rate": round(b_rate, 6),
                            **window,
                        },
                    )
                )
            if timed_jobs >= THROUGHPUT_MIN_JOBS and b_timed >= THROUGHPUT_MIN_JOBS and ms > 0 and b_ms > 0:
                throughput, b_throughput = records / (ms / 1000), b_records / (b_ms / 1000)
                if b_throughput > 0 and throughput <= (1 - THROUGHPUT_DROP_MIN) * b_throughput:
                    out.append(
                        _recommend(
                            "throughput_drop",
                            job_kind,
                            source,
                            f"{source}: {throughput:.1f} records/s against {b_throughput:.1f} before",
                            "compare its stage durations with the baseline (/imports/sources) and check the "
                            "source's response times and batch sizes",
                            {
                                "jobs": timed_jobs,
                                "records_processed": records,
                                "duration_ms": ms,
                                "throughput_records_per_second": round(throughput, 6),
                                "baseline_jobs": b_timed,
                                "baseline_records_processed": b_records,
                                "baseline_duration_ms": b_ms,
                                "baseline_throughput_records_per_second": round(b_throughput, 6),
                                "change_percent": round(100 * (throughput - b_throughput) / b_throughput, 2),
                                **window,
                            },
                        )
                    )
        return out

    async def _slow_stages(self, period: Period, scope: JobScope) -> list[Recommendation]:
        params: dict[str, Any] = {}
        jobs = jobs_sql(params, scope, window=(period.start, period.end), lists=("stage_runs",))
        result = await self._store.query(
            f"""SELECT kind, source, run.stage AS stage, count(), avg(run.duration_ms),
                   quantileExactInclusive(0.95)(run.duration_ms)
            FROM (SELECT kind, source, stage_runs FROM {jobs})
            ARRAY JOIN stage_runs AS run
            GROUP BY kind, source, stage""",
            params,
        )
        by_source: dict[tuple[str, str], list[tuple[str, int, float, float]]] = {}
        for job_kind, source, stage, runs, average, p95 in result.rows:
            by_source.setdefault((job_kind, source), []).append((stage, int(runs), float(average), float(p95)))
        out = []
        for (job_kind, source), stages in sorted(by_source.items()):
            if len(stages) < 2:
                continue
            ranked = sorted(stages, key=lambda s: (-s[2], s[0]))
            stage, runs, average, p95 = ranked[0]
            share = average / sum(s[2] for s in stages)
            if runs < SLOW_STAGE_MIN_RUNS or share < SLOW_STAGE_MIN_SHARE:
                continue
            out.append(
                _recommend(
                    "slow_stage",
                    job_kind,
                    source,
                    f"{source}: stage {stage!r} takes {share:.0%} of a run",
                    f"speed up or parallelize {stage!r} for this source: it is where its jobs spend their time",
                    {
                        "stage": stage,
                        "runs": runs,
                        "average_ms": round(average, 3),
                        "p95_ms": round(p95, 3),
                        "share_of_stage_time": round(share, 6),
                        "next_stage": ranked[1][0],
                        "next_stage_average_ms": round(ranked[1][2], 3),
                        "stage_average_ms": {s[0]: round(s[2], 3) for s in sorted(stages)},
                    },
                )
            )
        return out

    async def _overlaps_and_stuck(
        self, period: Period, scope: JobScope, now: datetime, stuck_after_minutes: int
    ) -> list[Recommendation]:
        """The overlapping_jobs and stuck_jobs rules: both read the period's jobs one by one."""
        params: dict[str, Any] = {}
        jobs = jobs_sql(params, scope, window=(period.start, period.end))
        # Each job beside the earlier-started job of its source that ran longest before it.
        result = await self._store.query(
            f"""SELECT kind, source, job_id, start, last_at, stages_completed, status = 'stuck' AS stuck,
                   before_jobs > 0 AND before_end > start AS overlaps, span_end, before_job, before_end
            FROM (
                SELECT kind, source, job_id, start, last_at, stages_completed, status,
                       ifNull(ended_at, last_at) AS span_end,
                       max(span_end) OVER earlier AS before_end,
                       argMax(job_id, (span_end, job_id)) OVER earlier AS before_job,
                       count() OVER earlier AS before_jobs
                FROM {jobs}
                WINDOW earlier AS (PARTITION BY kind, source ORDER BY start, job_id
                                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
            )
            WHERE stuck OR overlaps
            ORDER BY kind, source, start, job_id""",
            params,
        )
        overlapping: dict[tuple[str, str], list[dict[str, Any]]] = {}
        stuck: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in result.rows:
            job_kind, source, job_id, start, last, stages, is_stuck, overlaps, span_end, before_job, before_end = row
            started, last_at = as_utc(start), as_utc(last)
            if overlaps:
                overlap_end = min(as_utc(span_end), as_utc(before_end))
                overlapping.setdefault((job_kind, source), []).append(
                    {
                        "job_id": job_id,
                        "overlaps_job_id": before_job,
                        "started_at": started.isoformat(),
                        "overlap_ms": max((overlap_end - started).total_seconds() * 1000, 0.0),
                    }
                )
            if is_stuck:
                stuck.setdefault((job_kind, source), []).append(
                    {
                        "job_id": job_id,
                        "started_at": started.isoformat(),
                        "last_event_at": last_at.isoformat(),
                        "minutes_since_last_event": round((now - last_at).total_seconds() / 60, 3),
                        "stages_completed": int(stages),
                    }
                )
        found = [
            _recommend(
                "overlapping_jobs",
                job_kind,
                source,
                f"{source}: {len(jobs_found)} job(s) started while another of its jobs was running",
                "schedule this source's jobs one after another, or make sure they do not work on the same data",
                {"overlapping_jobs": len(jobs_found), "jobs": jobs_found[:MAX_LISTED_JOBS]},
            )
            for (job_kind, source), jobs_found in sorted(overlapping.items())
        ]
        for (job_kind, source), jobs_found in sorted(stuck.items()):
            # Longest silent first.
            jobs_found.sort(key=lambda job: (job["last_event_at"], job["job_id"]))
            found.append(
                _recommend(
                    "stuck_jobs",
                    job_kind,
                    source,
                    f"{source}: {len(jobs_found)} job(s) stuck",
                    "check these jobs' workers: restart or cancel them, and make sure a failure is reported",
                    {
                        "stuck_jobs": len(jobs_found),
                        "stuck_after_minutes": stuck_after_minutes,
                        "jobs": jobs_found[:MAX_LISTED_JOBS],
                    },
                )
            )
        return found
