"""Reads of the per-minute aggregates (migration 002) that rebuild a counter shard's window.

Synchronous, on a clickhouse-connect client: the event store actor runs these on its write
thread so a snapshot lines up exactly with the inserts before it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:  # the live counters import the shapes below without a ClickHouse client
    from clickhouse_connect.driver.client import Client

# How far back a shard's window reaches: minutes with every figure (ids included), and minutes whose
# activity alone matters (trending compares each window with the two before it, so 24h needs 72 h).
DETAIL_MINUTES = 1440
HISTORY_MINUTES = 3 * 1440
# Per-second event counts kept for the live event rate.
SECONDS_KEPT = 300

# The shape of a delta (and of a snapshot read back from ClickHouse): one row per
# (minute, content, event type).
DELTA_SCHEMA = pa.schema(
    [
        ("minute", pa.int64()),  # epoch seconds of the minute start
        ("content_id", pa.string()),
        ("event_type", pa.string()),
        ("events", pa.int64()),
        ("watch_seconds", pa.float64()),
        ("users", pa.list_(pa.uint64())),
        ("sessions", pa.list_(pa.uint64())),
        ("last_event_ms", pa.int64()),
    ]
)
SECONDS_SCHEMA = pa.schema([("second", pa.int64()), ("events", pa.int64())])

_SHARD = "xxHash64(content_id) % {shards:UInt64} = {shard:UInt64}"

_DETAIL_SQL = f"""
SELECT toInt64(toUnixTimestamp(minute)) AS minute, content_id, toString(event_type) AS event_type,
       toInt64(sum(events)) AS events, sum(watch_seconds) AS watch_seconds,
       groupUniqArrayMerge(users) AS users, groupUniqArrayMerge(sessions) AS sessions,
       toInt64(toUnixTimestamp64Milli(max(last_event))) AS last_event_ms
FROM realtime_minutes
WHERE minute >= toDateTime({{since:Int64}}, 'UTC') AND {_SHARD}
GROUP BY minute, content_id, event_type
"""

# Older than the detail window only the activity matters (for trending baselines): no id sets.
_HISTORY_SQL = f"""
SELECT toInt64(toUnixTimestamp(minute)) AS minute, content_id, toString(event_type) AS event_type,
       toInt64(sum(events)) AS events, sum(watch_seconds) AS watch_seconds,
       CAST([], 'Array(UInt64)') AS users, CAST([], 'Array(UInt64)') AS sessions,
       toInt64(toUnixTimestamp64Milli(max(last_event))) AS last_event_ms
FROM realtime_minutes
WHERE minute >= toDateTime({{since:Int64}}, 'UTC') AND minute < toDateTime({{until:Int64}}, 'UTC')
  AND content_id != '' AND {_SHARD}
GROUP BY minute, content_id, event_type
"""

_SECONDS_SQL = f"""
SELECT toInt64(toUnixTimestamp(timestamp)) AS second, toInt64(count()) AS events
FROM events
WHERE timestamp >= fromUnixTimestamp64Milli({{since_ms:Int64}}, 'UTC') AND {_SHARD}
GROUP BY second
"""


def _as(table: pa.Table, schema: pa.Schema) -> pa.Table:
    return pa.table([table.column(name).cast(schema.field(name).type) for name in schema.names], schema=schema)


def shard_snapshot(client: Client, *, shard: int, shards: int, now: float) -> tuple[pa.Table, pa.Table, pa.Table]:
    """(detail rows of the last 24 h, activity rows of the 48 h before, per-second counts of the last 5 min)."""
    minute = int(now // 60) * 60
    detail_since = minute - (DETAIL_MINUTES - 1) * 60
    history_since = minute - (HISTORY_MINUTES - 1) * 60
    params = {"shard": shard, "shards": shards}
    detail = client.query_arrow(_DETAIL_SQL, parameters={**params, "since": detail_since})
    history = client.query_arrow(_HISTORY_SQL, parameters={**params, "since": history_since, "until": detail_since})
    seconds = client.query_arrow(_SECONDS_SQL, parameters={**params, "since_ms": (int(now) - SECONDS_KEPT) * 1000})
    return _as(detail, DELTA_SCHEMA), _as(history, DELTA_SCHEMA), _as(seconds, SECONDS_SCHEMA)
