"""The baselines the ingest benchmark compares the service with, each in a process of its own.

``serve``: what a user would write instead of this service. One uvicorn process with a FastAPI
app that validates and enriches exactly as the service does (``semantic.ingestion.IngestService``,
i.e. ``core.validation`` and ``core.enrichment``) and inserts straight into chDB in-process.
Concurrent requests share one insert (``--group-commit``, on by default). ``--schema events``
(what bench_ingest runs) keeps only the events table: the baseline acknowledges after the same
durable insert the service does, but never builds rollups, live counters or an id index.
``--schema full`` adds every migration and builds the rollups inside each request.
What it leaves out, and the service pays for: Ray Serve's proxy and replica hop, the hop to the
event store actor, the id index that makes retries safe, the rollup feed and live counters,
API-key lookups (a fixed bearer token here) and metrics.

``raw-insert``: the ceiling. The same rows, read from Parquet into memory first, inserted with
clickhouse-connect into a fresh chDB directory in blocks of the given sizes; prints JSON.

    python -m bench.baseline_app serve --port 8123 --data-dir /tmp/base --token secret
    python -m bench.baseline_app raw-insert --parquet rows.parquet --data-dir /tmp/raw --blocks 1000,200000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
import uuid
from pathlib import Path
from string import Template
from typing import Any

import orjson
import pyarrow as pa
from fastapi import FastAPI, Request
from fastapi.responses import Response

from actors.group_commit import GroupCommit
from core.settings import Settings
from storage import clickhouse
from storage.events import ClickHouseEvents, EventColumns, WriteReceipt, column_rows, events_table

MAX_ROWS_PER_INSERT = 200_000


def open_store(data_dir: Path, *, schema: str = "full", retention_days: int = 730) -> ClickHouseEvents:
    """chDB in ``data_dir`` with every migration (``full``) or only the events table (``events``)."""
    client = clickhouse.connect(None, chdb_path=data_dir / "chdb", database="analytics")
    if schema == "full":
        clickhouse.apply_migrations(client, template={"retention_days": retention_days})
    else:
        _, _, sql = clickhouse.migration_files()[0]
        for statement in clickhouse._statements(Template(sql).substitute({"retention_days": retention_days})):
            client.command(statement)
    return ClickHouseEvents(client)


class InProcessEvents:
    """The write half of ``EventStore`` on an in-process chDB client (one insert at a time)."""

    def __init__(self, store: ClickHouseEvents, *, group_commit: bool, rollups: bool) -> None:
        self._store = store
        self._insert_rows = store.insert if rollups else store.insert_raw
        self._lock = threading.Lock()
        self._commit: GroupCommit[EventColumns, WriteReceipt] | None = (
            GroupCommit(self._flush, weight=column_rows, max_weight=MAX_ROWS_PER_INSERT) if group_commit else None
        )

    def _insert(self, table: pa.Table) -> None:
        with self._lock:
            self._insert_rows(table, uuid.uuid4().hex)

    async def _flush(self, parts: list[EventColumns]) -> list[WriteReceipt]:
        await asyncio.to_thread(self._insert, events_table(parts))
        return [WriteReceipt(inserted=column_rows(p)) for p in parts]

    async def write(self, rows: EventColumns) -> WriteReceipt:
        if self._commit is not None:
            return await self._commit.submit(rows)
        await asyncio.to_thread(self._insert, events_table([rows]))
        return WriteReceipt(inserted=column_rows(rows))


def create_app(
    data_dir: Path, *, token: str, internal_hosts: list[str], schema: str = "full", group_commit: bool = True
) -> Any:
    from core.errors import AnalyticsError, Unauthenticated
    from semantic.ingestion import IngestService
    from serve_app.http import error_response, json_response, read_json

    settings = Settings(data_dir=data_dir, internal_hosts=internal_hosts, environment="test")
    store = InProcessEvents(
        open_store(data_dir, schema=schema, retention_days=settings.retention_days),
        group_commit=group_commit,
        rollups=schema == "full",
    )
    ingest = IngestService(store, settings)  # type: ignore[arg-type]  # only write() is used
    expected = f"Bearer {token}"
    app = FastAPI()

    @app.exception_handler(AnalyticsError)
    async def _error(_: Request, exc: AnalyticsError) -> Response:
        return error_response(exc)

    def check(request: Request) -> None:
        if request.headers.get("authorization") != expected:
            raise Unauthenticated("missing or wrong bearer token")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/api/v1/analytics/events/batch")
    async def batch(request: Request) -> Response:
        check(request)
        body = await read_json(request, max_bytes=settings.max_batch_bytes)
        result = await ingest.ingest_batch(ingest.check_batch_shape(body))
        return json_response(result.to_dict(), status_code=422 if result.accepted == 0 and result.errors else 200)

    @app.post("/api/v1/analytics/events")
    async def single(request: Request) -> Response:
        check(request)
        event_id, duplicate = await ingest.ingest_one(await read_json(request, max_bytes=settings.max_batch_bytes))
        return json_response({"id": event_id, "duplicate": duplicate}, status_code=200 if duplicate else 201)

    return app


def raw_insert(
    parquet: Path, data_dir: Path, blocks: list[int], schema: str, max_seconds: float = 20.0
) -> dict[str, Any]:
    import pyarrow.parquet as pq

    rows = pq.read_table(parquet)
    store = open_store(data_dir, schema=schema)
    insert_rows = store.insert if schema == "full" else store.insert_raw
    results = []
    for block in blocks:
        store.client.command("TRUNCATE TABLE events")
        started = time.perf_counter()
        cpu = time.process_time()
        done = 0
        # Small blocks are slow with the views attached: stop after max_seconds.
        while done < rows.num_rows and time.perf_counter() - started < max_seconds:
            part = rows.slice(done, block)
            insert_rows(part, uuid.uuid4().hex)
            done += part.num_rows
        seconds = time.perf_counter() - started
        results.append(
            {
                "block_rows": block,
                "rows": done,
                "seconds": round(seconds, 3),
                "rows_per_second": round(done / seconds),
                "cpu_seconds": round(time.process_time() - cpu, 3),
            }
        )
    store.close()
    return {"schema": schema, "results": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline_app")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="the bare uvicorn + FastAPI ingest app")
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--data-dir", type=Path, required=True)
    serve.add_argument("--token", required=True)
    serve.add_argument("--internal-hosts", default="")
    serve.add_argument("--schema", choices=("full", "events"), default="full")
    serve.add_argument("--no-group-commit", action="store_true")
    raw = sub.add_parser("raw-insert", help="insert Parquet rows straight into chDB; prints JSON")
    raw.add_argument("--parquet", type=Path, required=True)
    raw.add_argument("--data-dir", type=Path, required=True)
    raw.add_argument("--blocks", default="1000,200000")
    raw.add_argument("--schema", choices=("full", "events"), default="full")
    raw.add_argument("--max-seconds", type=float, default=20.0)
    args = parser.parse_args(argv)

    if args.command == "raw-insert":
        blocks = [int(b) for b in args.blocks.split(",") if b]
        sys.stdout.write(
            orjson.dumps(raw_insert(args.parquet, args.data_dir, blocks, args.schema, args.max_seconds)).decode() + "\n"
        )
        return 0

    import uvicorn

    app = create_app(
        args.data_dir,
        token=args.token,
        internal_hosts=[h for h in args.internal_hosts.split(",") if h],
        schema=args.schema,
        group_commit=not args.no_group_commit,
    )
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
