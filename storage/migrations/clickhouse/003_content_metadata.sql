-- Content metadata dimension: title, category, content type, language, author, published_at.
-- Every change is appended to content_metadata_updates (by PUT /api/v1/analytics/content-metadata/{id}
-- and by content_published / content_updated events); content_metadata_state keeps, per field, the
-- value of the latest update that set it, so a partial update leaves the other fields as they were.
-- Read it through the content_metadata view.
CREATE TABLE IF NOT EXISTS content_metadata_updates
(
    content_id String,
    title String DEFAULT '',
    category String DEFAULT '',
    content_type String DEFAULT '',
    language String DEFAULT '',
    author String DEFAULT '',
    -- 1970-01-01 = not given in this update
    published_at DateTime64(3, 'UTC') DEFAULT 0,
    updated_at DateTime64(3, 'UTC'),
    source LowCardinality(String) DEFAULT 'api'
)
ENGINE = MergeTree
ORDER BY (content_id, updated_at);

CREATE TABLE IF NOT EXISTS content_metadata_state
(
    content_id String,
    title AggregateFunction(argMax, String, DateTime64(3, 'UTC')),
    category AggregateFunction(argMax, String, DateTime64(3, 'UTC')),
    content_type AggregateFunction(argMax, String, DateTime64(3, 'UTC')),
    language AggregateFunction(argMax, String, DateTime64(3, 'UTC')),
    author AggregateFunction(argMax, String, DateTime64(3, 'UTC')),
    published_at AggregateFunction(argMax, DateTime64(3, 'UTC'), DateTime64(3, 'UTC')),
    updated_at SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY content_id
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS content_metadata_state_mv TO content_metadata_state AS
SELECT
    content_id,
    argMaxStateIf(new_title, changed_at, new_title != '') AS title,
    argMaxStateIf(new_category, changed_at, new_category != '') AS category,
    argMaxStateIf(new_content_type, changed_at, new_content_type != '') AS content_type,
    argMaxStateIf(new_language, changed_at, new_language != '') AS language,
    argMaxStateIf(new_author, changed_at, new_author != '') AS author,
    argMaxStateIf(new_published_at, changed_at, new_published_at > 0) AS published_at,
    max(changed_at) AS updated_at
FROM
(
    SELECT
        content_id,
        title AS new_title,
        category AS new_category,
        content_type AS new_content_type,
        language AS new_language,
        author AS new_author,
        published_at AS new_published_at,
        updated_at AS changed_at
    FROM content_metadata_updates
)
GROUP BY content_id;

-- Lifecycle events carry the metadata in properties; content_published defaults published_at to its timestamp.
CREATE MATERIALIZED VIEW IF NOT EXISTS content_metadata_events_mv TO content_metadata_updates AS
SELECT
    content_id,
    JSONExtractString(properties, 'title') AS title,
    JSONExtractString(properties, 'category') AS category,
    JSONExtractString(properties, 'content_type') AS content_type,
    JSONExtractString(properties, 'language') AS language,
    JSONExtractString(properties, 'author') AS author,
    ifNull(
        parseDateTime64BestEffortOrNull(JSONExtractString(properties, 'published_at'), 3, 'UTC'),
        if(event_type = 'content_published', timestamp, toDateTime64(0, 3, 'UTC'))
    ) AS published_at,
    timestamp AS updated_at,
    'event' AS source
FROM events_rollup_feed
WHERE event_type IN ('content_published', 'content_updated') AND content_id != '';

INSERT INTO content_metadata_updates
SELECT
    content_id,
    JSONExtractString(properties, 'title') AS title,
    JSONExtractString(properties, 'category') AS category,
    JSONExtractString(properties, 'content_type') AS content_type,
    JSONExtractString(properties, 'language') AS language,
    JSONExtractString(properties, 'author') AS author,
    ifNull(
        parseDateTime64BestEffortOrNull(JSONExtractString(properties, 'published_at'), 3, 'UTC'),
        if(event_type = 'content_published', timestamp, toDateTime64(0, 3, 'UTC'))
    ) AS published_at,
    timestamp AS updated_at,
    'event' AS source
FROM events
WHERE event_type IN ('content_published', 'content_updated') AND content_id != '';

CREATE VIEW IF NOT EXISTS content_metadata AS
SELECT
    content_id,
    argMaxMerge(s_title) AS title,
    argMaxMerge(s_category) AS category,
    argMaxMerge(s_content_type) AS content_type,
    argMaxMerge(s_language) AS language,
    argMaxMerge(s_author) AS author,
    nullIf(argMaxMerge(s_published_at), toDateTime64(0, 3, 'UTC')) AS published_at,
    max(s_updated_at) AS updated_at
FROM
(
    SELECT
        content_id,
        title AS s_title,
        category AS s_category,
        content_type AS s_content_type,
        language AS s_language,
        author AS s_author,
        published_at AS s_published_at,
        updated_at AS s_updated_at
    FROM content_metadata_state
)
GROUP BY content_id
