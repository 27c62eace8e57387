"""storage/exports.py against the real PostgreSQL: one fresh, migrated database for the module, emptied
before each test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from core.access import ALL_CONTENT, ContentScope, Principal, Role
from storage.exports import ExportFile, ExportRepository, NewExport, export_not_found
from storage.metadata import MetadataStore

ANA = Principal(key_id="key_ana", name="Ana", role=Role.ANALYST, scope=ContentScope.of(["news"], ["c9"]))
BOB = Principal(key_id="key_bob", name="Bob", role=Role.ANALYST)
ROOT = Principal(key_id="key_root", name="Root", role=Role.ADMIN)
EVENTS = NewExport(
    dataset="events",
    definition={"date_range": {"start_date": "2026-03-02", "end_date": "2026-03-02"}, "filters": {"event_type": "x"}},
    export_format="parquet",
)
AS_OF = datetime(2026, 3, 3, 12, 30, 5, 123000, tzinfo=UTC)


@pytest.fixture
async def pool(migrated: MetadataStore) -> asyncpg.Pool:
    await migrated.pool.execute("TRUNCATE exports")
    return migrated.pool


@pytest.fixture
def exports(pool: asyncpg.Pool) -> ExportRepository:
    return ExportRepository(pool)


def a_file(key: str = "exports/x/events.parquet") -> ExportFile:
    return ExportFile(
        blob_key=key,
        content_type="application/vnd.apache.parquet",
        file_name="events-2026-03-02-2026-03-02.parquet",
        file_size=4321,
        sha256="ab" * 32,
        row_count=17,
        as_of=AS_OF,
    )


async def test_a_new_export_is_running_for_its_owner_with_its_role_and_scope(exports: ExportRepository) -> None:
    made = await exports.create(ANA, EVENTS)
    assert made.id.startswith("exp_") and len(made.id) == 28
    assert (made.dataset, made.export_format, made.status, made.attempts) == ("events", "parquet", "running", 0)
    assert made.definition == EVENTS.definition
    assert (made.owner_key_id, made.owner_role, made.owner_scope) == ("key_ana", Role.ANALYST, ANA.scope)
    assert made.heartbeat_at is not None and made.started_at is None and made.finished_at is None
    assert (made.blob_key, made.file_size, made.row_count, made.as_of, made.error) == (None, None, None, None, None)
    assert await exports.get(made.id) == made
    assert await exports.get("exp_missing") is None
    unscoped = await exports.create(BOB, EVENTS)
    assert unscoped.owner_scope == ALL_CONTENT
    assert unscoped.owner == Principal(key_id="key_bob", name="key_bob", role=Role.ANALYST, scope=ALL_CONTENT)


async def test_the_owner_and_admins_see_an_export_nobody_else(exports: ExportRepository) -> None:
    made = await exports.create(ANA, EVENTS)
    assert made.visible_to(ANA) and made.visible_to(ROOT)
    assert not made.visible_to(BOB)
    assert not made.visible_to(Principal(key_id="key_other", name="x", role=Role.VIEWER))
    assert export_not_found(made.id).details == {"field": "export_id"}


async def test_a_list_holds_the_callers_own_exports_newest_first(exports: ExportRepository) -> None:
    mine = [await exports.create(ANA, EVENTS) for _ in range(3)]
    await exports.create(BOB, EVENTS)
    page, total = await exports.list_owned(ANA, limit=2)
    assert total == 3
    assert [e.id for e in page] == [mine[2].id, mine[1].id]
    rest, _ = await exports.list_owned(ANA, limit=2, offset=2)
    assert [e.id for e in rest] == [mine[0].id]
    admin_page, admin_total = await exports.list_owned(ROOT)
    assert (admin_page, admin_total) == ([], 0)


async def test_start_counts_attempts_until_the_export_is_finished(exports: ExportRepository) -> None:
    made = await exports.create(ANA, EVENTS)
    first = await exports.start(made.id)
    assert first is not None and first.attempts == 1 and first.started_at is not None
    second = await exports.start(made.id)
    assert second is not None and second.attempts == 2 and second.started_at == first.started_at
    done = await exports.complete(made.id, a_file())
    assert done is not None
    assert (done.status, done.blob_key, done.file_size, done.sha256, done.row_count) == (
        "completed",
        "exports/x/events.parquet",
        4321,
        "ab" * 32,
        17,
    )
    assert (done.content_type, done.file_name, done.as_of) == (
        "application/vnd.apache.parquet",
        "events-2026-03-02-2026-03-02.parquet",
        AS_OF,
    )
    assert done.finished_at is not None and done.error is None
    # A retried task finds it finished and leaves it alone; a late failure does not overwrite it.
    assert await exports.start(made.id) is None
    assert await exports.complete(made.id, a_file("exports/x/other.parquet")) is None
    assert await exports.fail(made.id, "late") is None
    assert await exports.get(made.id) == done


async def test_a_failure_keeps_its_error_and_no_file(exports: ExportRepository) -> None:
    made = await exports.create(ANA, EVENTS)
    failed = await exports.fail(made.id, "query_budget_exceeded: " + "x" * 5000)
    assert failed is not None and failed.status == "failed" and failed.finished_at is not None
    assert failed.error is not None and len(failed.error) == 4000 and failed.error.startswith("query_budget_exceeded")
    assert failed.blob_key is None
    assert await exports.complete(made.id, a_file()) is None


async def test_stale_exports_are_those_that_stopped_beating(exports: ExportRepository, pool: asyncpg.Pool) -> None:
    quiet = await exports.create(ANA, EVENTS)
    alive = await exports.create(ANA, EVENTS)
    finished = await exports.create(ANA, EVENTS)
    await exports.complete(finished.id, a_file())
    await pool.execute(
        "UPDATE exports SET heartbeat_at = now() - interval '10 minutes' WHERE id = ANY($1)", [quiet.id, finished.id]
    )
    await exports.beat(alive.id)
    stale = await exports.stale(timedelta(minutes=2))
    assert [e.id for e in stale] == [quiet.id]
    # Claimed once: a second reaper finds it beating again.
    assert await exports.touch(quiet.id, timedelta(minutes=2)) is True
    assert await exports.touch(quiet.id, timedelta(minutes=2)) is False
    assert await exports.stale(timedelta(minutes=2)) == []
    assert await exports.touch(finished.id, timedelta(0)) is False


async def test_a_beat_moves_only_a_running_exports_heartbeat(exports: ExportRepository, pool: asyncpg.Pool) -> None:
    made = await exports.create(ANA, EVENTS)
    await pool.execute("UPDATE exports SET heartbeat_at = now() - interval '1 hour' WHERE id = $1", made.id)
    before = await exports.get(made.id)
    await exports.beat(made.id)
    after = await exports.get(made.id)
    assert before is not None and after is not None and before.heartbeat_at is not None
    assert after.heartbeat_at is not None and after.heartbeat_at - before.heartbeat_at >= timedelta(minutes=59)
    await exports.fail(made.id, "stopped")
    await pool.execute("UPDATE exports SET heartbeat_at = now() - interval '1 hour' WHERE id = $1", made.id)
    await exports.beat(made.id)
    finished = await exports.get(made.id)
    assert finished is not None and finished.heartbeat_at is not None
    assert datetime.now(UTC) - finished.heartbeat_at > timedelta(minutes=59)
