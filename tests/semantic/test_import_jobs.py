"""The import_jobs rollup (migration 018) and the job reads on chDB, against hand-built events.

A job's events may arrive in any order and in different inserts: three databases get the same events
in order in one insert, shuffled across four, and before the migration existed (its backfill), and
every import answer is the same on all three. The job list and timelines equal what
tests/semantic/import_scenario.py works out from the events in Python.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.errors import InvalidRequest, NotFound
from semantic.imports import ImportAnalyticsService
from semantic.periods import Period
from storage.events import ClickHouseEvents
from tests.semantic.conftest import InProcessStore, create_statements, open_store, release_before
from tests.semantic.import_scenario import (
    NOW,
    PERIOD,
    STUCK_MINUTES,
    Event,
    RefJob,
    reference_jobs,
    scenario,
    started_in,
    table,
)

MIGRATION = "018_import_jobs.sql"
EVENTS = scenario()
JOBS = reference_jobs(EVENTS)
_ORDER = {"import_started": 0, "processing_started": 0, "import_stage_completed": 1}


def service(store: ClickHouseEvents) -> ImportAnalyticsService:
    return ImportAnalyticsService(InProcessStore(store), stuck_after_minutes=STUCK_MINUTES, clock=lambda: NOW)


@pytest.fixture(scope="module")
def ordered(chdb_dir: Path) -> Iterator[ClickHouseEvents]:
    store = open_store(chdb_dir, f"imports_{secrets.token_hex(4)}")
    store.insert(table(sorted(EVENTS, key=lambda e: (e.at, e.id))), "all")
    yield store
    store.close()


@pytest.fixture(scope="module")
def shuffled(chdb_dir: Path) -> Iterator[ClickHouseEvents]:
    store = open_store(chdb_dir, f"imports_{secrets.token_hex(4)}")
    events = list(EVENTS)
    random.Random(18).shuffle(events)
    # Four inserts, each with a part of most jobs, the latest events often first.
    for part in range(4):
        store.insert(table(events[part::4]), f"part-{part}")
    yield store
    store.close()


@pytest.fixture
def open_old(chdb_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], ClickHouseEvents]:
    return release_before(MIGRATION, chdb_dir, monkeypatch)


async def _answers(store: ClickHouseEvents) -> list[dict[str, Any]]:
    """Every import answer over the scenario, as JSON values."""
    imports = service(store)
    week = PERIOD
    kolkata = Period(date(2025, 3, 12), date(2025, 3, 14), "Asia/Kolkata", "hour")
    answers = [
        await imports.jobs(week, limit=500),
        await imports.jobs(week, source="beta", status="failed"),
        await imports.sources(week),
        await imports.sources(kolkata),
        await imports.quality(week),
        await imports.trends(kolkata),
        await imports.failures(week, examples=20),
        await imports.optimization(week),
        *[await imports.job(job.job_id) for job in JOBS],
    ]
    return [answer.model_dump(mode="json") for answer in answers]


async def test_the_answers_do_not_depend_on_the_order_or_the_inserts_the_events_came_in(
    ordered: ClickHouseEvents, shuffled: ClickHouseEvents
) -> None:
    rows = "SELECT count() FROM import_jobs"
    # The shuffled store holds the jobs in more rows, to be merged when read.
    assert shuffled.query(rows).rows[0][0] > ordered.query(rows).rows[0][0]
    assert await _answers(ordered) == await _answers(shuffled)


async def test_an_upgraded_database_gets_every_job_from_its_events_and_later_events_once(
    chdb_dir: Path, ordered: ClickHouseEvents, open_old: Callable[[str], ClickHouseEvents]
) -> None:
    database = f"imports_{secrets.token_hex(4)}"
    old = open_old(database)
    earlier = [e for e in EVENTS if e.at < datetime(2025, 3, 13, tzinfo=UTC)]
    later = [e for e in EVENTS if e.at >= datetime(2025, 3, 13, tzinfo=UTC)]
    old.insert(table(earlier[::2]), "old-1")
    old.insert(table(earlier[1::2]), "old-2")
    assert not old.query("EXISTS TABLE import_jobs").rows[0][0]
    old.close()

    upgraded = open_store(chdb_dir, database)
    upgraded.insert(table(later), "new")
    assert await _answers(upgraded) == await _answers(ordered)
    fresh_name = f"imports_{secrets.token_hex(4)}"
    fresh = open_store(chdb_dir, fresh_name)
    schemas = create_statements(upgraded, database), create_statements(fresh, fresh_name)
    for name in ("import_jobs", "import_jobs_mv"):
        assert schemas[0][name] == schemas[1][name]
    upgraded.close()
    fresh.close()


def _expected_job(job: RefJob) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "kind": job.kind,
        "source": job.source,
        "status": job.status,
        "started_at": job.start,
        "ended_at": job.ended_at,
        "last_event_at": job.last_at,
        "duration_ms": job.duration_ms,
        "records_total": job.figures["records_total"],
        "records_processed": job.figures["records_processed"],
        "records_failed": job.figures["records_failed"],
        "stages_completed": job.stages_completed,
        "failure_reason": job.failure_reason if job.status == "failed" else None,
        "failed_stage": job.failed_stage if job.status == "failed" else None,
    }


@pytest.mark.parametrize(
    ("filters", "limit", "offset"),
    [
        ({}, 500, 0),
        ({}, 7, 14),
        ({"source": "beta"}, 50, 0),
        ({"status": "failed"}, 3, 3),
        ({"status": "stuck"}, 50, 0),
        ({"status": "running", "source": "epsilon"}, 50, 0),
        ({"kind": "processing"}, 50, 0),
        ({"kind": "import", "source": "omega"}, 50, 0),
        ({"source": "nobody"}, 50, 0),
        # Past the last page: no jobs, the counts still.
        ({"source": "alpha"}, 10, 100),
    ],
)
async def test_the_job_list_is_the_jobs_started_in_the_period(
    ordered: ClickHouseEvents, filters: dict[str, str], limit: int, offset: int
) -> None:
    arguments = {("job_kind" if name == "kind" else name): value for name, value in filters.items()}
    page = await service(ordered).jobs(PERIOD, limit=limit, offset=offset, **arguments)
    scoped = [
        j
        for j in started_in(JOBS, PERIOD.start, PERIOD.end)
        if all(getattr(j, name) == value for name, value in filters.items() if name != "status")
    ]
    matching = [j for j in scoped if "status" not in filters or j.status == filters["status"]]
    matching.sort(key=lambda j: (-j.start.timestamp(), j.job_id, j.kind))
    assert [job.model_dump() for job in page.jobs] == [_expected_job(j) for j in matching[offset : offset + limit]]
    assert page.total == len(matching)
    assert page.has_more == (offset + limit < len(matching))
    assert page.statuses == {
        s: sum(1 for j in scoped if j.status == s) for s in ("completed", "failed", "running", "stuck")
    }


async def test_the_job_list_of_a_window_in_another_time_zone(ordered: ClickHouseEvents) -> None:
    # 2025-03-16 in Kolkata ends at 18:30 UTC: the job running from 22:30 UTC started the next day there.
    period = Period(date(2025, 3, 15), date(2025, 3, 16), "Asia/Kolkata")
    page = await service(ordered).jobs(period, limit=500)
    expected = sorted(
        started_in(JOBS, period.start, period.end), key=lambda j: (-j.start.timestamp(), j.job_id, j.kind)
    )
    assert [job.job_id for job in page.jobs] == [j.job_id for j in expected]
    assert "epsilon-running" not in [job.job_id for job in page.jobs]
    assert "epsilon-stuck" in [job.job_id for job in page.jobs]


def _expected_timeline(job: RefJob) -> list[dict[str, Any]]:
    events = sorted(job.events, key=lambda e: (e.at, _ORDER.get(e.event_type, 2), e.id))

    def number(event: Event, name: str) -> float | None:
        value = event.properties.get(name)
        return None if isinstance(value, bool) or not isinstance(value, (int, float)) else float(value)

    out = []
    for e in events:
        failure = e.event_type.endswith("_failed")
        out.append(
            {
                "at": e.at,
                "event_type": e.event_type,
                "stage": e.properties.get("stage") or None,
                "elapsed_ms": (e.at - job.start) / timedelta(milliseconds=1),
                "duration_ms": number(e, "duration_ms"),
                **{
                    name: None if (v := number(e, name)) is None else max(int(v), 0)
                    for name in (
                        "records_total",
                        "records_processed",
                        "records_failed",
                        "duplicates",
                        "invalid_rows",
                        "missing_fields",
                        "transform_errors",
                    )
                },
                "failure_reason": (e.properties.get("failure_reason") or "") if failure else None,
            }
        )
    return out


@pytest.mark.parametrize(
    "job_id", ["alpha-0", "beta-3", "epsilon-stuck", "late-start", "retried", "tie", "4242", "media-2"]
)
async def test_a_job_is_its_events_in_time_order(ordered: ClickHouseEvents, job_id: str) -> None:
    (job,) = [j for j in JOBS if j.job_id == job_id]
    report = await service(ordered).job(job_id)
    assert report.job.model_dump() == _expected_job(job)
    assert [event.model_dump() for event in report.timeline] == _expected_timeline(job)
    assert report.quality.model_dump() == {
        name: job.figures[name] for name in ("duplicates", "invalid_rows", "missing_fields", "transform_errors")
    }
    stage_events = [
        e
        for e in _expected_timeline(job)
        if e["stage"] and (e["event_type"] == "import_stage_completed" or e["event_type"].endswith("_failed"))
    ]
    assert [(s.stage, s.outcome, s.at, s.duration_ms) for s in report.stages] == [
        (
            e["stage"],
            "failed" if e["event_type"].endswith("_failed") else "completed",
            e["at"],
            None if e["event_type"].endswith("_failed") else e["duration_ms"],
        )
        for e in stage_events
    ]
    for stage in report.stages:
        if stage.duration_ms is not None and job.duration_ms:
            assert stage.share_of_job_time == round(stage.duration_ms / job.duration_ms, 6)


async def test_what_the_awkward_jobs_are(ordered: ClickHouseEvents) -> None:
    imports = service(ordered)
    retried, tie, numeric = [await imports.job(job_id) for job_id in ("retried", "tie", "4242")]
    # Completed after a failure: completed, and its reason is not shown.
    assert (retried.job.status, retried.job.failure_reason) == ("completed", None)
    assert retried.job.duration_ms == 30 * 60_000
    # Completion and failure at one instant: failed, measured by the timestamps.
    assert (tie.job.status, tie.job.failure_reason, tie.job.failed_stage) == ("failed", "disk full", "store")
    assert tie.job.duration_ms == 10 * 60_000
    # A string duration is not a figure; a negative count is 0; the source of its start event.
    assert numeric.job.source == "omega"
    assert (numeric.job.records_total, numeric.job.records_failed) == (None, 0)
    assert numeric.timeline[1].duration_ms is None
    # An import and a processing job of one id: the import is answered.
    shared = await imports.job("shared-id")
    assert (shared.job.kind, shared.job.source) == ("import", "omega")
    media = await imports.jobs(PERIOD, job_kind="processing", source="transcode")
    assert {job.job_id for job in media.jobs} == {"media-1", "media-2", "shared-id"}


async def test_an_unknown_job_is_not_found_by_its_id(ordered: ClickHouseEvents) -> None:
    with pytest.raises(NotFound) as raised:
        await service(ordered).job("not-a-job")
    assert "not-a-job" in raised.value.message
    assert raised.value.details == {"field": "job_id", "job_id": "not-a-job"}


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"job_kind": "export"}, "kind"),
        ({"status": "done"}, "status"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"offset": -1}, "offset"),
        ({"source": ""}, "source"),
    ],
)
async def test_bad_parameters_are_refused_naming_them(
    ordered: ClickHouseEvents, arguments: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidRequest) as raised:
        await service(ordered).jobs(PERIOD, **arguments)
    assert raised.value.details == {"field": field}
