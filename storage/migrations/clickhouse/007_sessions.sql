-- One row per session id and month of its last event (after merges): its user, first and last
-- event, events and pages. Sessions are attributed to the time of their first event, in any
-- timezone, so this table answers session questions for every window without time buckets; the
-- partitions let a window skip older history.
CREATE TABLE IF NOT EXISTS session_rollup
(
    session_id String,
    user_id SimpleAggregateFunction(max, String),
    started SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    ended SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    events SimpleAggregateFunction(sum, UInt64),
    pages SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(ended)
ORDER BY session_id
TTL toDateTime(ended) + INTERVAL ${retention_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS session_rollup_mv TO session_rollup AS
SELECT
    session_id,
    max(user_id) AS user_id,
    min(timestamp) AS started,
    max(timestamp) AS ended,
    count() AS events,
    countIf(event_type IN ('content_view', 'search_query', 'page_view')) AS pages
FROM events_rollup_feed
WHERE session_id != ''
GROUP BY session_id;

INSERT INTO session_rollup
SELECT
    session_id,
    max(user_id) AS user_id,
    min(timestamp) AS started,
    max(timestamp) AS ended,
    count() AS events,
    countIf(event_type IN ('content_view', 'search_query', 'page_view')) AS pages
FROM events
WHERE session_id != ''
GROUP BY session_id
