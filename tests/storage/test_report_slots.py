"""storage/report_slots.py against the real PostgreSQL: one fresh, migrated database for the module,
emptied before each test."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta, timezone

import asyncpg
import pytest

from storage.metadata import MetadataStore
from storage.report_slots import ReportSlots, ScheduledReport

SLOT = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)
CREATED = datetime(2025, 1, 1, 9, 0, tzinfo=UTC)
UPDATED = datetime(2025, 1, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
async def pool(migrated: MetadataStore) -> asyncpg.Pool:
    await migrated.pool.execute("TRUNCATE reports CASCADE")
    return migrated.pool


@pytest.fixture
def slots(pool: asyncpg.Pool) -> ReportSlots:
    return ReportSlots(pool)


async def insert_report(pool: asyncpg.Pool, report_id: str, *, scheduled: bool = True, config: object = None) -> None:
    """A reports row with every NOT NULL column of the migration given."""
    await pool.execute(
        "INSERT INTO reports (id, name, report_type, report_format, data_source, date_range, filters, "
        "visualization_config, is_scheduled, schedule_config, notifications, created_by, owner_key_id, owner_role, "
        "shared_with, shared_with_roles, is_public, status, created_at, updated_at, version) "
        "VALUES ($1, $2, 'content_performance', 'csv', 'events', $3::jsonb, '{}'::jsonb, '{}'::jsonb, $4, $5::jsonb, "
        "'[]'::jsonb, 'key_alice', 'key_alice', 'analyst', '{}', '{}', false, 'draft', $6, $7, 1)",
        report_id,
        f"report {report_id}",
        json.dumps({"preset": "last_7_days"}),
        scheduled,
        None if config is None else json.dumps(config),
        CREATED,
        UPDATED,
    )


async def test_scheduled_lists_only_scheduled_reports_with_their_newest_slot(
    pool: asyncpg.Pool, slots: ReportSlots
) -> None:
    await insert_report(pool, "rep_b", config={"cron": "daily"})
    await insert_report(pool, "rep_a", config={"cron": "0 8 * * 1", "timezone": "Europe/Berlin"})
    await insert_report(pool, "rep_off", scheduled=False, config={"cron": "daily"})
    assert await slots.claim("rep_a", SLOT, scheduler="s1")
    assert await slots.record_missed("rep_a", [SLOT + timedelta(days=7)], scheduler="s1") == 1
    assert await slots.scheduled() == [
        ScheduledReport(
            id="rep_a",
            schedule_config={"cron": "0 8 * * 1", "timezone": "Europe/Berlin"},
            created_at=CREATED,
            updated_at=UPDATED,
            last_slot=SLOT + timedelta(days=7),
        ),
        ScheduledReport(
            id="rep_b", schedule_config={"cron": "daily"}, created_at=CREATED, updated_at=UPDATED, last_slot=None
        ),
    ]
    assert await slots.last_slot("rep_a") == SLOT + timedelta(days=7)
    assert await slots.last_slot("rep_b") is None


async def test_a_slot_is_claimed_once(pool: asyncpg.Pool, slots: ReportSlots) -> None:
    await insert_report(pool, "rep_a", config={"cron": "daily"})
    assert await slots.claim("rep_a", SLOT, scheduler="s1") is True
    assert await slots.claim("rep_a", SLOT, scheduler="s2") is False
    # The same instant written in another offset is the same slot.
    berlin = SLOT.astimezone(timezone(timedelta(hours=1)))
    assert await slots.claim("rep_a", berlin, scheduler="s2") is False
    # Another slot, or the same instant of another report, is free.
    await insert_report(pool, "rep_b", config={"cron": "daily"})
    assert await slots.claim("rep_a", SLOT + timedelta(days=1), scheduler="s2") is True
    assert await slots.claim("rep_b", SLOT, scheduler="s2") is True
    rows = await pool.fetch(
        "SELECT report_id, slot_at, outcome, run_id, scheduler FROM report_schedule_slots ORDER BY 1, 2"
    )
    assert [tuple(r) for r in rows] == [
        ("rep_a", SLOT, "run", None, "s1"),
        ("rep_a", SLOT + timedelta(days=1), "run", None, "s2"),
        ("rep_b", SLOT, "run", None, "s2"),
    ]


async def test_concurrent_claims_from_two_connections_have_one_winner(dsn: str, pool: asyncpg.Pool) -> None:
    await insert_report(pool, "rep_a", config={"cron": "* * * * *"})
    first, second = (
        await asyncpg.create_pool(dsn, min_size=1, max_size=2),
        await asyncpg.create_pool(dsn, min_size=1, max_size=2),
    )
    try:
        one, two = ReportSlots(first), ReportSlots(second)
        for minute in range(20):
            slot = SLOT + timedelta(minutes=minute)
            results = await asyncio.gather(
                one.claim("rep_a", slot, scheduler="one"), two.claim("rep_a", slot, scheduler="two")
            )
            assert sorted(results) == [False, True], slot
            winner = "one" if results[0] else "two"
            assert (
                await pool.fetchval(
                    "SELECT scheduler FROM report_schedule_slots WHERE report_id = 'rep_a' AND slot_at = $1", slot
                )
                == winner
            )
    finally:
        await first.close()
        await second.close()
    assert await pool.fetchval("SELECT count(*) FROM report_schedule_slots") == 20


async def test_missed_slots_never_replace_a_row(pool: asyncpg.Pool, slots: ReportSlots) -> None:
    await insert_report(pool, "rep_a", config={"cron": "daily"})
    days = [SLOT + timedelta(days=n) for n in range(4)]
    assert await slots.claim("rep_a", days[2], scheduler="s1")
    assert await slots.record_missed("rep_a", days, scheduler="s2") == 3
    assert await slots.record_missed("rep_a", days, scheduler="s3") == 0
    assert await slots.record_missed("rep_a", [], scheduler="s3") == 0
    # A missed slot cannot be claimed afterwards.
    assert await slots.claim("rep_a", days[0], scheduler="s1") is False
    history = await slots.history("rep_a")
    assert [(h["slot_at"], h["outcome"], h["scheduler"]) for h in history] == [
        (days[3].isoformat(), "missed", "s2"),
        (days[2].isoformat(), "run", "s1"),
        (days[1].isoformat(), "missed", "s2"),
        (days[0].isoformat(), "missed", "s2"),
    ]


async def test_set_run_and_launch_failed(pool: asyncpg.Pool, slots: ReportSlots) -> None:
    await insert_report(pool, "rep_a", config={"cron": "daily"})
    ran, failed, missed = SLOT, SLOT + timedelta(days=1), SLOT + timedelta(days=2)
    assert await slots.claim("rep_a", ran, scheduler="s1")
    assert await slots.claim("rep_a", failed, scheduler="s1")
    await slots.record_missed("rep_a", [missed], scheduler="s1")
    await slots.set_run("rep_a", ran, "run_1")
    await slots.launch_failed("rep_a", failed)
    # Neither touches a row that is not a claim awaiting its run id.
    await slots.set_run("rep_a", ran, "run_2")
    await slots.set_run("rep_a", missed, "run_3")
    await slots.launch_failed("rep_a", ran)
    history = await slots.history("rep_a")
    assert [(h["slot_at"], h["outcome"], h["run_id"]) for h in history] == [
        (missed.isoformat(), "missed", None),
        (failed.isoformat(), "missed", None),
        (ran.isoformat(), "run", "run_1"),
    ]
    assert set(history[0]) == {"slot_at", "outcome", "run_id", "scheduler", "recorded_at"}
    assert datetime.fromisoformat(history[0]["recorded_at"]).tzinfo is not None
    assert [h["slot_at"] for h in await slots.history("rep_a", limit=2)] == [missed.isoformat(), failed.isoformat()]


async def test_deleting_a_report_deletes_its_slots(pool: asyncpg.Pool, slots: ReportSlots) -> None:
    await insert_report(pool, "rep_a", config={"cron": "daily"})
    assert await slots.claim("rep_a", SLOT, scheduler="s1")
    await pool.execute("DELETE FROM reports WHERE id = 'rep_a'")
    assert await slots.history("rep_a") == []
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await slots.claim("rep_a", SLOT, scheduler="s1")
