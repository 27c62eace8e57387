-- Every table that holds event-derived data keeps it for a set time (docs/operations.md#retention):
-- - raw events and their per-event copies (events, events_by_user, session_steps) keep
--   ${retention_days} days, as their own migrations already say;
-- - the hourly and daily rollups, and the per-job and per-session rows built from events, keep
--   ANALYTICS_ROLLUP_RETENTION_DAYS;
-- - the per-minute aggregates behind the live counters keep ANALYTICS_MINUTE_RETENTION_DAYS.
-- storage/table_retention.py names each table's class and brings the days to the settings at every
-- start; the tables kept without a TTL (content metadata, the feed's claims, the migration record)
-- are listed there with the reason. A TTL removes a row in the merge after its time has passed; a
-- rollup row goes as a whole, when the hour or day it covers (a job's last event, a session's last
-- event) is older than the retention.

-- The content and search rollups had no TTL: their rows outlived the events they were built from.
ALTER TABLE content_hourly MODIFY TTL hour + INTERVAL ${rollup_retention_days} DAY;

ALTER TABLE content_daily MODIFY TTL day + INTERVAL ${rollup_retention_days} DAY;

ALTER TABLE content_breakdown_daily MODIFY TTL day + INTERVAL ${rollup_retention_days} DAY;

ALTER TABLE search_daily MODIFY TTL day + INTERVAL ${rollup_retention_days} DAY;

-- A job's row goes once its last event is older than the retention (rows of one job that have not
-- merged yet each go by their own last event).
ALTER TABLE import_jobs MODIFY TTL toDateTime(last_at) + INTERVAL ${rollup_retention_days} DAY;

-- The rollups that followed the events' retention follow the rollups' own from now on.
ALTER TABLE user_daily MODIFY TTL day + INTERVAL ${rollup_retention_days} DAY;

ALTER TABLE session_rollup MODIFY TTL toDateTime(ended) + INTERVAL ${rollup_retention_days} DAY;

ALTER TABLE session_searches MODIFY TTL day + INTERVAL ${rollup_retention_days} DAY;

ALTER TABLE playback_hourly MODIFY TTL closed_hour + INTERVAL ${rollup_retention_days} DAY;

ALTER TABLE system_requests_hourly MODIFY TTL hour + INTERVAL ${rollup_retention_days} DAY;

ALTER TABLE system_errors_hourly MODIFY TTL hour + INTERVAL ${rollup_retention_days} DAY;

ALTER TABLE system_resources_hourly MODIFY TTL hour + INTERVAL ${rollup_retention_days} DAY;

ALTER TABLE system_health_hourly MODIFY TTL hour + INTERVAL ${rollup_retention_days} DAY;

ALTER TABLE database_statements MODIFY TTL hour + INTERVAL ${rollup_retention_days} DAY;

-- The live counters rebuild at most three days from here; longer questions go to the rollups.
ALTER TABLE realtime_minutes MODIFY TTL minute + INTERVAL ${minute_retention_days} DAY
