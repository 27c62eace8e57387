"""The audit log on PostgreSQL: entries are appended, and read back newest first with filters and a cursor.

The table (migrations 001 and 004) refuses UPDATE, DELETE and TRUNCATE with a trigger, so no code
path can rewrite an entry; this module only inserts and selects. Each entry says who acted (the key
id, its role and name), what they did (``action``; ``operation``, the permission matrix's name of it;
``target``; ``parameter_digest``, a SHA-256 over the request's canonical parameters, never the
parameters), how it ended (``outcome`` and the HTTP ``status``), when (``at``) and where from
(``request_id``, ``client_address``), with a few ``details``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import asyncpg
import orjson

from core.errors import InvalidRequest

# Text the entries keep is cut to these lengths: a target or an action comes (in part) from the request.
MAX_TEXT = 500
MAX_PAGE_SIZE = 1000


class Outcome(StrEnum):
    OK = "ok"
    # 401 or 403: the caller was refused before anything ran.
    DENIED = "denied"
    # Another 4xx: the request was wrong (bad input, not found, conflict, rate limited).
    FAILED = "failed"
    # A 5xx: the service failed.
    ERROR = "error"
    # Written before an operation that must not run unrecorded; its outcome follows in another entry.
    STARTED = "started"

    @classmethod
    def of_status(cls, status: int) -> Outcome:
        if status < 400:
            return cls.OK
        if status in (401, 403):
            return cls.DENIED
        if status < 500:
            return cls.FAILED
        return cls.ERROR


@dataclass(frozen=True, slots=True)
class RequestOrigin:
    """The HTTP request a piece of work runs for: its id (X-Request-ID) and the client's address."""

    request_id: str
    client_address: str | None


# Set by the HTTP layer for each request (serve_app/request_ids.py), so entries written deep inside a
# request (MetadataStore.audit) carry its id and address without every caller passing them.
REQUEST_ORIGIN: ContextVar[RequestOrigin | None] = ContextVar("audit_request_origin", default=None)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    action: str
    actor_key_id: str | None = None
    actor_role: str | None = None
    actor_name: str | None = None
    operation: str | None = None
    target: str | None = None
    parameter_digest: str | None = None
    outcome: Outcome = Outcome.OK
    status: int | None = None
    request_id: str | None = None
    client_address: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    # None: the time the database stores it.
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """A stored entry with its id (the order entries were stored in) and time."""

    id: int
    at: datetime
    entry: AuditEntry

    def to_dict(self) -> dict[str, Any]:
        e = self.entry
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor_key_id": e.actor_key_id,
            "actor_role": e.actor_role,
            "actor_name": e.actor_name,
            "action": e.action,
            "operation": e.operation,
            "target": e.target,
            "parameter_digest": e.parameter_digest,
            "outcome": e.outcome.value,
            "status": e.status,
            "request_id": e.request_id,
            "client_address": e.client_address,
            "details": dict(e.details),
        }


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Entries matching every given field (exact match); ``since`` <= at < ``until``."""

    actor_key_id: str | None = None
    actor_role: str | None = None
    action: str | None = None
    operation: str | None = None
    target: str | None = None
    outcome: Outcome | None = None
    request_id: str | None = None
    client_address: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditPage:
    entries: list[AuditRecord]
    # The cursor of the next (older) page; None on the last page.
    next_cursor: str | None


_COLUMNS = (
    "at, actor_key_id, actor_role, actor_name, action, operation, target, parameter_digest, outcome, "
    "status, request_id, client_address, details"
)
# $1 ... $13 in _COLUMNS' order; a missing time is the database's now().
_INSERT = (
    f"INSERT INTO audit_log ({_COLUMNS}) VALUES "
    "(coalesce($1, now()), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb)"
)
# The filters that compare a column for equality, in AuditFilter's names (which are the columns').
_EQUALITY_FILTERS = (
    "actor_key_id",
    "actor_role",
    "action",
    "operation",
    "target",
    "outcome",
    "request_id",
    "client_address",
)
_CURSOR_PREFIX = "audit:"
# The largest id a BIGSERIAL holds.
_MAX_ID = 2**63 - 1


class AuditLog:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def append(self, entry: AuditEntry) -> None:
        await self.pool.execute(_INSERT, *_row(entry))

    async def append_many(self, entries: Sequence[AuditEntry]) -> None:
        """Store the entries in one transaction: all of them or none."""
        if not entries:
            return
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.executemany(_INSERT, [_row(e) for e in entries])

    async def page(self, filters: AuditFilter | None = None, cursor: str | None = None, limit: int = 100) -> AuditPage:
        """Entries matching ``filters``, newest first; ``cursor`` (a page's next_cursor) continues after
        that page. InvalidRequest names the field for a cursor this log did not hand out or a bad limit."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidRequest(f"limit: must be between 1 and {MAX_PAGE_SIZE}", details={"field": "limit"})
        filters = filters or AuditFilter()
        conditions: list[str] = []
        values: list[Any] = []

        def where(condition: str, value: Any) -> None:
            values.append(value)
            conditions.append(condition.format(f"${len(values)}"))

        for name in _EQUALITY_FILTERS:
            value = getattr(filters, name)
            if value is not None:
                where(f"{name} = {{}}", str(value))
        if filters.since is not None:
            where("at >= {}", filters.since)
        if filters.until is not None:
            where("at < {}", filters.until)
        if cursor is not None:
            where("id < {}", decode_cursor(cursor))
        values.append(limit + 1)
        sql = (
            f"SELECT id, {_COLUMNS} FROM audit_log"
            + (" WHERE " + " AND ".join(conditions) if conditions else "")
            + f" ORDER BY id DESC LIMIT ${len(values)}"
        )
        rows = await self.pool.fetch(sql, *values)
        records = [_record(r) for r in rows[:limit]]
        more = len(rows) > limit
        return AuditPage(records, encode_cursor(records[-1].id) if more and records else None)


def encode_cursor(entry_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{entry_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    bad = InvalidRequest("cursor: not a cursor this audit log handed out", details={"field": "cursor"})
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise bad from exc
    number = text.removeprefix(_CURSOR_PREFIX)
    if not text.startswith(_CURSOR_PREFIX) or not number.isascii() or not number.isdigit() or len(number) > 19:
        raise bad
    entry_id = int(number)
    if entry_id > _MAX_ID:
        raise bad
    return entry_id


def _text(value: str | None) -> str | None:
    # PostgreSQL text cannot hold U+0000; an entry is kept with it replaced rather than lost.
    if value is None:
        return None
    return value.replace("\x00", "\ufffd")[:MAX_TEXT]


def _clean(value: Any) -> Any:
    """``value`` as jsonb can hold it (no U+0000 in any string or key)."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, Mapping):
        return {_clean(str(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(v) for v in value]
    return value


def _row(entry: AuditEntry) -> tuple[Any, ...]:
    return (
        entry.at,
        _text(entry.actor_key_id),
        entry.actor_role,
        _text(entry.actor_name),
        _text(entry.action),
        entry.operation,
        _text(entry.target),
        entry.parameter_digest,
        Outcome(entry.outcome).value,
        entry.status,
        _text(entry.request_id),
        _text(entry.client_address),
        orjson.dumps(_clean(entry.details), option=orjson.OPT_NON_STR_KEYS).decode(),
    )


def _record(row: asyncpg.Record) -> AuditRecord:
    return AuditRecord(
        id=row["id"],
        at=row["at"],
        entry=AuditEntry(
            action=row["action"],
            actor_key_id=row["actor_key_id"],
            actor_role=row["actor_role"],
            actor_name=row["actor_name"],
            operation=row["operation"],
            target=row["target"],
            parameter_digest=row["parameter_digest"],
            outcome=Outcome(row["outcome"]),
            status=row["status"],
            request_id=row["request_id"],
            client_address=row["client_address"],
            details=orjson.loads(row["details"]),
            at=row["at"],
        ),
    )
