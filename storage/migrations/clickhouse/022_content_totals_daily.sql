-- Every content's figures together, per UTC day: what a board's site-wide figures read (the
-- executive KPIs and the 30-day series, semantic/prebuilt_dashboards.py). From content_daily those
-- merge one distinct-count state per content and day; here one per day, the same sets already
-- united, so a week's exact distinct viewers merge 7 states instead of every content's. The compiler
-- routes a content query here only when it asks no dimension but time and no filter, under an
-- unrestricted content scope (semantic/catalog.py); the states hold exactly what merging
-- content_daily's would (tests/semantic/test_rollup_parity.py).
--
-- The backfill merges content_daily's states by day (content_daily keeps what the events' retention
-- removed). It carries a deduplication token and cuts its rows into the same blocks every time (one
-- thread, in key order), so a re-run after a crash inserts nothing twice; new events come through
-- the view, made after it (migrations run before the writer starts, storage/events.py).
CREATE TABLE IF NOT EXISTS content_totals_daily
(
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
ORDER BY day
TTL day + INTERVAL ${rollup_retention_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

INSERT INTO content_totals_daily
SETTINGS insert_deduplication_token = '022_content_totals_daily', max_threads = 1, max_insert_threads = 1
SELECT
    day,
    sum(views) AS views,
    uniqExactMergeState(viewers) AS viewers,
    uniqExactMergeState(playback_sessions) AS playback_sessions,
    uniqExactMergeState(completed_sessions) AS completed_sessions,
    sum(likes) AS likes,
    sum(shares) AS shares,
    sum(bookmarks) AS bookmarks,
    sum(comments) AS comments,
    sum(search_impressions) AS search_impressions,
    sum(search_clicks) AS search_clicks,
    sum(recommendation_impressions) AS recommendation_impressions,
    sum(recommendation_clicks) AS recommendation_clicks,
    sum(direct_views) AS direct_views,
    sum(search_views) AS search_views,
    sum(recommendation_views) AS recommendation_views,
    sum(internal_views) AS internal_views,
    sum(external_views) AS external_views,
    sum(desktop_views) AS desktop_views,
    sum(mobile_views) AS mobile_views,
    sum(tablet_views) AS tablet_views
FROM content_daily
GROUP BY day
ORDER BY day;

CREATE MATERIALIZED VIEW IF NOT EXISTS content_totals_daily_mv TO content_totals_daily AS
SELECT
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
GROUP BY day;
