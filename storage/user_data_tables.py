"""Where ClickHouse holds a user's data, and how an erasure takes it out (docs/security.md#erasure).

Every table of the database is in one of three groups; tests/storage/test_user_data_tables.py fails for
a table in none of them:

- ``PER_USER_TABLES``: rows that each belong to one user: their events, the copy of them ordered by
  user, their daily rows. Deleted by user id.
- ``REBUILT_TABLES``: rollups whose rows mix many users' events and keep user ids, distinct-count
  states of them, or copies of events by session. The slices the user's events fell into (their days,
  or their sessions) are deleted and filled again from the remaining events with the table's own
  materialized view SELECT, so each holds what it would hold had the user never been there.
- ``WITHOUT_USER_DATA``: tables that keep neither, with why.

Deletes are mutations waited for (``mutations_sync = 2``): the rows are rewritten out of their parts
before the statement returns, not only hidden. A refilled slice is inserted with
``insert_deduplicate = 0``, since it may equal a block the table saw before.

The caller makes sure nothing is inserted into ``events`` or fed to the rollups while ``erase`` runs
(the event store runs it on its write thread once the rollups are fed), so a slice refilled from
``events`` holds exactly what the feed would have put there.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from clickhouse_connect.driver.client import Client

from storage.clickhouse import identifier
from storage.rollup_feed import FEED_TABLE

_MUTATION = "SETTINGS mutations_sync = 2"

# Rows of one user each, deleted by user id: the copies first, the events last, so a run cut short
# leaves the events to find the copies by on the next.
PER_USER_TABLES = ("events_by_user", "user_daily", "events")


class Slice(StrEnum):
    DAY = "day"
    SESSION = "session"


@dataclass(frozen=True, slots=True)
class RebuiltTable:
    table: str
    # The materialized view that fills it: its SELECT refills a slice.
    view: str
    slice: Slice
    # The slice of a row, over the table's columns: its UTC day, or its session id.
    key: str


REBUILT_TABLES = (
    RebuiltTable("content_hourly", "content_hourly_mv", Slice.DAY, "toDate(hour)"),
    RebuiltTable("content_daily", "content_daily_mv", Slice.DAY, "day"),
    RebuiltTable("content_totals_daily", "content_totals_daily_mv", Slice.DAY, "day"),
    RebuiltTable("content_breakdown_daily", "content_breakdown_daily_mv", Slice.DAY, "day"),
    RebuiltTable("search_daily", "search_daily_mv", Slice.DAY, "day"),
    RebuiltTable("system_requests_hourly", "system_requests_hourly_mv", Slice.DAY, "toDate(hour)"),
    RebuiltTable("realtime_minutes", "realtime_minutes_mv", Slice.DAY, "toDate(minute)"),
    RebuiltTable("session_rollup", "session_rollup_mv", Slice.SESSION, "session_id"),
    RebuiltTable("session_searches", "session_searches_mv", Slice.SESSION, "session_id"),
    RebuiltTable("session_steps", "session_steps_mv", Slice.SESSION, "session_id"),
)

_CATALOG = "the content catalog (title, category, type, language, author per content id), no user data"
_SYSTEM = "the platform's own {} by hour and service, with no user or session id"
WITHOUT_USER_DATA: dict[str, str] = {
    "content_metadata_updates": _CATALOG,
    "content_metadata_state": _CATALOG,
    "playback_hourly": "watch time per content and hour: sums, with no user or session id",
    "import_jobs": "per import job: the figures of its import events, which name no user or session",
    "database_statements": _SYSTEM.format("statement timings"),
    "system_errors_hourly": _SYSTEM.format("error counts"),
    "system_resources_hourly": _SYSTEM.format("resource samples"),
    "system_health_hourly": _SYSTEM.format("health checks"),
    "rollup_feed_claims": "bookkeeping of the rollup feed: insert numbers and tokens",
    "schema_migrations": "the record of the migrations applied",
}


@dataclass(slots=True)
class ErasurePlan:
    """A user's data as it was before anything was removed: kept with the job, so a resumed job
    refills the same slices however far an earlier run got."""

    # PER_USER table -> the user's rows in it.
    rows: dict[str, int] = field(default_factory=dict)
    # The UTC days (ISO dates) and the sessions of the user's events.
    days: list[str] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)
    # REBUILT table -> the slices of the user's days or sessions it holds rows in (only those are
    # refilled: a day the table no longer keeps stays empty), and its rows in them.
    slices: dict[str, list[str]] = field(default_factory=dict)
    slice_rows: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ErasurePlan:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})


def _keys_parameter(kind: Slice) -> str:
    return "{keys:Array(Date)}" if kind is Slice.DAY else "{keys:Array(String)}"


def plan(client: Client, user_ids: list[str]) -> ErasurePlan:
    """Where the user's data is now. Read before anything is deleted."""
    ids = {"ids": user_ids}
    found = ErasurePlan()
    for table in PER_USER_TABLES:
        found.rows[table] = _user_rows(client, table, user_ids)
    found.days = [
        row[0]
        for row in client.query(
            "SELECT DISTINCT toString(toDate(timestamp)) AS day FROM events WHERE user_id IN {ids:Array(String)} "
            "ORDER BY day",
            parameters=ids,
        ).result_rows
    ]
    found.sessions = [
        row[0]
        for row in client.query(
            "SELECT DISTINCT session_id FROM events WHERE user_id IN {ids:Array(String)} AND session_id != '' "
            "ORDER BY session_id",
            parameters=ids,
        ).result_rows
    ]
    for spec in REBUILT_TABLES:
        keys = found.days if spec.slice is Slice.DAY else found.sessions
        if not keys:
            found.slices[spec.table], found.slice_rows[spec.table] = [], 0
            continue
        rows = client.query(
            f"SELECT toString({spec.key}) AS slice, count() FROM {identifier(spec.table)} "
            f"WHERE {spec.key} IN {_keys_parameter(spec.slice)} GROUP BY slice ORDER BY slice",
            parameters={"keys": keys},
        ).result_rows
        found.slices[spec.table] = [row[0] for row in rows]
        found.slice_rows[spec.table] = sum(int(row[1]) for row in rows)
    return found


def erase(client: Client, user_ids: list[str], plan: ErasurePlan, *, fed_through: int) -> dict[str, Any]:
    """Refill the planned slices without the user, then delete the user's rows. Returns, per table, the
    rows deleted (PER_USER, as planned) or the slices refilled and their rows now. Every statement can
    run again: a run cut short is finished by the next. ``fed_through``: the last insert fed to the
    rollups (the views fed by the rollup feed are refilled from the events fed so far)."""
    database = client.query("SELECT currentDatabase()").result_rows[0][0]
    done: dict[str, Any] = {}
    for spec in REBUILT_TABLES:
        keys = plan.slices.get(spec.table) or []
        if not keys:
            continue
        keys_parameter = _keys_parameter(spec.slice)
        client.command(
            f"ALTER TABLE {identifier(spec.table)} DELETE WHERE {spec.key} IN {keys_parameter} {_MUTATION}",
            parameters={"keys": keys},
        )
        client.command(
            _refill_sql(client, database, spec),
            parameters={"keys": keys, "ids": user_ids, "fed": fed_through},
        )
        refilled = _count(
            client,
            f"SELECT count() FROM {identifier(spec.table)} WHERE {spec.key} IN {keys_parameter}",
            {"keys": keys},
        )
        done[spec.table] = {
            "slices": len(keys),
            "rows_before": plan.slice_rows.get(spec.table, 0),
            "rows_after": refilled,
        }
    for table in PER_USER_TABLES:
        client.command(
            f"ALTER TABLE {identifier(table)} DELETE WHERE user_id IN {{ids:Array(String)}} {_MUTATION}",
            parameters={"ids": user_ids},
        )
        done[table] = {"rows": plan.rows.get(table, 0)}
    return done


def remaining(client: Client, user_ids: list[str]) -> dict[str, int]:
    """Rows that still name the user, per table that can tell: the PER_USER tables and the session
    rollup by id, the live minutes by the hash their distinct users are kept as. All zero after
    ``erase``."""
    ids = {"ids": user_ids}
    counts = {table: _user_rows(client, table, user_ids) for table in (*PER_USER_TABLES, "session_rollup")}
    counts["realtime_minutes"] = _count(
        client,
        "SELECT count() FROM realtime_minutes "
        "WHERE hasAny(finalizeAggregation(users), arrayMap(x -> xxHash64(x), {ids:Array(String)}))",
        ids,
    )
    return counts


def _refill_sql(client: Client, database: str, spec: RebuiltTable) -> str:
    """``INSERT INTO`` the table from its view's own SELECT, over the remaining events of the slices."""
    select, columns = _view_definition(client, spec.view)
    source = re.compile(rf"\bFROM\s+{re.escape(database)}\.({FEED_TABLE}|events)\b")
    found = source.findall(select)
    if len(found) != 1 or "{" in select:
        raise RuntimeError(f"cannot refill {spec.table}: unexpected definition of {spec.view}")
    event_key = "toDate(timestamp)" if spec.slice is Slice.DAY else "session_id"
    conditions = [f"{event_key} IN {_keys_parameter(spec.slice)}", "user_id NOT IN {ids:Array(String)}"]
    if found[0] == FEED_TABLE:
        # What the feed has not sent yet it sends later: not here too.
        conditions.append("stored_seq <= {fed:UInt64}")
    remaining_events = f"FROM (SELECT * FROM {database}.events WHERE {' AND '.join(conditions)}) AS erasure_source"
    statement = source.sub(lambda _: remaining_events, select)
    names = ", ".join(identifier(name) for name in columns)
    return f"INSERT INTO {identifier(spec.table)} ({names}) SETTINGS insert_deduplicate = 0 {statement}"


def _view_definition(client: Client, view: str) -> tuple[str, list[str]]:
    """A materialized view's SELECT, and the names of the columns it gives its table, in order."""
    rows = client.query(
        "SELECT as_select FROM system.tables WHERE database = currentDatabase() AND name = {v:String}",
        parameters={"v": view},
    ).result_rows
    if not rows:
        raise RuntimeError(f"the materialized view {view} does not exist")
    columns = client.query(
        "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = {v:String} ORDER BY position",
        parameters={"v": view},
    ).result_rows
    return rows[0][0], [row[0] for row in columns]


def _user_rows(client: Client, table: str, user_ids: list[str]) -> int:
    return _count(
        client, f"SELECT count() FROM {identifier(table)} WHERE user_id IN {{ids:Array(String)}}", {"ids": user_ids}
    )


def _count(client: Client, sql: str, parameters: dict[str, Any]) -> int:
    return int(client.query(sql, parameters=parameters).result_rows[0][0])
