"""Reads of the per-minute aggregates (migration 002) that rebuild a counter shard's window.

Synchronous, on a clickhouse-connect client: the event store actor runs these on its write
thread so a snapshot lines up exactly with the inserts before it.
"""

from __future__ import annotations

import pyarrow as pa
from clickhouse_connect.driver.client import Client

from semantic.live_counters import DELTA_SCHEMA, DETAIL_MINUTES, HISTORY_MINUTES, SECONDS_KEPT, SECONDS_SCHEMA

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

