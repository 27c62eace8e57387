-- Databases made before the rollups were fed after the acknowledgement get what 001 now
-- creates (no-ops otherwise); their views are re-pointed at the feed by storage/rollup_feed.py.
ALTER TABLE events ADD COLUMN IF NOT EXISTS stored_seq UInt64 DEFAULT 0 AFTER referrer_host;

ALTER TABLE events ADD INDEX IF NOT EXISTS idx_stored_seq stored_seq TYPE minmax GRANULARITY 1;

CREATE TABLE IF NOT EXISTS events_rollup_feed AS events ENGINE = Null;

-- The range of inserts being fed to the rollups: written before it is fed (done = 0) and again
-- after (done = 1). Merges keep only the latest; a restarted writer re-runs it unless it is done.
CREATE TABLE IF NOT EXISTS rollup_feed_claims
(
    slot UInt8 DEFAULT 0,
    first_seq UInt64,
    last_seq UInt64,
    token String,
    done UInt8 DEFAULT 0,
    claimed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(last_seq)
ORDER BY slot
