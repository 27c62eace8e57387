"""The erasure job (semantic/erasure.py) on chDB, the real PostgreSQL and the real Redis, without Ray: it
removes the user from every table (each touched table then equals a database that never saw them), from
Redis and from PostgreSQL; late events are refused; its receipt is in the audit log and verifies; a second
request while it runs gets the same job; and a job whose runner was killed is finished by the next."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as redis

from core.errors import NotFound
from core.user_ids import suppression_digest
from semantic.erasure import AUDIT_ACTION, canonical_json, job_view
from semantic.ingestion import IngestService
from storage.events import ClickHouseEvents
from storage.metadata import MetadataStore
from storage.redis_user_data import user_keys
from storage.user_data_tables import PER_USER_TABLES, REBUILT_TABLES
from tests.semantic.erasure_support import (
    ERASED,
    KEPT,
    CountingLive,
    LocalStore,
    activity,
    contents,
    local_privacy,
    open_store,
    privacy_settings,
)

TOUCHED = (*PER_USER_TABLES, *(spec.table for spec in REBUILT_TABLES))
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def dsn(make_database: Callable[[], str]) -> str:
    return make_database()


@pytest.fixture
async def metadata(dsn: str) -> AsyncIterator[MetadataStore]:
    store = await MetadataStore.connect(dsn)
    await store.migrate()
    yield store
    await store.close()


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return activity(datetime.now(UTC) - timedelta(hours=1))


@pytest.fixture(scope="module")
def without_user(chdb_dir: Path, rows: list[dict[str, Any]]) -> ClickHouseEvents:
    return open_store(chdb_dir, [row for row in rows if row.get("user_id") != ERASED])


async def seed_redis(url: str, tag: str) -> dict[str, bytes]:
    """A cached answer, a key named after the user, a value holding their id, and one to keep."""
    keys = {
        f"analytics:result:r1:users:{tag}": orjson.dumps({"user_id": ERASED}),
        f"analytics:test-{tag}:user:{ERASED}": b"1",
        f"analytics:test-{tag}:profile": orjson.dumps({"users": [ERASED, KEPT]}),
        f"analytics:test-{tag}:other": orjson.dumps({"users": [KEPT]}),
    }
    client = redis.from_url(url)
    for key, value in keys.items():
        await client.set(key, value, ex=600)
    await client.aclose()
    return keys


async def redis_keys(url: str, tag: str) -> set[str]:
    client = redis.from_url(url)
    found = {key.decode() async for key in client.scan_iter(match=f"analytics:*{tag}*")}
    await client.aclose()
    return found


async def lines(privacy: Any, user_id: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) async for line in privacy.access.lines(user_id)]


async def test_an_erasure_removes_the_user_everywhere_and_leaves_a_receipt(
    chdb_dir: Path,
    rows: list[dict[str, Any]],
    without_user: ClickHouseEvents,
    metadata: MetadataStore,
    redis_url: str,
    unique: str,
) -> None:
    events = open_store(chdb_dir, rows)
    settings = privacy_settings(redis_url)
    live = CountingLive()
    privacy = local_privacy(metadata, LocalStore(events), settings, live=live)
    await privacy.suppression.reload()
    await seed_redis(redis_url, unique)
    # A table of the metadata database holding user rows, as another feature might add.
    await metadata.pool.execute("CREATE TABLE user_notes (user_id TEXT NOT NULL, note TEXT NOT NULL)")
    await metadata.pool.execute("INSERT INTO user_notes VALUES ($1, 'a'), ($1, 'b'), ($2, 'c')", ERASED, KEPT)

    before = await lines(privacy, ERASED)
    assert sum(line["record"] == "event" for line in before) == 24
    assert {line["table"] for line in before if line["record"] == "postgres_row"} == {"user_notes"}

    job, created = await privacy.erasure.request(f" {ERASED} ", "key_admin")
    again, created_again = await privacy.erasure.request(ERASED, "key_other")
    assert created and not created_again and again.id == job.id
    assert job_view(job)["status"] == "pending" and job.user_digest == suppression_digest(ERASED).hex()

    assert await privacy.erasure.run(job.id)

    # ClickHouse: nothing names the user, and every touched table is as if they had never been there.
    assert set(events.user_data_remaining([ERASED]).values()) == {0}
    for table in TOUCHED:
        assert contents(events, table) == contents(without_user, table), table
    # Live counters re-read, Redis and PostgreSQL cleared.
    assert live.resyncs == 1
    assert await redis_keys(redis_url, unique) == {f"analytics:test-{unique}:other"}
    assert await user_keys(redis_url, [ERASED]) == []
    assert [tuple(r) for r in await metadata.pool.fetch("SELECT * FROM user_notes")] == [(KEPT, "c")]

    # The job: completed, its receipt verifies, and the same receipt is in the audit log.
    done = await privacy.erasure.status(ERASED, job.id)
    view = job_view(done)
    assert view["status"] == "completed" and done.user_ids is None
    receipt = view["receipt"]
    assert hashlib.sha256(canonical_json(receipt)).hexdigest() == view["receipt_sha256"]
    assert receipt["removed"]["clickhouse"]["events"] == {"rows": 24}
    assert receipt["removed"]["postgres"] == {"user_notes": 2}
    assert receipt["removed"]["redis"]["cached_answers_deleted"] >= 1
    assert receipt["user_sha256"] == suppression_digest(ERASED).hex()
    assert set(receipt["remaining"]["clickhouse"].values()) == {0}
    assert ERASED not in json.dumps(receipt)
    entries = await metadata.pool.fetch(
        "SELECT details FROM audit_log WHERE action = $1 AND target = $2", AUDIT_ACTION, job.id
    )
    assert len(entries) == 1
    details = json.loads(entries[0]["details"])
    assert details["receipt"] == receipt and details["receipt_sha256"] == view["receipt_sha256"]
    # The job's own row keeps the digest, never the id or the user's sessions.
    job_rows = repr([dict(row) for row in await metadata.pool.fetch("SELECT * FROM erasure_jobs")])
    assert ERASED not in job_rows and "s-erased" not in job_rows

    # Late events of the user are refused at ingest, naming user_id (and never reach the store).
    ingest = IngestService(LocalStore(events), settings, erased=privacy.suppression)  # type: ignore[arg-type]
    late = await ingest.ingest_batch([{"event_type": "page_view", "user_id": ERASED}])
    assert (late.accepted, [(e.index, e.field, e.code) for e in late.errors]) == (0, [(0, "user_id", "erased_user")])

    # The access request now finds no event, day or session of the user, only the job and the suppression.
    after = await lines(privacy, ERASED)
    assert {line["record"] for line in after} == {"request", "erasure_job", "suppression", "summary"}
    assert after[-1]["counts"] == {"request": 1, "erasure_job": 1, "suppression": 1}
    assert [line["data"]["suppressed"] for line in after if line["record"] == "suppression"] == [True]

    with pytest.raises(NotFound):
        await privacy.erasure.status(KEPT, job.id)
    # A new request after completion is a new job (data may have come in since, through another id form).
    newer, created = await privacy.erasure.request(ERASED, "key_admin")
    assert created and newer.id != job.id


async def test_the_access_request_holds_the_users_events_and_rollup_rows(
    chdb_dir: Path, rows: list[dict[str, Any]], metadata: MetadataStore
) -> None:
    events = open_store(chdb_dir, rows)
    privacy = local_privacy(metadata, LocalStore(events), privacy_settings(None))
    found = await lines(privacy, KEPT)
    assert found[0]["record"] == "request" and found[0]["id_forms"] == [KEPT]
    mine = sorted((row for row in rows if row.get("user_id") == KEPT), key=lambda row: row["id"])
    exported = sorted((line["data"] for line in found if line["record"] == "event"), key=lambda e: e["id"])
    assert [e["id"] for e in exported] == [row["id"] for row in mine]
    for event, row in zip(exported, mine, strict=True):
        assert (event["event_type"], event["session_id"], event["user_id"]) == (
            row["event_type"],
            row.get("session_id") or None,
            KEPT,
        )
        assert datetime.fromisoformat(event["timestamp"]) == row["timestamp"].replace(microsecond=0)
        assert event["properties"] == orjson.loads(row["properties"])
    days = [line["data"] for line in found if line["record"] == "user_day"]
    assert len(days) == 3 and sum(day["events"] for day in days) == len(mine)
    sessions = [line["data"]["session_id"] for line in found if line["record"] == "session"]
    assert sessions == ["s-kept-2", "s-kept-1", "s-kept-0"]
    assert found[-1] == {
        "record": "summary",
        "counts": {"request": 1, "event": len(mine), "user_day": 3, "session": 3, "suppression": 1},
    }


# ---- killed mid-job ------------------------------------------------------------------------------


def worker(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """tests/semantic/erasure_worker.py in a process of its own (a chDB directory is one process's)."""
    return subprocess.run(
        [sys.executable, "-m", "tests.semantic.erasure_worker", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("kill_at", ["rollup-slice-deleted", "receipt-written"])
def test_a_job_killed_mid_way_is_finished_by_the_next_runner(
    tmp_path: Path, make_database: Callable[[], str], redis_url: str, kill_at: str
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    now = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    common = ["--data", str(tmp_path), "--dsn", make_database(), "--redis", redis_url, "--now", now]

    killed = worker("start", "--kill-at", kill_at, *common, env=env)
    # SIGKILL: the process had no chance to clean up (its PostgreSQL session and lock went with it).
    assert killed.returncode == -9, killed.stderr[-3000:]

    resumed = worker("resume", *common, env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    outcome = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert outcome["completed"] == [outcome["job_id"]]
    assert outcome["status"] == "completed" and outcome["attempts"] == 2
    assert outcome["remaining"] and set(outcome["remaining"].values()) == {0}
    assert outcome["differing_tables"] == []
    assert outcome["receipt_verifies"] and outcome["audit_entries"] == 1
    assert outcome["removed_events"] == 24


async def test_an_unknown_job_is_not_found(metadata: MetadataStore, without_user: ClickHouseEvents) -> None:
    privacy = local_privacy(metadata, LocalStore(without_user), privacy_settings(None))
    with pytest.raises(NotFound):
        await privacy.erasure.status(ERASED, "erasure_" + secrets.token_hex(8))
