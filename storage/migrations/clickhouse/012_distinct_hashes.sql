-- Distinct counts over 64-bit hashes: the uniqExact states hold cityHash64(key) (UInt64) instead of
-- String keys (kept as 128-bit hashes), and merging them, most of the content report's CPU, got
-- cheaper (22% less CPU for its totals statement on 2M events). Two of n distinct keys share a
-- hash with chance about n^2/2^65 (3e-10 for 1e5); shared ones count once.
-- String states cannot be converted, so each table and its view are rebuilt and refilled from
-- events as 004, 005 and 009 did (new databases too: all of them end with this schema). It runs
-- after every stored insert was fed (storage/events.py), so the refill counts each event once.
-- Rows of events the retention TTL already removed cannot be refilled.

-- content_hourly and content_daily: as 004, with hashed keys.
DROP VIEW IF EXISTS content_hourly_mv;

DROP TABLE IF EXISTS content_hourly SYNC;

CREATE TABLE content_hourly
(
    content_id String,
    hour DateTime('UTC'),
    views SimpleAggregateFunction(sum, UInt64),
    viewers AggregateFunction(uniqExact, UInt64),
    playback_sessions AggregateFunction(uniqExact, UInt64),
    completed_sessions AggregateFunction(uniqExact, UInt64),
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

CREATE MATERIALIZED VIEW content_hourly_mv TO content_hourly AS
SELECT
    content_key AS content_id,
    toStartOfHour(timestamp) AS hour,
    countIf(event_type = 'content_view') AS views,
    uniqExactStateIf(cityHash64(viewer_key), event_type = 'content_view') AS viewers,
    uniqExactStateIf(cityHash64(session_key), event_type IN ('content_view', 'content_play', 'content_complete')) AS playback_sessions,
    uniqExactStateIf(cityHash64(session_key), event_type = 'content_complete') AS completed_sessions,
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
    uniqExactStateIf(cityHash64(viewer_key), event_type = 'content_view') AS viewers,
    uniqExactStateIf(cityHash64(session_key), event_type IN ('content_view', 'content_play', 'content_complete')) AS playback_sessions,
    uniqExactStateIf(cityHash64(session_key), event_type = 'content_complete') AS completed_sessions,
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

DROP VIEW IF EXISTS content_daily_mv;

DROP TABLE IF EXISTS content_daily SYNC;

CREATE TABLE content_daily
(
    content_id String,
    day Date,
    views SimpleAggregateFunction(sum, UInt64),
    viewers AggregateFunction(uniqExact, UInt64),
    playback_sessions AggregateFunction(uniqExact, UInt64),
    completed_sessions AggregateFunction(uniqExact, UInt64),
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

CREATE MATERIALIZED VIEW content_daily_mv TO content_daily AS
SELECT
    content_key AS content_id,
    toDate(timestamp) AS day,
    countIf(event_type = 'content_view') AS views,
    uniqExactStateIf(cityHash64(viewer_key), event_type = 'content_view') AS viewers,
    uniqExactStateIf(cityHash64(session_key), event_type IN ('content_view', 'content_play', 'content_complete')) AS playback_sessions,
    uniqExactStateIf(cityHash64(session_key), event_type = 'content_complete') AS completed_sessions,
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
    uniqExactStateIf(cityHash64(viewer_key), event_type = 'content_view') AS viewers,
    uniqExactStateIf(cityHash64(session_key), event_type IN ('content_view', 'content_play', 'content_complete')) AS playback_sessions,
    uniqExactStateIf(cityHash64(session_key), event_type = 'content_complete') AS completed_sessions,
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
GROUP BY content_id, day;

-- content_breakdown_daily: as 005, with hashed keys.
DROP VIEW IF EXISTS content_breakdown_daily_mv;

DROP TABLE IF EXISTS content_breakdown_daily SYNC;

CREATE TABLE content_breakdown_daily
(
    content_id String,
    day Date,
    dimension LowCardinality(String),
    value String,
    views SimpleAggregateFunction(sum, UInt64),
    viewers AggregateFunction(uniqExact, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (content_id, day, dimension, value)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW content_breakdown_daily_mv TO content_breakdown_daily AS
SELECT
    content_key AS content_id,
    toDate(timestamp) AS day,
    pair.1 AS dimension,
    pair.2 AS value,
    count() AS views,
    uniqExactState(cityHash64(viewer_key)) AS viewers
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
    uniqExactState(cityHash64(viewer_key)) AS viewers
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
GROUP BY content_id, day, dimension, value;

-- search_daily: as 009, with hashed keys.
DROP VIEW IF EXISTS search_daily_mv;

DROP TABLE IF EXISTS search_daily SYNC;

CREATE TABLE search_daily
(
    day Date,
    query String,
    click_position UInt16,
    searches SimpleAggregateFunction(sum, UInt64),
    zero_result_searches SimpleAggregateFunction(sum, UInt64),
    results SimpleAggregateFunction(sum, UInt64),
    searchers AggregateFunction(uniqExact, UInt64),
    clicks SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, query, click_position)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW search_daily_mv TO search_daily AS
SELECT
    toDate(timestamp) AS day,
    query,
    click_position,
    countIf(event_type = 'search_query') AS searches,
    countIf(event_type = 'search_query' AND JSONHas(properties, 'results_count')
            AND JSONExtractInt(properties, 'results_count') = 0) AS zero_result_searches,
    sumIf(toUInt64(greatest(JSONExtractInt(properties, 'results_count'), 0)), event_type = 'search_query') AS results,
    uniqExactStateIf(cityHash64(searcher_key), event_type = 'search_query') AS searchers,
    countIf(event_type = 'search_result_click') AS clicks
FROM
(
    SELECT
        timestamp, event_type, properties,
        lower(trimBoth(JSONExtractString(properties, 'query'))) AS query,
        if(event_type = 'search_result_click', toUInt16(least(greatest(JSONExtractInt(properties, 'position'), 0), 1000)), 0) AS click_position,
        if(user_id != '', user_id, if(session_id != '', concat('session:', session_id), concat('event:', id))) AS searcher_key
    FROM events_rollup_feed
    WHERE event_type IN ('search_query', 'search_result_click')
)
GROUP BY day, query, click_position;

INSERT INTO search_daily
SELECT
    toDate(timestamp) AS day,
    query,
    click_position,
    countIf(event_type = 'search_query') AS searches,
    countIf(event_type = 'search_query' AND JSONHas(properties, 'results_count')
            AND JSONExtractInt(properties, 'results_count') = 0) AS zero_result_searches,
    sumIf(toUInt64(greatest(JSONExtractInt(properties, 'results_count'), 0)), event_type = 'search_query') AS results,
    uniqExactStateIf(cityHash64(searcher_key), event_type = 'search_query') AS searchers,
    countIf(event_type = 'search_result_click') AS clicks
FROM
(
    SELECT
        timestamp, event_type, properties,
        lower(trimBoth(JSONExtractString(properties, 'query'))) AS query,
        if(event_type = 'search_result_click', toUInt16(least(greatest(JSONExtractInt(properties, 'position'), 0), 1000)), 0) AS click_position,
        if(user_id != '', user_id, if(session_id != '', concat('session:', session_id), concat('event:', id))) AS searcher_key
    FROM events
    WHERE event_type IN ('search_query', 'search_result_click')
)
GROUP BY day, query, click_position
