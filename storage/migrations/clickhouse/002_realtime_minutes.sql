-- Per-minute aggregates behind the live counters: one row per (minute, content, event type).
-- Filled by a materialized view in the same insert as the events themselves, so it holds
-- exactly what `events` holds. A counter shard rebuilds its window from it after a restart.
-- users/sessions keep the xxHash64 of each distinct id (the shards' sketches use the same hashes).
-- Kept 30 days: long-range questions go to the hourly and daily rollups.
CREATE TABLE IF NOT EXISTS realtime_minutes
(
    minute DateTime('UTC'),
    content_id String,
    event_type LowCardinality(String),
    events SimpleAggregateFunction(sum, UInt64),
    watch_seconds SimpleAggregateFunction(sum, Float64),
    users AggregateFunction(groupUniqArray, UInt64),
    sessions AggregateFunction(groupUniqArray, UInt64),
    last_event SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMMDD(minute)
ORDER BY (minute, content_id, event_type)
TTL minute + INTERVAL 30 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS realtime_minutes_mv TO realtime_minutes AS
SELECT
    toStartOfMinute(timestamp) AS minute,
    content_id,
    event_type,
    count() AS events,
    sum(least(greatest(if(JSONType(properties, 'duration_seconds') IN ('Int64', 'UInt64', 'Double'),
                           JSONExtractFloat(properties, 'duration_seconds'), 0), 0), 86400)) AS watch_seconds,
    groupUniqArrayStateIf(xxHash64(user_id), user_id != '') AS users,
    groupUniqArrayStateIf(xxHash64(session_id), session_id != '') AS sessions,
    max(timestamp) AS last_event
FROM events
GROUP BY minute, content_id, event_type;

-- Backfill: the view only sees new inserts.
INSERT INTO realtime_minutes
SELECT
    toStartOfMinute(timestamp) AS minute,
    content_id,
    event_type,
    count() AS events,
    sum(least(greatest(if(JSONType(properties, 'duration_seconds') IN ('Int64', 'UInt64', 'Double'),
                           JSONExtractFloat(properties, 'duration_seconds'), 0), 0), 86400)) AS watch_seconds,
    groupUniqArrayStateIf(xxHash64(user_id), user_id != '') AS users,
    groupUniqArrayStateIf(xxHash64(session_id), session_id != '') AS sessions,
    max(timestamp) AS last_event
FROM events
WHERE timestamp >= now() - INTERVAL 30 DAY
GROUP BY minute, content_id, event_type
