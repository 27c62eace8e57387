"""One ClickHouse connection factory for the embedded chDB engine and a ClickHouse server,
and the versioned DDL migrations both share."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from storage.playback_rollup import backfill_sql

_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


def connect(dsn: str | None, *, chdb_path: Path | None, database: str) -> Client:
    """``dsn`` unset means embedded chDB in ``chdb_path``; ``http(s)://…`` means a server.

    chDB allows one data directory per process, so in embedded mode exactly one process
    (the event store actor, or a test session) may call this.
    """
    if dsn:
        bootstrap = clickhouse_connect.get_client(dsn=dsn)
        bootstrap.command(f"CREATE DATABASE IF NOT EXISTS {identifier(database)}")
        bootstrap.close()
        return clickhouse_connect.get_client(dsn=dsn, database=database)
    if chdb_path is None:
        raise ValueError("embedded ClickHouse needs a data directory")
    chdb_path.mkdir(parents=True, exist_ok=True)
    # A relative or non-existent path silently makes a new empty store: always pass the absolute dir.
    bootstrap = clickhouse_connect.get_client(dsn=f"chdb://{chdb_path.resolve()}")
    bootstrap.command(f"CREATE DATABASE IF NOT EXISTS {identifier(database)}")
    return clickhouse_connect.get_client(dsn=f"chdb://{chdb_path.resolve()}", database=database)


def identifier(name: str) -> str:
    """A table or database name from the service's own catalog, checked before it is put into SQL."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name):
        raise ValueError(f"invalid ClickHouse identifier: {name!r}")
    return name


def settings_clause(settings: dict[str, int | str]) -> str:
    """``SETTINGS k = v, ...`` to write into an INSERT after its column list.

    clickhouse-connect applies a command's ``settings=`` on chDB by reading system.settings, then a
    SET before and another after the statement for each one: for the rollup feed's eight settings,
    ~6 ms of CPU per statement against <1 ms for the statement itself (SELECT 1 through a Null table).
    """

    def literal(value: int | str) -> str:
        if isinstance(value, int):
            return str(value)
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

    return "SETTINGS " + ", ".join(f"{identifier(name)} = {literal(value)}" for name, value in settings.items())


def migration_files() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every file in storage/migrations/clickhouse, in order."""
    folder = resources.files("storage") / "migrations" / "clickhouse"
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text()))
    return sorted(found)


def apply_migrations(client: Client, *, template: dict[str, Any]) -> list[str]:
    """Apply the migrations not yet recorded; returns the names applied now.

    ``template`` fills ``${name}`` slots with values from Settings (never user input), and
    ``${playback_backfill}`` with the one statement that is built in Python. Without their own
    values, the rollups and the minute table keep what events keep (``retention_days``).
    """
    events_days = template.get("retention_days")
    kept_as_events = (
        {} if events_days is None else dict.fromkeys(("rollup_retention_days", "minute_retention_days"), events_days)
    )
    template = {"playback_backfill": backfill_sql(), **kept_as_events, **template}
    client.command(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version UInt32, name String, applied_at DateTime DEFAULT now()) "
        "ENGINE = MergeTree ORDER BY version"
    )
    done = {row[0] for row in client.query("SELECT version FROM schema_migrations").result_rows}
    applied = []
    for version, name, sql in migration_files():
        if version in done:
            continue
        for statement in _statements(Template(sql).substitute(template)):
            client.command(statement)
        client.command(
            "INSERT INTO schema_migrations (version, name) VALUES ({v:UInt32}, {n:String})",
            parameters={"v": version, "n": name},
        )
        applied.append(name)
    return applied


def _statements(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
