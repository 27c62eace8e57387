"""Import optimization rules on chDB: each rule fires on the jobs built for it, with the evidence worked
out here from the hand-built events, and on none of the jobs built not to trigger it (a balanced
source, a small slow-down, too few failures to compare, touching jobs, jobs of two sources at once,
a job still running)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from semantic.import_optimization import (
    FAILURE_RISE_MIN_JOBS,
    FAILURE_RISE_MIN_POINTS,
    FAILURE_RISE_MIN_RATIO,
    SLOW_STAGE_MIN_RUNS,
    SLOW_STAGE_MIN_SHARE,
    THROUGHPUT_DROP_MIN,
    THROUGHPUT_MIN_JOBS,
)
from semantic.imports import ImportAnalyticsService
from semantic.periods import Period
from storage.events import ClickHouseEvents
from tests.semantic.conftest import InProcessStore, open_store
from tests.semantic.import_scenario import (
    NOW,
    PERIOD,
    STUCK_MINUTES,
    RefJob,
    quantile,
    reference_jobs,
    scenario,
    started_in,
    table,
)

EVENTS = scenario()
JOBS = reference_jobs(EVENTS)
# The four weeks before the period.
BASELINE = Period(PERIOD.start_date - timedelta(days=28), PERIOD.start_date - timedelta(days=1))
BUILT_TO_FIRE = {
    ("stuck_jobs", "epsilon"),
    ("failure_rate_rise", "beta"),
    ("throughput_drop", "gamma"),
    ("overlapping_jobs", "delta"),
    ("slow_stage", "alpha"),
}


@pytest.fixture(scope="module")
def imports(chdb_dir: Path) -> Iterator[ImportAnalyticsService]:
    store: ClickHouseEvents = open_store(chdb_dir, f"import_rules_{secrets.token_hex(4)}")
    store.insert(table(EVENTS[1::2]), "odd")
    store.insert(table(EVENTS[::2]), "even")
    yield ImportAnalyticsService(InProcessStore(store), stuck_after_minutes=STUCK_MINUTES, clock=lambda: NOW)
    store.close()


def _by_source(jobs: list[RefJob]) -> dict[tuple[str, str], list[RefJob]]:
    out: dict[tuple[str, str], list[RefJob]] = {}
    for job in jobs:
        out.setdefault((job.kind, job.source), []).append(job)
    return out


def _expected() -> dict[tuple[str, str, str], dict[str, Any]]:
    """(rule, kind, source) -> evidence, by the rules of docs/imports.md."""
    current = _by_source(started_in(JOBS, PERIOD.start, PERIOD.end))
    before = _by_source(started_in(JOBS, BASELINE.start, BASELINE.end))
    fired: dict[tuple[str, str, str], dict[str, Any]] = {}
    window = {"baseline_start": BASELINE.start_date.isoformat(), "baseline_end": BASELINE.end_date.isoformat()}
    for key in sorted(set(current) & set(before)):
        now, then = current[key], before[key]
        finished = [j for j in now if j.status in ("completed", "failed")]
        failed = [j for j in now if j.status == "failed"]
        b_finished = [j for j in then if j.status in ("completed", "failed")]
        b_failed = [j for j in then if j.status == "failed"]
        if len(finished) >= FAILURE_RISE_MIN_JOBS and len(b_finished) >= FAILURE_RISE_MIN_JOBS:
            rate, b_rate = len(failed) / len(finished), len(b_failed) / len(b_finished)
            if rate - b_rate >= FAILURE_RISE_MIN_POINTS and rate >= FAILURE_RISE_MIN_RATIO * b_rate:
                fired[("failure_rate_rise", *key)] = {
                    "failed_jobs": len(failed),
                    "finished_jobs": len(finished),
                    "failure_rate": round(rate, 6),
                    "baseline_failed_jobs": len(b_failed),
                    "baseline_finished_jobs": len(b_finished),
                    "baseline_failure_rate": round(b_rate, 6),
                    **window,
                }

        def timed(jobs: list[RefJob]) -> list[RefJob]:
            return [
                j
                for j in jobs
                if j.status == "completed" and j.duration_ms and j.figures["records_processed"] is not None
            ]

        t_now, t_then = timed(now), timed(then)
        if len(t_now) >= THROUGHPUT_MIN_JOBS and len(t_then) >= THROUGHPUT_MIN_JOBS:
            records, ms = sum(j.figure("records_processed") for j in t_now), sum(j.duration_ms or 0 for j in t_now)
            b_records, b_ms = (
                sum(j.figure("records_processed") for j in t_then),
                sum(j.duration_ms or 0 for j in t_then),
            )
            throughput, b_throughput = records / (ms / 1000), b_records / (b_ms / 1000)
            if throughput <= (1 - THROUGHPUT_DROP_MIN) * b_throughput:
                fired[("throughput_drop", *key)] = {
                    "jobs": len(t_now),
                    "records_processed": records,
                    "duration_ms": ms,
                    "throughput_records_per_second": round(throughput, 6),
                    "baseline_jobs": len(t_then),
                    "baseline_records_processed": b_records,
                    "baseline_duration_ms": b_ms,
                    "baseline_throughput_records_per_second": round(b_throughput, 6),
                    "change_percent": round(100 * (throughput - b_throughput) / b_throughput, 2),
                    **window,
                }
    for key, jobs in sorted(current.items()):
        runs: dict[str, list[float]] = {}
        for job in jobs:
            for stage, duration in job.stage_runs:
                runs.setdefault(stage, []).append(duration)
        averages = {stage: sum(values) / len(values) for stage, values in runs.items()}
        if len(averages) >= 2:
            ranked = sorted(averages, key=lambda stage: (-averages[stage], stage))
            slowest = ranked[0]
            share = averages[slowest] / sum(averages.values())
            if len(runs[slowest]) >= SLOW_STAGE_MIN_RUNS and share >= SLOW_STAGE_MIN_SHARE:
                fired[("slow_stage", *key)] = {
                    "stage": slowest,
                    "runs": len(runs[slowest]),
                    "average_ms": round(averages[slowest], 3),
                    "p95_ms": round(quantile(runs[slowest], 0.95) or 0, 3),
                    "share_of_stage_time": round(share, 6),
                    "next_stage": ranked[1],
                    "next_stage_average_ms": round(averages[ranked[1]], 3),
                    "stage_average_ms": {stage: round(averages[stage], 3) for stage in sorted(averages)},
                }
        ordered = sorted(jobs, key=lambda j: (j.start, j.job_id))
        overlapping = []
        for index, job in enumerate(ordered):
            earlier = ordered[:index]
            if not earlier:
                continue

            def end(j: RefJob) -> Any:
                return j.ended_at or j.last_at

            longest = max(earlier, key=lambda j: (end(j), j.job_id))
            if end(longest) > job.start:
                overlapping.append(
                    {
                        "job_id": job.job_id,
                        "overlaps_job_id": longest.job_id,
                        "started_at": job.start.isoformat(),
                        "overlap_ms": (min(end(job), end(longest)) - job.start) / timedelta(milliseconds=1),
                    }
                )
        if overlapping:
            fired[("overlapping_jobs", *key)] = {"overlapping_jobs": len(overlapping), "jobs": overlapping}
        stuck = sorted((j for j in jobs if j.status == "stuck"), key=lambda j: (j.last_at, j.job_id))
        if stuck:
            fired[("stuck_jobs", *key)] = {
                "stuck_jobs": len(stuck),
                "stuck_after_minutes": STUCK_MINUTES,
                "jobs": [
                    {
                        "job_id": j.job_id,
                        "started_at": j.start.isoformat(),
                        "last_event_at": j.last_at.isoformat(),
                        "minutes_since_last_event": round((NOW - j.last_at) / timedelta(minutes=1), 3),
                        "stages_completed": j.stages_completed,
                    }
                    for j in stuck
                ],
            }
    return fired


def _rounded(value: Any) -> Any:
    """Evidence with its numbers to 6 decimals, to compare sums of floats made in another order."""
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, float):
        return round(value, 6)
    return value


async def test_each_rule_fires_on_the_jobs_built_for_it_and_on_no_other(imports: ImportAnalyticsService) -> None:
    answer = await imports.optimization(PERIOD)
    found = {(r.rule, r.kind, r.source): r.evidence for r in answer.recommendations}
    expected = _expected()
    assert {(rule, source) for rule, _, source in expected} == BUILT_TO_FIRE
    assert {(rule, source) for rule, _, source in found} == BUILT_TO_FIRE
    assert set(found) == set(expected)
    for key, evidence in expected.items():
        assert _rounded(found[key]) == _rounded(evidence), key
    assert {r.rule: r.fired for r in answer.rules} == {rule: 1 for rule, _ in BUILT_TO_FIRE}
    assert (answer.baseline_period.start_date, answer.baseline_period.end_date) == (
        BASELINE.start_date,
        BASELINE.end_date,
    )


async def test_what_made_each_rule_fire(imports: ImportAnalyticsService) -> None:
    found = {r.rule: r for r in (await imports.optimization(PERIOD)).recommendations}
    assert found["slow_stage"].evidence["stage"] == "parse"
    assert found["slow_stage"].evidence["share_of_stage_time"] == pytest.approx(0.8)
    rise = found["failure_rate_rise"].evidence
    assert (
        rise["failed_jobs"],
        rise["finished_jobs"],
        rise["baseline_failed_jobs"],
        rise["baseline_finished_jobs"],
    ) == (
        5,
        11,
        1,
        10,
    )
    drop = found["throughput_drop"].evidence
    assert drop["throughput_records_per_second"] == pytest.approx(990 / 19.5)
    assert drop["baseline_throughput_records_per_second"] == pytest.approx(990 / 10.25)
    overlaps = found["overlapping_jobs"].evidence
    assert overlaps["jobs"] == [
        {
            "job_id": "delta-2",
            "overlaps_job_id": "delta-1",
            "started_at": "2025-03-12T10:10:00+00:00",
            "overlap_ms": pytest.approx(600_500),
        }
    ]
    stuck = found["stuck_jobs"].evidence
    assert [job["job_id"] for job in stuck["jobs"]] == ["epsilon-stuck"]
    assert stuck["jobs"][0]["minutes_since_last_event"] == pytest.approx((24 + 12) * 60 + 55)
    # Most severe first.
    severities = [r.severity for r in (await imports.optimization(PERIOD)).recommendations]
    assert severities == sorted(severities, key=["high", "medium", "low"].index)


async def test_no_rule_fires_on_processing_jobs_alone(imports: ImportAnalyticsService) -> None:
    answer = await imports.optimization(PERIOD, job_kind="processing")
    assert answer.recommendations == []
    assert all(rule.fired == 0 for rule in answer.rules)


async def test_a_job_goes_stuck_once_silent_for_the_threshold(chdb_dir: Path) -> None:
    store = open_store(chdb_dir, f"import_rules_{secrets.token_hex(4)}")
    running = [e for e in EVENTS if e.properties.get("job_id") == "epsilon-running"]
    store.insert(table(running), "running")
    last = max(e.at for e in running)
    reader = InProcessStore(store)
    for minutes, stuck in ((STUCK_MINUTES - 1, False), (STUCK_MINUTES + 1, True)):
        later = ImportAnalyticsService(
            reader, stuck_after_minutes=STUCK_MINUTES, clock=lambda m=minutes: last + timedelta(minutes=m)
        )
        fired = [r.rule for r in (await later.optimization(PERIOD)).recommendations]
        assert fired == (["stuck_jobs"] if stuck else [])
        assert (await later.job("epsilon-running")).job.status == ("stuck" if stuck else "running")
    store.close()
