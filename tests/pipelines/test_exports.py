"""pipelines/exports.py: the chunked writers (CSV, NDJSON, Parquet), and whole exports run in this process
against the real PostgreSQL, embedded chDB and a local file store (the task on Ray runs the same
``execute_export``; tests/e2e/test_exports_api.py runs it there)."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.access import ContentScope, Principal, Role
from core.errors import Conflict, Forbidden, NotFound
from core.settings import Settings
from pipelines.exports import (
    ExportEnvironment,
    Tally,
    encode,
    encode_stream,
    execute_export,
    export_jobs,
)
from pipelines.ray_jobs import reap
from semantic.analytics_query import AnalyticsQueryRequest, AnalyticsQueryService
from semantic.content_scope import using_scope
from semantic.exports import (
    EVENT_EXPORT_SCHEMA,
    JSON_TEXT,
    EventsExport,
    ExportFormat,
    ExportService,
    event_source,
    query_source,
)
from semantic.freshness import Watermark
from storage.blobs import FsspecBlobStore, local_blob_store
from storage.events import EVENT_SCHEMA, ClickHouseEvents, EventFilter
from storage.exports import ExportFile, ExportRepository, NewExport, StoredExport
from storage.metadata import MetadataStore
from tests.semantic.conftest import InProcessStore, open_store

SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("n", pa.int64()),
        ("share", pa.float64()),
        ("day", pa.date32()),
        ("at", pa.timestamp("ms", tz="UTC")),
        pa.field("properties", pa.string(), metadata=JSON_TEXT),
        ("note", pa.string()),
    ]
)
T0 = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)


def sample_rows(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "id": f"r{i:03d}",
            "n": i * 7 - 3,
            "share": i / 8,
            "day": date(2025, 6, 2) + timedelta(days=i % 3),
            "at": T0 + timedelta(seconds=i, milliseconds=i * 11),
            "properties": orjson.dumps({"i": i, "tags": ["a", "b"][: i % 3]}).decode(),
            # Text that needs quoting in CSV, empty text, and a null.
            "note": [f'say "hi", {i}', "", None, "naïve\nline"][i % 4],
        }
        for i in range(start, start + count)
    ]


def batches_of(rows: list[dict[str, Any]], size: int) -> list[pa.RecordBatch]:
    return [pa.RecordBatch.from_pylist(rows[i : i + size], schema=SCHEMA) for i in range(0, len(rows), size)]


def joined(pieces: Iterator[bytes]) -> bytes:
    return b"".join(pieces)


# --- the writers ---------------------------------------------------------------------------------------


def test_csv_has_the_header_once_and_every_row_as_written_by_hand() -> None:
    rows = sample_rows(4)
    data = joined(encode(batches_of(rows, 3), ExportFormat.CSV, SCHEMA)).decode()
    expected = io.StringIO()
    writer = csv.writer(expected)
    writer.writerow(["id", "n", "share", "day", "at", "properties", "note"])
    for r in rows:
        writer.writerow(
            [
                r["id"],
                str(r["n"]),
                repr(r["share"]),
                r["day"].isoformat(),
                r["at"].isoformat(),
                r["properties"],
                r["note"] or "",
            ]
        )
    assert data == expected.getvalue()
    assert data.count("id,n,share") == 1
    parsed = list(csv.DictReader(io.StringIO(data)))
    assert [p["note"] for p in parsed] == ['say "hi", 0', "", "", "naïve\nline"]
    assert parsed[1]["at"] == "2025-06-02T09:00:01.011000+00:00"


def test_ndjson_is_one_object_per_row_with_json_columns_embedded() -> None:
    rows = sample_rows(5)
    lines = joined(encode(batches_of(rows, 2), ExportFormat.NDJSON, SCHEMA)).decode().splitlines()
    assert [orjson.loads(line) for line in lines] == [
        {
            "id": r["id"],
            "n": r["n"],
            "share": r["share"],
            "day": r["day"].isoformat(),
            "at": r["at"].isoformat(),
            "properties": orjson.loads(r["properties"]),
            "note": r["note"],
        }
        for r in rows
    ]


@pytest.mark.parametrize("export_format", [ExportFormat.CSV, ExportFormat.NDJSON])
@pytest.mark.parametrize("size", [1, 3, 50])
def test_text_formats_of_n_chunks_are_the_file_of_one(export_format: ExportFormat, size: int) -> None:
    rows = sample_rows(13)
    whole = joined(encode([pa.RecordBatch.from_pylist(rows, schema=SCHEMA)], export_format, SCHEMA))
    assert joined(encode(batches_of(rows, size), export_format, SCHEMA)) == whole
    # An empty batch adds nothing.
    empty = pa.RecordBatch.from_pylist([], schema=SCHEMA)
    assert joined(encode([empty, *batches_of(rows, size), empty], export_format, SCHEMA)) == whole


def test_parquet_of_n_chunks_reads_back_as_the_rows_with_their_types() -> None:
    rows = sample_rows(23)
    data = joined(encode(batches_of(rows, 5), ExportFormat.PARQUET, SCHEMA))
    assert data[:4] == b"PAR1" and data[-4:] == b"PAR1"
    table = pq.read_table(io.BytesIO(data))
    assert table.schema.remove_metadata() == SCHEMA.remove_metadata()
    assert table.schema.field("properties").metadata == JSON_TEXT
    assert table.to_pylist() == rows
    assert pq.ParquetFile(io.BytesIO(data)).metadata.num_row_groups == 5
    one = pq.read_table(io.BytesIO(joined(encode(batches_of(rows, 100), ExportFormat.PARQUET, SCHEMA))))
    assert one.equals(table)


@pytest.mark.parametrize("export_format", list(ExportFormat))
def test_no_rows_is_a_valid_empty_file(export_format: ExportFormat) -> None:
    data = joined(encode([], export_format, SCHEMA))
    if export_format is ExportFormat.CSV:
        assert data == b"id,n,share,day,at,properties,note\r\n"
    elif export_format is ExportFormat.NDJSON:
        assert data == b""
    else:
        table = pq.read_table(io.BytesIO(data))
        assert table.num_rows == 0 and table.schema.names == SCHEMA.names


@pytest.mark.parametrize("export_format", list(ExportFormat))
def test_the_writer_pulls_one_batch_at_a_time(export_format: ExportFormat) -> None:
    pulled = 0

    def source() -> Iterator[pa.RecordBatch]:
        nonlocal pulled
        for batch in batches_of(sample_rows(40), 4):
            pulled += 1
            yield batch

    out = encode(source(), export_format, SCHEMA)
    next(out)  # the start of the file, before any batch
    assert pulled == 0
    for step in range(1, 11):
        next(out)
        # The piece of batch ``step`` is out, and nothing was read ahead of it.
        assert pulled == step
    assert len(list(out)) == 1 and pulled == 10  # the end of the file


async def test_the_stream_reads_a_batch_only_when_the_file_store_wants_bytes(tmp_path: Path) -> None:
    pulled: list[int] = []
    consumed = 0

    async def source() -> AsyncIterator[pa.RecordBatch]:
        for index, batch in enumerate(batches_of(sample_rows(30), 3)):
            pulled.append(index)
            # Never more than one batch ahead of the bytes taken so far.
            assert index <= consumed
            yield batch

    tally = Tally()
    pieces = []
    async for piece in encode_stream(source(), ExportFormat.NDJSON, SCHEMA, tally):
        pieces.append(piece)
        consumed += 1
    assert pulled == list(range(10)) and (tally.rows, tally.batches) == (30, 10)
    assert b"".join(pieces) == joined(encode(batches_of(sample_rows(30), 3), ExportFormat.NDJSON, SCHEMA))

    async def again() -> AsyncIterator[pa.RecordBatch]:
        for batch in batches_of(sample_rows(30), 7):
            yield batch

    store = local_blob_store(tmp_path / "files")
    stored = await store.put(
        "exports/t/f.parquet", encode_stream(again(), ExportFormat.PARQUET, SCHEMA, Tally()), content_type="x/y"
    )
    data = await store.get("exports/t/f.parquet")
    assert (stored.size, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert pq.read_table(io.BytesIO(data)).to_pylist() == sample_rows(30)


# --- the datasets and whole exports --------------------------------------------------------------------

DAY_A, DAY_B, DAY_C = date(2025, 6, 2), date(2025, 6, 3), date(2025, 6, 4)
# Only the watermark test writes to this day.
DAY_D = date(2025, 6, 5)


def event(event_id: str, at: datetime, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {name: "" for name in EVENT_SCHEMA.names}
    row.update(
        id=event_id,
        event_type="content_view",
        event_category="content",
        timestamp=at,
        processed_at=at + timedelta(seconds=1),
        properties="{}",
    )
    row.update(fields)
    return row


def dataset() -> list[dict[str, Any]]:
    rows = []
    for day, count in ((DAY_A, 12), (DAY_B, 9), (DAY_C, 3)):
        start = datetime.combine(day, datetime.min.time(), UTC)
        for i in range(count):
            # Five events of a day share one instant: chunks must part them by id, neither losing nor repeating.
            at = start + timedelta(hours=10) if i < 5 else start + timedelta(hours=i, milliseconds=i * 7)
            rows.append(
                event(
                    f"{day.day}-e{i:02d}",
                    at,
                    event_type="content_view" if i % 4 else "search",
                    event_category="content" if i % 4 else "search",
                    content_id=f"c{i % 3}" if i % 4 else "",
                    user_id=f"u{i % 2}",
                    country="DE" if i % 2 else "",
                    properties=orjson.dumps({"i": i}).decode() if i % 3 else "{}",
                )
            )
    return rows


@pytest.fixture(scope="module")
def events(chdb_dir: Path) -> Iterator[ClickHouseEvents]:
    store = open_store(chdb_dir, "exports_pipeline")
    store.insert(pa.Table.from_pylist(dataset(), schema=EVENT_SCHEMA), "exports-dataset")
    yield store
    store.close()


@pytest.fixture(scope="module")
def dsn(make_database: Callable[[], str]) -> str:
    return make_database()


@pytest.fixture(scope="module")
async def metadata(dsn: str) -> AsyncIterator[MetadataStore]:
    store = await MetadataStore.connect(dsn)
    await store.migrate()
    yield store
    await store.close()


@pytest.fixture
async def pool(metadata: MetadataStore) -> asyncpg.Pool:
    await metadata.pool.execute("TRUNCATE exports")
    return metadata.pool


def pinned(events: ClickHouseEvents) -> Watermark:
    return Watermark(stored_seq=events.stored_seq, fed_seq=events.stored_seq, as_of_ms=1_750_000_000_000)


@pytest.fixture
def environment(
    pool: asyncpg.Pool, events: ClickHouseEvents, tmp_path: Path
) -> tuple[ExportEnvironment, FsspecBlobStore]:
    store = InProcessStore(events)
    blobs = local_blob_store(tmp_path / "files")
    watermark = pinned(events)

    async def current() -> Watermark:
        return watermark

    env = ExportEnvironment(
        settings=Settings(environment="test"),
        exports=ExportRepository(pool),
        blobs=blobs,
        events=store,
        query=AnalyticsQueryService(store),
        watermark=current,
        event_chunk_rows=2,
        query_page_rows=2,
    )
    return env, blobs


def as_api_shows(events: ClickHouseEvents, start: date, end: date, **filters: str) -> list[dict[str, Any]]:
    """The events GET /events answers for the range (newest first there), oldest first, through JSON."""
    page = events.list(
        EventFilter(
            start=datetime.combine(start, datetime.min.time(), UTC),
            end=datetime.combine(end + timedelta(days=1), datetime.min.time(), UTC),
            **filters,
        ),
        1000,
        None,
    )
    shown = orjson.loads(orjson.dumps(page.events))
    return sorted(shown, key=lambda e: (e["timestamp"], e["id"]))


async def collect(source: Any) -> list[pa.RecordBatch]:
    return [batch async for batch in source.batches]


async def test_raw_events_are_read_a_day_and_a_chunk_at_a_time(events: ClickHouseEvents) -> None:
    definition = EventsExport(start_date=DAY_A, end_date=DAY_B, filters={})
    source = event_source(InProcessStore(events), definition, pinned(events), chunk_rows=2)
    batches = await collect(source)
    # Day A: 12 events in chunks of 2 (6 full chunks, then an empty read); day B: 9 (4 full, then 1).
    assert [b.num_rows for b in batches] == [2] * 6 + [2] * 4 + [1]
    assert all(b.schema == EVENT_EXPORT_SCHEMA for b in batches)
    rows = pa.Table.from_batches(batches).to_pylist()
    expected = as_api_shows(events, DAY_A, DAY_B)
    assert [r["id"] for r in rows] == [e["id"] for e in expected]
    assert len({r["id"] for r in rows}) == 21
    first = next(r for r in rows if r["id"] == "2-e00")
    assert (first["content_id"], first["country"], first["user_id"], first["properties"]) == (None, None, "u0", "{}")


async def test_raw_events_filters_and_the_watermark_pin(events: ClickHouseEvents) -> None:
    store = InProcessStore(events)
    filtered = EventsExport(start_date=DAY_A, end_date=DAY_C, filters={"event_type": "content_view", "user_id": "u1"})
    rows = pa.Table.from_batches(await collect(event_source(store, filtered, pinned(events), chunk_rows=3))).to_pylist()
    expected = as_api_shows(events, DAY_A, DAY_C, event_type="content_view", user_id="u1")
    assert [r["id"] for r in rows] == [e["id"] for e in expected] and len(rows) == 11
    before = pinned(events)
    day = datetime.combine(DAY_D, datetime.min.time(), UTC)
    events.insert(pa.Table.from_pylist([event("5-first", day)], schema=EVENT_SCHEMA), "exports-first")
    first = pinned(events)
    events.insert(pa.Table.from_pylist([event("5-late", day)], schema=EVENT_SCHEMA), "exports-late")
    late_day = EventsExport(start_date=DAY_D, end_date=DAY_D, filters={})

    async def ids(watermark: Watermark) -> list[str]:
        return [r["id"] for b in await collect(event_source(store, late_day, watermark)) for r in b.to_pylist()]

    assert await ids(before) == []
    # Stored after the watermark: not in an export pinned to it.
    assert await ids(first) == ["5-first"]
    assert await ids(pinned(events)) == ["5-first", "5-late"]


QUERY = {
    "metrics": ["views", "unique_viewers"],
    "dimensions": ["content_id", "day"],
    "date_range": {"start_date": DAY_A.isoformat(), "end_date": DAY_C.isoformat()},
    "order_by": [{"field": "content_id", "direction": "asc"}],
}


async def test_a_query_is_read_a_page_at_a_time_with_every_row(events: ClickHouseEvents) -> None:
    service = AnalyticsQueryService(InProcessStore(events))
    owner = Principal(key_id="k", name="k", role=Role.ANALYST)
    source = await query_source(service, QUERY, owner, pinned(events), page_rows=2)
    assert source.schema == pa.schema(
        [("content_id", pa.string()), ("day", pa.date32()), ("views", pa.int64()), ("unique_viewers", pa.int64())]
    )
    batches = await collect(source)
    whole = await service.run(AnalyticsQueryRequest.model_validate({**QUERY, "limit": 1000}), Role.ANALYST)
    viewed = {(e["content_id"], e["timestamp"].date()) for e in dataset() if e["event_type"] == "content_view"}
    # c0, c1 and c2 viewed on days A and B, c1 and c2 on day C: 8 rows, in pages of 2.
    assert len(viewed) == len(whole.rows) == 8 and [b.num_rows for b in batches] == [2, 2, 2, 2]
    rows = pa.Table.from_batches(batches).to_pylist()
    assert [{**r, "day": r["day"].isoformat()} for r in rows] == whole.rows


async def test_a_scoped_owners_query_counts_only_its_content(events: ClickHouseEvents) -> None:
    service = AnalyticsQueryService(InProcessStore(events))
    owner = Principal(key_id="k", name="k", role=Role.ANALYST, scope=ContentScope.of(content_ids=["c1"]))
    rows = pa.Table.from_batches(await collect(await query_source(service, QUERY, owner, pinned(events)))).to_pylist()
    with using_scope(owner.scope):
        whole = await service.run(AnalyticsQueryRequest.model_validate({**QUERY, "limit": 1000}), Role.ANALYST)
    assert {r["content_id"] for r in rows} == {"c1"} and len(rows) == 3
    assert [{**r, "day": r["day"].isoformat()} for r in rows] == whole.rows


def events_export(export_format: str, **definition: Any) -> NewExport:
    return NewExport(
        dataset="events",
        definition={
            "date_range": {"start_date": DAY_A.isoformat(), "end_date": DAY_B.isoformat()},
            "filters": {},
            **definition,
        },
        export_format=export_format,
    )


ADMIN = Principal(key_id="key_root", name="root", role=Role.ADMIN)


@pytest.mark.parametrize("export_format", ["csv", "ndjson", "parquet"])
async def test_an_events_export_writes_its_file_and_completes(
    environment: tuple[ExportEnvironment, FsspecBlobStore], events: ClickHouseEvents, export_format: str
) -> None:
    env, blobs = environment
    made = await env.exports.create(ADMIN, events_export(export_format))
    done = await execute_export(env, made.id)
    assert done is not None and done.status == "completed", done
    assert (done.row_count, done.attempts, done.error) == (21, 1, None)
    assert done.file_name == f"events-2025-06-02-2025-06-03.{export_format}"
    assert done.blob_key == f"exports/{made.id}/{done.file_name}"
    assert done.as_of == datetime.fromtimestamp(1_750_000_000, UTC)
    data = await blobs.get(done.blob_key)
    assert (done.file_size, done.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    expected = as_api_shows(events, DAY_A, DAY_B)
    if export_format == "ndjson":
        assert done.content_type == "application/x-ndjson"
        assert [orjson.loads(line) for line in data.splitlines()] == expected
    elif export_format == "csv":
        assert done.content_type == "text/csv; charset=utf-8"
        parsed = list(csv.DictReader(io.StringIO(data.decode())))
        assert [p["id"] for p in parsed] == [e["id"] for e in expected]
        assert [orjson.loads(p["properties"]) for p in parsed] == [e["properties"] for e in expected]
        assert [p["timestamp"] for p in parsed] == [e["timestamp"] for e in expected]
    else:
        assert done.content_type == "application/vnd.apache.parquet"
        table = pq.read_table(io.BytesIO(data))
        assert table.schema.field("timestamp").type == pa.timestamp("ms", tz="UTC")
        assert table.column("id").to_pylist() == [e["id"] for e in expected]
        assert table.column("country").to_pylist() == [e["country"] for e in expected]
        # One row group per chunk read.
        assert pq.ParquetFile(io.BytesIO(data)).metadata.num_row_groups == 11
    # Run again (a retried task): finished, so left alone.
    assert await execute_export(env, made.id) is None


async def test_a_query_export_has_the_rows_of_the_query(
    environment: tuple[ExportEnvironment, FsspecBlobStore],
) -> None:
    env, blobs = environment
    owner = Principal(key_id="key_ana", name="ana", role=Role.ANALYST)
    made = await env.exports.create(
        owner, NewExport(dataset="query", definition={"query": QUERY}, export_format="ndjson")
    )
    done = await execute_export(env, made.id)
    assert done is not None and done.status == "completed", done
    assert done.file_name == "query-2025-06-02-2025-06-04.ndjson" and done.row_count == 8
    data = await blobs.get(str(done.blob_key))
    whole = await env.query.run(AnalyticsQueryRequest.model_validate({**QUERY, "limit": 1000}), Role.ANALYST)
    assert [orjson.loads(line) for line in data.splitlines()] == whole.rows


async def test_an_error_fails_the_export_with_its_message(
    environment: tuple[ExportEnvironment, FsspecBlobStore],
) -> None:
    env, blobs = environment
    # A metric its owner's role may not use (a role changed after the export was asked for).
    query = {**QUERY, "metrics": ["users"], "dimensions": ["user_id"], "order_by": []}
    viewer = Principal(key_id="key_v", name="v", role=Role.VIEWER)
    made = await env.exports.create(
        viewer, NewExport(dataset="query", definition={"query": query}, export_format="csv")
    )
    failed = await execute_export(env, made.id)
    assert failed is not None and failed.status == "failed"
    assert failed.error is not None and failed.error.startswith("forbidden: role 'viewer' may not use")
    assert failed.blob_key is None and await blobs.keys(f"exports/{made.id}/") == []


async def test_stale_exports_are_started_again_or_failed_after_the_last_attempt(pool: asyncpg.Pool) -> None:
    exports = ExportRepository(pool)
    settings = Settings(environment="test", report_run_stale_seconds=60, report_run_max_attempts=2)
    once = await exports.create(ADMIN, events_export("csv"))
    twice = await exports.create(ADMIN, events_export("csv"))
    fresh = await exports.create(ADMIN, events_export("csv"))
    await exports.start(once.id)
    await exports.start(twice.id)
    await exports.start(twice.id)
    await pool.execute(
        "UPDATE exports SET heartbeat_at = now() - interval '5 minutes' WHERE id = ANY($1)", [once.id, twice.id]
    )
    launched: list[str] = []

    async def launch(export_id: str) -> None:
        launched.append(export_id)

    touched = await reap(export_jobs(exports), launch, settings)
    assert sorted(touched) == sorted([once.id, twice.id]) and launched == [once.id]

    async def now(export_id: str) -> StoredExport:
        found = await exports.get(export_id)
        assert found is not None
        return found

    assert [(await now(e)).status for e in (once.id, twice.id, fresh.id)] == ["running", "failed", "running"]
    assert "abandoned after 2 attempts" in str((await now(twice.id)).error)
    # The one started again beats from now on: not stale again at once.
    assert await reap(export_jobs(exports), launch, settings) == [] and launched == [once.id]


# --- the service's rules, with the exports it records ---------------------------------------------------


@pytest.fixture
def service(pool: asyncpg.Pool, events: ClickHouseEvents) -> tuple[ExportService, list[str]]:
    launched: list[str] = []

    async def launch(export_id: str) -> None:
        launched.append(export_id)

    async def no_saved_query(saved_query_id: str, principal: Principal) -> Any:
        raise NotFound(f"saved query {saved_query_id!r} does not exist")

    exports = ExportService(
        ExportRepository(pool),
        launch=launch,
        query=AnalyticsQueryService(InProcessStore(events)),
        saved_query=no_saved_query,
    )
    return exports, launched


async def test_an_export_is_recorded_concrete_and_launched(service: tuple[ExportService, list[str]]) -> None:
    exports, launched = service
    made = await exports.create(
        {"dataset": "events", "format": "csv", "date_range": {"relative": "last_7_days"}, "filters": {"user_id": "u1"}},
        ADMIN,
        today=date(2026, 3, 9),
    )
    assert launched == [made.id] and made.status == "running"
    assert made.definition == {
        "date_range": {"start_date": "2026-03-03", "end_date": "2026-03-09"},
        "filters": {"user_id": "u1"},
    }
    analyst = Principal(key_id="key_ana", name="ana", role=Role.ANALYST)
    query = await exports.create(
        {
            "dataset": "query",
            "format": "parquet",
            "query": {"metrics": ["views"], "limit": 5},
            "date_range": {"relative": "yesterday"},
        },
        analyst,
        today=date(2026, 3, 9),
    )
    stored = query.definition["query"]
    assert stored["date_range"] == {"start_date": "2026-03-08", "end_date": "2026-03-08"}
    # Every row is exported: the page size is the export's own.
    assert "limit" not in stored and "cursor" not in stored and stored["metrics"] == ["views"]
    assert launched == [made.id, query.id]


async def test_a_file_is_downloadable_only_once_completed_and_within_the_callers_scope(
    service: tuple[ExportService, list[str]],
) -> None:
    exports, _ = service
    analyst = Principal(key_id="key_ana", name="ana", role=Role.ANALYST)
    body = {"dataset": "query", "format": "csv", "query": {"metrics": ["views"], "date_range": {"relative": "today"}}}
    made = await exports.create(body, analyst)
    with pytest.raises(Conflict) as running:
        await exports.downloadable(made.id, analyst)
    assert running.value.details == {"field": "export_id", "status": "running"}
    await exports.exports.fail(made.id, "internal_error: boom")
    with pytest.raises(Conflict, match=r"it is failed \(internal_error: boom\)"):
        await exports.downloadable(made.id, analyst)
    done = await exports.create(body, analyst)
    await exports.exports.complete(
        done.id, ExportFile("exports/x/q.csv", "text/csv; charset=utf-8", "q.csv", 10, "00" * 32, 1, None)
    )
    assert (await exports.downloadable(done.id, analyst)).id == done.id
    assert (await exports.downloadable(done.id, ADMIN)).id == done.id
    # An admin limited to some content may not take a file computed for all content.
    scoped_admin = Principal(key_id="key_sa", name="sa", role=Role.ADMIN, scope=ContentScope.of(content_ids=["c1"]))
    with pytest.raises(Forbidden, match="does not cover"):
        await exports.downloadable(done.id, scoped_admin)
    with pytest.raises(NotFound, match="does not exist"):
        await exports.downloadable(done.id, Principal(key_id="key_bob", name="bob", role=Role.ANALYST))
    with pytest.raises(NotFound):
        await exports.get("exp_\x00", analyst)
