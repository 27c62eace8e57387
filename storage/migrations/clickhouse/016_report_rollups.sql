-- Two reports read less: the content report (semantic/content.py) and the search overview's
-- conversion (semantic/search.py).
--
-- content_daily gets each content's views by UTC hour of day, by country and by region, so the
-- content report reads its totals, series, hourly distribution and top countries and regions in one
-- statement instead of three (each statement pays its planning and a read of every part). The counts
-- are those content_hourly and content_breakdown_daily hold, and the backfill sums them from there
-- (they keep what the events' retention removed); new events add them through the view. Backfilled
-- rows carry only these columns: the other columns' defaults (0, empty states) add nothing when the
-- rows merge. The insert carries a deduplication token and cuts its rows into the same blocks every
-- time (one thread, in key order), so a re-run after a crash inserts nothing twice.
DROP VIEW IF EXISTS content_daily_mv;

ALTER TABLE content_daily
    ADD COLUMN IF NOT EXISTS hour_views SimpleAggregateFunction(sumMap, Map(UInt8, UInt64)),
    ADD COLUMN IF NOT EXISTS country_views SimpleAggregateFunction(sumMap, Map(String, UInt64)),
    ADD COLUMN IF NOT EXISTS region_views SimpleAggregateFunction(sumMap, Map(String, UInt64));

INSERT INTO content_daily (content_id, day, hour_views, country_views, region_views)
SETTINGS insert_deduplication_token = '016_content_daily_views_by_hour_and_place', max_threads = 1, max_insert_threads = 1
SELECT content_id, day, sumMap(hours) AS hour_views, sumMap(countries) AS country_views, sumMap(regions) AS region_views
FROM
(
    SELECT
        content_id,
        toDate(hour) AS day,
        map(toUInt8(toHour(hour)), toUInt64(views)) AS hours,
        CAST(map(), 'Map(String, UInt64)') AS countries,
        CAST(map(), 'Map(String, UInt64)') AS regions
    FROM content_hourly
    WHERE views > 0
    UNION ALL
    SELECT
        content_id,
        day,
        CAST(map(), 'Map(UInt8, UInt64)') AS hours,
        if(dimension = 'country', map(value, toUInt64(views)), CAST(map(), 'Map(String, UInt64)')) AS countries,
        if(dimension = 'region', map(value, toUInt64(views)), CAST(map(), 'Map(String, UInt64)')) AS regions
    FROM content_breakdown_daily
    WHERE dimension IN ('country', 'region') AND views > 0
)
GROUP BY content_id, day
ORDER BY content_id, day;

-- The backfill made parts the size-based merges may leave alone for long, and every read of the
-- table opens every part; a report reads one content, so the part count is most of its cost.
OPTIMIZE TABLE content_daily FINAL;

CREATE MATERIALIZED VIEW IF NOT EXISTS content_daily_mv TO content_daily AS
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
    countIf(event_type = 'content_view' AND device_type = 'tablet') AS tablet_views,
    sumMapIf(map(toUInt8(toHour(timestamp)), toUInt64(1)), event_type = 'content_view') AS hour_views,
    sumMapIf(map(toString(country), toUInt64(1)), event_type = 'content_view') AS country_views,
    sumMapIf(map(toString(region), toUInt64(1)), event_type = 'content_view') AS region_views
FROM
(
    SELECT
        timestamp, event_type, traffic_source, device_type, country, region,
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

-- Search conversion: a search converts when its session has a content_view within
-- ANALYTICS_SEARCH_CONVERSION_MINUTES (at most a day) after it. From events, every search and view of
-- the window is grouped by session, a hash table of every session; here one row per session and UTC
-- day holds the times (epoch milliseconds) of that day's searches and of the views that day and the
-- day after, so every view that can convert a search of the day is in its row. The rows are sorted by
-- day first: parts of different days do not overlap, and FINAL (which joins the rows of a key spread
-- over parts) merges only where they do. A copy of times, not an aggregate: answers from it equal the
-- answers from raw events (tests/semantic/test_rollup_parity.py).
--
-- The copy is filled from events before the view exists, and emptied first: migrations run once
-- every stored insert was fed and before the writer starts (storage/events.py), so a re-run after
-- a crash anywhere in here fills it again exactly.
CREATE TABLE IF NOT EXISTS session_searches
(
    day Date,
    session_id String,
    searches SimpleAggregateFunction(groupArrayArray, Array(Int64)),
    views SimpleAggregateFunction(groupArrayArray, Array(Int64))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, session_id)
TTL day + INTERVAL ${retention_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

TRUNCATE TABLE session_searches;

INSERT INTO session_searches
SELECT
    day,
    session_id,
    groupArrayIf(ms, event_type = 'search_query') AS searches,
    groupArrayIf(ms, event_type = 'content_view') AS views
FROM
(
    SELECT
        session_id,
        event_type,
        toUnixTimestamp64Milli(timestamp) AS ms,
        arrayJoin(if(event_type = 'content_view' AND toDate(timestamp) > toDate(0),
                     [toDate(timestamp), toDate(timestamp) - 1], [toDate(timestamp)])) AS day
    FROM events
    WHERE session_id != '' AND event_type IN ('search_query', 'content_view')
)
GROUP BY day, session_id
-- In key order, so each part it makes holds its own days and FINAL has little to merge.
ORDER BY day, session_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS session_searches_mv TO session_searches AS
SELECT
    day,
    session_id,
    groupArrayIf(ms, event_type = 'search_query') AS searches,
    groupArrayIf(ms, event_type = 'content_view') AS views
FROM
(
    SELECT
        session_id,
        event_type,
        toUnixTimestamp64Milli(timestamp) AS ms,
        arrayJoin(if(event_type = 'content_view' AND toDate(timestamp) > toDate(0),
                     [toDate(timestamp), toDate(timestamp) - 1], [toDate(timestamp)])) AS day
    FROM events_rollup_feed
    WHERE session_id != '' AND event_type IN ('search_query', 'content_view')
)
GROUP BY day, session_id
