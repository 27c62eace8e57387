-- The steps of sessions (content_view, search_query and page_view events with a session_id) in a
-- narrow copy sorted by session and time, for content journeys and next-content transitions
-- (semantic/journeys.py), which pair each step with its neighbours in its session. From events,
-- sorted by content, a content's journey reads the session id of every step in the window to find
-- its sessions' steps, and transitions sort every view of the window; here a content's sessions are
-- ranges of the sort key, and the views come in session order. A copy, not an aggregate: answers
-- from it equal the answers from raw events (tests/semantic/test_journeys.py). content_key is
-- storage.event_keys.CONTENT_KEY. Monthly partitions: every read has a window, and skips the
-- months outside it.
--
-- The copy is filled from events before the view exists, and emptied first: migrations run once
-- every stored insert was fed and before the writer starts (storage/events.py), so a re-run after
-- a crash anywhere in here fills it again exactly.
CREATE TABLE IF NOT EXISTS session_steps
(
    session_id String,
    timestamp DateTime64(3, 'UTC'),
    id String,
    event_type LowCardinality(String),
    content_key String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (session_id, timestamp, id)
TTL toDateTime(timestamp) + INTERVAL ${retention_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

TRUNCATE TABLE session_steps;

INSERT INTO session_steps
SELECT
    session_id,
    timestamp,
    id,
    event_type,
    if(content_id != '', content_id, JSONExtractString(properties, 'content_id')) AS content_key
FROM events
WHERE session_id != '' AND event_type IN ('content_view', 'search_query', 'page_view');

CREATE MATERIALIZED VIEW IF NOT EXISTS session_steps_mv TO session_steps AS
SELECT
    session_id,
    timestamp,
    id,
    event_type,
    if(content_id != '', content_id, JSONExtractString(properties, 'content_id')) AS content_key
FROM events_rollup_feed
WHERE session_id != '' AND event_type IN ('content_view', 'search_query', 'page_view')
