"""The metadata store on PostgreSQL (asyncpg): API keys, audit log; versioned migrations at start."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import asyncpg

from core.access import ALL_CONTENT, ContentScope, Role
from core.errors import Conflict, NotFound, StoreUnavailable
from storage.audit_log import REQUEST_ORIGIN, AuditEntry, AuditLog

_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
# Any fixed number: every process applying migrations takes the same advisory lock.
_MIGRATION_LOCK = 742_001

# Hears each statement of the store's connections: its SQL text (values are bound, never in it), the
# seconds it took, and the error it raised (None when it succeeded).
QueryLogger = Callable[[str, float, BaseException | None], None]


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key, never its secret. ``key_prefix`` starts its current secret; after a rotation the
    previous secret keeps working until ``previous_secret_valid_until`` (None: no previous secret, or
    its grace period is over)."""

    id: str
    name: str
    role: Role
    key_prefix: str
    created_at: datetime
    revoked_at: datetime | None = None
    expires_at: datetime | None = None
    scope: ContentScope = ALL_CONTENT
    rotated_at: datetime | None = None
    previous_secret_valid_until: datetime | None = None

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or datetime.now(UTC))

    def status(self, now: datetime | None = None) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expired(now) else "active"

    def to_dict(self, now: datetime | None = None) -> dict[str, Any]:
        now = now or datetime.now(UTC)
        grace = self.previous_secret_valid_until
        in_grace = grace is not None and grace > now and self.revoked_at is None
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role.value,
            "key_prefix": self.key_prefix,
            "status": self.status(now),
            "created_at": self.created_at.isoformat(),
            "expires_at": _iso(self.expires_at),
            "revoked_at": _iso(self.revoked_at),
            "rotated_at": _iso(self.rotated_at),
            "previous_secret_in_grace": in_grace,
            "previous_secret_valid_until": _iso(grace) if in_grace else None,
            "scope": self.scope.to_dict(),
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


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

    async def create_api_key(
        self,
        name: str,
        role: Role,
        *,
        plain: str | None = None,
        expires_at: datetime | None = None,
        scope: ContentScope = ALL_CONTENT,
    ) -> tuple[ApiKey, str]:
        """Returns the stored key and its plain text, which is never retrievable again."""
        async with self.pool.acquire() as conn:
            return await _insert_key(conn, name, role, plain or new_key(), expires_at=expires_at, scope=scope)

    async def find_api_key(self, plain: str) -> ApiKey | None:
        """The unrevoked key whose current secret is ``plain``, or whose previous secret is ``plain`` and
        still in its grace period. An expired key is returned too: the caller says why it is refused."""
        row = await self.pool.fetchrow(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE revoked_at IS NULL "
            "AND (key_hash = $1 OR (previous_key_hash = $1 AND previous_key_valid_until > now()))",
            hash_key(plain),
        )
        return _api_key(row) if row else None

    async def list_api_keys(self) -> list[ApiKey]:
        rows = await self.pool.fetch(f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created_at")
        return [_api_key(r) for r in rows]

    async def revoke_api_key(self, key_id: str) -> tuple[ApiKey, list[str]]:
        """Revoke a key; returns it with the hashes of its secrets (the current one first, then a
        previous one still stored) so caches keyed by them can be cleared."""
        row = await self.pool.fetchrow(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 "
            f"RETURNING {_KEY_COLUMNS}, key_hash, previous_key_hash",
            key_id,
        )
        if row is None:
            raise NotFound(f"API key {key_id!r} does not exist")
        return _api_key(row), [h for h in (row["key_hash"], row["previous_key_hash"]) if h is not None]

    async def rotate_api_key(self, key_id: str, *, grace_seconds: float) -> tuple[ApiKey, str, list[str]]:
        """Give a key a new secret. Its current secret becomes the previous one and keeps working for
        ``grace_seconds`` (0: it stops at once); a previous secret from an earlier rotation stops now.

        Returns the key, the new secret in plain text (never retrievable again), and the hashes of the
        secrets whose cached lookups must be cleared. A revoked or expired key is not rotated (409).
        """
        plain = new_key()
        async with self.pool.acquire() as conn, conn.transaction():
            old = await conn.fetchrow(
                "SELECT key_hash, previous_key_hash, revoked_at, expires_at <= now() AS expired "
                "FROM api_keys WHERE id = $1 FOR UPDATE",
                key_id,
            )
            if old is None:
                raise NotFound(f"API key {key_id!r} does not exist")
            if old["revoked_at"] is not None:
                raise Conflict(f"API key {key_id!r} is revoked; a revoked key cannot be rotated")
            if old["expired"]:
                raise Conflict(f"API key {key_id!r} has expired; create a new key instead")
            keep_previous = grace_seconds > 0
            row = await conn.fetchrow(
                "UPDATE api_keys SET key_hash = $2, key_prefix = $3, rotated_at = now(), "
                "previous_key_hash = CASE WHEN $4 THEN key_hash END, "
                "previous_key_valid_until = CASE WHEN $4 THEN now() + make_interval(secs => $5) END "
                f"WHERE id = $1 RETURNING {_KEY_COLUMNS}",
                key_id,
                hash_key(plain),
                plain[:8],
                keep_previous,
                float(grace_seconds),
            )
            await conn.execute(
                "INSERT INTO api_key_retired_secrets (key_hash, key_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                old["key_hash"],
                key_id,
            )
        forget = [h for h in (old["key_hash"], old["previous_key_hash"]) if h is not None]
        return _api_key(row), plain, forget

    async def has_active_admin(self) -> bool:
        return bool(await self.pool.fetchval(f"SELECT count(*) FROM api_keys WHERE role = 'admin' AND {_USABLE}"))

    async def ensure_bootstrap_admin(self, plain: str | None) -> str | None:
        """At first start create an admin key (``plain`` if given). Returns the plain key if one was made.

        A configured key that exists already, even revoked, expired or rotated away, is left alone:
        revocation and rotation stick across restarts. Without one, a new admin key is made when no
        admin key is usable (each one revoked or expired), so an operator is never locked out for good.
        Everything runs on the one connection that holds the lock.
        """
        async with self.pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK + 1)
            try:
                if plain is not None:
                    digest = hash_key(plain)
                    if await conn.fetchval(
                        "SELECT 1 FROM api_keys WHERE key_hash = $1 "
                        "UNION ALL SELECT 1 FROM api_key_retired_secrets WHERE key_hash = $1",
                        digest,
                    ):
                        return None
                elif await conn.fetchval(f"SELECT 1 FROM api_keys WHERE role = 'admin' AND {_USABLE} LIMIT 1"):
                    return None
                _, made = await _insert_key(conn, "bootstrap admin", Role.ADMIN, plain or new_key())
                return made
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK + 1)

    # --- audit ----------------------------------------------------------------------------

    @property
    def audit_log(self) -> AuditLog:
        """The append-only audit log on this store's pool (storage/audit_log.py)."""
        return AuditLog(self.pool)

    async def audit(
        self, action: str, *, actor_key_id: str | None, target: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        """Record a change the store made; inside an HTTP request the entry carries its id and address."""
        origin = REQUEST_ORIGIN.get()
        await self.audit_log.append(
            AuditEntry(
                action=action,
                actor_key_id=actor_key_id,
                target=target,
                details=details or {},
                request_id=origin.request_id if origin else None,
                client_address=origin.client_address if origin else None,
            )
        )

    async def audit_entries(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest entries, each as its time, actor key, action, target and details."""
        page = await self.audit_log.page(limit=limit)
        return [
            {
                "at": r.at.isoformat(),
                "actor_key_id": r.entry.actor_key_id,
                "action": r.entry.action,
                "target": r.entry.target,
                "details": dict(r.entry.details),
            }
            for r in page.entries
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


# A key that still lets its holder in.
_USABLE = "revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())"

# The columns an ApiKey is read from; a previous secret's end of grace only while it is in the future.
_KEY_COLUMNS = (
    "id, name, role, key_prefix, created_at, revoked_at, expires_at, scope_categories, scope_content_ids, "
    "rotated_at, CASE WHEN previous_key_valid_until > now() THEN previous_key_valid_until END "
    "AS previous_secret_valid_until"
)


async def _insert_key(
    conn: asyncpg.Connection,
    name: str,
    role: Role,
    plain: str,
    *,
    expires_at: datetime | None = None,
    scope: ContentScope = ALL_CONTENT,
) -> tuple[ApiKey, str]:
    row = await conn.fetchrow(
        "INSERT INTO api_keys (id, name, key_hash, key_prefix, role, expires_at, scope_categories, "
        f"scope_content_ids) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {_KEY_COLUMNS}",
        "key_" + secrets.token_hex(8),
        name,
        hash_key(plain),
        plain[:8],
        role.value,
        expires_at,
        sorted(scope.categories),
        sorted(scope.content_ids),
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
        expires_at=row["expires_at"],
        scope=ContentScope.of(row["scope_categories"], row["scope_content_ids"]),
        rotated_at=row["rotated_at"],
        previous_secret_valid_until=row["previous_secret_valid_until"],
    )
