"""Data exports on Ray: read a dataset in chunks, write each chunk to the file store as it comes.

``POST /exports`` records an export in ``running`` and starts ``export_task`` on the cluster; the task
opens what it needs from the settings (the report runs' ``RunEnvironment``), and:

1. counts an attempt (an export finished already is left alone, so a retried task never redoes it);
2. pins the data watermark (the export's ``as_of``);
3. reads the dataset one chunk at a time as Arrow record batches (semantic/exports.py: raw events a day
   and ``EVENT_CHUNK_ROWS`` at a time, a query a page at a time) and encodes each batch as it arrives
   (CSV, NDJSON or Parquet, one row group per batch) into the stream the file store writes, with its
   size and SHA-256; at most one chunk is held at a time, whatever the export's size;
4. marks the export completed with its file and row count, or failed with the error.

While it works the task beats (``heartbeat_at``). Ray retries a task whose worker died; one the whole
cluster lost stops beating, and the reaper (pipelines/ray_jobs.py, run by the scheduler actor) starts it
again, or fails it after ``report_run_max_attempts``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import ray

from core.errors import AnalyticsError
from core.settings import Settings
from pipelines.ray_jobs import JobTable, TaskLauncher, beating
from pipelines.report_runs import RunEnvironment
from semantic.analytics_query import AnalyticsQueryService
from semantic.exports import (
    EVENT_CHUNK_ROWS,
    JSON_TEXT,
    QUERY_PAGE_ROWS,
    EventsExport,
    ExportFormat,
    ExportSource,
    event_source,
    file_name,
    query_source,
)
from semantic.freshness import Watermark
from storage.blobs import BlobStore
from storage.events import EventStore
from storage.exports import ExportFile, ExportRepository, StoredExport

log = logging.getLogger(__name__)


# --- the writers: record batches in, the file's bytes out, chunk by chunk ----------------------------------


class ChunkWriter(Protocol):
    """Encodes one file: ``start``, then ``write`` per record batch, then ``finish``; each returns the bytes
    it adds to the file, so nothing but the current batch is ever held."""

    def start(self) -> bytes: ...
    def write(self, batch: pa.RecordBatch) -> bytes: ...
    def finish(self) -> bytes: ...


def _text(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


class CsvChunkWriter:
    """RFC 4180 CSV: the header once, then each batch's rows; null is an empty field, times are ISO 8601."""

    def __init__(self, schema: pa.Schema) -> None:
        self._schema = schema

    def _rows(self, rows: Iterable[Iterable[Any]]) -> bytes:
        text = io.StringIO()
        csv.writer(text).writerows(rows)
        return text.getvalue().encode()

    def start(self) -> bytes:
        return self._rows([self._schema.names])

    def write(self, batch: pa.RecordBatch) -> bytes:
        columns = [[_text(v) for v in column.to_pylist()] for column in batch.columns]
        return self._rows(zip(*columns, strict=True))

    def finish(self) -> bytes:
        return b""


class NdjsonChunkWriter:
    """One JSON object per line; a column holding JSON text (an event's properties) is embedded as JSON."""

    def __init__(self, schema: pa.Schema) -> None:
        self._names = schema.names
        self._json = [field.metadata == JSON_TEXT for field in schema]

    def start(self) -> bytes:
        return b""

    def write(self, batch: pa.RecordBatch) -> bytes:
        columns = []
        for column, is_json in zip(batch.columns, self._json, strict=True):
            values = column.to_pylist()
            columns.append([orjson.Fragment(v) if v else None for v in values] if is_json else values)
        out = bytearray()
        for row in zip(*columns, strict=True):
            out += orjson.dumps(dict(zip(self._names, row, strict=True)), option=orjson.OPT_APPEND_NEWLINE)
        return bytes(out)

    def finish(self) -> bytes:
        return b""


class _Drain:
    """A write-only file that hands over what was written since the last ``take``; its position keeps
    counting, as the Parquet footer's offsets need."""

    def __init__(self) -> None:
        self._pieces: list[bytes] = []
        self._position = 0
        self.closed = False

    def write(self, data: Any) -> int:
        piece = bytes(data)
        self._pieces.append(piece)
        self._position += len(piece)
        return len(piece)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        pass

    def writable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        data = b"".join(self._pieces)
        self._pieces.clear()
        return data


class ParquetChunkWriter:
    """Parquet, one row group per batch, written out as each row group is complete; the footer at the end."""

    def __init__(self, schema: pa.Schema) -> None:
        self._schema = schema
        self._drain = _Drain()
        self._writer: pq.ParquetWriter | None = None

    def start(self) -> bytes:
        self._writer = pq.ParquetWriter(pa.PythonFile(self._drain, mode="w"), self._schema, compression="zstd")
        return self._drain.take()

    def write(self, batch: pa.RecordBatch) -> bytes:
        assert self._writer is not None, "start() first"
        if batch.num_rows:
            self._writer.write_batch(batch)
        return self._drain.take()

    def finish(self) -> bytes:
        assert self._writer is not None, "start() first"
        self._writer.close()
        return self._drain.take()


_WRITERS: dict[ExportFormat, Callable[[pa.Schema], ChunkWriter]] = {
    ExportFormat.CSV: CsvChunkWriter,
    ExportFormat.NDJSON: NdjsonChunkWriter,
    ExportFormat.PARQUET: ParquetChunkWriter,
}


def chunk_writer(export_format: ExportFormat, schema: pa.Schema) -> ChunkWriter:
    return _WRITERS[export_format](schema)


def encode(batches: Iterable[pa.RecordBatch], export_format: ExportFormat, schema: pa.Schema) -> Iterator[bytes]:
    """The file's bytes, a piece per batch: each batch is pulled only once the previous one is encoded."""
    writer = chunk_writer(export_format, schema)
    yield writer.start()
    for batch in batches:
        yield writer.write(batch)
    yield writer.finish()


@dataclass(slots=True)
class Tally:
    """What went through an encoding stream."""

    rows: int = 0
    batches: int = 0


async def encode_stream(
    batches: AsyncIterable[pa.RecordBatch], export_format: ExportFormat, schema: pa.Schema, tally: Tally
) -> AsyncIterator[bytes]:
    """``encode`` over an async stream of batches: each batch is encoded in a thread (the heartbeat and the
    reads keep going), and the next is read only when the file store asks for more bytes."""
    writer = chunk_writer(export_format, schema)
    yield await asyncio.to_thread(writer.start)
    async for batch in batches:
        tally.rows += batch.num_rows
        tally.batches += 1
        data = await asyncio.to_thread(writer.write, batch)
        if data:
            yield data
    yield await asyncio.to_thread(writer.finish)


# --- one export ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class ExportEnvironment:
    """What an export reads and writes through."""

    settings: Settings
    exports: ExportRepository
    blobs: BlobStore
    events: EventStore
    query: AnalyticsQueryService
    watermark: Callable[[], Awaitable[Watermark]]
    event_chunk_rows: int = EVENT_CHUNK_ROWS
    query_page_rows: int = QUERY_PAGE_ROWS

    @classmethod
    def of(cls, run: RunEnvironment) -> ExportEnvironment:
        """The report runs' environment, opened in the task's process, seen as an export's."""
        return cls(
            settings=run.settings,
            exports=ExportRepository(run.metadata.pool),
            blobs=run.blobs,
            events=run.sources.query.store,
            query=run.sources.query,
            watermark=run.answers.watermark,
        )


async def execute_export(env: ExportEnvironment, export_id: str) -> StoredExport | None:
    """Run ``export_id`` to completed or failed; None when it was finished already (or is gone)."""
    export = await env.exports.start(export_id)
    if export is None:
        return None
    timeout = env.settings.report_run_timeout_seconds
    try:
        async with beating(lambda: env.exports.beat(export_id)):
            done = await asyncio.wait_for(_produce(env, export), timeout=timeout)
    except TimeoutError:
        return await env.exports.fail(export_id, f"the export took longer than {timeout:g} s and was stopped")
    except AnalyticsError as exc:
        return await env.exports.fail(export_id, f"{exc.code}: {exc.message}")
    except Exception as exc:
        log.exception("export %s failed", export_id)
        return await env.exports.fail(export_id, f"{type(exc).__name__}: {exc}")
    return await env.exports.complete(export_id, done)


async def dataset_source(env: ExportEnvironment, export: StoredExport, watermark: Watermark) -> ExportSource:
    if export.dataset == "events":
        definition = EventsExport.from_dict(export.definition)
        return event_source(env.events, definition, watermark, chunk_rows=env.event_chunk_rows)
    return await query_source(
        env.query, export.definition["query"], export.owner, watermark, page_rows=env.query_page_rows
    )


async def _produce(env: ExportEnvironment, export: StoredExport) -> ExportFile:
    watermark = await env.watermark()
    source = await dataset_source(env, export, watermark)
    export_format = ExportFormat(export.export_format)
    name = file_name(export)
    key = f"exports/{export.id}/{name}"
    tally = Tally()
    info = await env.blobs.put(
        key, encode_stream(source.batches, export_format, source.schema, tally), content_type=export_format.content_type
    )
    return ExportFile(
        blob_key=key,
        content_type=export_format.content_type,
        file_name=name,
        file_size=info.size,
        sha256=info.sha256,
        row_count=tally.rows,
        as_of=watermark.as_of,
    )


# --- on Ray --------------------------------------------------------------------------------------------


async def _export_in_task(settings: dict[str, Any], export_id: str) -> str | None:
    run_env = await RunEnvironment.open(Settings(**settings))
    try:
        export = await execute_export(ExportEnvironment.of(run_env), export_id)
        return export.status if export is not None else None
    finally:
        await run_env.close()


# Ray retries the task when its worker dies (a system failure); an error inside the export is recorded
# as its failure instead, so application errors are never retried.
@ray.remote(max_retries=2, retry_exceptions=False)
def export_task(settings: dict[str, Any], export_id: str) -> str | None:
    return asyncio.run(_export_in_task(settings, export_id))


def export_launcher(settings: Settings) -> TaskLauncher:
    return TaskLauncher(settings, export_task, "export")


def export_jobs(exports: ExportRepository) -> JobTable:
    """Exports as the reaper sees them (pipelines/ray_jobs.py)."""
    return JobTable(kind="export", stale=exports.stale, claim=exports.touch, fail=exports.fail)
