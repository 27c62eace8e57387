-- Watch time per content and (hour its piece opened, hour it closed), in milliseconds. The rollup
-- feed adds each fed range's change (storage/playback_rollup.py explains the pieces); rows are
-- summed at query time and merged by the engine, and a change can be negative.
CREATE TABLE IF NOT EXISTS playback_hourly
(
    content_id String,
    opened_hour DateTime('UTC'),
    closed_hour DateTime('UTC'),
    watch_ms Int64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(closed_hour)
ORDER BY (content_id, opened_hour, closed_hour)
TTL closed_hour + INTERVAL ${retention_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- The pieces of the events stored so far (storage/playback_rollup.py backfill_sql).
${playback_backfill}
