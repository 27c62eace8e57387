-- Per user and UTC day: activity counts and the first and last event. Serves
-- DAU/WAU/MAU, segments, cohorts and retention. Holds user ids, so it follows the events' retention.
CREATE TABLE IF NOT EXISTS user_daily
(
    day Date,
    user_id String,
    events SimpleAggregateFunction(sum, UInt64),
    views SimpleAggregateFunction(sum, UInt64),
    completes SimpleAggregateFunction(sum, UInt64),
    searches SimpleAggregateFunction(sum, UInt64),
    likes SimpleAggregateFunction(sum, UInt64),
    shares SimpleAggregateFunction(sum, UInt64),
    bookmarks SimpleAggregateFunction(sum, UInt64),
    comments SimpleAggregateFunction(sum, UInt64),
    pages SimpleAggregateFunction(sum, UInt64),
    first_seen SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_seen SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, user_id)
TTL day + INTERVAL ${retention_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS user_daily_mv TO user_daily AS
SELECT
    toDate(timestamp) AS day,
    user_id,
    count() AS events,
    countIf(event_type = 'content_view') AS views,
    countIf(event_type = 'content_complete') AS completes,
    countIf(event_type = 'search_query') AS searches,
    countIf(event_type = 'content_like') AS likes,
    countIf(event_type = 'content_share') AS shares,
    countIf(event_type = 'content_bookmark') AS bookmarks,
    countIf(event_type = 'content_comment') AS comments,
    countIf(event_type IN ('content_view', 'search_query', 'page_view')) AS pages,
    min(timestamp) AS first_seen,
    max(timestamp) AS last_seen
FROM events_rollup_feed
WHERE user_id != ''
GROUP BY day, user_id;

INSERT INTO user_daily
SELECT
    toDate(timestamp) AS day,
    user_id,
    count() AS events,
    countIf(event_type = 'content_view') AS views,
    countIf(event_type = 'content_complete') AS completes,
    countIf(event_type = 'search_query') AS searches,
    countIf(event_type = 'content_like') AS likes,
    countIf(event_type = 'content_share') AS shares,
    countIf(event_type = 'content_bookmark') AS bookmarks,
    countIf(event_type = 'content_comment') AS comments,
    countIf(event_type IN ('content_view', 'search_query', 'page_view')) AS pages,
    min(timestamp) AS first_seen,
    max(timestamp) AS last_seen
FROM events
WHERE user_id != ''
GROUP BY day, user_id
