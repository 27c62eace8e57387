-- The rollup feed table keeps only the columns some rollup view reads. Every feed step hands the
-- engine its rows in these columns, and the agent, referrer and address strings are most of an
-- event's bytes: whole 20k-row feed steps on a 200k-event store, alternated, 190 -> 179 ms of CPU
-- (median of 16). storage/rollup_feed.py sends whatever columns this table has, so a later view
-- that needs one of these adds it back here (ALTER TABLE ... ADD COLUMN) in its migration.
-- A Null table holds no rows: dropping its columns moves nothing.
ALTER TABLE events_rollup_feed
    DROP COLUMN IF EXISTS event_category,
    DROP COLUMN IF EXISTS resource_type,
    DROP COLUMN IF EXISTS resource_id,
    DROP COLUMN IF EXISTS ip_address,
    DROP COLUMN IF EXISTS user_agent,
    DROP COLUMN IF EXISTS referrer,
    DROP COLUMN IF EXISTS city,
    DROP COLUMN IF EXISTS processed_at,
    DROP COLUMN IF EXISTS batch_id,
    DROP COLUMN IF EXISTS os;
