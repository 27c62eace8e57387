"""The service's own telemetry: each request it answers becomes an ``api_request`` event of service
``analytics``, each statement it runs on ClickHouse, PostgreSQL or Redis a ``database_query`` event, so
the service shows on its own health board and ``/database/performance`` reads its real statements.

Recording is an append to a list: a request or a statement leaves a tuple in the buffer, and the
formatting (fingerprints, event dicts) happens when the buffer is flushed, off the request's path. The
flush runs every ``flush_seconds`` in the background and stores the events through the ingestion
service (the same validation, enrichment and durable write as any client's batch). The buffer is
bounded: an entry that finds it full is dropped and counted, and a batch the store refuses is dropped
and counted, never retried into a growing backlog. The flush's own statements are never recorded (the
flush runs marked as such), and nothing here raises into a request.

Each request counts the statements run on its behalf (``db_query_count``, ``db_time_ms``) through a
context variable set by the transport at the request's start: statements run in the request's task,
or in callbacks scheduled from it, add to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter

from core.taxonomy import API_REQUEST, DATABASE_QUERY
from semantic.statement_fingerprint import redis_fingerprint, sql_fingerprint, sql_operation

log = logging.getLogger("analytics.self_telemetry")
T = TypeVar("T")

SERVICE: Final = "analytics"
CLICKHOUSE: Final = "clickhouse"
POSTGRES: Final = "postgres"
REDIS: Final = "redis"
# The endpoint of a request no route matched: never its raw path, which may hold ids.
UNMATCHED_ENDPOINT: Final = "(unmatched)"
# The ingest route the flush's batches are counted under (analytics_ingest_request_seconds{route}).
INGEST_ROUTE: Final = "self_telemetry"
DEFAULT_CAPACITY = 100_000
# Events per ingest call of a flush: a large backlog goes in several calls, so requests that arrive
# meanwhile are served between them.
FLUSH_CHUNK = 1000


class BatchIngest(Protocol):
    """How the flush stores its events (semantic/ingestion.py IngestService)."""

    async def ingest_batch(self, raw_events: list[Any], route: str = ...) -> Any: ...


@dataclass(frozen=True, slots=True)
class Described:
    """A statement whose shape is known without SQL text (an event store call built from filters)."""

    operation: str
    fingerprint: str


# What a statement entry holds to be described at flush time: SQL text, a Redis (command, key), or a
# description made by the caller.
StatementSource = str | tuple[str, str | None] | Described


@dataclass(slots=True)
class RequestStatements:
    """The statements one request ran so far: how many, and their time in milliseconds."""

    count: int = 0
    time_ms: float = 0.0


# Marks the flush's own context: statements run there are not recorded.
_FLUSHING: Final = RequestStatements()
_current: ContextVar[RequestStatements | None] = ContextVar("analytics_request_statements", default=None)

# Buffer entries, tuples (the first item says which):
#   (_REQUEST, epoch seconds, endpoint, method, status, duration ms, statements, statement ms, cache hit | None)
#   (_STATEMENT, epoch seconds, database, StatementSource, duration ms, rows | None, error type | None)
_REQUEST: Final = 0
_STATEMENT: Final = 1


class SelfTelemetryMetrics:
    """What became of the recorded entries, in the registry the process exports."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.stored = Counter(
            "analytics_self_telemetry_events_stored",
            "The service's own api_request and database_query events stored, by event type",
            ["event_type"],
            registry=self.registry,
        )
        self.dropped = Counter(
            "analytics_self_telemetry_events_dropped",
            "The service's own events dropped: buffer_full (the buffer was full when recorded), "
            "flush_failed (the store refused the batch), invalid (the event failed validation)",
            ["reason"],
            registry=self.registry,
        )


class SelfTelemetry:
    """The recorder of one process (a replica): a bounded buffer of entries and its flush loop."""

    def __init__(
        self,
        *,
        flush_seconds: float,
        capacity: int = DEFAULT_CAPACITY,
        metrics: SelfTelemetryMetrics | None = None,
    ) -> None:
        self._flush_seconds = flush_seconds
        self._capacity = capacity
        self.metrics = metrics if metrics is not None else SelfTelemetryMetrics()
        self._buffer: list[tuple[Any, ...]] = []
        # Event ids: a random prefix per recorder and a count. Unique without a random draw per event,
        # which would be the largest part of making one.
        self._ids = (f"self-{secrets.token_hex(8)}-{n}" for n in itertools.count())
        self._ingest: BatchIngest | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    # ---- recording (the hot path: an append) -------------------------------------------------

    def begin_request(self) -> tuple[Token[RequestStatements | None], RequestStatements]:
        """Start counting the statements of the request running in this context."""
        statements = RequestStatements()
        return _current.set(statements), statements

    def end_request(
        self,
        token: Token[RequestStatements | None],
        statements: RequestStatements,
        endpoint: str,
        method: str,
        status: int,
        duration_seconds: float,
        cache_hit: bool | None,
    ) -> None:
        """The request was answered: record it and stop counting its statements."""
        _current.reset(token)
        if len(self._buffer) >= self._capacity or self._closed:
            self._drop_full()
            return
        self._buffer.append(
            (
                _REQUEST,
                time.time(),
                endpoint,
                method,
                status,
                duration_seconds * 1000.0,
                statements.count,
                statements.time_ms,
                cache_hit,
            )
        )

    def statement(
        self,
        database: str,
        source: StatementSource,
        duration_seconds: float,
        rows: int | None = None,
        error: str | None = None,
    ) -> None:
        """A statement ran on ``database`` for ``duration_seconds`` (``error``: the exception's type)."""
        current = _current.get()
        if current is _FLUSHING:
            return
        duration_ms = duration_seconds * 1000.0
        if current is not None:
            current.count += 1
            current.time_ms += duration_ms
        if len(self._buffer) >= self._capacity or self._closed:
            self._drop_full()
            return
        self._buffer.append((_STATEMENT, time.time(), database, source, duration_ms, rows, error))

    def _drop_full(self) -> None:
        if not self._closed:
            self.metrics.dropped.labels(reason="buffer_full").inc()

    async def timed(
        self,
        database: str,
        source: StatementSource,
        call: Awaitable[T],
        rows: Callable[[T], int | None] | None = None,
    ) -> T:
        """Await ``call`` (one statement) and record it, failed or not; its result or error passes through."""
        started = time.perf_counter()
        try:
            result = await call
        except BaseException as exc:
            self.statement(database, source, time.perf_counter() - started, None, type(exc).__name__)
            raise
        elapsed = time.perf_counter() - started
        counted: int | None = None
        if rows is not None:
            try:
                counted = rows(result)
            except Exception:  # noqa: BLE001 - a count that cannot be read is left out, the answer stands
                counted = None
        self.statement(database, source, elapsed, counted)
        return result

    def postgres_statement(self, query: str, elapsed_seconds: float, error: BaseException | None) -> None:
        """A PostgreSQL statement as the metadata store's query logger reports it."""
        self.statement(POSTGRES, query, elapsed_seconds, None, type(error).__name__ if error is not None else None)

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    # ---- flushing ----------------------------------------------------------------------------

    def start(self, ingest: BatchIngest) -> None:
        """Flush through ``ingest`` every ``flush_seconds`` from now on (call on the running loop)."""
        self._ingest = ingest
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="self-telemetry-flush")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            await self.flush()

    async def flush(self) -> int:
        """Store what the buffer holds now; returns how many events were stored. Never raises."""
        if not self._buffer or self._ingest is None:
            return 0
        entries, self._buffer = self._buffer, []
        token = _current.set(_FLUSHING)
        stored = 0
        try:
            for start in range(0, len(entries), FLUSH_CHUNK):
                chunk = entries[start : start + FLUSH_CHUNK]
                try:
                    events = [_event(entry, next(self._ids)) for entry in chunk]
                    result = await self._ingest.ingest_batch(events, route=INGEST_ROUTE)
                except asyncio.CancelledError:
                    self.metrics.dropped.labels(reason="flush_failed").inc(len(entries) - start)
                    raise
                except Exception:  # noqa: BLE001 - telemetry is best effort; the service's answers are not
                    self.metrics.dropped.labels(reason="flush_failed").inc(len(chunk))
                    log.warning("storing %s of the service's own telemetry events failed", len(chunk), exc_info=True)
                    continue
                stored += self._count(events, result)
        finally:
            _current.reset(token)
        return stored

    def _count(self, events: list[dict[str, Any]], result: Any) -> int:
        refused = {error.index for error in getattr(result, "errors", ())}
        if refused:
            self.metrics.dropped.labels(reason="invalid").inc(len(refused))
            log.warning("%s of the service's own telemetry events failed validation", len(refused))
        by_type: dict[str, int] = {}
        for index, event in enumerate(events):
            if index not in refused:
                by_type[event["event_type"]] = by_type.get(event["event_type"], 0) + 1
        for event_type, count in by_type.items():
            self.metrics.stored.labels(event_type=event_type).inc(count)
        return len(events) - len(refused)

    async def close(self, timeout_seconds: float = 5.0) -> None:
        """Stop the loop and store what is left (within ``timeout_seconds``); later entries are ignored."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await asyncio.wait_for(self.flush(), timeout=timeout_seconds)
        except Exception:  # noqa: BLE001 - shutting down: what cannot be stored now is lost
            log.warning("the last of the service's own telemetry could not be stored", exc_info=True)
        self._closed = True
        self._buffer = []


def _event(entry: tuple[Any, ...], event_id: str) -> dict[str, Any]:
    """A buffer entry as the event a client would send."""
    at = datetime.fromtimestamp(entry[1], UTC)
    if entry[0] == _REQUEST:
        _, _, endpoint, method, status, duration_ms, statements, statement_ms, cache_hit = entry
        properties: dict[str, Any] = {
            "service": SERVICE,
            "endpoint": endpoint,
            "method": method,
            "status": status,
            "duration_ms": round(duration_ms, 3),
            "db_query_count": statements,
            "db_time_ms": round(statement_ms, 3),
        }
        if cache_hit is not None:
            properties["cache_hit"] = cache_hit
        return {
            "id": event_id,
            "event_type": API_REQUEST,
            "timestamp": at,
            "resource_type": "service",
            "resource_id": SERVICE,
            "properties": properties,
        }
    _, _, database, source, duration_ms, rows, error = entry
    operation, fingerprint = describe(database, source)
    properties = {
        "service": SERVICE,
        "database": database,
        "operation": operation,
        "fingerprint": fingerprint,
        # To the hundredth of a millisecond: finer is below what the timing can tell apart, and the
        # statement rollup (migration 019) keeps one row per distinct duration.
        "duration_ms": round(duration_ms, 2),
    }
    if rows is not None:
        properties["rows"] = rows
    if error is not None:
        properties["error"] = error
    return {
        "id": event_id,
        "event_type": DATABASE_QUERY,
        "timestamp": at,
        "resource_type": "database",
        "resource_id": database,
        "properties": properties,
    }


def describe(database: str, source: StatementSource) -> tuple[str, str]:
    """(operation, fingerprint) of a recorded statement."""
    if isinstance(source, Described):
        return source.operation, source.fingerprint
    if isinstance(source, tuple):
        command, key = source
        return command.lower(), redis_fingerprint(command, key)
    return sql_operation(source), sql_fingerprint(source)
