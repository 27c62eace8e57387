"""Saved query definitions in PostgreSQL (asyncpg): who owns each, whom it is shared with, its version.

Who may see a saved query is decided here, once for a single row (``SavedQuery.visible_to``) and
once as SQL for lists (``_VISIBLE``): the owner, the roles and keys it is shared with, and admins.
Every change bumps ``version``; an update or delete that names a stale version is a Conflict.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from core.access import Principal, Role
from core.errors import Conflict, NotFound

_COLUMNS = (
    "id, name, description, kind, definition, owner_key_id, owner_name, "
    "shared_with_roles, shared_with_keys, created_at, updated_at, version"
)
_NAME_CONSTRAINT = "saved_queries_owner_name"
# $1: the caller is an admin, $2: its key id, $3: its role.
_VISIBLE = (
    "($1::bool OR owner_key_id = $2 OR shared_with_roles @> ARRAY[$3::text] OR shared_with_keys @> ARRAY[$2::text])"
)


@dataclass(frozen=True, slots=True)
class SavedQuery:
    id: str
    name: str
    description: str
    kind: str
    definition: dict[str, Any]
    owner_key_id: str
    owner_name: str
    shared_with_roles: tuple[Role, ...]
    shared_with_keys: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    version: int

    def visible_to(self, principal: Principal) -> bool:
        """The same rule as ``_VISIBLE``: owner, admin, or shared with the caller's role or key."""
        return (
            principal.role is Role.ADMIN
            or principal.key_id == self.owner_key_id
            or principal.role in self.shared_with_roles
            or principal.key_id in self.shared_with_keys
        )

    def managed_by(self, principal: Principal) -> bool:
        """Only the owner or an admin changes, shares or deletes a saved query."""
        return principal.role is Role.ADMIN or principal.key_id == self.owner_key_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "kind": self.kind,
            "definition": self.definition,
            "owner_key_id": self.owner_key_id,
            "owner_name": self.owner_name,
            "shared_with_roles": [r.value for r in self.shared_with_roles],
            "shared_with_keys": list(self.shared_with_keys),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "version": self.version,
        }


@dataclass(frozen=True, slots=True)
class NewSavedQuery:
    name: str
    kind: str
    definition: dict[str, Any]
    description: str = ""
    shared_with_roles: tuple[Role, ...] = ()
    shared_with_keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SavedQueryChanges:
    """The fields an update sets; ``None`` keeps the stored value."""

    name: str | None = None
    description: str | None = None
    definition: dict[str, Any] | None = None
    shared_with_roles: tuple[Role, ...] | None = None
    shared_with_keys: tuple[str, ...] | None = None

    def columns(self) -> list[tuple[str, Any, str]]:
        """(column, database value, cast) of each field that is set; column names from this fixed list."""
        values: list[tuple[str, Any, str]] = [
            ("name", self.name, "text"),
            ("description", self.description, "text"),
            ("definition", None if self.definition is None else json.dumps(self.definition), "jsonb"),
            ("shared_with_roles", _role_values(self.shared_with_roles), "text[]"),
            ("shared_with_keys", None if self.shared_with_keys is None else list(self.shared_with_keys), "text[]"),
        ]
        return [(column, value, cast) for column, value, cast in values if value is not None]


@dataclass(frozen=True, slots=True)
class SavedQueryPage:
    items: list[SavedQuery]
    total: int
    limit: int
    offset: int


def new_saved_query_id() -> str:
    # Random, so an id says nothing about its neighbours; with 96 bits it cannot be guessed.
    return "sq_" + secrets.token_hex(12)


class SavedQueryRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, owner: Principal, new: NewSavedQuery) -> SavedQuery:
        """Store a definition owned by ``owner``; Conflict if the owner has one of that name."""
        try:
            row = await self._pool.fetchrow(
                "INSERT INTO saved_queries (id, name, description, kind, definition, owner_key_id, owner_name, "
                "shared_with_roles, shared_with_keys) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9) "
                f"RETURNING {_COLUMNS}",
                new_saved_query_id(),
                new.name,
                new.description,
                new.kind,
                json.dumps(new.definition),
                owner.key_id,
                owner.name,
                _role_values(new.shared_with_roles),
                list(new.shared_with_keys),
            )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == _NAME_CONSTRAINT:
                raise name_taken(new.name) from exc
            raise
        return _saved_query(row)

    async def get(self, query_id: str) -> SavedQuery | None:
        """The saved query whoever asks; callers check ``visible_to``."""
        row = await self._pool.fetchrow(f"SELECT {_COLUMNS} FROM saved_queries WHERE id = $1", query_id)
        return _saved_query(row) if row else None

    async def list_visible(
        self, principal: Principal, *, kind: str | None = None, limit: int = 50, offset: int = 0
    ) -> SavedQueryPage:
        """The saved queries ``principal`` may see, newest first, and how many there are in all."""
        where = f"{_VISIBLE} AND ($4::text IS NULL OR kind = $4)"
        args = (principal.role is Role.ADMIN, principal.key_id, principal.role.value, kind)
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM saved_queries WHERE {where} "
                f"ORDER BY created_at DESC, id DESC LIMIT $5 OFFSET $6",
                *args,
                limit,
                offset,
            )
            total = await conn.fetchval(f"SELECT count(*) FROM saved_queries WHERE {where}", *args)
        return SavedQueryPage(items=[_saved_query(r) for r in rows], total=total, limit=limit, offset=offset)

    async def update(self, query_id: str, *, expected_version: int, changes: SavedQueryChanges) -> SavedQuery:
        """Apply ``changes`` if the stored version is ``expected_version``; the version goes up by one.

        NotFound if the id does not exist, Conflict (naming the current version) if it moved on,
        Conflict if the new name is taken by another query of the same owner.
        """
        assignments = ["version = version + 1", "updated_at = now()"]
        args: list[Any] = [query_id, expected_version]
        for column, value, cast in changes.columns():
            args.append(value)
            assignments.append(f"{column} = ${len(args)}::{cast}")
        try:
            row = await self._pool.fetchrow(
                f"UPDATE saved_queries SET {', '.join(assignments)} WHERE id = $1 AND version = $2 "
                f"RETURNING {_COLUMNS}",
                *args,
            )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == _NAME_CONSTRAINT:
                raise name_taken(changes.name or "") from exc
            raise
        if row is None:
            raise await self._missing_or_stale(query_id, expected_version)
        return _saved_query(row)

    async def delete(self, query_id: str, *, expected_version: int | None = None) -> SavedQuery:
        """Delete and return the saved query; with ``expected_version``, only if it is still that version."""
        row = await self._pool.fetchrow(
            f"DELETE FROM saved_queries WHERE id = $1 AND ($2::int IS NULL OR version = $2) RETURNING {_COLUMNS}",
            query_id,
            expected_version,
        )
        if row is None:
            raise await self._missing_or_stale(query_id, expected_version)
        return _saved_query(row)

    async def _missing_or_stale(self, query_id: str, expected_version: int | None) -> NotFound | Conflict:
        current = await self._pool.fetchval("SELECT version FROM saved_queries WHERE id = $1", query_id)
        if current is None:
            return not_found(query_id)
        return Conflict(
            f"saved query {query_id!r} is at version {current}, not {expected_version}; "
            "read it again and apply the change to the current version",
            details={"field": "version", "current_version": current},
        )


def not_found(query_id: str) -> NotFound:
    # The one message for a missing id and for one the caller may not see: ids cannot be probed.
    return NotFound(f"saved query {query_id!r} does not exist", details={"field": "id"})


def name_taken(name: str) -> Conflict:
    return Conflict(
        f"the owner already has a saved query named {name!r}; choose another name",
        details={"field": "name"},
    )


def _role_values(roles: tuple[Role, ...] | None) -> list[str] | None:
    return None if roles is None else [r.value for r in roles]


def _saved_query(row: asyncpg.Record) -> SavedQuery:
    return SavedQuery(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        kind=row["kind"],
        definition=json.loads(row["definition"]),
        owner_key_id=row["owner_key_id"],
        owner_name=row["owner_name"],
        shared_with_roles=tuple(Role(r) for r in row["shared_with_roles"]),
        shared_with_keys=tuple(row["shared_with_keys"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        version=row["version"],
    )
