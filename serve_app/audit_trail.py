"""The audit trail: who changed what, who read what is sensitive, and who was refused, in the audit log.

What is recorded, from the HTTP request once its answer has been sent:

- every REST mutation (POST, PUT, PATCH, DELETE) of a route with a permission, every request whose
  operation is one of ``AUDITED_READS`` (core/access.py), and every refusal (403) of any operation:
  one entry each, with the caller's key, role and name, ``action`` (``"<METHOD> <route template>"``),
  ``operation`` (the permission matrix's name), ``target`` (the path parameter(s)), a SHA-256 digest
  of the canonical parameters (path parameters, query string, JSON body; never the values), the
  outcome from the status (``ok``, ``denied`` for 401/403, ``failed`` for another 4xx, ``error`` for a
  5xx), the request id and the client's address;
- GraphQL: each root field of a mutation, and each root query field whose operation is audited, as its
  own entry (``action`` ``"graphql mutation <field>"``, the same operation names as REST, the
  outcome from that field's error);
- ingest (operation ``ingest events``, REST and GraphQL alike) is never written per request: each
  replica adds its requests up per key, minute and outcome, and writes one ``ingest.minute`` entry for
  each (requests, statuses, routes, events accepted/rejected/duplicates, client addresses);
- requests refused for want of a valid key (401) are added up the same way per client address and
  minute (``unauthenticated.minute``): an unauthenticated caller cannot make the log grow per request.

None of this delays an answer: entries go to a bounded queue that one background task writes in
batches. A failed write is retried a few times, then logged and counted
(``analytics_audit_write_failures_total``, ``analytics_audit_entries_dropped_total``); a full queue
drops the newest entries and counts them. The caller never gets an error for it.

That fails open, on purpose, for everything but erasing and exporting a person's data: those are
irreversible or hand data out, so their routes call ``record_before``, which stores a ``started``
entry before they run and refuses them (503) when it cannot. Everything else stays available when
the audit log is not, and the metrics say when entries were lost.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import FastAPI, Request
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    value_from_ast_untyped,
)
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client import Counter as MetricCounter
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry import Schema
from strawberry.extensions import SchemaExtension
from strawberry.types.base import get_object_definition

from core.access import AUDITED_READS, Operation, Principal
from core.errors import AnalyticsError, StoreUnavailable
from core.user_ids import suppression_digest
from graphql_schema.permissions import RolePermission
from serve_app.metrics import REGISTRY
from serve_app.request_ids import RequestIds, client_address_of, request_id_of
from serve_app.request_telemetry import endpoint_of
from storage.audit_log import AuditEntry, AuditLog, Outcome

log = logging.getLogger("analytics.audit")

MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
INGEST_ACTION = "ingest.minute"
UNAUTHENTICATED_ACTION = "unauthenticated.minute"

QUEUE_SIZE = 10_000
BATCH_SIZE = 500
WRITE_ATTEMPTS = 4
TALLY_FLUSH_SECONDS = 5.0
CLOSE_SECONDS = 10.0
DROPS_PER_LOG = 1000
# Bodies up to this size are digested as canonical JSON (key order and spacing do not matter); a
# larger one, or one that is not JSON, by its bytes.
MAX_CANONICAL_BODY = 1 << 20
# How much of one minute a tally keeps: distinct tallies per replica, addresses per tally.
MAX_TALLIES = 10_000
MAX_ADDRESSES = 20
# An ingest answer larger than this is not read for its event counts.
MAX_INGEST_ANSWER = 1 << 20
# Where the middleware collects a GraphQL request's audited fields (scope["state"]).
GRAPHQL_FIELDS = "audit_graphql_fields"
_OVERFLOW = "(other)"


class AuditTrailMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.written = MetricCounter(
            "analytics_audit_entries_written", "Audit entries stored in PostgreSQL", registry=self.registry
        )
        self.write_failures = MetricCounter(
            "analytics_audit_write_failures",
            "Attempts to store audit entries that failed (a batch is retried, an entry written first is refused)",
            registry=self.registry,
        )
        self.dropped = MetricCounter(
            "analytics_audit_entries_dropped",
            "Audit entries lost, by reason: queue_full, write_failed (every attempt failed), shutdown (not "
            "written in time), unrecordable (the request could not be turned into an entry)",
            ["reason"],
            registry=self.registry,
        )
        self.queued = Gauge(
            "analytics_audit_queue_entries", "Audit entries waiting to be stored", registry=self.registry
        )


# One per process, like the other metrics of serve_app/metrics.py; /metrics shows them.
AUDIT_TRAIL_METRICS = AuditTrailMetrics(REGISTRY)


# ---- what a request's parameters digest to ---------------------------------------------------------


def parameter_digest(path_params: Mapping[str, Any], query_string: bytes, body: Sequence[bytes] = ()) -> str:
    """SHA-256 (hex) over the request's parameters in canonical form: the path parameters, the query
    string's pairs in order of name, and the JSON body with sorted keys. The same request digests the same."""
    canonical = {
        "path": {str(k): str(v) for k, v in path_params.items()},
        "query": sorted(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)),
        "body": _canonical_body(b"".join(body)),
    }
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _canonical_body(raw: bytes) -> Any:
    if not raw:
        return None
    if len(raw) <= MAX_CANONICAL_BODY:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return {"sha256": hashlib.sha256(raw).hexdigest()}


def arguments_digest(field_name: str, arguments: Mapping[str, Any]) -> str:
    """SHA-256 (hex) over a GraphQL field's name and arguments (variables substituted), keys sorted."""
    canonical = {"field": field_name, "arguments": arguments}
    try:
        text = orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        text = json.dumps(canonical, sort_keys=True, default=str).encode()
    return hashlib.sha256(text).hexdigest()


def _target_value(name: str, value: Any) -> str:
    # The log is append-only and outlives an erasure: a person's id is kept as the digest the
    # suppression list and the erasure receipt use, never as sent.
    if name == "user_id":
        return "user-sha256:" + suppression_digest(str(value)).hex()
    return str(value)


def _target(path_params: Mapping[str, Any]) -> str | None:
    """The path parameter's value (``key_abc`` for ``/api-keys/{key_id}``); several as ``name=value&...``."""
    if not path_params:
        return None
    if len(path_params) == 1:
        name, value = next(iter(path_params.items()))
        return _target_value(name, value)
    return "&".join(f"{k}={_target_value(k, v)}" for k, v in sorted(path_params.items()))


def _actor(principal: Principal | None) -> dict[str, Any]:
    if principal is None:
        return {}
    return {"actor_key_id": principal.key_id, "actor_role": principal.role.value, "actor_name": principal.name}


def _utc(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, UTC)


# ---- per-minute tallies ----------------------------------------------------------------------------


@dataclass
class MinuteTally:
    """A minute of one kind of request from one caller (a key, or an address without a key), one outcome."""

    action: str
    minute: int
    outcome: Outcome
    identity: dict[str, Any]
    operation: str | None
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    routes: Counter[str] = field(default_factory=Counter)
    events: dict[str, int] = field(default_factory=dict)
    addresses: set[str] = field(default_factory=set)
    more_addresses: bool = False
    first_request_id: str | None = None
    last_request_id: str | None = None

    def add(
        self, status: int, route: str, address: str | None, request_id: str | None, events: Mapping[str, int]
    ) -> None:
        self.requests += 1
        self.statuses[status] += 1
        self.routes[route] += 1
        for name, count in events.items():
            self.events[name] = self.events.get(name, 0) + count
        if address is not None and address not in self.addresses:
            if len(self.addresses) < MAX_ADDRESSES:
                self.addresses.add(address)
            else:
                self.more_addresses = True
        self.first_request_id = self.first_request_id or request_id
        self.last_request_id = request_id or self.last_request_id

    def entry(self) -> AuditEntry:
        statuses = sorted(self.statuses)
        addresses = sorted(self.addresses)
        details: dict[str, Any] = {
            "minute": _utc(self.minute * 60).isoformat(),
            "requests": self.requests,
            "statuses": {str(s): self.statuses[s] for s in statuses},
            "routes": dict(sorted(self.routes.items())),
            "first_request_id": self.first_request_id,
            "last_request_id": self.last_request_id,
        }
        if self.events:
            details["events"] = dict(sorted(self.events.items()))
        if len(addresses) > 1 or self.more_addresses:
            details["client_addresses"] = addresses
            details["more_client_addresses"] = self.more_addresses
        return AuditEntry(
            action=self.action,
            operation=self.operation,
            outcome=self.outcome,
            status=statuses[0] if len(statuses) == 1 else None,
            client_address=addresses[0] if len(addresses) == 1 and not self.more_addresses else None,
            details=details,
            at=_utc(self.minute * 60),
            **self.identity,
        )


# ---- the trail: queue, writer, tallies -------------------------------------------------------------


class AuditTrail:
    """One replica's audit trail: ``record`` queues an entry, ``tally`` adds a request to its minute; a
    background task stores queued entries in batches, another moves finished minutes to the queue."""

    def __init__(
        self,
        audit_log: AuditLog,
        metrics: AuditTrailMetrics,
        *,
        queue_size: int = QUEUE_SIZE,
        batch_size: int = BATCH_SIZE,
        clock: Callable[[], float] = time.time,
        retry_seconds: float = 0.2,
    ) -> None:
        self.audit_log = audit_log
        self.metrics = metrics
        self.clock = clock
        self._batch_size = batch_size
        self._retry_seconds = retry_seconds
        self._queue: asyncio.Queue[AuditEntry] = asyncio.Queue(maxsize=queue_size)
        self._tallies: dict[tuple[int, str, str | None, Outcome], MinuteTally] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._dropped_in_a_row = 0

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._write_queued(), name="audit-writer"),
                asyncio.create_task(self._flush_minutes(), name="audit-minutes"),
            ]

    def record(self, entry: AuditEntry) -> None:
        """Queue ``entry`` for the writer; never waits. A full queue drops it (counted and logged)."""
        try:
            self._queue.put_nowait(entry)
        except asyncio.QueueFull:
            self.metrics.dropped.labels("queue_full").inc()
            self._dropped_in_a_row += 1
            # Logged at the first drop and then now and again: a full queue is a flood, not an event.
            if self._dropped_in_a_row % DROPS_PER_LOG == 1:
                log.error(
                    "the audit queue is full: %d entries dropped so far (%s)", self._dropped_in_a_row, entry.action
                )
            return
        self._dropped_in_a_row = 0
        self.metrics.queued.set(self._queue.qsize())

    async def record_now(self, entry: AuditEntry) -> None:
        """Store ``entry`` before returning: StoreUnavailable (503) when it cannot be stored."""
        try:
            await self.audit_log.append(entry)
        except Exception as exc:  # noqa: BLE001 - any failure means the entry is not stored
            self.metrics.write_failures.inc()
            log.error("an audit entry that must precede %s could not be stored: %s", entry.action, exc)
            raise StoreUnavailable(
                "the audit log cannot be written now, so this operation was not run; retry later"
            ) from exc
        self.metrics.written.inc()

    def tally(
        self,
        action: str,
        *,
        at: float,
        status: int,
        route: str,
        principal: Principal | None,
        operation: Operation | None,
        client_address: str | None,
        request_id: str | None,
        events: Mapping[str, int] | None = None,
    ) -> None:
        """Add a request to its minute's tally: per key (or, without one, per client address) and outcome."""
        minute = int(at // 60)
        outcome = Outcome.of_status(status)
        who = principal.key_id if principal is not None else client_address
        identity: dict[str, Any] = _actor(principal) if principal is not None else {}
        key = (minute, action, who, outcome)
        tally = self._tallies.get(key)
        if tally is None:
            if len(self._tallies) >= MAX_TALLIES:
                # Past the bound, the rest of the minute shares one tally per action and outcome.
                key, identity = (minute, action, _OVERFLOW, outcome), {"actor_key_id": _OVERFLOW}
                tally = self._tallies.get(key)
            if tally is None:
                tally = self._tallies[key] = MinuteTally(
                    action, minute, outcome, identity, operation.value if operation else None
                )
        tally.add(status, route, client_address, request_id, events or {})

    def flush_minutes(self, *, all_minutes: bool = False) -> None:
        """Queue the entries of the minutes that are over (every minute with ``all_minutes``)."""
        current = int(self.clock() // 60)
        for key in [k for k in self._tallies if all_minutes or k[0] < current]:
            self.record(self._tallies.pop(key).entry())

    async def drain(self, *, all_minutes: bool = True) -> None:
        """Queue the tallies (those of minutes that are over, or all of them) and wait until the queue
        is written (or given up)."""
        self.flush_minutes(all_minutes=all_minutes)
        await self._queue.join()

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.drain(), timeout=CLOSE_SECONDS)
        except TimeoutError:
            log.error("%d audit entries were not stored before shutdown", self._queue.qsize())
            self.metrics.dropped.labels("shutdown").inc(self._queue.qsize())
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _flush_minutes(self) -> None:
        while True:
            await asyncio.sleep(TALLY_FLUSH_SECONDS)
            self.flush_minutes()

    async def _write_queued(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._store(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()
                self.metrics.queued.set(self._queue.qsize())

    async def _store(self, batch: list[AuditEntry]) -> None:
        delay = self._retry_seconds
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                await self.audit_log.append_many(batch)
            except Exception as exc:  # noqa: BLE001 - the writer outlives any failure of one batch
                self.metrics.write_failures.inc()
                log.warning("storing %d audit entries failed (attempt %d): %s", len(batch), attempt, exc)
                if attempt < WRITE_ATTEMPTS:
                    await asyncio.sleep(delay)
                    delay *= 4
                continue
            self.metrics.written.inc(len(batch))
            return
        self.metrics.dropped.labels("write_failed").inc(len(batch))
        log.error("%d audit entries could not be stored and are lost", len(batch))


def trail_of(app: Any) -> AuditTrail | None:
    services = getattr(getattr(app, "state", None), "services", None)
    return getattr(services, "audit_trail", None)


# ---- REST: the middleware --------------------------------------------------------------------------


def _ingest_events(status: int, answer: bytes) -> dict[str, int]:
    """Events accepted, rejected and duplicated by one ingest answer, as far as it says."""
    if len(answer) > MAX_INGEST_ANSWER:
        return {}
    try:
        body = orjson.loads(answer) if answer else None
    except orjson.JSONDecodeError:
        return {}
    if isinstance(body, dict) and isinstance(body.get("accepted"), int):
        # A batch's answer counts its events.
        return {k: body[k] for k in ("accepted", "rejected", "duplicates") if isinstance(body.get(k), int)}
    if status == 201:
        return {"accepted": 1}
    if status == 200 and isinstance(body, dict) and body.get("duplicate") is True:
        return {"duplicates": 1}
    if status == 422:
        return {"rejected": 1}
    return {}


class AuditTrailMiddleware:
    """Reads what the trail needs while the request runs (its body's bytes, its answer's status) and
    hands the trail its entry once the answer is sent. Allow (serve_app/deps.py) leaves the caller
    and the operation in the request's state, refused callers included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        trail = trail_of(scope.get("app")) if scope["type"] == "http" else None
        if trail is None:
            await self.app(scope, receive, send)
            return
        arrived = trail.clock()
        state = scope.setdefault("state", {})
        state[GRAPHQL_FIELDS] = graphql_fields = []
        body: list[bytes] = []
        answer: list[bytes] = []
        status = 500

        async def receive_kept() -> Message:
            message = await receive()
            # Allow has run before a route reads its body: an ingest body is never kept.
            if message["type"] == "http.request" and state.get("operation") is not Operation.INGEST_EVENTS:
                chunk = message.get("body", b"")
                if chunk:
                    body.append(chunk)
            return message

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and state.get("operation") is Operation.INGEST_EVENTS:
                answer.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive_kept, send_observed)
        finally:
            try:
                _after_request(trail, scope, state, status, arrived, body, answer, graphql_fields)
            except Exception:  # noqa: BLE001 - the trail never changes an answer
                trail.metrics.dropped.labels("unrecordable").inc()
                log.exception("a request could not be added to the audit trail")


def _after_request(
    trail: AuditTrail,
    scope: Scope,
    state: dict[str, Any],
    status: int,
    arrived: float,
    body: list[bytes],
    answer: list[bytes],
    graphql_fields: list[GraphQLFieldCall],
) -> None:
    principal: Principal | None = state.get("principal")
    operation: Operation | None = state.get("operation")
    request_id = request_id_of(scope)
    client_address = client_address_of(scope)
    for call in graphql_fields:
        call.record(trail, arrived, request_id, client_address)
    if operation is None:
        if status == 401 and principal is None:
            trail.tally(
                UNAUTHENTICATED_ACTION,
                at=arrived,
                status=status,
                route=f"{scope['method']} {endpoint_of(scope)}",
                principal=None,
                operation=None,
                client_address=client_address,
                request_id=request_id,
            )
        return
    route = f"{scope['method']} {endpoint_of(scope)}"
    if operation is Operation.INGEST_EVENTS:
        trail.tally(
            INGEST_ACTION,
            at=arrived,
            status=status,
            route=route,
            principal=principal,
            operation=operation,
            client_address=client_address,
            request_id=request_id,
            events=_ingest_events(status, b"".join(answer)),
        )
        return
    if scope["method"] in MUTATING_METHODS or operation in AUDITED_READS or status == 403:
        path_params = scope.get("path_params") or {}
        trail.record(
            AuditEntry(
                action=route,
                operation=operation.value,
                target=_target(path_params),
                parameter_digest=parameter_digest(path_params, scope.get("query_string", b""), body),
                outcome=Outcome.of_status(status),
                status=status,
                request_id=request_id,
                client_address=client_address,
                at=_utc(arrived),
                **_actor(principal),
            )
        )


async def record_before(request: Request) -> None:
    """Store the ``started`` entry of the request's operation before it runs, or refuse it (503).

    For operations that must not run unrecorded (erasing, exporting a person's data), called by their
    route after its permission check (Allow leaves the caller and the operation in the request's
    state). The body is not read yet: the entry's digest covers the path and query parameters; the
    entry written after the answer has the whole digest and the outcome. An app without a trail
    (tests' in-process fakes) records nothing.
    """
    trail = trail_of(request.app)
    operation: Operation | None = getattr(request.state, "operation", None)
    if trail is None or operation is None:
        return
    scope = request.scope
    path_params = scope.get("path_params") or {}
    await trail.record_now(
        AuditEntry(
            action=f"{scope['method']} {endpoint_of(scope)}",
            operation=operation.value,
            target=_target(path_params),
            parameter_digest=parameter_digest(path_params, scope.get("query_string", b"")),
            outcome=Outcome.STARTED,
            request_id=request_id_of(scope),
            client_address=client_address_of(scope),
            at=_utc(trail.clock()),
            **_actor(getattr(request.state, "principal", None)),
        )
    )


# ---- GraphQL: the root fields of an operation ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GraphQLFieldCall:
    """One audited root field as executed: the middleware records it with the request's id and address."""

    action: str
    operation: Operation | None
    principal: Principal | None
    target: str | None
    digest: str
    status: int
    events: Mapping[str, int]
    graphql_operation: str | None

    def record(self, trail: AuditTrail, arrived: float, request_id: str | None, client_address: str | None) -> None:
        if self.operation is Operation.INGEST_EVENTS:
            trail.tally(
                INGEST_ACTION,
                at=arrived,
                status=self.status,
                route=self.action,
                principal=self.principal,
                operation=self.operation,
                client_address=client_address,
                request_id=request_id,
                events=self.events,
            )
            return
        trail.record(
            AuditEntry(
                action=self.action,
                operation=self.operation.value if self.operation else None,
                target=self.target,
                parameter_digest=self.digest,
                outcome=Outcome.of_status(self.status),
                status=self.status,
                request_id=request_id,
                client_address=client_address,
                details={"graphql_operation": self.graphql_operation} if self.graphql_operation else {},
                at=_utc(arrived),
                **_actor(self.principal),
            )
        )


# (operation type, root field name) -> the field's operation, for the fields the trail records.
AuditedFields = Mapping[tuple[str, str], Operation | None]


def audited_fields(schema: Schema) -> dict[tuple[str, str], Operation | None]:
    """Every mutation field, and the query fields whose permission's operation is an audited read."""
    audited: dict[tuple[str, str], Operation | None] = {}
    for kind, root in (("query", schema.query), ("mutation", schema.mutation)):
        definition = get_object_definition(root) if root is not None else None
        for strawberry_field in definition.fields if definition is not None else ():
            operations = [
                p.permission.operation for p in strawberry_field.permission_classes if issubclass(p, RolePermission)
            ]
            operation = operations[0] if operations else None
            if kind == "mutation" or operation in AUDITED_READS:
                audited[(kind, schema.config.name_converter.get_graphql_name(strawberry_field))] = operation
    return audited


def audit_graphql(schema: Schema) -> None:
    """Add the extension that notes the schema's audited root fields to ``schema``'s extensions."""
    schema.extensions = (*schema.extensions, partial(AuditedGraphQLFields, audited_fields(schema)))


class AuditedGraphQLFields(SchemaExtension):
    """After an operation over HTTP ran, notes each audited root field with its outcome for the
    middleware (which writes it with the request's id and address). Outside such a request (a
    websocket, a schema run directly) it does nothing."""

    def __init__(self, audited: AuditedFields) -> None:
        super().__init__()
        self._audited = audited

    def on_execute(self) -> Iterator[None]:
        yield
        try:
            self._note_fields()
        except Exception:  # noqa: BLE001 - the trail never changes an answer
            log.exception("a GraphQL operation could not be added to the audit trail")

    def _note_fields(self) -> None:
        context = self.execution_context
        request = getattr(context.context, "request", None)
        state = request.scope.get("state") if isinstance(request, Request) else None
        calls: list[GraphQLFieldCall] | None = state.get(GRAPHQL_FIELDS) if isinstance(state, dict) else None
        document = context.graphql_document
        if calls is None or document is None:
            return
        operation = _operation_node(document.definitions, context.operation_name)
        if operation is None:
            return
        kind = operation.operation.value
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        variables = context.variables or {}
        result = context.result
        errors = _errors_by_key(getattr(result, "errors", None) or ())
        data = getattr(result, "data", None) or {}
        principal = getattr(context.context, "principal", None)
        for node in _root_fields(operation.selection_set, fragments, variables):
            name = node.name.value
            if (kind, name) not in self._audited:
                continue
            key = node.alias.value if node.alias else name
            arguments = {a.name.value: value_from_ast_untyped(a.value, variables) for a in node.arguments}
            status = _status_of(errors.get(key))
            answer = data.get(key) if isinstance(data, dict) else None
            calls.append(
                GraphQLFieldCall(
                    action=f"graphql {kind} {name}",
                    operation=self._audited[(kind, name)],
                    principal=principal,
                    target=_argument_target(arguments),
                    digest=arguments_digest(name, arguments),
                    status=status,
                    events=_graphql_events(status, answer),
                    graphql_operation=context.operation_name,
                )
            )


def _operation_node(definitions: Iterable[Any], name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name is not None and o.name.value == name), None)


def _included(node: Any, variables: Mapping[str, Any]) -> bool:
    for directive in node.directives or ():
        condition = next((a for a in directive.arguments if a.name.value == "if"), None)
        value = value_from_ast_untyped(condition.value, variables) if condition is not None else None
        if (directive.name.value == "skip" and value is True) or (directive.name.value == "include" and value is False):
            return False
    return True


def _root_fields(
    selection_set: SelectionSetNode, fragments: Mapping[str, FragmentDefinitionNode], variables: Mapping[str, Any]
) -> Iterator[FieldNode]:
    """The root fields that ran, fragments written out, each response key once."""
    seen: set[str] = set()

    def walk(selections: SelectionSetNode) -> Iterator[FieldNode]:
        for selection in selections.selections:
            if not _included(selection, variables):
                continue
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                if key not in seen:
                    seen.add(key)
                    yield selection
            elif isinstance(selection, InlineFragmentNode):
                yield from walk(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value in fragments:
                yield from walk(fragments[selection.name.value].selection_set)

    return walk(selection_set)


def _errors_by_key(errors: Iterable[GraphQLError]) -> dict[str, GraphQLError]:
    by_key: dict[str, GraphQLError] = {}
    for error in errors:
        if error.path:
            by_key.setdefault(str(error.path[0]), error)
    return by_key


def _status_of(error: GraphQLError | None) -> int:
    """The HTTP status the field's error stands for (200 without one; 500 for an unexpected error)."""
    if error is None:
        return 200
    status = (error.extensions or {}).get("status")
    if isinstance(status, int) and 100 <= status <= 599:
        return status
    if isinstance(error.original_error, AnalyticsError):
        return error.original_error.status
    return 500


def _argument_target(arguments: Mapping[str, Any]) -> str | None:
    """The field's ``id`` or ``...Id`` argument: what it acts on."""
    for name, value in arguments.items():
        if (name == "id" or name.endswith("Id")) and isinstance(value, str):
            return _target_value("user_id" if name == "userId" else name, value)
    return None


def _graphql_events(status: int, answer: Any) -> dict[str, int]:
    if status != 200:
        return {}
    if isinstance(answer, dict) and isinstance(answer.get("accepted"), int):
        return {k: answer[k] for k in ("accepted", "rejected", "duplicates") if isinstance(answer.get(k), int)}
    if isinstance(answer, dict) and isinstance(answer.get("duplicate"), bool):
        return {"duplicates": 1} if answer["duplicate"] else {"accepted": 1}
    return {}


# ---- wiring ----------------------------------------------------------------------------------------


def add_audit_trail(app: FastAPI) -> None:
    """Wrap ``app``'s whole middleware stack (built at its first request) in the request ids and the
    trail, outside Starlette's error middleware so that a 500 is recorded with its status."""
    build = app.build_middleware_stack

    def build_with_trail() -> ASGIApp:
        return RequestIds(AuditTrailMiddleware(build()))

    app.build_middleware_stack = build_with_trail  # type: ignore[method-assign]
