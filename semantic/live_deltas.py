"""Stored events -> per-shard minute deltas for the live counters.

Mirrors the materialized view of migration 002 (same grouping, same hashes, same watch-time
rule), so a delta and the minute table agree on every figure. One delta per shard per
insert: the counters never see single events.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from core.taxonomy import API_REQUEST, DATABASE_QUERY
from semantic.live_counters import MAX_WATCH_SECONDS
from semantic.self_telemetry import SERVICE as SELF_TELEMETRY_SERVICE
from semantic.user_sketch import hash_text
from storage.realtime_minutes import DELTA_SCHEMA, SECONDS_SCHEMA


def shard_of(content_id: str, shards: int) -> int:
    """The shard that owns a content id (ClickHouse: ``xxHash64(content_id) % shards``)."""
    return hash_text(content_id) % shards


@dataclass(slots=True)
class ShardDelta:
    rows: pa.Table  # DELTA_SCHEMA
    seconds: pa.Table  # SECONDS_SCHEMA


def _hashes(column: pa.ChunkedArray) -> pa.Array:
    """xxHash64 of every value, null for empty strings; each distinct value is hashed once."""
    encoded = pc.dictionary_encode(column).combine_chunks()
    values = encoded.dictionary.to_pylist()
    table = np.array([hash_text(v) if v else 0 for v in values], dtype=np.uint64)
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    hashed = table[indices] if len(values) else np.empty(0, np.uint64)
    empty = np.array([not v for v in values], dtype=bool)[indices] if len(values) else np.empty(0, bool)
    return pa.array(hashed, type=pa.uint64(), mask=empty)


def watch_seconds(properties: pa.ChunkedArray) -> np.ndarray:
    """``properties.duration_seconds`` when it is a JSON number, clamped to 0..86400; else 0."""
    out = np.zeros(len(properties), dtype=np.float64)
    candidates = np.flatnonzero(pc.match_substring(properties, '"duration_seconds"').to_numpy(zero_copy_only=False))
    if candidates.size:
        texts = pc.take(properties, pa.array(candidates)).to_pylist()
        for pos, text in zip(candidates, texts, strict=True):
            try:
                value = orjson.loads(text).get("duration_seconds")
            except (orjson.JSONDecodeError, AttributeError):
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[pos] = min(max(float(value), 0.0), MAX_WATCH_SECONDS)
    return out


def epoch_millis(timestamps: pa.ChunkedArray) -> np.ndarray:
    """Milliseconds since the epoch, whatever the timestamp unit of the column."""
    as_ms = pc.cast(timestamps, pa.timestamp("ms", tz="UTC"), safe=False)
    return as_ms.cast(pa.int64()).to_numpy()


def own_telemetry(events: pa.Table) -> pa.ChunkedArray:
    """Which rows are this service watching itself: its requests (api_request of resource
    service/analytics) and database statements. The live counters leave them out, as the minute
    table's view does (migration 021)."""
    event_type = events.column("event_type")
    own_request = pc.and_(
        pc.and_(pc.equal(event_type, API_REQUEST), pc.equal(events.column("resource_type"), "service")),
        pc.equal(events.column("resource_id"), SELF_TELEMETRY_SERVICE),
    )
    return pc.or_(pc.equal(event_type, DATABASE_QUERY), own_request)


def shard_deltas(events: pa.Table, shards: int) -> dict[int, ShardDelta]:
    """Group stored events (EVENT_SCHEMA) into one delta per shard that has any."""
    if events.num_rows:
        events = events.filter(pc.invert(pc.fill_null(own_telemetry(events), False)))
    if not events.num_rows:
        return {}
    content = pc.dictionary_encode(events.column("content_id")).combine_chunks()
    owners = np.array([shard_of(v, shards) for v in content.dictionary.to_pylist()], dtype=np.int64)
    shard = owners[content.indices.to_numpy(zero_copy_only=False)]
    millis = epoch_millis(events.column("timestamp"))
    work = pa.table(
        {
            "shard": shard,
            "minute": (millis // 60_000) * 60,
            "second": millis // 1000,
            "content_id": events.column("content_id"),
            "event_type": events.column("event_type"),
            "watch_seconds": watch_seconds(events.column("properties")),
            "user": _hashes(events.column("user_id")),
            "session": _hashes(events.column("session_id")),
            "ts": millis,
        }
    )
    only_valid = pc.CountOptions(mode="only_valid")
    grouped = work.group_by(["shard", "minute", "content_id", "event_type"]).aggregate(
        [
            ("ts", "count"),
            ("watch_seconds", "sum"),
            ("user", "distinct", only_valid),
            ("session", "distinct", only_valid),
            ("ts", "max"),
        ]
    )
    per_second = work.group_by(["shard", "second"]).aggregate([("ts", "count")])
    out: dict[int, ShardDelta] = {}
    for k in np.unique(shard).tolist():
        g = grouped.filter(pc.equal(grouped.column("shard"), k))
        s = per_second.filter(pc.equal(per_second.column("shard"), k))
        rows = pa.table(
            [
                g.column("minute"),
                g.column("content_id"),
                g.column("event_type"),
                g.column("ts_count"),
                g.column("watch_seconds_sum"),
                g.column("user_distinct"),
                g.column("session_distinct"),
                g.column("ts_max"),
            ],
            schema=DELTA_SCHEMA,
        )
        seconds = pa.table([s.column("second"), s.column("ts_count")], schema=SECONDS_SCHEMA)
        out[int(k)] = ShardDelta(rows=rows, seconds=seconds)
    return out
