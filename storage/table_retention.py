"""How long each ClickHouse table keeps what it holds (docs/operations.md#retention).

Every table that stores event-derived data belongs to one retention class, each with its own setting:
raw events and their per-event copies, rollups, and the per-minute table behind the live counters. The
TTL expressions are written by the migrations (020_retention.sql gives the last tables theirs); this
module names each table's class, brings the TTLs' days to the settings at every start, and reads a
table's TTL back from its DDL. The few tables kept without a TTL are named with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from clickhouse_connect.driver.client import Client

from core.settings import Settings
from storage.clickhouse import identifier


class RetentionClass(StrEnum):
    EVENTS = "events"
    ROLLUPS = "rollups"
    MINUTES = "minutes"


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Days kept per class: ANALYTICS_RETENTION_DAYS, ANALYTICS_ROLLUP_RETENTION_DAYS and
    ANALYTICS_MINUTE_RETENTION_DAYS."""

    events_days: int
    rollup_days: int
    minute_days: int

    def __post_init__(self) -> None:
        if min(self.events_days, self.rollup_days, self.minute_days) < 1:
            raise ValueError(f"every retention must keep at least one day: {self}")

    @classmethod
    def of(cls, events_days: int, rollup_days: int | None = None, minute_days: int | None = None) -> RetentionPolicy:
        """Rollups and minutes keep what events keep unless told otherwise."""
        return cls(
            events_days=int(events_days),
            rollup_days=int(events_days if rollup_days is None else rollup_days),
            minute_days=int(events_days if minute_days is None else minute_days),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        return cls(
            events_days=settings.retention_days,
            rollup_days=settings.rollup_retention_days,
            minute_days=settings.minute_retention_days,
        )

    def days(self, kind: RetentionClass) -> int:
        return {
            RetentionClass.EVENTS: self.events_days,
            RetentionClass.ROLLUPS: self.rollup_days,
            RetentionClass.MINUTES: self.minute_days,
        }[kind]

    def template(self) -> dict[str, int]:
        """The ``${...}`` slots of the migrations."""
        return {
            "retention_days": self.events_days,
            "rollup_retention_days": self.rollup_days,
            "minute_retention_days": self.minute_days,
        }


# The class of every table that stores event-derived data. A new table joins here and gets its TTL in
# its migration; tests/storage/test_retention.py fails for a table of the database that is in neither
# this list nor KEPT_WITHOUT_TTL.
TABLE_CLASSES: dict[str, RetentionClass] = {
    # Raw events, and copies of them one row per event.
    "events": RetentionClass.EVENTS,
    "events_by_user": RetentionClass.EVENTS,
    "session_steps": RetentionClass.EVENTS,
    # Hourly and daily rollups, per-session and per-job rows.
    "content_hourly": RetentionClass.ROLLUPS,
    "content_daily": RetentionClass.ROLLUPS,
    "content_totals_daily": RetentionClass.ROLLUPS,
    "content_breakdown_daily": RetentionClass.ROLLUPS,
    "search_daily": RetentionClass.ROLLUPS,
    "user_daily": RetentionClass.ROLLUPS,
    "session_rollup": RetentionClass.ROLLUPS,
    "session_searches": RetentionClass.ROLLUPS,
    "playback_hourly": RetentionClass.ROLLUPS,
    "system_requests_hourly": RetentionClass.ROLLUPS,
    "system_errors_hourly": RetentionClass.ROLLUPS,
    "system_resources_hourly": RetentionClass.ROLLUPS,
    "system_health_hourly": RetentionClass.ROLLUPS,
    "database_statements": RetentionClass.ROLLUPS,
    "import_jobs": RetentionClass.ROLLUPS,
    # Per-minute aggregates behind the live counters.
    "realtime_minutes": RetentionClass.MINUTES,
}

_CATALOG = (
    "the content catalog (title, category, type, language, author, publication time per content id): "
    "category filters, row-level scopes and the titles of every answer depend on it, and it holds "
    "no user, session or address data"
)
# Tables that keep their rows without a TTL, and why.
KEPT_WITHOUT_TTL: dict[str, str] = {
    "content_metadata_updates": _CATALOG + " (this table: every change of it)",
    "content_metadata_state": _CATALOG + " (this table: the latest value of each field)",
    "rollup_feed_claims": "bookkeeping of the rollup feed: one row per feed slot with the inserts it covers, "
    "no event data",
    "schema_migrations": "the record of the migrations applied to this database, no event data",
}

# Engines that keep no rows of their own: a Null table passes its inserts to the views reading it; a
# view is a query, and a materialized view writes into its TO table.
STORES_NOTHING = frozenset({"Null", "View", "MaterializedView"})

TABLES_SQL = (
    "SELECT name, engine, create_table_query FROM system.tables"
    " WHERE database = currentDatabase() AND NOT is_temporary ORDER BY name"
)

# A retention TTL as ClickHouse prints it: "TTL <column> + toIntervalDay(N)" or the same with
# toDateTime(<column>) (for a DateTime64 column).
_RETENTION_TTL = re.compile(
    r"\bTTL (?P<expression>toDateTime\((?P<wrapped>\w+)\)|(?P<column>\w+)) \+ toIntervalDay\((?P<days>\d+)\)"
)


@dataclass(frozen=True, slots=True)
class TableTtl:
    """A table's retention TTL: ``expression`` + ``days`` days, on the time ``column``."""

    expression: str
    column: str
    days: int

    @property
    def text(self) -> str:
        return f"{self.expression} + toIntervalDay({self.days})"


def parse_ttl(create_table_query: str) -> TableTtl | None:
    """The retention TTL of a table from its DDL, or None when it has none of this shape."""
    match = _RETENTION_TTL.search(create_table_query)
    if match is None:
        return None
    return TableTtl(
        expression=match.group("expression"),
        column=match.group("wrapped") or match.group("column"),
        days=int(match.group("days")),
    )


def ensure_retention(client: Client, policy: RetentionPolicy) -> list[str]:
    """Bring every classified table's TTL to its class's days (the settings may change between
    starts); returns the tables altered. ClickHouse then applies the new TTL to the stored parts."""
    altered = []
    for name, _engine, ddl in client.query(TABLES_SQL).result_rows:
        kind = TABLE_CLASSES.get(name)
        ttl = parse_ttl(ddl)
        if kind is None or ttl is None:
            continue
        days = policy.days(kind)
        if ttl.days != days:
            client.command(f"ALTER TABLE {identifier(name)} MODIFY TTL {ttl.expression} + INTERVAL {int(days)} DAY")
            altered.append(name)
    return altered
