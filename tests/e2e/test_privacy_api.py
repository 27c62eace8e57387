"""Privacy end to end on the running service (ClickHouse rollups, Redis, live actors, PostgreSQL):

- erasure: DELETE answers with a job at once; the event store actor is killed while the job runs and the
  job still completes; afterwards no query, rollup, Redis key, live counter or PostgreSQL row holds the
  user, a late event for them is refused naming user_id, and the receipt in the audit log verifies;
- access request: the JSON lines hold exactly the events the test sent for the user, and their rollups.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
import ray

from semantic.erasure import AUDIT_ACTION, canonical_json
from storage.redis_user_data import user_keys
from tests.conftest import REDIS_URL
from tests.e2e.test_durability import actor_pid

pytestmark = pytest.mark.e2e

BATCH = "/api/v1/analytics/events/batch"
# Long enough for jobs queued before this one (other tests' erasures) and an actor restart.
JOB_SECONDS = 420


def visits(prefix: str, user: str, content: str, at: datetime) -> list[dict[str, Any]]:
    who = {"user_id": user, "session_id": f"{user}-s"}
    at = at.replace(microsecond=at.microsecond // 1000 * 1000)  # timestamps are stored to the millisecond
    kinds = ("content_view", "content_play", "content_complete", "search_query", "page_view", "content_view")
    return [
        {
            "id": f"{prefix}-{user}-{i}",
            "event_type": kind,
            "content_id": content if kind.startswith("content") else None,
            "timestamp": (at + timedelta(seconds=i)).isoformat(),
            "properties": {"query": "privacy"} if kind == "search_query" else {"duration_seconds": 10},
            "ip_address": "81.2.69.160",
            **who,
        }
        for i, kind in enumerate(kinds)
    ]


def query(service: Any, sql: str, **parameters: Any) -> list[tuple[Any, ...]]:
    return list(ray.get(service.event_store.query.remote(sql, parameters), timeout=120).rows)


def wait_for(check: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def live_users(admin: httpx.Client, content: str) -> int:
    response = admin.get(f"/api/v1/analytics/content/{content}/live")
    assert response.status_code == 200, response.text
    return int(response.json()["windows"]["24h"]["unique_users"])


async def postgres_rows_naming(dsn: str, needle: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table of the metadata database whose text holds ``needle``."""
    conn = await asyncpg.connect(dsn)
    try:
        tables = [
            r["table_name"]
            for r in await conn.fetch(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
            )
        ]
        found = {}
        for table in tables:
            rows = await conn.fetch(f'SELECT * FROM "{table}" AS t WHERE strpos(t::text, $1) > 0', needle)
            if rows:
                found[table] = [dict(r) for r in rows]
        return found
    finally:
        await conn.close()


def export(admin: httpx.Client, user: str) -> list[dict[str, Any]]:
    with admin.stream("GET", f"/api/v1/analytics/users/{user}/data") as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("application/x-ndjson")
        return [orjson.loads(line) for line in response.iter_lines() if line]


def test_an_erased_user_is_gone_from_every_store_and_refused_afterwards(
    service: Any, admin: httpx.Client, client_for: Any, unique: str
) -> None:
    erased, kept, content = f"gdpr-{unique}-erased", f"gdpr-{unique}-kept", f"gdpr-{unique}-video"
    now = datetime.now(UTC) - timedelta(seconds=30)
    sent = visits(unique, erased, content, now) + visits(unique, kept, content, now)
    # Before logging in, the erased user browsed anonymously in the session they then used.
    sent.append({"id": f"{unique}-anonymous", "event_type": "page_view", "session_id": f"{erased}-s"})
    response = admin.post(BATCH, json={"events": sent})
    assert response.status_code == 200 and response.json()["accepted"] == len(sent), response.text
    service.settle_rollups()

    # Everywhere before: queries, rollups, live counters (and their Redis snapshot).
    assert admin.get(f"/api/v1/analytics/users/{erased}").status_code == 200
    assert query(service, "SELECT count() FROM events WHERE user_id = {u:String}", u=erased) == [(6,)]
    viewers = "SELECT uniqExactMerge(viewers) FROM content_daily WHERE content_id = {c:String}"
    assert query(service, viewers, c=content) == [(2,)]
    wait_for(lambda: live_users(admin, content) == 2, "the live counters to count both users")

    # The erasure is a job, answered at once; the event store actor is killed while it runs.
    accepted = admin.delete(f"/api/v1/analytics/users/{erased}/data")
    assert accepted.status_code == 202, accepted.text
    job = accepted.json()
    assert job["status"] in ("pending", "running") and job["created"] is True
    assert client_for("analyst").delete(f"/api/v1/analytics/users/{erased}/data").status_code == 403
    pid = actor_pid(service.event_store)
    ray.kill(service.event_store, no_restart=False)
    actor_pid(service.event_store, previous=pid)

    def completed() -> dict[str, Any] | None:
        status = admin.get(job["status_url"])
        assert status.status_code == 200, status.text
        body = status.json()
        return body if body["status"] == "completed" else None

    done = wait_for(completed, "the erasure job to complete", timeout=JOB_SECONDS)

    # The receipt verifies, and the audit log holds the same one.
    receipt = done["receipt"]
    assert hashlib.sha256(canonical_json(receipt)).hexdigest() == done["receipt_sha256"]
    assert receipt["removed"]["clickhouse"]["events"]["rows"] == 6
    assert receipt["removed"]["live"]["counter_shards_reread"] >= 1
    assert erased not in json.dumps(receipt)
    audited = asyncio.run(_audit_details(service.settings.postgres_dsn, job["job_id"]))
    assert audited == [{"receipt": receipt, "receipt_sha256": done["receipt_sha256"]}]

    # No query answers anything about the user.
    assert admin.get(f"/api/v1/analytics/users/{erased}").status_code == 404
    assert admin.get("/api/v1/analytics/events", params={"user_id": erased}).json()["events"] == []
    # No ClickHouse table names them; the rollups count only the other user.
    for table in ("events", "events_by_user", "user_daily", "session_rollup"):
        assert query(service, f"SELECT count() FROM {table} WHERE user_id = {{u:String}}", u=erased) == [(0,)]
    assert query(
        service,
        "SELECT count() FROM realtime_minutes WHERE has(finalizeAggregation(users), xxHash64({u:String}))",
        u=erased,
    ) == [(0,)]
    assert query(service, viewers, c=content) == [(1,)]
    assert query(service, "SELECT sum(events) FROM session_rollup WHERE session_id = {s:String}", s=f"{erased}-s") == [
        (1,)
    ]
    # The live counters count one user, and no Redis key names the erased one.
    assert live_users(admin, content) == 1
    assert asyncio.run(user_keys(REDIS_URL, [erased])) == []
    # PostgreSQL: no row names the user, the append-only audit log included: the job and the trail
    # entries of the requests that named them in their path keep the user's digest only.
    assert asyncio.run(postgres_rows_naming(service.settings.postgres_dsn, erased)) == {}

    # A late event for the user is refused, naming user_id; the other user's are stored.
    late = admin.post(
        BATCH,
        json={"events": [{"event_type": "page_view", "user_id": erased}, {"event_type": "page_view", "user_id": kept}]},
    )
    assert late.status_code == 200, late.text
    body = late.json()
    assert body["accepted"] == 1
    assert [(e["index"], e["field"], e["code"]) for e in body["errors"]] == [(0, "user_id", "erased_user")]
    single = admin.post("/api/v1/analytics/events", json={"event_type": "page_view", "user_id": erased})
    assert single.status_code == 422 and single.json()["details"][0]["field"] == "user_id"


async def _audit_details(dsn: str, job_id: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT details FROM audit_log WHERE action = $1 AND target = $2", AUDIT_ACTION, job_id)
        return [json.loads(r["details"]) for r in rows]
    finally:
        await conn.close()


def test_an_access_request_streams_the_users_events_and_rollups(
    service: Any, admin: httpx.Client, client_for: Any, unique: str
) -> None:
    user, content = f"access-{unique}", f"access-{unique}-video"
    sent = visits(unique, user, content, datetime.now(UTC) - timedelta(minutes=5))
    assert admin.post(BATCH, json={"events": sent}).json()["accepted"] == len(sent)
    service.settle_rollups()

    lines = export(admin, user)
    assert lines[0]["record"] == "request" and lines[0]["user_id"] == user
    events = {line["data"]["id"]: line["data"] for line in lines if line["record"] == "event"}
    assert set(events) == {e["id"] for e in sent}
    for original in sent:
        stored = events[original["id"]]
        assert (stored["event_type"], stored["user_id"], stored["session_id"]) == (
            original["event_type"],
            user,
            original["session_id"],
        )
        assert datetime.fromisoformat(stored["timestamp"]) == datetime.fromisoformat(original["timestamp"])
        assert stored["properties"] == original["properties"]
        # What ingest stored, not what was sent: the address is truncated.
        assert stored["ip_address"] == "81.2.69.0"
    days = [line["data"] for line in lines if line["record"] == "user_day"]
    assert sum(day["events"] for day in days) == len(sent)
    assert [line["data"]["session_id"] for line in lines if line["record"] == "session"] == [f"{user}-s"]
    assert lines[-1]["record"] == "summary" and lines[-1]["counts"]["event"] == len(sent)
    assert client_for("analyst").get(f"/api/v1/analytics/users/{user}/data").status_code == 403
    assert admin.get("/api/v1/analytics/users/%20/data").status_code == 400
