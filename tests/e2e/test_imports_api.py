"""Import analytics on the running service: jobs ingested over the API, in no particular order, come back
as the job list, one job's timeline, per-source figures, quality, trends, failure groups and the
optimization rules that the jobs were built to fire, over REST and GraphQL, for analysts only."""

from __future__ import annotations

import math
import random
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from serve_app import runtime
from tests.e2e.realtime_support import poll

pytestmark = pytest.mark.e2e

API = "/api/v1/analytics/imports"


def _quantile(values: list[float], level: float) -> float:
    ordered = sorted(values)
    h = (len(ordered) - 1) * level
    low = math.floor(h)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (h - low) * (ordered[high] - ordered[low])


class Jobs:
    """The events of a few jobs of one source, and what each job is made of."""

    def __init__(self, unique: str, day: datetime) -> None:
        self.source = f"{unique}-feed"
        self.media = f"{unique}-transcode"
        self.events: list[dict[str, Any]] = []
        self.unique = unique
        self.day = day

    def event(self, event_type: str, at: datetime, **properties: Any) -> None:
        self.events.append(
            {
                "id": f"{self.unique}-{len(self.events)}",
                "event_type": event_type,
                "timestamp": at.isoformat(),
                "properties": properties,
            }
        )

    def job(
        self,
        name: str,
        start: datetime,
        stages: list[tuple[str, int]],
        end: str | None,
        end_ms: int = 0,
        **figures: Any,
    ) -> None:
        job = {"job_id": f"{self.unique}-{name}", "source": self.source}
        self.event("import_started", start, records_total=1000, **job)
        moment = start
        for stage, duration in stages:
            moment += timedelta(milliseconds=duration)
            self.event("import_stage_completed", moment, stage=stage, duration_ms=duration, **job)
        if end is not None:
            self.event(end, moment + timedelta(milliseconds=end_ms), **figures, **job)


@pytest.fixture(scope="module")
def day() -> datetime:
    return (datetime.now(UTC) - timedelta(days=3)).replace(hour=8, minute=0, second=0, microsecond=0)


@pytest.fixture(scope="module")
def jobs(admin: httpx.Client, service: runtime.RunningService, unique_module: str, day: datetime) -> Jobs:
    built = Jobs(unique_module, day)
    # one: 7.5 s, parse the slowest stage; two: failed in parse; three: started while one ran; four: silent.
    built.job(
        "one",
        day,
        [("fetch", 1000), ("parse", 5000), ("store", 1000)],
        "import_completed",
        500,
        records_processed=900,
        records_failed=100,
        duplicates=4,
        invalid_rows=2,
        duration_ms=7500,
    )
    built.job(
        "two",
        day + timedelta(hours=1),
        [("fetch", 1000)],
        "import_failed",
        1000,
        failure_reason="schema mismatch",
        stage="parse",
        duration_ms=2000,
        records_failed=1000,
    )
    built.job(
        "three",
        day + timedelta(seconds=3),
        [("fetch", 500), ("parse", 2000), ("store", 500)],
        "import_completed",
        0,
        records_processed=500,
        missing_fields=7,
    )
    built.job("four", day + timedelta(hours=2), [("fetch", 1000)], None)
    built.event("processing_started", day, job_id=f"{unique_module}-media", kind=built.media)
    built.event(
        "processing_completed",
        day + timedelta(minutes=1),
        job_id=f"{unique_module}-media",
        kind=built.media,
        duration_ms=60_000,
    )
    events = list(built.events)
    random.Random(22).shuffle(events)
    for half in (events[: len(events) // 2], events[len(events) // 2 :]):
        response = admin.post("/api/v1/analytics/events/batch", json={"events": half})
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == len(half)
    service.settle_rollups()
    return built


@pytest.fixture(scope="module")
def unique_module() -> str:
    """One token for the module's jobs (the ``unique`` fixture is per test)."""
    return secrets.token_hex(6)


def _dates(day: datetime) -> dict[str, str]:
    return {"start_date": day.date().isoformat(), "end_date": day.date().isoformat()}


def test_the_job_list_pages_through_the_jobs_newest_first(client_for: Any, jobs: Jobs, day: datetime) -> None:
    analyst = client_for("analyst")
    params = {**_dates(day), "source": jobs.source}
    first = poll(lambda: analyst.get(f"{API}/jobs", params=params), lambda r: r.json().get("total") == 4)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["as_of"] is not None
    assert body["statuses"] == {"completed": 2, "failed": 1, "running": 0, "stuck": 1}
    names = [job["job_id"].removeprefix(f"{jobs.unique}-") for job in body["jobs"]]
    assert names == ["four", "two", "three", "one"]
    assert [job["status"] for job in body["jobs"]] == ["stuck", "failed", "completed", "completed"]
    page = analyst.get(f"{API}/jobs", params={**params, "limit": 2, "offset": 2}).json()
    assert [job["job_id"] for job in page["jobs"]] == [job["job_id"] for job in body["jobs"][2:]]
    assert page["has_more"] is False
    failed = analyst.get(f"{API}/jobs", params={**params, "status": "failed"}).json()
    assert [(j["failure_reason"], j["failed_stage"]) for j in failed["jobs"]] == [("schema mismatch", "parse")]
    media = analyst.get(f"{API}/jobs", params={**_dates(day), "kind": "processing", "source": jobs.media}).json()
    assert [(j["job_id"], j["duration_ms"], j["status"]) for j in media["jobs"]] == [
        (f"{jobs.unique}-media", 60_000, "completed")
    ]


def test_one_job_is_its_timeline(client_for: Any, jobs: Jobs, day: datetime) -> None:
    analyst = client_for("analyst")
    job_id = f"{jobs.unique}-one"
    response = poll(lambda: analyst.get(f"{API}/{job_id}"), lambda r: r.status_code == 200)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["job"]["duration_ms"] == 7500
    assert (report["job"]["records_processed"], report["job"]["records_failed"]) == (900, 100)
    assert report["quality"] == {"duplicates": 4, "invalid_rows": 2, "missing_fields": None, "transform_errors": None}
    assert [e["event_type"] for e in report["timeline"]] == [
        "import_started",
        "import_stage_completed",
        "import_stage_completed",
        "import_stage_completed",
        "import_completed",
    ]
    assert [e["elapsed_ms"] for e in report["timeline"]] == [0, 1000, 6000, 7000, 7500]
    assert [(s["stage"], s["duration_ms"], s["share_of_job_time"]) for s in report["stages"]] == [
        ("fetch", 1000, round(1000 / 7500, 6)),
        ("parse", 5000, round(5000 / 7500, 6)),
        ("store", 1000, round(1000 / 7500, 6)),
    ]
    graphql = analyst.post(
        "/graphql",
        json={
            "query": "query($id: String!) "
            "{ importJob(jobId: $id) { job { status durationMs } timeline { eventType } } }",
            "variables": {"id": job_id},
        },
    ).json()
    assert graphql["data"]["importJob"]["job"] == {"status": "completed", "durationMs": 7500}
    assert [e["eventType"] for e in graphql["data"]["importJob"]["timeline"]] == [
        e["event_type"] for e in report["timeline"]
    ]
    missing = analyst.get(f"{API}/{jobs.unique}-nope")
    assert missing.status_code == 404
    assert f"{jobs.unique}-nope" in missing.json()["message"]


def test_sources_quality_trends_and_failures(client_for: Any, jobs: Jobs, day: datetime) -> None:
    analyst = client_for("analyst")
    sources = analyst.get(f"{API}/sources", params=_dates(day)).json()
    (mine,) = [s for s in sources["sources"] if s["source"] == jobs.source]
    now = mine["current"]
    assert (now["jobs"], now["completed"], now["failed"], now["stuck"]) == (4, 2, 1, 1)
    assert now["success_rate"] == pytest.approx(2 / 3)
    # Completed jobs: 900 records in 7.5 s, 500 in 3 s (three's end minus its start).
    assert now["throughput_records_per_second"] == pytest.approx(1400 / 10.5)
    durations = [7500.0, 2000.0, 3000.0]
    assert now["duration_p50_ms"] == pytest.approx(_quantile(durations, 0.5))
    assert now["duration_p95_ms"] == pytest.approx(_quantile(durations, 0.95))
    assert sum(point["failed"] for point in mine["failure_rate_trend"]) == 1

    quality = analyst.get(f"{API}/quality", params={**_dates(day), "source": jobs.source}).json()["totals"]
    assert (quality["duplicates"], quality["invalid_rows"], quality["missing_fields"]) == (4, 2, 7)
    assert quality["records_total"] == 4000
    assert quality["issue_rate"] == pytest.approx(13 / 4000)

    trends = analyst.get(f"{API}/trends", params={**_dates(day), "source": jobs.source, "granularity": "hour"}).json()
    assert len(trends["series"]) == 24
    by_hour = {p["bucket"][11:13]: p["figures"]["jobs"] for p in trends["series"] if p["figures"]["jobs"]}
    assert by_hour == {"08": 2, "09": 1, "10": 1}

    failures = analyst.get(f"{API}/failures", params={**_dates(day), "source": jobs.source}).json()
    assert [(g["failure_reason"], g["stage"], g["failures"], g["sources"]) for g in failures["groups"]] == [
        ("schema mismatch", "parse", 1, {jobs.source: 1})
    ]
    assert [e["job_id"] for e in failures["groups"][0]["examples"]] == [f"{jobs.unique}-two"]


def test_optimization_fires_the_rules_the_jobs_were_built_for(client_for: Any, jobs: Jobs, day: datetime) -> None:
    answer = client_for("analyst").get(f"{API}/optimization", params=_dates(day)).json()
    mine = {r["rule"]: r for r in answer["recommendations"] if r["source"] == jobs.source}
    # No baseline for this source, and parse was the slowest stage of only two runs.
    assert set(mine) == {"overlapping_jobs", "stuck_jobs"}
    assert mine["overlapping_jobs"]["evidence"]["jobs"][0]["job_id"] == f"{jobs.unique}-three"
    assert mine["overlapping_jobs"]["evidence"]["jobs"][0]["overlaps_job_id"] == f"{jobs.unique}-one"
    assert [j["job_id"] for j in mine["stuck_jobs"]["evidence"]["jobs"]] == [f"{jobs.unique}-four"]
    assert {r["rule"] for r in answer["rules"]} == {
        "stuck_jobs",
        "failure_rate_rise",
        "throughput_drop",
        "overlapping_jobs",
        "slow_stage",
    }


def test_only_admins_and_analysts_read_imports(client_for: Any, jobs: Jobs, day: datetime) -> None:
    for role, status in (("admin", 200), ("analyst", 200), ("content_manager", 403), ("viewer", 403)):
        assert client_for(role).get(f"{API}/sources", params=_dates(day)).status_code == status, role
    bad = client_for("analyst").get(f"{API}/jobs", params={"status": "done"})
    assert bad.status_code == 400
    assert bad.json()["details"][0]["field"] == "status"
