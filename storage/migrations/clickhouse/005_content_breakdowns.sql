-- Views and unique viewers of each content per UTC day, broken down by traffic source, country,
-- region, device type, browser and referrer host (one row per dimension value; '' = not known).
CREATE TABLE IF NOT EXISTS content_breakdown_daily
(
    content_id String,
    day Date,
    dimension LowCardinality(String),
    value String,
    views SimpleAggregateFunction(sum, UInt64),
    viewers AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (content_id, day, dimension, value)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS content_breakdown_daily_mv TO content_breakdown_daily AS
SELECT
    content_key AS content_id,
    toDate(timestamp) AS day,
    pair.1 AS dimension,
    pair.2 AS value,
    count() AS views,
    uniqExactState(viewer_key) AS viewers
FROM
(
    SELECT
        timestamp,
        if(content_id != '', content_id, JSONExtractString(properties, 'content_id')) AS content_key,
        if(user_id != '', user_id, if(session_id != '', concat('session:', session_id), concat('event:', id))) AS viewer_key,
        [('traffic_source', toString(traffic_source)), ('country', toString(country)), ('region', toString(region)),
         ('device_type', toString(device_type)), ('browser', toString(browser)), ('referrer_host', toString(referrer_host))] AS pairs
    FROM events_rollup_feed
    WHERE event_type = 'content_view'
)
ARRAY JOIN pairs AS pair
WHERE content_key != ''
GROUP BY content_id, day, dimension, value;

INSERT INTO content_breakdown_daily
SELECT
    content_key AS content_id,
    toDate(timestamp) AS day,
    pair.1 AS dimension,
    pair.2 AS value,
    count() AS views,
    uniqExactState(viewer_key) AS viewers
FROM
(
    SELECT
        timestamp,
        if(content_id != '', content_id, JSONExtractString(properties, 'content_id')) AS content_key,
        if(user_id != '', user_id, if(session_id != '', concat('session:', session_id), concat('event:', id))) AS viewer_key,
        [('traffic_source', toString(traffic_source)), ('country', toString(country)), ('region', toString(region)),
         ('device_type', toString(device_type)), ('browser', toString(browser)), ('referrer_host', toString(referrer_host))] AS pairs
    FROM events
    WHERE event_type = 'content_view'
)
ARRAY JOIN pairs AS pair
WHERE content_key != ''
GROUP BY content_id, day, dimension, value
