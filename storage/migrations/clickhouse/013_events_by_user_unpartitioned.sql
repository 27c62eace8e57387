-- events_by_user without monthly partitions. One user's analytics read all of that user's history
-- (first visit, return visits), and a read pays for every part it opens, about a millisecond each
-- on chDB; monthly partitions put at least one part per month of retention into every such read,
-- and keep merges from combining parts across months. The retention TTL removes old rows in merges.
-- Rebuilt by copying the old table (rows unchanged), then the view is made again as in 008. It
-- runs after every stored insert was fed (storage/events.py), and a re-run after a crash starts
-- again from whichever table then holds the rows.
DROP VIEW IF EXISTS events_by_user_mv;

DROP TABLE IF EXISTS events_by_user_unpartitioned SYNC;

CREATE TABLE events_by_user_unpartitioned
(
    user_id String,
    timestamp DateTime64(3, 'UTC'),
    id String,
    event_type LowCardinality(String),
    session_id String,
    content_id String,
    device_type LowCardinality(String),
    browser LowCardinality(String),
    traffic_source LowCardinality(String),
    country LowCardinality(String),
    duration_seconds Float64,
    query String
)
ENGINE = MergeTree
ORDER BY (user_id, timestamp, id)
TTL toDateTime(timestamp) + INTERVAL ${retention_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

INSERT INTO events_by_user_unpartitioned SELECT * FROM events_by_user;

EXCHANGE TABLES events_by_user AND events_by_user_unpartitioned;

DROP TABLE events_by_user_unpartitioned SYNC;

CREATE MATERIALIZED VIEW events_by_user_mv TO events_by_user AS
SELECT
    user_id,
    timestamp,
    id,
    event_type,
    session_id,
    content_key AS content_id,
    device_type,
    browser,
    traffic_source,
    country,
    least(greatest(if(JSONType(properties, 'duration_seconds') IN ('Int64', 'UInt64', 'Double'),
                      JSONExtractFloat(properties, 'duration_seconds'), 0), 0), 86400) AS duration_seconds,
    lower(trimBoth(JSONExtractString(properties, 'query'))) AS query
FROM
(
    SELECT *, if(content_id != '', content_id, JSONExtractString(properties, 'content_id')) AS content_key
    FROM events_rollup_feed
    WHERE user_id != ''
);
