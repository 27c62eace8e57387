-- Raw events. Month partitions; the sort key serves content/time queries; TTL enforces retention.
-- Plain MergeTree on purpose: the writer keeps duplicates out at insert time (id index plus
-- insert_deduplication_token), and a duplicate that slipped through would show in counts
-- instead of being merged away unseen.
CREATE TABLE IF NOT EXISTS events
(
    id String,
    event_type LowCardinality(String),
    event_category LowCardinality(String),
    timestamp DateTime64(3, 'UTC'),
    user_id String DEFAULT '',
    session_id String DEFAULT '',
    content_id String DEFAULT '',
    resource_type LowCardinality(String) DEFAULT '',
    resource_id String DEFAULT '',
    ip_address String DEFAULT '',
    user_agent String DEFAULT '',
    referrer String DEFAULT '',
    country LowCardinality(String) DEFAULT '',
    region LowCardinality(String) DEFAULT '',
    city String DEFAULT '',
    properties String DEFAULT '{}',
    processed_at DateTime64(3, 'UTC'),
    batch_id String DEFAULT '',
    device_type LowCardinality(String) DEFAULT '',
    browser LowCardinality(String) DEFAULT '',
    os LowCardinality(String) DEFAULT '',
    traffic_source LowCardinality(String) DEFAULT '',
    referrer_host LowCardinality(String) DEFAULT '',
    -- Which insert stored the row (increasing per insert): the rollup feed works in these steps.
    stored_seq UInt64 DEFAULT 0,
    id_hash UInt64 MATERIALIZED xxHash64(id),
    INDEX idx_id id TYPE bloom_filter(0.001) GRANULARITY 4,
    INDEX idx_user user_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_session session_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_stored_seq stored_seq TYPE minmax GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (content_id, event_type, timestamp, id)
TTL toDateTime(timestamp) + INTERVAL ${retention_days} DAY
SETTINGS non_replicated_deduplication_window = 1000, index_granularity = 8192;

-- The rollup views read this table instead of events; storage/rollup_feed.py copies each
-- stored insert into it after the ingest is acknowledged. Null: it keeps nothing itself.
CREATE TABLE IF NOT EXISTS events_rollup_feed AS events ENGINE = Null
