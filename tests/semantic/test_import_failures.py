"""Failure analysis of import jobs on chDB: failed jobs grouped by reason and stage, with their sources
and latest examples, against the grouping done in Python from the hand-built events."""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from core.errors import InvalidRequest
from semantic.imports import ImportAnalyticsService
from semantic.periods import Period
from storage.events import ClickHouseEvents
from tests.semantic.conftest import InProcessStore, open_store
from tests.semantic.import_scenario import NOW, PERIOD, STUCK_MINUTES, reference_jobs, scenario, started_in, table

EVENTS = scenario()
JOBS = reference_jobs(EVENTS)


@pytest.fixture(scope="module")
def imports(chdb_dir: Path) -> Iterator[ImportAnalyticsService]:
    store: ClickHouseEvents = open_store(chdb_dir, f"import_failures_{secrets.token_hex(4)}")
    store.insert(table(EVENTS[::-1]), "reversed")
    yield ImportAnalyticsService(InProcessStore(store), stuck_after_minutes=STUCK_MINUTES, clock=lambda: NOW)
    store.close()


@pytest.mark.parametrize(
    ("period", "source", "kind", "examples"),
    [
        (PERIOD, None, None, 3),
        (PERIOD, None, None, 0),
        (PERIOD, None, None, 20),
        (PERIOD, "beta", None, 2),
        (PERIOD, None, "processing", 5),
        (Period(date(2025, 2, 1), date(2025, 3, 16), "Europe/Berlin"), None, "import", 4),
    ],
)
async def test_failures_are_grouped_by_reason_and_stage(
    imports: ImportAnalyticsService, period: Period, source: str | None, kind: str | None, examples: int
) -> None:
    answer = await imports.failures(period, source=source, job_kind=kind, examples=examples)
    jobs = [
        j
        for j in started_in(JOBS, period.start, period.end)
        if (source is None or j.source == source) and (kind is None or j.kind == kind)
    ]
    failed = [j for j in jobs if j.status == "failed"]
    finished = [j for j in jobs if j.status in ("completed", "failed")]
    assert (answer.finished_jobs, answer.failed_jobs) == (len(finished), len(failed))
    assert answer.failure_rate == pytest.approx(len(failed) / len(finished) if finished else 0.0)
    groups = Counter((j.failure_reason, j.failed_stage) for j in failed)
    ordered = sorted(groups.items(), key=lambda item: (-item[1], item[0]))
    assert [(g.failure_reason, g.stage, g.failures) for g in answer.groups] == [(r, s, n) for (r, s), n in ordered]
    assert answer.groups_total == len(groups)
    for group in answer.groups:
        mine = [j for j in failed if (j.failure_reason, j.failed_stage) == (group.failure_reason, group.stage)]
        assert group.share == pytest.approx(len(mine) / len(failed))
        sources = Counter(j.source for j in mine)
        assert group.sources == dict(sorted(sources.items(), key=lambda item: (-item[1], item[0])))
        assert list(group.sources) == [s for s, _ in sorted(sources.items(), key=lambda item: (-item[1], item[0]))]
        assert (group.first_failed_at, group.last_failed_at) == (
            min(j.ended_at for j in mine if j.ended_at),
            max(j.ended_at for j in mine if j.ended_at),
        )
        latest = sorted(mine, key=lambda j: (-(j.ended_at.timestamp() if j.ended_at else 0), j.job_id, j.kind))
        assert [(e.job_id, e.kind, e.source, e.started_at, e.failed_at) for e in group.examples] == [
            (j.job_id, j.kind, j.source, j.start, j.ended_at) for j in latest[:examples]
        ]
        for example in group.examples:
            (job,) = [j for j in mine if j.job_id == example.job_id]
            assert (example.records_processed, example.records_failed) == (
                job.figures["records_processed"],
                job.figures["records_failed"],
            )
    reasons = Counter(j.failure_reason for j in failed)
    assert [(c.value, c.failures) for c in answer.by_reason] == sorted(
        reasons.items(), key=lambda item: (-item[1], item[0])
    )
    stages = Counter(j.failed_stage for j in failed)
    assert [(c.value, c.failures) for c in answer.by_stage] == sorted(
        stages.items(), key=lambda item: (-item[1], item[0])
    )


async def test_the_scenario_failures(imports: ImportAnalyticsService) -> None:
    answer = await imports.failures(PERIOD, source="beta", examples=5)
    assert [(g.failure_reason, g.stage, g.failures) for g in answer.groups] == [
        ("timeout", "fetch", 3),
        ("schema mismatch", "parse", 2),
    ]
    # The newest failure first: beta-2 ran on the 12th at 12:00, beta-0 on the 10th.
    assert [e.job_id for e in answer.groups[0].examples] == ["beta-2", "beta-1", "beta-0"]
    media = await imports.failures(PERIOD, job_kind="processing")
    assert [(g.failure_reason, g.stage, g.sources) for g in media.groups] == [
        ("codec unsupported", "", {"transcode": 1})
    ]


async def test_examples_are_bounded(imports: ImportAnalyticsService) -> None:
    with pytest.raises(InvalidRequest) as raised:
        await imports.failures(PERIOD, examples=21)
    assert raised.value.details == {"field": "examples"}
