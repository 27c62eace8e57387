"""Failure analysis (/imports/failures): the failed jobs started in the period, grouped by failure reason
and the stage they failed in, each group with its sources and its latest jobs as examples.

A failed job's reason and stage are ``failure_reason`` and ``stage`` of its last failure event ('' when
that event names none); semantic/import_jobs.py says when a job counts as failed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from core.errors import InvalidRequest
from semantic.answers import PinnedAnswer
from semantic.import_jobs import JobScope, as_utc, check_kind, check_source, jobs_sql
from semantic.periods import Period
from semantic.results import PeriodInfo
from storage.events import EventStore

MAX_EXAMPLES = 20
# Groups beyond this many (the rarest) are left out; ``groups_total`` says how many there were.
MAX_GROUPS = 100


class FailedJobExample(BaseModel):
    job_id: str
    kind: str
    source: str
    started_at: datetime
    failed_at: datetime
    records_processed: int | None
    records_failed: int | None


class FailureGroup(BaseModel):
    failure_reason: str
    stage: str
    failures: int
    # Of every failed job in the answer.
    share: float
    # Failed jobs of the group by source.
    sources: dict[str, int]
    first_failed_at: datetime
    last_failed_at: datetime
    # The group's latest failures, newest first.
    examples: list[FailedJobExample]


class FailureCount(BaseModel):
    value: str
    failures: int
    share: float


class ImportFailures(PinnedAnswer):
    period: PeriodInfo
    source: str | None
    kind: str | None
    finished_jobs: int
    failed_jobs: int
    failure_rate: float
    # Most failures first, then reason and stage.
    groups: list[FailureGroup]
    groups_total: int
    by_reason: list[FailureCount]
    by_stage: list[FailureCount]


def _counts(totals: dict[str, int], failed: int) -> list[FailureCount]:
    ordered = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    return [FailureCount(value=value, failures=n, share=n / failed if failed else 0.0) for value, n in ordered]


async def failure_analysis(
    store: EventStore,
    period: Period,
    *,
    stuck_before: datetime,
    source: str | None,
    kind: str | None,
    examples: int,
) -> ImportFailures:
    scope = JobScope(check_kind(kind), stuck_before, check_source(source))
    if not 0 <= examples <= MAX_EXAMPLES:
        raise InvalidRequest(f"examples must be between 0 and {MAX_EXAMPLES}", details={"field": "examples"})
    params: dict[str, Any] = {}
    jobs = jobs_sql(params, scope, window=(period.start, period.end))
    # Each reason, stage and source keeps its latest failures; the latest of a reason and stage are
    # among those of its sources. Sorted ascending, so the newest first: (-failed ms, job id, kind).
    latest = (
        f"groupArraySortedIf({examples})((-toUnixTimestamp64Milli(ended_at), job_id, kind, start, ended_at, "
        "records_processed, records_failed), status = 'failed')"
        if examples
        else "[]"
    )
    # The empty grouping set counts every job; the other, the failed jobs of each reason, stage and source.
    result = await store.query(
        f"""SELECT failure_reason, failed_stage, source, grouping(source) AS overall,
               countIf(status IN ('completed', 'failed')), countIf(status = 'failed'),
               minIf(ended_at, status = 'failed'), maxIf(ended_at, status = 'failed'), {latest}
        FROM {jobs}
        GROUP BY GROUPING SETS ((), (failure_reason, failed_stage, source))""",
        params,
    )
    finished = failed = 0
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for reason, stage, job_source, overall, n_finished, n_failed, first, last, newest in result.rows:
        if overall:
            finished, failed = int(n_finished), int(n_failed)
            continue
        if not n_failed:
            continue
        group = found.setdefault(
            (reason, stage),
            {"failures": 0, "sources": {}, "first": as_utc(first), "last": as_utc(last), "examples": []},
        )
        group["failures"] += int(n_failed)
        group["sources"][job_source] = int(n_failed)
        group["first"] = min(group["first"], as_utc(first))
        group["last"] = max(group["last"], as_utc(last))
        group["examples"].extend((job_source, *example) for example in newest)
    shown: dict[tuple[str, str], list[FailedJobExample]] = {}
    for key, group in found.items():
        newest_first = sorted(group["examples"], key=lambda example: example[1:4])[:examples]
        shown[key] = [
            FailedJobExample(
                job_id=job_id,
                kind=job_kind,
                source=job_source,
                started_at=as_utc(start),
                failed_at=as_utc(ended),
                records_processed=processed,
                records_failed=records_failed,
            )
            for job_source, _, job_id, job_kind, start, ended, processed, records_failed in newest_first
        ]
    ordered = sorted(found.items(), key=lambda item: (-item[1]["failures"], item[0]))
    by_reason: dict[str, int] = {}
    by_stage: dict[str, int] = {}
    for (reason, stage), group in ordered:
        by_reason[reason] = by_reason.get(reason, 0) + group["failures"]
        by_stage[stage] = by_stage.get(stage, 0) + group["failures"]
    return ImportFailures(
        period=PeriodInfo.of(period),
        source=source,
        kind=kind,
        finished_jobs=finished,
        failed_jobs=failed,
        failure_rate=failed / finished if finished else 0.0,
        groups=[
            FailureGroup(
                failure_reason=reason,
                stage=stage,
                failures=group["failures"],
                share=group["failures"] / failed if failed else 0.0,
                sources=dict(sorted(group["sources"].items(), key=lambda item: (-item[1], item[0]))),
                first_failed_at=group["first"],
                last_failed_at=group["last"],
                examples=shown.get((reason, stage), []),
            )
            for (reason, stage), group in ordered[:MAX_GROUPS]
        ],
        groups_total=len(ordered),
        by_reason=_counts(by_reason, failed),
        by_stage=_counts(by_stage, failed),
    )
