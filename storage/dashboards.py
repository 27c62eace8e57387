"""Dashboards, their widgets and their saved versions in PostgreSQL (asyncpg): migration 007_dashboards.sql.

Who may see a dashboard is storage/sharing.py's rule, for one row (``StoredDashboard.visible_to``) and
as SQL for lists: the owner, admins, the principals and roles it is shared with, and everyone who may
read dashboards when it is public. What a caller may do with what it sees is semantic/dashboards.py's.

Every change runs in one transaction that locks the dashboard's row, checks the version the caller read
(when it gives one), applies the change, raises the version and keeps the whole dashboard as it now is
in ``dashboard_versions``: concurrent editors never interleave, and every version can be restored.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import asyncpg

from core.access import Principal, Role
from core.errors import Conflict, NotFound
from storage.sharing import VISIBLE_SQL, managed, visible, visible_args

_DASHBOARD_COLUMNS = (
    "id, name, description, refresh_interval_seconds, theme, columns, prebuilt, created_by, owner_key_id, owner_role, "
    "shared_with, shared_with_roles, is_public, last_refreshed_at, created_at, updated_at, version"
)
_WIDGET_COLUMNS = "id, dashboard_id, widget_type, title, config, layout, created_at, updated_at"
MAX_ID_LENGTH = 100
# $1: the caller is an admin, $2: its principal id, $3: its role.
_VISIBLE = VISIBLE_SQL
# The dashboard columns a change may set, and how each is cast.
_CHANGEABLE = {
    "name": "text",
    "description": "text",
    "refresh_interval_seconds": "int",
    "theme": "text",
    "columns": "int",
    "shared_with": "text[]",
    "shared_with_roles": "text[]",
    "is_public": "bool",
}


@dataclass(frozen=True, slots=True)
class StoredWidget:
    id: str
    dashboard_id: str
    widget_type: str
    title: str
    config: dict[str, Any]
    layout: dict[str, int]
    created_at: datetime
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "dashboard_id": self.dashboard_id,
            "widget_type": self.widget_type,
            "title": self.title,
            "config": self.config,
            "layout": self.layout,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class StoredDashboard:
    id: str
    name: str
    description: str | None
    refresh_interval_seconds: int
    theme: str
    columns: int
    prebuilt: str | None
    created_by: str
    owner_key_id: str
    owner_role: Role
    shared_with: tuple[str, ...]
    shared_with_roles: tuple[Role, ...]
    is_public: bool
    last_refreshed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int
    # Ordered top to bottom, left to right.
    widgets: tuple[StoredWidget, ...] = ()
    widget_count: int = 0

    def visible_to(self, principal: Principal) -> bool:
        return visible(principal, self.owner_key_id, self.is_public, self.shared_with, self.shared_with_roles)

    def managed_by(self, principal: Principal) -> bool:
        """Only the owner or an admin changes, shares, restores or deletes a dashboard."""
        return managed(principal, self.owner_key_id)

    @property
    def owner(self) -> Principal:
        """Who put the widgets there: a saved query a widget reads is looked up as the owner."""
        return Principal(key_id=self.owner_key_id, name=self.created_by, role=self.owner_role)

    def widget(self, widget_id: str) -> StoredWidget | None:
        return next((w for w in self.widgets if w.id == widget_id), None)

    def definition(self) -> dict[str, Any]:
        """What a version keeps: everything a restore puts back (not who owns it, nor when it refreshed)."""
        return {
            "name": self.name,
            "description": self.description,
            "refresh_interval_seconds": self.refresh_interval_seconds,
            "theme": self.theme,
            "columns": self.columns,
            "shared_with": list(self.shared_with),
            "shared_with_roles": [r.value for r in self.shared_with_roles],
            "is_public": self.is_public,
            "widgets": [
                {
                    "id": w.id,
                    "widget_type": w.widget_type,
                    "title": w.title,
                    "config": w.config,
                    "layout": w.layout,
                }
                for w in self.widgets
            ],
        }


@dataclass(frozen=True, slots=True)
class NewWidget:
    widget_type: str
    title: str
    config: dict[str, Any]
    layout: dict[str, int]
    # Kept when a whole list of widgets replaces the dashboard's (an id of this dashboard only).
    id: str | None = None


@dataclass(frozen=True, slots=True)
class NewDashboard:
    name: str
    description: str | None = None
    refresh_interval_seconds: int = 5
    theme: str = "light"
    columns: int = 12
    shared_with: tuple[str, ...] = ()
    shared_with_roles: tuple[Role, ...] = ()
    is_public: bool = False
    widgets: tuple[NewWidget, ...] = ()
    prebuilt: str | None = None


@dataclass(frozen=True, slots=True)
class DashboardVersion:
    dashboard_id: str
    version: int
    saved_by: str
    saved_at: datetime
    snapshot: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "saved_by": self.saved_by,
            "saved_at": self.saved_at.isoformat(),
            "name": self.snapshot.get("name"),
            "widget_count": len(self.snapshot.get("widgets", ())),
        }


def new_dashboard_id() -> str:
    # Random, so an id says nothing about its neighbours and cannot be guessed.
    return "dsh_" + secrets.token_hex(12)


def new_widget_id() -> str:
    return "wdg_" + secrets.token_hex(12)


def dashboard_not_found(dashboard_id: str) -> NotFound:
    return NotFound(
        f"dashboard {dashboard_id[:MAX_ID_LENGTH]!r} does not exist or is not visible to you",
        details={"field": "dashboard_id"},
    )


def widget_not_found(widget_id: str) -> NotFound:
    return NotFound(
        f"widget {widget_id[:MAX_ID_LENGTH]!r} does not exist or is not visible to you",
        details={"field": "widget_id"},
    )


def _storable(identifier: str) -> bool:
    return 0 < len(identifier) <= MAX_ID_LENGTH and "\x00" not in identifier


class DashboardRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    # --- reads --------------------------------------------------------------------------------------

    async def get(self, dashboard_id: str) -> StoredDashboard | None:
        """The dashboard with its widgets, whoever asks; callers check ``visible_to``."""
        if not _storable(dashboard_id):
            return None
        async with self._pool.acquire() as conn:
            return await _load(conn, dashboard_id)

    async def dashboard_of_widget(self, widget_id: str) -> StoredDashboard | None:
        if not _storable(widget_id):
            return None
        async with self._pool.acquire() as conn:
            dashboard_id = await conn.fetchval("SELECT dashboard_id FROM dashboard_widgets WHERE id = $1", widget_id)
            return await _load(conn, dashboard_id) if dashboard_id else None

    async def list_visible(
        self, principal: Principal, *, limit: int = 50, offset: int = 0
    ) -> tuple[list[StoredDashboard], int]:
        """The dashboards ``principal`` may see, prebuilt ones first then newest first, without their
        widgets (``widget_count`` says how many), and how many there are in all."""
        args = visible_args(principal)
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_DASHBOARD_COLUMNS}, "
                "(SELECT count(*) FROM dashboard_widgets w WHERE w.dashboard_id = d.id) AS widget_count "
                f"FROM dashboards d WHERE {_VISIBLE} "
                "ORDER BY prebuilt IS NULL, created_at DESC, id DESC LIMIT $4 OFFSET $5",
                *args,
                limit,
                offset,
            )
            total = await conn.fetchval(f"SELECT count(*) FROM dashboards WHERE {_VISIBLE}", *args)
        return [_dashboard(r, widget_count=int(r["widget_count"])) for r in rows], int(total)

    async def versions(self, dashboard_id: str, *, limit: int, offset: int) -> tuple[list[DashboardVersion], int]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT dashboard_id, version, saved_by, saved_at, snapshot FROM dashboard_versions "
                "WHERE dashboard_id = $1 ORDER BY version DESC LIMIT $2 OFFSET $3",
                dashboard_id,
                limit,
                offset,
            )
            total = await conn.fetchval("SELECT count(*) FROM dashboard_versions WHERE dashboard_id = $1", dashboard_id)
        return [_version(r) for r in rows], int(total)

    async def saved_version(self, dashboard_id: str, version: int) -> DashboardVersion | None:
        row = await self._pool.fetchrow(
            "SELECT dashboard_id, version, saved_by, saved_at, snapshot FROM dashboard_versions "
            "WHERE dashboard_id = $1 AND version = $2",
            dashboard_id,
            version,
        )
        return _version(row) if row else None

    # --- changes ------------------------------------------------------------------------------------

    async def create(self, owner: Principal, new: NewDashboard) -> StoredDashboard:
        async with self._pool.acquire() as conn, conn.transaction():
            return await _create(conn, owner, new)

    async def create_prebuilt(self, owner: Principal, new: NewDashboard) -> StoredDashboard | None:
        """The prebuilt dashboard ``new.prebuilt``, unless it was ever made (then None): any number of
        replicas may start at once, and one an admin deleted stays deleted."""
        async with self._pool.acquire() as conn, conn.transaction():
            first = await conn.fetchval(
                "INSERT INTO prebuilt_dashboards (key) VALUES ($1) ON CONFLICT DO NOTHING RETURNING key", new.prebuilt
            )
            return await _create(conn, owner, new) if first else None

    async def update(
        self,
        dashboard_id: str,
        changes: dict[str, Any],
        *,
        saved_by: str,
        widgets: tuple[NewWidget, ...] | None = None,
        expected_version: int | None = None,
    ) -> StoredDashboard:
        """Set ``changes`` (columns of ``_CHANGEABLE``) and, when given, replace the widgets by ``widgets``
        (a widget keeps its id when it names one of this dashboard's)."""
        async with self._pool.acquire() as conn, conn.transaction():
            await _lock(conn, dashboard_id, expected_version)
            await _set_columns(conn, dashboard_id, changes)
            if widgets is not None:
                keep = [w.id for w in widgets if w.id]
                await conn.execute(
                    "DELETE FROM dashboard_widgets WHERE dashboard_id = $1 AND NOT (id = ANY($2::text[]))",
                    dashboard_id,
                    keep,
                )
                for widget in widgets:
                    if widget.id:
                        await _update_widget(conn, dashboard_id, widget)
                    else:
                        await _insert_widgets(conn, dashboard_id, (widget,))
            return await _keep_version(conn, dashboard_id, saved_by)

    async def restore(self, dashboard_id: str, version: DashboardVersion, *, saved_by: str) -> StoredDashboard:
        """The dashboard as it was at ``version``, saved as a new version (the history is kept)."""
        snapshot = version.snapshot
        widgets = tuple(
            NewWidget(
                widget_type=w["widget_type"], title=w["title"], config=w["config"], layout=w["layout"], id=w["id"]
            )
            for w in snapshot.get("widgets", ())
        )
        changes = {column: snapshot[column] for column in _CHANGEABLE if column in snapshot}
        async with self._pool.acquire() as conn, conn.transaction():
            await _lock(conn, dashboard_id, None)
            await _set_columns(conn, dashboard_id, changes)
            await conn.execute("DELETE FROM dashboard_widgets WHERE dashboard_id = $1", dashboard_id)
            await _insert_widgets(conn, dashboard_id, widgets)
            return await _keep_version(conn, dashboard_id, saved_by)

    async def delete(self, dashboard_id: str, *, expected_version: int | None = None) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await _lock(conn, dashboard_id, expected_version)
            await conn.execute("DELETE FROM dashboards WHERE id = $1", dashboard_id)

    async def add_widget(self, dashboard_id: str, widget: NewWidget, *, saved_by: str) -> StoredWidget:
        widget = replace(widget, id=new_widget_id())
        async with self._pool.acquire() as conn, conn.transaction():
            await _lock(conn, dashboard_id, None)
            await _insert_widgets(conn, dashboard_id, (widget,))
            dashboard = await _keep_version(conn, dashboard_id, saved_by)
        found = dashboard.widget(widget.id or "")
        assert found is not None
        return found

    async def update_widget(self, dashboard_id: str, widget: NewWidget, *, saved_by: str) -> StoredWidget:
        async with self._pool.acquire() as conn, conn.transaction():
            await _lock(conn, dashboard_id, None)
            if not await _update_widget(conn, dashboard_id, widget):
                raise widget_not_found(widget.id or "")
            dashboard = await _keep_version(conn, dashboard_id, saved_by)
        found = dashboard.widget(widget.id or "")
        assert found is not None
        return found

    async def delete_widget(self, dashboard_id: str, widget_id: str, *, saved_by: str) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await _lock(conn, dashboard_id, None)
            deleted = await conn.execute(
                "DELETE FROM dashboard_widgets WHERE id = $1 AND dashboard_id = $2", widget_id, dashboard_id
            )
            if deleted.endswith(" 0"):
                raise widget_not_found(widget_id)
            await _keep_version(conn, dashboard_id, saved_by)

    async def mark_refreshed(self, dashboard_id: str, at: datetime) -> None:
        """The dashboard's last refresh (its widgets' data computed), never moved back."""
        await self._pool.execute(
            "UPDATE dashboards SET last_refreshed_at = $2 WHERE id = $1 "
            "AND (last_refreshed_at IS NULL OR last_refreshed_at < $2)",
            dashboard_id,
            at,
        )


# --- statements of one transaction -------------------------------------------------------------------


async def _create(conn: asyncpg.Connection, owner: Principal, new: NewDashboard) -> StoredDashboard:
    dashboard_id = new_dashboard_id()
    await conn.execute(
        "INSERT INTO dashboards (id, name, description, refresh_interval_seconds, theme, columns, prebuilt, "
        "created_by, owner_key_id, owner_role, shared_with, shared_with_roles, is_public) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        dashboard_id,
        new.name,
        new.description,
        new.refresh_interval_seconds,
        new.theme,
        new.columns,
        new.prebuilt,
        owner.name,
        owner.key_id,
        owner.role.value,
        list(new.shared_with),
        [r.value for r in new.shared_with_roles],
        new.is_public,
    )
    await _insert_widgets(conn, dashboard_id, new.widgets)
    return await _keep_version(conn, dashboard_id, owner.name)


async def _lock(conn: asyncpg.Connection, dashboard_id: str, expected_version: int | None) -> int:
    current = (
        await conn.fetchval("SELECT version FROM dashboards WHERE id = $1 FOR UPDATE", dashboard_id)
        if _storable(dashboard_id)
        else None
    )
    if current is None:
        raise dashboard_not_found(dashboard_id)
    if expected_version is not None and current != expected_version:
        raise Conflict(
            f"dashboard {dashboard_id!r} is at version {current}, not {expected_version}; "
            "read it again and apply the change to the current version",
            details={"field": "version", "current_version": current},
        )
    return int(current)


async def _set_columns(conn: asyncpg.Connection, dashboard_id: str, changes: dict[str, Any]) -> None:
    if not changes:
        return
    assignments = []
    args: list[Any] = [dashboard_id]
    for column, value in changes.items():
        cast = _CHANGEABLE[column]
        if cast == "text[]":
            value = [v.value if isinstance(v, Role) else v for v in value]
        args.append(value)
        assignments.append(f"{column} = ${len(args)}::{cast}")
    await conn.execute(f"UPDATE dashboards SET {', '.join(assignments)} WHERE id = $1", *args)


async def _update_widget(conn: asyncpg.Connection, dashboard_id: str, widget: NewWidget) -> bool:
    """Whether the dashboard had the widget to change."""
    changed = await conn.execute(
        "UPDATE dashboard_widgets SET widget_type = $3, title = $4, config = $5::jsonb, layout = $6::jsonb, "
        "updated_at = now() WHERE id = $1 AND dashboard_id = $2",
        widget.id,
        dashboard_id,
        widget.widget_type,
        widget.title,
        json.dumps(widget.config),
        json.dumps(widget.layout),
    )
    return not changed.endswith(" 0")


async def _insert_widgets(conn: asyncpg.Connection, dashboard_id: str, widgets: tuple[NewWidget, ...]) -> None:
    if not widgets:
        return
    await conn.executemany(
        "INSERT INTO dashboard_widgets (id, dashboard_id, widget_type, title, config, layout) "
        "VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb)",
        [
            (w.id or new_widget_id(), dashboard_id, w.widget_type, w.title, json.dumps(w.config), json.dumps(w.layout))
            for w in widgets
        ],
    )


async def _keep_version(conn: asyncpg.Connection, dashboard_id: str, saved_by: str) -> StoredDashboard:
    """Raise the version (a new dashboard keeps 1) and keep the dashboard as it now is."""
    exists = await conn.fetchval("SELECT count(*) FROM dashboard_versions WHERE dashboard_id = $1", dashboard_id)
    if exists:
        await conn.execute(
            "UPDATE dashboards SET version = version + 1, updated_at = now() WHERE id = $1", dashboard_id
        )
    dashboard = await _load(conn, dashboard_id)
    assert dashboard is not None
    await conn.execute(
        "INSERT INTO dashboard_versions (dashboard_id, version, snapshot, saved_by) VALUES ($1, $2, $3::jsonb, $4)",
        dashboard_id,
        dashboard.version,
        json.dumps(dashboard.definition()),
        saved_by,
    )
    return dashboard


async def _load(conn: asyncpg.Connection, dashboard_id: str) -> StoredDashboard | None:
    row = await conn.fetchrow(f"SELECT {_DASHBOARD_COLUMNS} FROM dashboards WHERE id = $1", dashboard_id)
    if row is None:
        return None
    widgets = await conn.fetch(f"SELECT {_WIDGET_COLUMNS} FROM dashboard_widgets WHERE dashboard_id = $1", dashboard_id)
    ordered = sorted(
        (_widget(w) for w in widgets), key=lambda w: (w.layout.get("y", 0), w.layout.get("x", 0), w.created_at, w.id)
    )
    return _dashboard(row, widgets=tuple(ordered), widget_count=len(ordered))


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _widget(row: asyncpg.Record) -> StoredWidget:
    return StoredWidget(
        id=row["id"],
        dashboard_id=row["dashboard_id"],
        widget_type=row["widget_type"],
        title=row["title"],
        config=_json(row["config"]),
        layout=_json(row["layout"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _dashboard(
    row: asyncpg.Record, *, widgets: tuple[StoredWidget, ...] = (), widget_count: int = 0
) -> StoredDashboard:
    return StoredDashboard(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        refresh_interval_seconds=row["refresh_interval_seconds"],
        theme=row["theme"],
        columns=row["columns"],
        prebuilt=row["prebuilt"],
        created_by=row["created_by"],
        owner_key_id=row["owner_key_id"],
        owner_role=Role(row["owner_role"]),
        shared_with=tuple(row["shared_with"]),
        shared_with_roles=tuple(Role(r) for r in row["shared_with_roles"]),
        is_public=row["is_public"],
        last_refreshed_at=row["last_refreshed_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        version=row["version"],
        widgets=widgets,
        widget_count=widget_count,
    )


def _version(row: asyncpg.Record) -> DashboardVersion:
    return DashboardVersion(
        dashboard_id=row["dashboard_id"],
        version=row["version"],
        saved_by=row["saved_by"],
        saved_at=row["saved_at"],
        snapshot=_json(row["snapshot"]),
    )
