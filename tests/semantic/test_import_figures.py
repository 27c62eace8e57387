"""Per-source figures, data quality and trends of import jobs on chDB against the same figures worked out
in Python from the hand-built events (tests/semantic/import_scenario.py), in several windows, time
zones and bucket sizes, against the previous period."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from core.errors import InvalidRequest
from semantic.imports import ImportAnalyticsService
from semantic.periods import Period
from semantic.results import period_buckets
from storage.events import ClickHouseEvents
from tests.semantic.conftest import InProcessStore, open_store
from tests.semantic.import_scenario import (
    NOW,
    PERIOD,
    STUCK_MINUTES,
    RefJob,
    bucket_of,
    job_figures,
    quality_figures,
    reference_jobs,
    scenario,
    started_in,
    table,
)

EVENTS = scenario()
JOBS = reference_jobs(EVENTS)
PERIODS = [
    PERIOD,
    Period(date(2025, 3, 12), date(2025, 3, 14), "Asia/Kolkata", "hour"),
    Period(date(2025, 2, 3), date(2025, 3, 16), "America/New_York", "week"),
    Period(date(2025, 1, 1), date(2025, 3, 31), "UTC", "month"),
]


@pytest.fixture(scope="module")
def imports(chdb_dir: Path) -> Iterator[ImportAnalyticsService]:
    store: ClickHouseEvents = open_store(chdb_dir, f"import_figures_{secrets.token_hex(4)}")
    store.insert(table(EVENTS[::2]), "even")
    store.insert(table(EVENTS[1::2]), "odd")
    yield ImportAnalyticsService(InProcessStore(store), stuck_after_minutes=STUCK_MINUTES, clock=lambda: NOW)
    store.close()


def _in(period: Period, **where: str) -> list[RefJob]:
    return [j for j in started_in(JOBS, period.start, period.end) if all(getattr(j, k) == v for k, v in where.items())]


def _approx(expected: dict[str, Any]) -> dict[str, Any]:
    return {k: pytest.approx(v) if isinstance(v, float) else v for k, v in expected.items()}


def _change(current: float, previous: float) -> dict[str, Any]:
    return {
        "current": pytest.approx(current),
        "previous": pytest.approx(previous),
        "change": pytest.approx(round(current - previous, 6)),
        "change_percent": pytest.approx(round(100 * (current - previous) / previous, 2)) if previous else None,
    }


@pytest.mark.parametrize("period", PERIODS, ids=lambda p: f"{p.timezone}-{p.granularity}")
@pytest.mark.parametrize("kind", [None, "import", "processing"])
async def test_sources_are_the_figures_of_their_jobs(
    imports: ImportAnalyticsService, period: Period, kind: str | None
) -> None:
    answer = await imports.sources(period, job_kind=kind)
    current = [j for j in _in(period) if kind is None or j.kind == kind]
    keys = sorted(
        {(j.kind, j.source) for j in current}, key=lambda k: (-sum(1 for j in current if (j.kind, j.source) == k), k)
    )
    assert [(s.kind, s.source) for s in answer.sources] == keys
    buckets = period_buckets(period)
    for found in answer.sources:
        mine = [j for j in current if (j.kind, j.source) == (found.kind, found.source)]
        before = _in(period.previous(), kind=found.kind, source=found.source)
        expected, previous = job_figures(mine), job_figures(before)
        assert found.current.model_dump() == _approx(expected)
        assert found.previous.model_dump() == _approx(previous)
        assert found.comparison["failure_rate"].model_dump() == _change(
            expected["failure_rate"], previous["failure_rate"]
        )
        assert found.comparison["jobs"].model_dump() == _change(expected["jobs"], previous["jobs"])
        trend = []
        for bucket in buckets:
            figures = job_figures([j for j in mine if bucket_of(j.start, period) == bucket])
            finished = figures["completed"] + figures["failed"]
            trend.append(
                {
                    "bucket": bucket,
                    "finished": finished,
                    "failed": figures["failed"],
                    "failure_rate": figures["failure_rate"],
                }
            )
        assert [point.model_dump() for point in found.failure_rate_trend] == trend


async def test_the_scenario_sources_are_what_they_were_built_to_be(imports: ImportAnalyticsService) -> None:
    by_source = {s.source: s for s in (await imports.sources(PERIOD)).sources}
    beta, gamma = by_source["beta"].current, by_source["gamma"].current
    assert (beta.completed, beta.failed) == (6, 5)
    assert beta.success_rate == pytest.approx(6 / 11)
    # gamma: 990 records in 19 s of stages and 0.5 s to finish, per job.
    assert gamma.throughput_records_per_second == pytest.approx(990 / 19.5)
    assert gamma.duration_p50_ms == gamma.duration_p95_ms == 19_500
    assert by_source["epsilon"].current.model_dump()["stuck"] == 1
    assert by_source["transcode"].kind == "processing"


@pytest.mark.parametrize("period", PERIODS, ids=lambda p: f"{p.timezone}-{p.granularity}")
@pytest.mark.parametrize("source", [None, "beta"])
async def test_quality_is_the_sum_of_what_each_job_reports(
    imports: ImportAnalyticsService, period: Period, source: str | None
) -> None:
    answer = await imports.quality(period, source=source)
    current = [j for j in _in(period) if source is None or j.source == source]
    previous = [j for j in _in(period.previous()) if source is None or j.source == source]
    expected = quality_figures(current)
    assert answer.totals.model_dump() == _approx(expected)
    before = quality_figures(previous)
    for name in ("duplicates", "transform_errors", "issues", "issue_rate", "records_failed"):
        assert answer.comparison[name].model_dump() == _change(expected[name], before[name])
    keys = {(j.kind, j.source) for j in current}
    assert {(s.kind, s.source) for s in answer.sources} == keys
    for found in answer.sources:
        mine = [j for j in current if (j.kind, j.source) == (found.kind, found.source)]
        theirs_before = [j for j in previous if (j.kind, j.source) == (found.kind, found.source)]
        assert found.current.model_dump() == _approx(quality_figures(mine))
        assert found.previous.model_dump() == _approx(quality_figures(theirs_before))
    assert [s.current.issues for s in answer.sources] == sorted(
        (s.current.issues for s in answer.sources), reverse=True
    )
    assert [point.bucket for point in answer.series] == period_buckets(period)
    for point in answer.series:
        assert point.figures.model_dump() == _approx(
            quality_figures([j for j in current if bucket_of(j.start, period) == point.bucket])
        )


async def test_quality_of_the_scenario(imports: ImportAnalyticsService) -> None:
    beta = (await imports.quality(PERIOD, source="beta")).totals
    # beta-i reports i transform errors and one missing field; beta-cross reports none.
    assert (beta.transform_errors, beta.missing_fields) == (sum(range(10)), 10)
    alpha = (await imports.quality(PERIOD, source="alpha")).totals
    assert (alpha.duplicates, alpha.invalid_rows) == (6 * 3, 6 * 2)


@pytest.mark.parametrize("period", PERIODS, ids=lambda p: f"{p.timezone}-{p.granularity}")
@pytest.mark.parametrize(("source", "kind"), [(None, None), ("alpha", None), (None, "processing")])
async def test_trends_are_the_jobs_of_each_bucket(
    imports: ImportAnalyticsService, period: Period, source: str | None, kind: str | None
) -> None:
    answer = await imports.trends(period, source=source, job_kind=kind)

    def scoped(p: Period) -> list[RefJob]:
        return [j for j in _in(p) if (source is None or j.source == source) and (kind is None or j.kind == kind)]

    current, previous = scoped(period), scoped(period.previous())
    assert answer.totals.model_dump() == _approx(job_figures(current))
    assert answer.previous_totals.model_dump() == _approx(job_figures(previous))
    assert answer.comparison["success_rate"].model_dump() == _change(
        job_figures(current)["success_rate"], job_figures(previous)["success_rate"]
    )
    assert [point.bucket for point in answer.series] == period_buckets(period)
    for point in answer.series:
        assert point.figures.model_dump() == _approx(
            job_figures([j for j in current if bucket_of(j.start, period) == point.bucket])
        )
    assert sum(point.figures.jobs for point in answer.series) == len(current)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda i: i.sources(PERIOD, job_kind="export"), "kind"),
        (lambda i: i.quality(PERIOD, source=""), "source"),
        (lambda i: i.trends(PERIOD, job_kind="all"), "kind"),
    ],
)
async def test_bad_parameters_are_refused_naming_them(imports: ImportAnalyticsService, call: Any, field: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        await call(imports)
    assert raised.value.details == {"field": field}
