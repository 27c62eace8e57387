-- Content rollups: per content and UTC hour, and per content and UTC day, fed from events by
-- materialized views (and backfilled from the events already stored). The columns and the keys
-- (content_key, viewer_key, session_key) are defined in semantic/catalog.py and the README's
-- "Metric definitions"; the raw-event fallback computes exactly the same expressions.
CREATE TABLE IF NOT EXISTS content_hourly
(
    content_id String,
    hour DateTime('UTC'),
    views SimpleAggregateFunction(sum, UInt64),
    viewers AggregateFunction(uniqExact, String),
    playback_sessions AggregateFunction(uniqExact, String),
    completed_sessions AggregateFunction(uniqExact, String),
    likes SimpleAggregateFunction(sum, UInt64),
    shares SimpleAggregateFunction(sum, UInt64),
    bookmarks SimpleAggregateFunction(sum, UInt64),
    comments SimpleAggregateFunction(sum, UInt64),
    search_impressions SimpleAggregateFunction(sum, UInt64),
    search_clicks SimpleAggregateFunction(sum, UInt64),
    recommendation_impressions SimpleAggregateFunction(sum, UInt64),
    recommendation_clicks SimpleAggregateFunction(sum, UInt64),
    direct_views SimpleAggregateFunction(sum, UInt64),
    search_views SimpleAggregateFunction(sum, UInt64),
    recommendation_views SimpleAggregateFunction(sum, UInt64),
    internal_views SimpleAggregateFunction(sum, UInt64),
    external_views SimpleAggregateFunction(sum, UInt64),
    desktop_views SimpleAggregateFunction(sum, UInt64),
    mobile_views SimpleAggregateFunction(sum, UInt64),
    tablet_views SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (content_id, hour)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS content_hourly_mv TO content_hourly AS
SELECT
    content_key AS content_id,
    toStartOfHour(timestamp) AS hour,
    countIf(event_type = 'content_view') AS views,
    uniqExactStateIf(viewer_key, event_type = 'content_view') AS viewers,
    uniqExactStateIf(session_key, event_type IN ('content_view', 'content_play', 'content_complete')) AS playback_sessions,
    uniqExactStateIf(session_key, event_type = 'content_complete') AS completed_sessions,
    countIf(event_type = 'content_like') AS likes,
    countIf(event_type = 'content_share') AS shares,
    countIf(event_type = 'content_bookmark') AS bookmarks,
    countIf(event_type = 'content_comment') AS comments,
    countIf(event_type = 'search_impression') AS search_impressions,
    countIf(event_type = 'search_result_click') AS search_clicks,
    countIf(event_type = 'recommendation_impression') AS recommendation_impressions,
    countIf(event_type = 'recommendation_click') AS recommendation_clicks,
    countIf(event_type = 'content_view' AND traffic_source = 'direct') AS direct_views,
    countIf(event_type = 'content_view' AND traffic_source = 'search') AS search_views,
    countIf(event_type = 'content_view' AND traffic_source = 'recommendation') AS recommendation_views,
    countIf(event_type = 'content_view' AND traffic_source = 'internal') AS internal_views,
    countIf(event_type = 'content_view' AND traffic_source = 'external') AS external_views,
    countIf(event_type = 'content_view' AND device_type = 'desktop') AS desktop_views,
    countIf(event_type = 'content_view' AND device_type = 'mobile') AS mobile_views,
    countIf(event_type = 'content_view' AND device_type = 'tablet') AS tablet_views
FROM
(
    SELECT
        timestamp, event_type, traffic_source, device_type,
        if(content_id != '', content_id, JSONExtractString(properties, 'content_id')) AS content_key,
        if(user_id != '', user_id, if(session_id != '', concat('session:', session_id), concat('event:', id))) AS viewer_key,
        if(session_id != '', session_id, if(user_id != '', concat('user:', user_id), concat('event:', id))) AS session_key
    FROM events_rollup_feed
    WHERE event_type IN ('content_view', 'content_play', 'content_complete', 'content_like', 'content_share',
                         'content_bookmark', 'content_comment', 'search_impression', 'search_result_click',
                         'recommendation_impression', 'recommendation_click')
)
WHERE content_key != ''
GROUP BY content_id, hour;

INSERT INTO content_hourly
SELECT
    content_key AS content_id,
    toStartOfHour(timestamp) AS hour,
    countIf(event_type = 'content_view') AS views,
    uniqExactStateIf(viewer_key, event_type = 'content_view') AS viewers,
    uniqExactStateIf(session_key, event_type IN ('content_view', 'content_play', 'content_complete')) AS playback_sessions,
    uniqExactStateIf(session_key, event_type = 'content_complete') AS completed_sessions,
    countIf(event_type = 'content_like') AS likes,
    countIf(event_type = 'content_share') AS shares,
    countIf(event_type = 'content_bookmark') AS bookmarks,
    countIf(event_type = 'content_comment') AS comments,
    countIf(event_type = 'search_impression') AS search_impressions,
    countIf(event_type = 'search_result_click') AS search_clicks,
    countIf(event_type = 'recommendation_impression') AS recommendation_impressions,
    countIf(event_type = 'recommendation_click') AS recommendation_clicks,
    countIf(event_type = 'content_view' AND traffic_source = 'direct') AS direct_views,
    countIf(event_type = 'content_view' AND traffic_source = 'search') AS search_views,
    countIf(event_type = 'content_view' AND traffic_source = 'recommendation') AS recommendation_views,
    countIf(event_type = 'content_view' AND traffic_source = 'internal') AS internal_views,
    countIf(event_type = 'content_view' AND traffic_source = 'external') AS external_views,
    countIf(event_type = 'content_view' AND device_type = 'desktop') AS desktop_views,
    countIf(event_type = 'content_view' AND device_type = 'mobile') AS mobile_views,
    countIf(event_type = 'content_view' AND device_type = 'tablet') AS tablet_views
FROM
(
    SELECT
        timestamp, event_type, traffic_source, device_type,
        if(content_id != '', content_id, JSONExtractString(properties, 'content_id')) AS content_key,
        if(user_id != '', user_id, if(session_id != '', concat('session:', session_id), concat('event:', id))) AS viewer_key,
        if(session_id != '', session_id, if(user_id != '', concat('user:', user_id), concat('event:', id))) AS session_key
    FROM events
    WHERE event_type IN ('content_view', 'content_play', 'content_complete', 'content_like', 'content_share',
                         'content_bookmark', 'content_comment', 'search_impression', 'search_result_click',
                         'recommendation_impression', 'recommendation_click')
)
WHERE content_key != ''
GROUP BY content_id, hour;

CREATE TABLE IF NOT EXISTS content_daily
(
    content_id String,
    day Date,
    views SimpleAggregateFunction(sum, UInt64),
    viewers AggregateFunction(uniqExact, String),
    playback_sessions AggregateFunction(uniqExact, String),
    completed_sessions AggregateFunction(uniqExact, String),
    likes SimpleAggregateFunction(sum, UInt64),
    shares SimpleAggregateFunction(sum, UInt64),
    bookmarks SimpleAggregateFunction(sum, UInt64),
    comments SimpleAggregateFunction(sum, UInt64),
    search_impressions SimpleAggregateFunction(sum, UInt64),
    search_clicks SimpleAggregateFunction(sum, UInt64),
    recommendation_impressions SimpleAggregateFunction(sum, UInt64),
    recommendation_clicks SimpleAggregateFunction(sum, UInt64),
    direct_views SimpleAggregateFunction(sum, UInt64),
    search_views SimpleAggregateFunction(sum, UInt64),
    recommendation_views SimpleAggregateFunction(sum, UInt64),
    internal_views SimpleAggregateFunction(sum, UInt64),
    external_views SimpleAggregateFunction(sum, UInt64),
    desktop_views SimpleAggregateFunction(sum, UInt64),
    mobile_views SimpleAggregateFunction(sum, UInt64),
    tablet_views SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (content_id, day)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS content_daily_mv TO content_daily AS
SELECT
    content_key AS content_id,
    toDate(timestamp) AS day,
    countIf(event_type = 'content_view') AS views,
    uniqExactStateIf(viewer_key, event_type = 'content_view') AS viewers,
    uniqExactStateIf(session_key, event_type IN ('content_view', 'content_play', 'content_complete')) AS playback_sessions,
    uniqExactStateIf(session_key, event_type = 'content_complete') AS completed_sessions,
    countIf(event_type = 'content_like') AS likes,
    countIf(event_type = 'content_share') AS shares,
    countIf(event_type = 'content_bookmark') AS bookmarks,
    countIf(event_type = 'content_comment') AS comments,
    countIf(event_type = 'search_impression') AS search_impressions,
    countIf(event_type = 'search_result_click') AS search_clicks,
    countIf(event_type = 'recommendation_impression') AS recommendation_impressions,
    countIf(event_type = 'recommendation_click') AS recommendation_clicks,
    countIf(event_type = 'content_view' AND traffic_source = 'direct') AS direct_views,
    countIf(event_type = 'content_view' AND traffic_source = 'search') AS search_views,
    countIf(event_type = 'content_view' AND traffic_source = 'recommendation') AS recommendation_views,
    countIf(event_type = 'content_view' AND traffic_source = 'internal') AS internal_views,
    countIf(event_type = 'content_view' AND traffic_source = 'external') AS external_views,
    countIf(event_type = 'content_view' AND device_type = 'desktop') AS desktop_views,
    countIf(event_type = 'content_view' AND device_type = 'mobile') AS mobile_views,
    countIf(event_type = 'content_view' AND device_type = 'tablet') AS tablet_views
FROM
(
    SELECT
        timestamp, event_type, traffic_source, device_type,
        if(content_id != '', content_id, JSONExtractString(properties, 'content_id')) AS content_key,
        if(user_id != '', user_id, if(session_id != '', concat('session:', session_id), concat('event:', id))) AS viewer_key,
        if(session_id != '', session_id, if(user_id != '', concat('user:', user_id), concat('event:', id))) AS session_key
    FROM events_rollup_feed
    WHERE event_type IN ('content_view', 'content_play', 'content_complete', 'content_like', 'content_share',
                         'content_bookmark', 'content_comment', 'search_impression', 'search_result_click',
                         'recommendation_impression', 'recommendation_click')
)
WHERE content_key != ''
GROUP BY content_id, day;

INSERT INTO content_daily
SELECT
    content_key AS content_id,
    toDate(timestamp) AS day,
    countIf(event_type = 'content_view') AS views,
    uniqExactStateIf(viewer_key, event_type = 'content_view') AS viewers,
    uniqExactStateIf(session_key, event_type IN ('content_view', 'content_play', 'content_complete')) AS playback_sessions,
    uniqExactStateIf(session_key, event_type = 'content_complete') AS completed_sessions,
    countIf(event_type = 'content_like') AS likes,
    countIf(event_type = 'content_share') AS shares,
    countIf(event_type = 'content_bookmark') AS bookmarks,
    countIf(event_type = 'content_comment') AS comments,
    countIf(event_type = 'search_impression') AS search_impressions,
    countIf(event_type = 'search_result_click') AS search_clicks,
    countIf(event_type = 'recommendation_impression') AS recommendation_impressions,
    countIf(event_type = 'recommendation_click') AS recommendation_clicks,
    countIf(event_type = 'content_view' AND traffic_source = 'direct') AS direct_views,
    countIf(event_type = 'content_view' AND traffic_source = 'search') AS search_views,
    countIf(event_type = 'content_view' AND traffic_source = 'recommendation') AS recommendation_views,
    countIf(event_type = 'content_view' AND traffic_source = 'internal') AS internal_views,
    countIf(event_type = 'content_view' AND traffic_source = 'external') AS external_views,
    countIf(event_type = 'content_view' AND device_type = 'desktop') AS desktop_views,
    countIf(event_type = 'content_view' AND device_type = 'mobile') AS mobile_views,
    countIf(event_type = 'content_view' AND device_type = 'tablet') AS tablet_views
FROM
(
    SELECT
        timestamp, event_type, traffic_source, device_type,
        if(content_id != '', content_id, JSONExtractString(properties, 'content_id')) AS content_key,
        if(user_id != '', user_id, if(session_id != '', concat('session:', session_id), concat('event:', id))) AS viewer_key,
        if(session_id != '', session_id, if(user_id != '', concat('user:', user_id), concat('event:', id))) AS session_key
    FROM events
    WHERE event_type IN ('content_view', 'content_play', 'content_complete', 'content_like', 'content_share',
                         'content_bookmark', 'content_comment', 'search_impression', 'search_result_click',
                         'recommendation_impression', 'recommendation_click')
)
WHERE content_key != ''
GROUP BY content_id, day
