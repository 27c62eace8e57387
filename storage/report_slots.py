"""The slots of report schedules in PostgreSQL (asyncpg): which reports are scheduled, and what became
of each of their slots.

A slot has one row in ``report_schedule_slots`` (primary key report and slot instant), written by the
first scheduler that gets to it: ``claim`` inserts it as ``run`` and only the scheduler whose insert
created the row launches the run; ``record_missed`` inserts slots the catch-up policy does not run.
Both insert with ``ON CONFLICT DO NOTHING``, so however many schedulers race for a slot, and whatever
each decided about it, the first row stands and the slot is launched at most once.

A ``run`` row's ``run_id`` is empty from the claim until ``set_run``: it stays empty when the scheduler
stopped between the two (the launch's outcome is unknown, and the slot is not launched again). A launch
that failed turns its row into ``missed`` (``launch_failed``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg


@dataclass(frozen=True, slots=True)
class ScheduledReport:
    id: str
    # As stored (parsed JSON, or None); semantic/report_schedule.py checks it.
    schedule_config: Any
    created_at: datetime
    updated_at: datetime
    # The newest slot with a row, whatever its outcome; None before the first.
    last_slot: datetime | None


class ReportSlots:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def scheduled(self) -> list[ScheduledReport]:
        """Every report with ``is_scheduled``, with its newest recorded slot, in id order."""
        rows = await self._pool.fetch(
            "SELECT r.id, r.schedule_config, r.created_at, r.updated_at, "
            "(SELECT max(s.slot_at) FROM report_schedule_slots s WHERE s.report_id = r.id) AS last_slot "
            "FROM reports r WHERE r.is_scheduled ORDER BY r.id"
        )
        return [
            ScheduledReport(
                id=row["id"],
                schedule_config=None if row["schedule_config"] is None else json.loads(row["schedule_config"]),
                created_at=row["created_at"],
                updated_at=row["updated_at"],
                last_slot=row["last_slot"],
            )
            for row in rows
        ]

    async def last_slot(self, report_id: str) -> datetime | None:
        """The newest slot of the report that has a row (run or missed)."""
        value: datetime | None = await self._pool.fetchval(
            "SELECT max(slot_at) FROM report_schedule_slots WHERE report_id = $1", report_id
        )
        return value

    async def claim(self, report_id: str, slot_at: datetime, *, scheduler: str) -> bool:
        """Take the slot to run it: True only for the one caller whose insert made the slot's row."""
        inserted = await self._pool.fetchval(
            "INSERT INTO report_schedule_slots (report_id, slot_at, outcome, scheduler) VALUES ($1, $2, 'run', $3) "
            "ON CONFLICT DO NOTHING RETURNING true",
            report_id,
            slot_at,
            scheduler,
        )
        return bool(inserted)

    async def set_run(self, report_id: str, slot_at: datetime, run_id: str) -> None:
        """The run a claimed slot launched."""
        await self._pool.execute(
            "UPDATE report_schedule_slots SET run_id = $3 "
            "WHERE report_id = $1 AND slot_at = $2 AND outcome = 'run' AND run_id IS NULL",
            report_id,
            slot_at,
            run_id,
        )

    async def launch_failed(self, report_id: str, slot_at: datetime) -> None:
        """A claimed slot whose launch failed is kept as missed: it shows it did not run, and is not retried."""
        await self._pool.execute(
            "UPDATE report_schedule_slots SET outcome = 'missed', recorded_at = now() "
            "WHERE report_id = $1 AND slot_at = $2 AND outcome = 'run' AND run_id IS NULL",
            report_id,
            slot_at,
        )

    async def record_missed(self, report_id: str, slots: Sequence[datetime], *, scheduler: str) -> int:
        """Record slots as missed; a slot that already has a row keeps it. How many rows were added."""
        if not slots:
            return 0
        status = await self._pool.execute(
            "INSERT INTO report_schedule_slots (report_id, slot_at, outcome, scheduler) "
            "SELECT $1, slot, 'missed', $3 FROM unnest($2::timestamptz[]) AS slot ON CONFLICT DO NOTHING",
            report_id,
            list(slots),
            scheduler,
        )
        # The command tag is "INSERT 0 <rows>".
        return int(status.rsplit(" ", 1)[1])

    async def history(self, report_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The report's slots, newest first: slot_at, outcome (run or missed), run_id, scheduler, recorded_at."""
        rows = await self._pool.fetch(
            "SELECT slot_at, outcome, run_id, scheduler, recorded_at FROM report_schedule_slots "
            "WHERE report_id = $1 ORDER BY slot_at DESC LIMIT $2",
            report_id,
            limit,
        )
        return [
            {
                "slot_at": row["slot_at"].isoformat(),
                "outcome": row["outcome"],
                "run_id": row["run_id"],
                "scheduler": row["scheduler"],
                "recorded_at": row["recorded_at"].isoformat(),
            }
            for row in rows
        ]
