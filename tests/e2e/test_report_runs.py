"""Report runs under stress, against the running service and its Ray cluster: schedules whose slots run
exactly once with two schedulers and across a restart (a fake clock drives them; the runs are real), a
worker killed in the middle of a run, and runs whose worker never came back.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import psutil
import pytest

from actors.report_scheduler import ReportScheduler
from core.access import Principal, Role
from pipelines.ray_jobs import reap
from pipelines.report_runs import report_launcher, run_jobs
from pipelines.scheduled_jobs import scheduled_launch
from serve_app import runtime
from storage.report_slots import ReportSlots
from storage.reports import ReportRepository

pytestmark = pytest.mark.e2e

REPORTS = "/api/v1/analytics/reports"
START = datetime.now(UTC).date() - timedelta(days=600)


def create_report(client: httpx.Client, name: str) -> dict[str, Any]:
    body = {
        "name": name,
        "report_type": "content_performance",
        "report_format": "json",
        "date_range": {"start_date": START.isoformat(), "end_date": START.isoformat()},
        "filters": {"category": f"{name}-nothing"},
    }
    response = client.post(REPORTS, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def wait_finished(client: httpx.Client, report_id: str, run_id: str, deadline: float = 120) -> dict[str, Any]:
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        run = client.get(f"{REPORTS}/{report_id}/status", params={"run_id": run_id}).json()["run"]
        if run["status"] != "generating":
            return run
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} still generating after {deadline} s")


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


async def test_every_minute_slot_runs_once_with_two_schedulers_and_across_a_restart(
    service: runtime.RunningService, client_for: Any
) -> None:
    analyst = client_for("analyst")
    report = create_report(analyst, f"sched{secrets.token_hex(3)}")
    scheduled = analyst.post(f"{REPORTS}/{report['id']}/schedule", json={"schedule_config": {"cron": "* * * * *"}})
    assert scheduled.status_code == 200, scheduled.text
    assert scheduled.json()["schedule_config"] == {"cron": "* * * * *", "timezone": "UTC"}
    settings = service.settings
    pools = [await asyncpg.create_pool(settings.postgres_dsn, min_size=1, max_size=2) for _ in range(2)]
    start = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    clock = FakeClock(start)
    try:

        async def schedulers(generation: int) -> list[ReportScheduler]:
            return [
                ReportScheduler(
                    ReportSlots(pool),
                    await scheduled_launch(settings, reap_jobs=False),
                    name=f"test-{generation}-{index}",
                    policy="latest",
                    max_slots=24,
                    poll_seconds=15,
                    clock=clock,
                )
                for index, pool in enumerate(pools)
            ]

        launched: list[tuple[str, datetime]] = []
        first = await schedulers(0)
        for minute in range(3):
            clock.now = start + timedelta(minutes=minute, seconds=1)
            # Both at once, then again one after the other: a slot is claimed by one of them only.
            for passes in await asyncio.gather(*(s.tick() for s in first)):
                launched += passes
            for scheduler in reversed(first):
                launched += await scheduler.tick()
        # A restart: new schedulers know only what PostgreSQL holds.
        second = await schedulers(1)
        for minute in range(3, 6):
            clock.now = start + timedelta(minutes=minute, seconds=1)
            for passes in await asyncio.gather(*(s.tick() for s in second)):
                launched += passes
        mine = [slot for report_id, slot in launched if report_id == report["id"]]
        assert sorted(mine) == [start + timedelta(minutes=m) for m in range(6)]
        history = await ReportSlots(pools[0]).history(report["id"])
        in_range = [h for h in history if h["slot_at"] >= start.isoformat()]
        assert len(in_range) == 6 and all(h["outcome"] == "run" and h["run_id"] for h in in_range)
    finally:
        for pool in pools:
            await pool.close()
    runs = analyst.get(f"{REPORTS}/{report['id']}/runs", params={"limit": 50}).json()["items"]
    slot_runs = [r for r in runs if r["trigger"] == "schedule" and r["slot_at"] >= start.isoformat()]
    assert len(slot_runs) == 6 and len({r["slot_at"] for r in slot_runs}) == 6
    owner = report["owner_key_id"]
    for run in slot_runs:
        assert run["requested_by"] == owner
        assert wait_finished(analyst, report["id"], run["run_id"])["status"] == "completed"


async def _task_process(run_id: str, *, other_than: int | None = None, deadline: float = 60) -> int:
    """The worker process running the run's task: Ray titles it after the task's name."""
    title = f"ray::report-run:{run_id}"
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        for process in psutil.process_iter(["pid", "cmdline"]):
            command = process.info["cmdline"] or []
            if command and command[0] == title and process.info["pid"] != other_than:
                return int(process.info["pid"])
        await asyncio.sleep(0.1)
    raise AssertionError(f"no worker runs the task of {run_id}")


async def test_a_run_whose_worker_is_killed_completes_on_retry(
    service: runtime.RunningService, client_for: Any
) -> None:
    analyst = client_for("analyst")
    report_body = create_report(analyst, f"kill{secrets.token_hex(3)}")
    settings = service.settings
    pool = await asyncpg.create_pool(settings.postgres_dsn, min_size=1, max_size=2)
    lock = await asyncpg.connect(settings.postgres_dsn)
    try:
        reports = ReportRepository(pool)
        report = await reports.get(report_body["id"])
        assert report is not None
        requester = Principal(key_id=report.owner_key_id, name="owner", role=Role.ANALYST)
        run = await reports.create_run(report, requester)
        # The run's row is held, so the task blocks on its first statement until this test lets it go.
        transaction = lock.transaction()
        await transaction.start()
        await lock.execute("SELECT 1 FROM report_runs WHERE id = $1 FOR UPDATE", run.id)
        launcher = report_launcher(settings)
        await launcher(run.id)
        first = await _task_process(run.id)
        assert first != os.getpid()
        os.kill(first, signal.SIGKILL)
        # Ray runs the task again in another worker, which blocks on the row in turn.
        second = await _task_process(run.id, other_than=first)
        assert second != first
        await transaction.rollback()
        assert await launcher.wait(run.id) == "completed"
    finally:
        await lock.close()
        await pool.close()
    finished = wait_finished(analyst, report_body["id"], run.id)
    # The killed attempt's statement may still be counted: PostgreSQL runs it once the row is let go, before
    # it finds its client gone.
    assert finished["status"] == "completed" and finished["attempts"] in (1, 2) and finished["sha256"]


async def test_runs_whose_worker_never_came_back_are_started_again_or_failed(
    service: runtime.RunningService, client_for: Any
) -> None:
    analyst = client_for("analyst")
    report_body = create_report(analyst, f"reap{secrets.token_hex(3)}")
    settings = service.settings.model_copy(update={"report_run_stale_seconds": 0.5, "report_run_max_attempts": 2})
    pool = await asyncpg.create_pool(settings.postgres_dsn, min_size=1, max_size=2)
    try:
        reports = ReportRepository(pool)
        report = await reports.get(report_body["id"])
        assert report is not None
        requester = Principal(key_id=report.owner_key_id, name="owner", role=Role.ANALYST)
        # Lost before any task started it (the cluster went away), and lost after its last attempt.
        lost = await reports.create_run(report, requester)
        exhausted = await reports.create_run(report, requester)
        await pool.execute("UPDATE report_runs SET attempts = 2 WHERE id = $1", exhausted.id)
        await pool.execute(
            "UPDATE report_runs SET heartbeat_at = now() - interval '1 minute' WHERE id = ANY($1::text[])",
            [lost.id, exhausted.id],
        )
        launcher = report_launcher(settings)
        touched = await reap(run_jobs(reports), launcher, settings)
        assert {lost.id, exhausted.id} <= set(touched)
        assert await launcher.wait(lost.id) == "completed"
        failed = await reports.get_run(exhausted.id)
        assert failed is not None and failed.status == "failed"
        assert failed.error is not None and "abandoned after 2 attempts" in failed.error
    finally:
        await pool.close()
    assert wait_finished(analyst, report_body["id"], lost.id)["status"] == "completed"


def test_reports_with_charts_generated_at_once_all_complete(service: runtime.RunningService, client_for: Any) -> None:
    # More PDF and HTML runs than the cluster has CPUs, each drawing several charts: none may wait for a
    # CPU that another waiting run holds.
    tag = secrets.token_hex(3)
    now = datetime.now(UTC)
    events = [
        {
            "id": f"charts-{tag}-{n}",
            "event_type": "content_view",
            "content_id": f"charts-{tag}-c{n % 4}",
            "user_id": f"charts-{tag}-u{n % 5}",
            "timestamp": (now - timedelta(hours=1 + n)).isoformat(),
        }
        for n in range(40)
    ]
    sent = client_for("service").post("/api/v1/analytics/events/batch", json={"events": events})
    assert sent.status_code == 200 and sent.json()["accepted"] == len(events), sent.text
    service.settle_rollups()
    analyst = client_for("analyst")
    reports = []
    for index, report_format in enumerate(("pdf", "html", "pdf", "html", "pdf")):
        body = {
            "name": f"charts{secrets.token_hex(3)}-{index}",
            "report_type": "content_performance",
            "report_format": report_format,
            "date_range": {"relative": "last_7_days"},
            "filters": {"content_id": sorted({e["content_id"] for e in events})},
        }
        created = analyst.post(REPORTS, json=body)
        assert created.status_code == 201, created.text
        reports.append(created.json()["id"])
    started = [analyst.post(f"{REPORTS}/{report_id}/generate") for report_id in reports]
    assert all(response.status_code == 202 for response in started)
    for report_id, response in zip(reports, started, strict=True):
        run = wait_finished(analyst, report_id, response.json()["run_id"], deadline=180)
        assert run["status"] == "completed", run
    document = analyst.get(f"{REPORTS}/{reports[1]}/download")
    assert document.status_code == 200 and document.text.count("<svg") >= 3
