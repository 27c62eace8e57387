"""The minute table (migration 002) and the live deltas agree on every figure, on real chDB."""

import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from semantic.live_deltas import shard_deltas
from storage.events import EVENT_SCHEMA, ClickHouseEvents
from storage.realtime_minutes import shard_snapshot

PROPERTIES = [
    '{"duration_seconds": 12.5}',
    "{}",
    '{"duration_seconds": "9"}',
    '{"duration_seconds": -4}',
    '{"duration_seconds": 100000}',
    '{"duration_seconds": true}',
    '{"other": {"duration_seconds": 3}}',
]


# The service's own telemetry (its requests, its statements) and a platform service's request that
# looks alike but for its resource: only the last counts live.
OWN = [("api_request", "service", "analytics"), ("database_query", "database", "clickhouse")]
PLATFORM = [("api_request", "service", "catalog"), ("api_request", "", "analytics")]


def _events(n: int, start: datetime) -> pa.Table:
    types = ["content_view", "content_play", "content_share", "search_query"]
    kinds = [(types[i % 4], "", "") for i in range(n)]
    # Every 10th row is one of the four request kinds above.
    for i in range(0, n, 10):
        kinds[i] = (OWN + PLATFORM)[(i // 10) % 4]
    cols = {name: [""] * n for name in EVENT_SCHEMA.names}
    cols.update(
        id=[f"e{i}" for i in range(n)],
        event_type=[k[0] for k in kinds],
        resource_type=[k[1] for k in kinds],
        resource_id=[k[2] for k in kinds],
        event_category=["content"] * n,
        timestamp=[start + timedelta(seconds=7 * i) for i in range(n)],
        processed_at=[start] * n,
        content_id=["" if i % 9 == 0 else f"c{i % 13}" for i in range(n)],
        user_id=["" if i % 5 == 0 else f"u{i % 17}" for i in range(n)],
        session_id=[f"s{i % 4}" for i in range(n)],
        properties=[PROPERTIES[i % len(PROPERTIES)] for i in range(n)],
    )
    return pa.table(cols, schema=EVENT_SCHEMA)


def _normalized(table: pa.Table) -> list[dict]:
    out = []
    for row in table.to_pylist():
        row["users"] = sorted(row["users"])
        row["sessions"] = sorted(row["sessions"])
        row["watch_seconds"] = round(row["watch_seconds"], 6)
        out.append(row)
    return sorted(out, key=lambda r: (r["minute"], r["content_id"], r["event_type"]))


def test_snapshot_equals_deltas(chdb_dir: Path) -> None:
    store = ClickHouseEvents.open(None, chdb_path=chdb_dir, database=f"rt_{secrets.token_hex(4)}", retention_days=730)
    start = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
    events = _events(600, start)
    store.insert(events.slice(0, 250), "t1")
    store.insert(events.slice(250), "t2")  # two inserts: the table merges their partial rows
    deltas = shard_deltas(events, 2)
    counted = sum(r["events"] for d in deltas.values() for r in d.rows.to_pylist())
    kinds = zip(*(events.column(c).to_pylist() for c in ("event_type", "resource_type", "resource_id")), strict=True)
    live = [(t, rt, ri) not in OWN for t, rt, ri in kinds]
    assert live.count(False) == 30 and counted == live.count(True)
    for shard in range(2):
        detail, history, seconds = shard_snapshot(store.client, shard=shard, shards=2, now=time.time())
        assert _normalized(detail) == _normalized(deltas[shard].rows)
        assert history.num_rows == 0
        assert seconds.num_rows == 0  # nothing in the last five minutes
    watch = sum(r["watch_seconds"] for d in deltas.values() for r in d.rows.to_pylist())
    # Numbers only, clamped to 0..86400; strings, booleans and nested keys count 0.
    per_property = {0: 12.5, 4: 86400.0}
    expected = sum(per_property.get(i % len(PROPERTIES), 0.0) for i in range(600) if live[i])
    assert round(watch, 3) == round(expected, 3)
    store.close()
