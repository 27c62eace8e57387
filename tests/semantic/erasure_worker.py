"""An erasure runner in a process of its own, for tests/semantic/test_erasure.py (a chDB directory belongs to
one process, and a kill must take a whole process).

``start`` loads two users' activity into ``<data>/chdb``, requests the erasure of one and runs it, and
kills itself (SIGKILL) at the point named by ``--kill-at``: right after the first rollup's slices were
deleted and before they were refilled, or right after the receipt was written and before it reached the
audit log. ``resume`` is the next start of a replica: it runs the unfinished jobs, then prints what it
finds as one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from semantic.erasure import AUDIT_ACTION, ErasureService, canonical_json
from storage.erasure_jobs import ErasureJob, ErasureJobs, erase_user_rows
from storage.events import ClickHouseEvents
from storage.metadata import MetadataStore
from storage.suppression_list import SuppressionList
from storage.user_data_tables import PER_USER_TABLES, REBUILT_TABLES
from tests.semantic.erasure_support import (
    ERASED,
    LocalStore,
    activity,
    contents,
    open_store,
    privacy_settings,
    table_of,
)

DATABASE = "erasure_kill"
FIRST_SLICE_DELETE = f"ALTER TABLE {REBUILT_TABLES[0].table} DELETE"


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class KilledAfterReceipt(ErasureJobs):
    async def receipt_written(self, job_id: str, step: str, receipt: dict[str, Any], digest: str) -> ErasureJob:
        job = await super().receipt_written(job_id, step, receipt, digest)
        die()
        return job


def service(metadata: MetadataStore, events: ClickHouseEvents, jobs: ErasureJobs, redis_url: str) -> ErasureService:
    settings = privacy_settings(redis_url)
    pool = metadata.pool

    async def postgres(user_ids: list[str]) -> dict[str, int]:
        return await erase_user_rows(pool, user_ids)

    return ErasureService(
        jobs=jobs,
        store=LocalStore(events),
        suppression=SuppressionList(pool, refresh_seconds=settings.suppression_refresh_seconds),
        audit=metadata,
        settings=settings,
        postgres=postgres,
    )


async def start(args: argparse.Namespace, chdb: Path) -> None:
    events = ClickHouseEvents.open(None, chdb_path=chdb, database=DATABASE, retention_days=3650)
    events.insert(table_of(activity(datetime.fromisoformat(args.now))), "erasure-kill-load")
    metadata = await MetadataStore.connect(args.dsn)
    await metadata.migrate()
    jobs = KilledAfterReceipt(metadata.pool) if args.kill_at == "receipt-written" else ErasureJobs(metadata.pool)
    if args.kill_at == "rollup-slice-deleted":
        command = events.client.command

        def command_then_die(statement: str, *more: Any, **options: Any) -> Any:
            result = command(statement, *more, **options)
            if statement.startswith(FIRST_SLICE_DELETE):
                die()
            return result

        events.client.command = command_then_die  # type: ignore[method-assign]
    erasure = service(metadata, events, jobs, args.redis)
    job, _ = await erasure.request(ERASED, "key_admin")
    await erasure.run(job.id)
    sys.exit(f"the job ran to its end without being killed (step {(await jobs.get(job.id)).step!r})")  # type: ignore[union-attr]


async def resume(args: argparse.Namespace, chdb: Path) -> None:
    events = ClickHouseEvents.open(None, chdb_path=chdb, database=DATABASE, retention_days=3650)
    metadata = await MetadataStore.connect(args.dsn)
    await metadata.migrate()
    erasure = service(metadata, events, ErasureJobs(metadata.pool), args.redis)
    completed = await erasure.run_unfinished()
    (job,) = await erasure.jobs_of(ERASED)
    rows = activity(datetime.fromisoformat(args.now))
    without_user = open_store(chdb, [row for row in rows if row.get("user_id") != ERASED])
    tables = (*PER_USER_TABLES, *(spec.table for spec in REBUILT_TABLES))
    audited = await metadata.pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = $1 AND target = $2", AUDIT_ACTION, job.id
    )
    receipt = job.receipt or {}
    outcome = {
        "completed": completed,
        "job_id": job.id,
        "status": job.status,
        "attempts": job.attempts,
        "remaining": events.user_data_remaining([ERASED]),
        "differing_tables": [t for t in tables if contents(events, t) != contents(without_user, t)],
        "receipt_verifies": hashlib.sha256(canonical_json(receipt)).hexdigest() == job.receipt_sha256,
        "audit_entries": audited,
        "removed_events": receipt.get("removed", {}).get("clickhouse", {}).get("events", {}).get("rows"),
    }
    await metadata.close()
    print(json.dumps(outcome))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("start", "resume"))
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--now", required=True)
    parser.add_argument("--kill-at", choices=("rollup-slice-deleted", "receipt-written"))
    args = parser.parse_args()
    chdb = (args.data / "chdb").resolve()
    asyncio.run(start(args, chdb) if args.mode == "start" else resume(args, chdb))


if __name__ == "__main__":
    main()
