-- The live counters count the platform's activity, not this service watching itself: the service's
-- own requests (api_request events of resource service/analytics) and database statements
-- (database_query events) stay out of the minute table, as they stay out of the live deltas
-- (semantic/live_deltas.py, the same rule). They are counted by the system analytics.
--
-- The view is made again with the rule, and the table filled again from events with it: migrations
-- run before the writer starts (storage/events.py), so no insert falls between the two.
DROP VIEW IF EXISTS realtime_minutes_mv;

TRUNCATE TABLE realtime_minutes;

INSERT INTO realtime_minutes
SELECT
    toStartOfMinute(timestamp) AS minute,
    content_id,
    event_type,
    count() AS events,
    sum(least(greatest(if(JSONType(properties, 'duration_seconds') IN ('Int64', 'UInt64', 'Double'),
                           JSONExtractFloat(properties, 'duration_seconds'), 0), 0), 86400)) AS watch_seconds,
    groupUniqArrayStateIf(xxHash64(user_id), user_id != '') AS users,
    groupUniqArrayStateIf(xxHash64(session_id), session_id != '') AS sessions,
    max(timestamp) AS last_event
FROM events
WHERE timestamp >= now() - INTERVAL ${minute_retention_days} DAY
  AND NOT (event_type = 'database_query'
           OR (event_type = 'api_request' AND resource_type = 'service' AND resource_id = 'analytics'))
GROUP BY minute, content_id, event_type;

CREATE MATERIALIZED VIEW IF NOT EXISTS realtime_minutes_mv TO realtime_minutes AS
SELECT
    toStartOfMinute(timestamp) AS minute,
    content_id,
    event_type,
    count() AS events,
    sum(least(greatest(if(JSONType(properties, 'duration_seconds') IN ('Int64', 'UInt64', 'Double'),
                           JSONExtractFloat(properties, 'duration_seconds'), 0), 0), 86400)) AS watch_seconds,
    groupUniqArrayStateIf(xxHash64(user_id), user_id != '') AS users,
    groupUniqArrayStateIf(xxHash64(session_id), session_id != '') AS sessions,
    max(timestamp) AS last_event
FROM events
WHERE NOT (event_type = 'database_query'
           OR (event_type = 'api_request' AND resource_type = 'service' AND resource_id = 'analytics'))
GROUP BY minute, content_id, event_type
