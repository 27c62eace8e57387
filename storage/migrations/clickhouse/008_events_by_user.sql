-- The events that carry a user id, in a narrow copy sorted by user and time, so one user's
-- analytics and journey read only that user's rows (events are sorted by content). A copy, not an
-- aggregate: per-user answers from it equal the answers from raw events. duration_seconds is a
-- number in properties (0 if absent or not a number), clamped to 0..86400 like the live counters.
CREATE TABLE IF NOT EXISTS events_by_user
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
PARTITION BY toYYYYMM(timestamp)
ORDER BY (user_id, timestamp, id)
TTL toDateTime(timestamp) + INTERVAL ${retention_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS events_by_user_mv TO events_by_user AS
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

INSERT INTO events_by_user
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
    FROM events
    WHERE user_id != ''
)
