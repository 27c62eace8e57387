"""The metadata store on PostgreSQL (asyncpg): API keys, audit log; versioned migrations at start."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any

import asyncpg

from core.access import Role
from core.errors import NotFound, StoreUnavailable

_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
# Any fixed number: every process applying migrations takes the same advisory lock.
_MIGRATION_LOCK = 742_001

# Hears each statement of the store's connections: its SQL text (values are bound, never in it), the
# seconds it took, and the error it raised (None when it succeeded).
QueryLogger = Callable[[str, float, BaseException | None], None]


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    role: Role
    key_prefix: str
    created_at: datetime
    revoked_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role.value,
            "key_prefix": self.key_prefix,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def hash_key(plain: str) -> str:
    return hashlib.sha256(plain.encode()).hexdigest()


def new_key() -> str:
    return "ak_" + secrets.token_urlsafe(32)


class MetadataStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def connect(
        cls,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        wait_seconds: float = 30.0,
        query_logger: QueryLogger | None = None,
    ) -> MetadataStore:
        """Connect with a readiness wait: retry with backoff while the server starts. ``query_logger``
        hears every statement the store runs (the service's own telemetry)."""
        deadline = asyncio.get_running_loop().time() + wait_seconds
        delay = 0.1
        init = _logging_queries(query_logger) if query_logger is not None else None
        while True:
            try:
                pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, init=init)
                return cls(pool)
            except (OSError, asyncpg.CannotConnectNowError, asyncpg.PostgresConnectionError) as exc:
                if asyncio.get_running_loop().time() > deadline:
                    raise StoreUnavailable(f"PostgreSQL is not reachable: {exc}") from exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def close(self) -> None:
        await self.pool.close()

    async def migrate(self) -> list[str]:
        folder = resources.files("storage") / "migrations" / "postgres"
        files = sorted(
            (int(m.group(1)), entry.name, entry.read_text())
            for entry in folder.iterdir()
            if (m := _MIGRATION_NAME.match(entry.name))
        )
        applied: list[str] = []
        async with self.pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
            try:
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations "
                    "(version INT PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                )
                done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
                for version, name, sql in files:
                    if version in done:
                        continue
                    async with conn.transaction():
                        await conn.execute(sql)
                        await conn.execute(
                            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name
                        )
                    applied.append(name)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
        return applied

    async def ping(self) -> bool:
        try:
            return await asyncio.wait_for(self.pool.fetchval("SELECT 1"), timeout=5) == 1
        except Exception:  # noqa: BLE001 - readiness reports any failure as not ready
            return False

    # --- API keys -------------------------------------------------------------------------

    async def create_api_key(self, name: str, role: Role, *, plain: str | None = None) -> tuple[ApiKey, str]:
        """Returns the stored key and its plain text, which is never retrievable again."""
        async with self.pool.acquire() as conn:
            return await _insert_key(conn, name, role, plain or new_key())

    async def find_api_key(self, plain: str) -> ApiKey | None:
        row = await self.pool.fetchrow(
            "SELECT id, name, role, key_prefix, created_at, revoked_at FROM api_keys "
            "WHERE key_hash = $1 AND revoked_at IS NULL",
            hash_key(plain),
        )
        return _api_key(row) if row else None

    async def list_api_keys(self) -> list[ApiKey]:
        rows = await self.pool.fetch(
            "SELECT id, name, role, key_prefix, created_at, revoked_at FROM api_keys ORDER BY created_at"
        )
        return [_api_key(r) for r in rows]

    async def revoke_api_key(self, key_id: str) -> tuple[ApiKey, str]:
        """Revoke a key; returns it with its hash so caches keyed by the hash can be cleared."""
        row = await self.pool.fetchrow(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 "
            "RETURNING id, name, role, key_prefix, created_at, revoked_at, key_hash",
            key_id,
        )
        if row is None:
            raise NotFound(f"API key {key_id!r} does not exist")
        return _api_key(row), row["key_hash"]

    async def has_active_admin(self) -> bool:
        return bool(
            await self.pool.fetchval("SELECT count(*) FROM api_keys WHERE role = 'admin' AND revoked_at IS NULL")
        )

    async def ensure_bootstrap_admin(self, plain: str | None) -> str | None:
        """At first start create an admin key (``plain`` if given). Returns the plain key if one was made.

        A configured key that exists already, even revoked, is left alone: revocation sticks
        across restarts. Everything runs on the one connection that holds the lock.
        """
        async with self.pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK + 1)
            try:
                if plain is not None:
                    if await conn.fetchval("SELECT 1 FROM api_keys WHERE key_hash = $1", hash_key(plain)):
                        return None
                elif await conn.fetchval("SELECT 1 FROM api_keys WHERE role = 'admin' AND revoked_at IS NULL LIMIT 1"):
                    return None
                _, made = await _insert_key(conn, "bootstrap admin", Role.ADMIN, plain or new_key())
                return made
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK + 1)

    # --- audit ----------------------------------------------------------------------------

    async def audit(
        self, action: str, *, actor_key_id: str | None, target: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        await self.pool.execute(
            "INSERT INTO audit_log (actor_key_id, action, target, details) VALUES ($1, $2, $3, $4::jsonb)",
            actor_key_id,
            action,
            target,
            json.dumps(details or {}),
        )

    async def audit_entries(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT at, actor_key_id, action, target, details FROM audit_log ORDER BY id DESC LIMIT $1", limit
        )
        return [
            {
                "at": r["at"].isoformat(),
                "actor_key_id": r["actor_key_id"],
                "action": r["action"],
                "target": r["target"],
                "details": json.loads(r["details"]),
            }
            for r in rows
        ]


def _logging_queries(logger: QueryLogger) -> Callable[[asyncpg.Connection], Awaitable[None]]:
    """A pool's connection set-up that reports each statement to ``logger``, except the reset the pool
    runs on a connection it takes back (not a statement of the store's)."""

    async def init(conn: asyncpg.Connection) -> None:
        reset = conn.get_reset_query()

        def report(record: Any) -> None:
            if record.query != reset:
                logger(record.query, record.elapsed, record.exception)

        conn.add_query_logger(report)

    return init


async def _insert_key(conn: asyncpg.Connection, name: str, role: Role, plain: str) -> tuple[ApiKey, str]:
    row = await conn.fetchrow(
        "INSERT INTO api_keys (id, name, key_hash, key_prefix, role) VALUES ($1, $2, $3, $4, $5) "
        "RETURNING id, name, role, key_prefix, created_at, revoked_at",
        "key_" + secrets.token_hex(8),
        name,
        hash_key(plain),
        plain[:8],
        role.value,
    )
    return _api_key(row), plain


def _api_key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(
        id=row["id"],
        name=row["name"],
        role=Role(row["role"]),
        key_prefix=row["key_prefix"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )
