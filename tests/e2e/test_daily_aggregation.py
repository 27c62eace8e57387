"""The daily aggregation job end to end: started through the API, computed by Ray Data on the session's
cluster, written to PostgreSQL; every record equals what the live API answers for the same closed day,
a re-run replaces the day's records without duplicating them, and a late event changes its record by
exactly that event.

The dataset is this module's own: contents of a module-unique category on a day about 600 days ago,
which no other module writes to.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from serve_app import runtime

pytestmark = pytest.mark.e2e

API = "/api/v1/analytics"
DAY = datetime.now(UTC).date() - timedelta(days=613)
# Fields of a record that say when it was made, not what it counts.
_STAMPS = {"calculated_at", "last_updated", "date"}


def at(hour: int, minute: int) -> str:
    return datetime.combine(DAY, datetime.min.time(), UTC).replace(hour=hour, minute=minute).isoformat()


@pytest.fixture(scope="module")
def dataset(client_for: Any, service: runtime.RunningService) -> Iterator[dict[str, Any]]:
    p = f"ag{secrets.token_hex(4)}"
    events: list[dict[str, Any]] = []
    n = 0
    # c1: 7 views by 3 users, plays and completions; c2: 4 views, a like and a share; c3: 1 view.
    for name, views in (("c1", 7), ("c2", 4), ("c3", 1)):
        for i in range(views):
            user = f"{p}-u{i % 3}"
            base = {"user_id": user, "session_id": f"{user}-s", "content_id": f"{p}-{name}"}
            events.append({"id": f"{p}-v{n}", "event_type": "content_view", "timestamp": at(8 + i, n % 60), **base})
            if i % 2 == 0:
                events.append({"id": f"{p}-p{n}", "event_type": "content_play", "timestamp": at(8 + i, 30), **base})
            if i % 3 == 0:
                events.append({"id": f"{p}-c{n}", "event_type": "content_complete", "timestamp": at(8 + i, 50), **base})
            n += 1
    events.append(
        {
            "id": f"{p}-l",
            "event_type": "content_like",
            "timestamp": at(12, 0),
            "user_id": f"{p}-u0",
            "content_id": f"{p}-c2",
        }
    )
    events.append(
        {
            "id": f"{p}-s",
            "event_type": "content_share",
            "timestamp": at(12, 5),
            "user_id": f"{p}-u1",
            "content_id": f"{p}-c2",
        }
    )
    # Searches: one that found results and was clicked at position 2, one that found nothing.
    searcher = {"user_id": f"{p}-u0", "session_id": f"{p}-u0-s"}
    events += [
        {
            "id": f"{p}-q1",
            "event_type": "search_query",
            "timestamp": at(7, 40),
            "properties": {"query": f"{p} news", "results_count": 5},
            **searcher,
        },
        {
            "id": f"{p}-k1",
            "event_type": "search_result_click",
            "timestamp": at(7, 41),
            "content_id": f"{p}-c1",
            "properties": {"query": f"{p} news", "position": 2},
            **searcher,
        },
        {
            "id": f"{p}-q2",
            "event_type": "search_query",
            "timestamp": at(7, 45),
            "properties": {"query": f"{p} nothing", "results_count": 0},
            "user_id": f"{p}-u1",
            "session_id": f"{p}-u1-s",
        },
    ]
    # A service's requests in two hours: 10:00 (two, one a 503) and 11:00 (one, a cache hit).
    for n, (hour, minute, status, duration, extra) in enumerate(
        ((10, 5, 200, 40, {}), (10, 20, 503, 300, {}), (11, 0, 200, 10, {"cache_hit": True}))
    ):
        properties = {"service": f"{p}-svc", "endpoint": "/items", "method": "GET", "status": status}
        events.append(
            {
                "id": f"{p}-r{n}",
                "event_type": "api_request",
                "timestamp": at(hour, minute),
                "properties": {**properties, "duration_ms": duration, **extra},
            }
        )
    ingest = client_for("service")
    response = ingest.post(f"{API}/events/batch", json={"events": events})
    assert response.status_code == 200 and response.json()["accepted"] == len(events), response.text
    for name, category in (("c1", f"{p}-news"), ("c2", f"{p}-news"), ("c3", f"{p}-sport")):
        put = ingest.put(f"{API}/content-metadata/{p}-{name}", json={"title": name, "category": category})
        assert put.status_code == 200, put.text
    service.settle_rollups()
    yield {"p": p, "ids": [f"{p}-c1", f"{p}-c2", f"{p}-c3"], "events": events}


def run_day(admin: httpx.Client) -> dict[str, Any]:
    started = admin.post(f"{API}/jobs/aggregate", json={"date": DAY.isoformat()})
    assert started.status_code == 202, started.text
    run = started.json()
    assert run["status"] == "running" and run["day"] == DAY.isoformat()
    deadline = time.monotonic() + 180
    while run["status"] == "running":
        assert time.monotonic() < deadline, run
        time.sleep(0.2)
        run = admin.get(f"{API}/jobs/{run['id']}").json()
    assert run["status"] == "completed", run
    return run


async def records(dsn: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT * FROM content_analytics_daily WHERE day = $1 AND content_id = ANY($2::text[])", DAY, ids
        )
        return {r["content_id"]: dict(r) for r in rows}
    finally:
        await conn.close()


async def search_record(dsn: str) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow("SELECT * FROM search_analytics_daily WHERE day = $1", DAY)
        assert row is not None
        record = dict(row)
        record["click_positions"] = json.loads(record["click_positions"])
        return record
    finally:
        await conn.close()


async def system_records(dsn: str, service: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT * FROM system_analytics_hourly WHERE day = $1 AND service_name = $2 ORDER BY hour", DAY, service
        )
        records = []
        for row in rows:
            record = dict(row)
            for name in ("endpoint_stats", "status_code_distribution"):
                record[name] = json.loads(record[name])
            records.append(record)
        return records
    finally:
        await conn.close()


async def rankings(dsn: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        return [
            dict(r)
            for r in await conn.fetch(
                "SELECT * FROM content_rankings_daily WHERE day = $1 ORDER BY category, rank", DAY
            )
        ]
    finally:
        await conn.close()


def live_answer(admin: httpx.Client, content_id: str) -> dict[str, Any]:
    response = admin.get(
        f"{API}/content/{content_id}", params={"start_date": DAY.isoformat(), "end_date": DAY.isoformat()}
    )
    assert response.status_code == 200, response.text
    analytics: dict[str, Any] = response.json()["analytics"]
    return analytics


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in record.items():
        if name in _STAMPS or name in ("day", "category", "run_id", "performance_score"):
            continue
        if isinstance(value, str) and name in ("top_countries", "top_regions", "hourly_distribution"):
            value = json.loads(value)
        out[name] = value
    out["hourly_distribution"] = {str(k): v for k, v in out["hourly_distribution"].items()}
    return out


async def test_records_equal_the_live_api_and_a_rerun_replaces_them(
    dataset: dict[str, Any], admin: httpx.Client, service: runtime.RunningService
) -> None:
    dsn = service.settings.postgres_dsn
    assert dsn is not None
    first = run_day(admin)
    assert first["records"]["content_analytics_daily"] >= 3 and first["partitions"] >= 1
    assert first["as_of"] is not None and first["engine"] == "ray" and first["trigger"] == "api"
    found = await records(dsn, dataset["ids"])
    assert set(found) == set(dataset["ids"])
    for content_id in dataset["ids"]:
        live = {k: v for k, v in live_answer(admin, content_id).items() if k not in _STAMPS}
        stored = comparable(found[content_id])
        for name, value in live.items():
            if isinstance(value, float):
                assert stored[name] == pytest.approx(value, rel=1e-9, abs=1e-12), (content_id, name)
            else:
                assert stored[name] == value, (content_id, name)
    views = {
        cid: sum(1 for e in dataset["events"] if e["event_type"] == "content_view" and e["content_id"] == cid)
        for cid in dataset["ids"]
    }
    assert {cid: found[cid]["total_views"] for cid in dataset["ids"]} == views
    assert found[dataset["ids"][1]]["likes"] == 1 and found[dataset["ids"][1]]["shares"] == 1
    assert found[dataset["ids"][0]]["category"] == f"{dataset['p']}-news"

    ranked = await rankings(dsn)
    news = [r for r in ranked if r["category"] == f"{dataset['p']}-news"]
    expected = sorted(
        (found[cid] for cid in dataset["ids"][:2]),
        key=lambda r: (-r["performance_score"], -r["total_views"], r["content_id"]),
    )
    assert [r["content_id"] for r in news] == [r["content_id"] for r in expected]
    assert [r["rank"] for r in news] == [1, 2]
    overall = [r for r in ranked if r["category"] == ""]
    assert [r["rank"] for r in overall] == list(range(1, len(overall) + 1))
    assert set(dataset["ids"]) <= {r["content_id"] for r in overall}

    # A re-run replaces the day: the same records, none twice.
    second = run_day(admin)
    assert second["id"] != first["id"]
    again = await records(dsn, dataset["ids"])
    assert {k: comparable(v) for k, v in again.items()} == {k: comparable(v) for k, v in found.items()}
    assert all(r["run_id"] == second["id"] for r in again.values())
    assert len(await rankings(dsn)) == len(ranked)
    listed = admin.get(f"{API}/jobs", params={"date": DAY.isoformat()}).json()
    assert [item["id"] for item in listed["items"][:2]] == [second["id"], first["id"]]
    # The day's search record: the search overview of the day alone, and what was sent.
    search = await search_record(dsn)
    overview = admin.get(f"{API}/search/overview", params={"start_date": DAY.isoformat(), "end_date": DAY.isoformat()})
    assert overview.status_code == 200, overview.text
    for name, value in overview.json().items():
        if name in search and name not in _STAMPS:
            expected = {str(k): v for k, v in value.items()} if name == "click_positions" else value
            assert search[name] == (pytest.approx(expected) if isinstance(value, float) else expected), name
    assert (search["searches"], search["zero_result_searches"], search["clicks"]) == (2, 1, 1)
    assert search["click_positions"] == {"2": 1} and search["run_id"] == second["id"]
    assert second["records"]["search_analytics_daily"] == 1
    # The service's hours: what GET /services answers for the day, and what was sent.
    system = await system_records(dsn, f"{dataset['p']}-svc")
    hours = admin.get(f"{API}/services", params={"start_date": DAY.isoformat(), "end_date": DAY.isoformat()})
    assert hours.status_code == 200, hours.text
    live_hours = [h for h in hours.json()["hours"] if h["service_name"] == f"{dataset['p']}-svc"]
    assert [(r["hour"], r["request_count"], r["error_count"]) for r in system] == [(10, 2, 1), (11, 1, 0)]
    for stored, live in zip(system, live_hours, strict=True):
        for name, value in live.items():
            if name in _STAMPS:
                continue
            assert stored[name] == (pytest.approx(value) if isinstance(value, float) else value), name
    assert system[0]["average_response_time"] == 170.0 and system[1]["cache_hit_rate"] == 1.0
    assert second["records"]["system_analytics_hourly"] == hours.json()["total"]
    # GraphQL reads the same runs.
    query = (
        "query($day: String!, $id: String!) { aggregationRuns(date: $day, limit: 2) { items { id } } "
        "aggregationRun(id: $id) { status records } }"
    )
    answer = admin.post("/graphql", json={"query": query, "variables": {"day": DAY.isoformat(), "id": second["id"]}})
    data = answer.json()["data"]
    assert [item["id"] for item in data["aggregationRuns"]["items"]] == [second["id"], first["id"]]
    assert data["aggregationRun"] == {"status": "completed", "records": second["records"]}


async def test_a_late_event_changes_the_record_by_exactly_that_event(
    dataset: dict[str, Any], admin: httpx.Client, client_for: Any, service: runtime.RunningService
) -> None:
    dsn = service.settings.postgres_dsn
    assert dsn is not None
    run_day(admin)
    before = await records(dsn, dataset["ids"])
    late = {
        "id": f"{dataset['p']}-late",
        "event_type": "content_view",
        "timestamp": at(23, 59),
        "user_id": f"{dataset['p']}-late-user",
        "content_id": dataset["ids"][2],
    }
    response = client_for("service").post(f"{API}/events/batch", json={"events": [late]})
    assert response.status_code == 200 and response.json()["accepted"] == 1
    service.settle_rollups()
    run_day(admin)
    after = await records(dsn, dataset["ids"])
    changed = after[dataset["ids"][2]]
    assert changed["total_views"] == before[dataset["ids"][2]]["total_views"] + 1
    assert changed["unique_views"] == before[dataset["ids"][2]]["unique_views"] + 1
    for content_id in dataset["ids"][:2]:
        assert after[content_id]["total_views"] == before[content_id]["total_views"]


def test_only_admins_run_jobs_and_bad_days_are_refused(admin: httpx.Client, client_for: Any) -> None:
    assert client_for("analyst").get(f"{API}/jobs").status_code == 403
    assert client_for("analyst").post(f"{API}/jobs/aggregate", json={"date": DAY.isoformat()}).status_code == 403
    for body, field in (
        ({"date": "2026-13-01"}, "date"),
        ({"date": (datetime.now(UTC).date() + timedelta(days=2)).isoformat()}, "date"),
        ({}, "date"),
        ({"date": DAY.isoformat(), "engine": "hadoop"}, "engine"),
        ({"date": DAY.isoformat(), "colour": 1}, "colour"),
    ):
        response = admin.post(f"{API}/jobs/aggregate", json=body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["details"]["field"] == field
    assert admin.get(f"{API}/jobs/agg_missing").status_code == 404


def test_an_interrupted_backfill_resumes_and_ends_with_the_records_of_an_uninterrupted_run(
    dataset: dict[str, Any], admin: httpx.Client, service: runtime.RunningService, tmp_path: Any
) -> None:
    import asyncio
    import signal
    import subprocess
    import sys

    dsn = service.settings.postgres_dsn
    assert dsn is not None
    run_day(admin)
    uninterrupted = asyncio.run(records(dsn, dataset["ids"]))
    first, last = DAY - timedelta(days=2), DAY + timedelta(days=1)
    key_file, state = tmp_path / "admin-key", tmp_path / "backfill.json"
    key_file.write_text(service.admin_key or "")
    command = [
        sys.executable,
        "-m",
        "serve_app.cli",
        "backfill",
        "--from",
        first.isoformat(),
        "--to",
        last.isoformat(),
        "--url",
        service.base_url,
        "--key-file",
        str(key_file),
        "--state-file",
        str(state),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (state.exists() and json.loads(state.read_text())["done"]):
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    done_before = json.loads(state.read_text())["done"]
    assert 1 <= len(done_before) < 4 and done_before[0] == first.isoformat()

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(state.read_text())["done"] == [(first + timedelta(days=n)).isoformat() for n in range(4)]
    # The days finished before the interruption were not run again.
    runs = admin.get(f"{API}/jobs", params={"date": first.isoformat(), "limit": 200}).json()["items"]
    assert sum(1 for r in runs if r["trigger"] == "backfill") == 1
    after = asyncio.run(records(dsn, dataset["ids"]))
    assert {k: comparable(v) for k, v in after.items()} == {k: comparable(v) for k, v in uninterrupted.items()}


def test_the_aggregate_command_runs_a_day_and_says_why_it_cannot(
    service: runtime.RunningService, tmp_path: Any, capsys: Any
) -> None:

    from serve_app.cli import main

    key_file = tmp_path / "admin-key"
    key_file.write_text(service.admin_key or "")
    common = ["--url", service.base_url, "--key-file", str(key_file)]
    assert main(["aggregate", "--date", DAY.isoformat(), *common]) == 0
    run = json.loads(capsys.readouterr().out)
    assert run["status"] == "completed" and run["trigger"] == "cli" and run["day"] == DAY.isoformat()
    future = (datetime.now(UTC).date() + timedelta(days=3)).isoformat()
    assert main(["aggregate", "--date", future, *common]) == 1
    assert "date must be a day" in capsys.readouterr().err
    assert main(["aggregate", "--date", DAY.isoformat(), "--url", service.base_url, "--key-file", "/nonexistent"]) == 1
    assert "cannot read the admin key" in capsys.readouterr().err


def test_the_schedule_computes_the_latest_closed_day_once(admin: httpx.Client, service: runtime.RunningService) -> None:
    from pipelines.aggregation_schedule import due_day

    lateness = timedelta(minutes=service.settings.aggregation_lateness_minutes)
    day = due_day(datetime.now(UTC), lateness)
    deadline = time.monotonic() + 120
    while True:
        runs = admin.get(f"{API}/jobs", params={"date": day.isoformat(), "limit": 200}).json()["items"]
        scheduled = [r for r in runs if r["trigger"] == "schedule"]
        if scheduled and scheduled[0]["status"] != "running":
            break
        assert time.monotonic() < deadline, runs
        time.sleep(0.5)
    assert len(scheduled) == 1 and scheduled[0]["status"] == "completed", scheduled
    assert scheduled[0]["requested_by"] == "schedule"
