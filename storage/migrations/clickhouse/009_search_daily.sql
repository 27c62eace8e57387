-- Searches per UTC day and normalized query (lower case, trimmed): how often, how often with no
-- results, results shown, distinct searchers, and result clicks by click position (0 = no
-- position given; search rows carry 0).
CREATE TABLE IF NOT EXISTS search_daily
(
    day Date,
    query String,
    click_position UInt16,
    searches SimpleAggregateFunction(sum, UInt64),
    zero_result_searches SimpleAggregateFunction(sum, UInt64),
    results SimpleAggregateFunction(sum, UInt64),
    searchers AggregateFunction(uniqExact, String),
    clicks SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, query, click_position)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS search_daily_mv TO search_daily AS
SELECT
    toDate(timestamp) AS day,
    query,
    click_position,
    countIf(event_type = 'search_query') AS searches,
    countIf(event_type = 'search_query' AND JSONHas(properties, 'results_count')
            AND JSONExtractInt(properties, 'results_count') = 0) AS zero_result_searches,
    sumIf(toUInt64(greatest(JSONExtractInt(properties, 'results_count'), 0)), event_type = 'search_query') AS results,
    uniqExactStateIf(searcher_key, event_type = 'search_query') AS searchers,
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
    uniqExactStateIf(searcher_key, event_type = 'search_query') AS searchers,
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
