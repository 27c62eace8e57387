-- Import and media processing jobs, one row per job once merged (semantic/import_jobs.py reads it).
-- A job is the events naming one properties.job_id: import_started, import_stage_completed,
-- import_completed and import_failed make a job of kind 'import'; processing_started,
-- processing_completed and processing_failed one of kind 'processing'.
--
-- A job's events may arrive in any order and in different inserts, so every column is an aggregate
-- whose merged value does not depend on either: earliest and latest instants, the largest figure
-- reported, the last failure by (time, id), and the list of the job's events, sorted when read.
-- What a job is (its status, duration, figures) is decided when it is read, from the merged row. A
-- per source and day table would need those job figures before the job's last event arrives, so
-- the per-source answers group the merged jobs instead: there are far fewer jobs than events.
-- Every read merges the jobs it covers, so the columns are plain minima and maxima, which merge far
-- cheaper than argMin/argMax states (and a tuple only where a figure must come from one event).
--
-- Columns:
-- - source: the source its events name (properties.source, for a processing job properties.kind
--   when it names none); events of one job name one source, and should two differ, the greatest
--   in byte order is the job's
-- - started_at: the first start event (NULL when none has arrived), first_at / last_at: the first
--   and last event of any type
-- - completed_at / failed_at: the last completion / failure event (NULL when none)
-- - duration_ms: the largest properties.duration_ms of a completion or failure event
-- - records_* and the quality figures: the largest value any of the job's events reports (events
--   report the job's totals so far)
-- - last_failure: (epoch ms, id, properties.failure_reason, properties.stage) of the last failure
--   event (by time, then id), else (-(2^63 - 1), '', '', '')
-- - stages_completed: import_stage_completed events; stage_runs: (stage, duration_ms) of those that
--   name a stage and report a duration (the stage analyses read these instead of every event)
-- - events: each event's time, id, type and figures, for timelines and stage durations
-- JSON numbers only count as figures, negative ones as 0; a job_id may be a JSON string or integer.
--
-- The table is filled from events before the view exists, and emptied first: migrations run once
-- every stored insert was fed and before the writer starts (storage/events.py), so a re-run after
-- a crash anywhere in here fills it again exactly.
CREATE TABLE IF NOT EXISTS import_jobs
(
    job_id String,
    kind LowCardinality(String),
    source SimpleAggregateFunction(max, String),
    started_at SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    first_at SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_at SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    completed_at SimpleAggregateFunction(max, Nullable(DateTime64(3, 'UTC'))),
    failed_at SimpleAggregateFunction(max, Nullable(DateTime64(3, 'UTC'))),
    duration_ms SimpleAggregateFunction(max, Nullable(Float64)),
    records_total SimpleAggregateFunction(max, Nullable(Int64)),
    records_processed SimpleAggregateFunction(max, Nullable(Int64)),
    records_failed SimpleAggregateFunction(max, Nullable(Int64)),
    duplicates SimpleAggregateFunction(max, Nullable(Int64)),
    invalid_rows SimpleAggregateFunction(max, Nullable(Int64)),
    missing_fields SimpleAggregateFunction(max, Nullable(Int64)),
    transform_errors SimpleAggregateFunction(max, Nullable(Int64)),
    last_failure SimpleAggregateFunction(max, Tuple(Int64, String, String, String)),
    stages_completed SimpleAggregateFunction(sum, UInt64),
    stage_runs SimpleAggregateFunction(groupArrayArray, Array(Tuple(stage String, duration_ms Float64))),
    events SimpleAggregateFunction(groupArrayArray, Array(Tuple(
        at DateTime64(3, 'UTC'),
        id String,
        event_type String,
        stage String,
        duration_ms Nullable(Float64),
        records_total Nullable(Int64),
        records_processed Nullable(Int64),
        records_failed Nullable(Int64),
        duplicates Nullable(Int64),
        invalid_rows Nullable(Int64),
        missing_fields Nullable(Int64),
        transform_errors Nullable(Int64),
        failure_reason String
    )))
)
ENGINE = AggregatingMergeTree
ORDER BY (job_id, kind)
SETTINGS non_replicated_deduplication_window = 1000;

TRUNCATE TABLE import_jobs;

INSERT INTO import_jobs
SELECT
    job_id,
    kind,
    max(e_source) AS source,
    minIf(toNullable(timestamp), event_type IN ('import_started', 'processing_started')) AS started_at,
    min(timestamp) AS first_at,
    max(timestamp) AS last_at,
    maxIf(toNullable(timestamp), event_type IN ('import_completed', 'processing_completed')) AS completed_at,
    maxIf(toNullable(timestamp), event_type IN ('import_failed', 'processing_failed')) AS failed_at,
    maxIf(e_duration_ms, event_type IN ('import_completed', 'processing_completed', 'import_failed', 'processing_failed'))
        AS duration_ms,
    max(e_records_total) AS records_total,
    max(e_records_processed) AS records_processed,
    max(e_records_failed) AS records_failed,
    max(e_duplicates) AS duplicates,
    max(e_invalid_rows) AS invalid_rows,
    max(e_missing_fields) AS missing_fields,
    max(e_transform_errors) AS transform_errors,
    max(if(event_type IN ('import_failed', 'processing_failed'), (toUnixTimestamp64Milli(timestamp), id, e_failure_reason, e_stage),
           (toInt64(-9223372036854775807), '', '', ''))) AS last_failure,
    countIf(event_type = 'import_stage_completed') AS stages_completed,
    groupArrayIf((e_stage, assumeNotNull(e_duration_ms)),
                 event_type = 'import_stage_completed' AND e_stage != '' AND e_duration_ms IS NOT NULL) AS stage_runs,
    groupArray((timestamp, id, event_type, e_stage, e_duration_ms, e_records_total, e_records_processed, e_records_failed,
                e_duplicates, e_invalid_rows, e_missing_fields, e_transform_errors, e_failure_reason)) AS events
FROM
(
    SELECT
        timestamp,
        id,
        toString(event_type) AS event_type,
        if(JSONType(properties, 'job_id') IN ('Int64', 'UInt64'), JSONExtractRaw(properties, 'job_id'),
           JSONExtractString(properties, 'job_id')) AS job_id,
        if(startsWith(event_type, 'processing_'), 'processing', 'import') AS kind,
        if(JSONExtractString(properties, 'source') != '', JSONExtractString(properties, 'source'),
           if(startsWith(event_type, 'processing_'), JSONExtractString(properties, 'kind'), '')) AS e_source,
        JSONExtractString(properties, 'stage') AS e_stage,
        JSONExtractString(properties, 'failure_reason') AS e_failure_reason,
        if(JSONType(properties, 'duration_ms') IN ('Int64', 'UInt64', 'Double'),
           greatest(JSONExtractFloat(properties, 'duration_ms'), 0), NULL) AS e_duration_ms,
        if(JSONType(properties, 'records_total') IN ('Int64', 'UInt64', 'Double'),
           toInt64(least(greatest(JSONExtractFloat(properties, 'records_total'), 0), 1e15)), NULL) AS e_records_total,
        if(JSONType(properties, 'records_processed') IN ('Int64', 'UInt64', 'Double'),
           toInt64(least(greatest(JSONExtractFloat(properties, 'records_processed'), 0), 1e15)), NULL) AS e_records_processed,
        if(JSONType(properties, 'records_failed') IN ('Int64', 'UInt64', 'Double'),
           toInt64(least(greatest(JSONExtractFloat(properties, 'records_failed'), 0), 1e15)), NULL) AS e_records_failed,
        if(JSONType(properties, 'duplicates') IN ('Int64', 'UInt64', 'Double'),
           toInt64(least(greatest(JSONExtractFloat(properties, 'duplicates'), 0), 1e15)), NULL) AS e_duplicates,
        if(JSONType(properties, 'invalid_rows') IN ('Int64', 'UInt64', 'Double'),
           toInt64(least(greatest(JSONExtractFloat(properties, 'invalid_rows'), 0), 1e15)), NULL) AS e_invalid_rows,
        if(JSONType(properties, 'missing_fields') IN ('Int64', 'UInt64', 'Double'),
           toInt64(least(greatest(JSONExtractFloat(properties, 'missing_fields'), 0), 1e15)), NULL) AS e_missing_fields,
        if(JSONType(properties, 'transform_errors') IN ('Int64', 'UInt64', 'Double'),
           toInt64(least(greatest(JSONExtractFloat(properties, 'transform_errors'), 0), 1e15)), NULL) AS e_transform_errors
    FROM events
    WHERE event_type IN ('import_started', 'import_stage_completed', 'import_completed', 'import_failed',
                         'processing_started', 'processing_completed', 'processing_failed')
)
WHERE job_id != ''
GROUP BY job_id, kind;

CREATE MATERIALIZED VIEW IF NOT EXISTS import_jobs_mv TO import_jobs AS
SELECT
    job_id,
    kind,
    max(e_source) AS source,
    minIf(toNullable(timestamp), event_type IN ('import_started', 'processing_started')) AS started_at,
    min(timestamp) AS first_at,
    max(timestamp) AS last_at,
    maxIf(toNullable(timestamp), event_type IN ('import_completed', 'processing_completed')) AS completed_at,
    maxIf(toNullable(timestamp), event_type IN ('import_failed', 'processing_failed')) AS failed_at,
    maxIf(e_duration_ms, event_type IN ('import_completed', 'processing_completed', 'import_failed', 'processing_failed'))
        AS duration_ms,
    max(e_records_total) AS records_total,
    max(e_records_processed) AS records_processed,
    max(e_records_failed) AS records_failed,
    max(e_duplicates) AS duplicates,
    max(e_invalid_rows) AS invalid_rows,
    max(e_missing_fields) AS missing_fields,
    max(e_transform_errors) AS transform_errors,
    max(if(event_type IN ('import_failed', 'processing_failed'), (toUnixTimestamp64Milli(timestamp), id, e_failure_reason, e_stage),
           (toInt64(-9223372036854775807), '', '', ''))) AS last_failure,
    countIf(event_type = 'import_stage_completed') AS stages_completed,
    groupArrayIf((e_stage, assumeNotNull(e_duration_ms)),
                 event_type = 'import_stage_completed' AND e_stage != '' AND e_duration_ms IS NOT NULL) AS stage_runs,
    groupArray((timestamp, id, event_type, e_stage, e_duration_ms, e_records_total, e_records_processed, e_records_failed,
                e_duplicates, e_invalid_rows, e_missing_fields, e_transform_errors, e_failure_reason)) AS events
FROM
(
    SELECT
        timestamp,
        id,
        toString(event_type) AS event_type,
        if(JSONType(properties, 'job_id') IN ('Int64', 'UInt64'), JSONExtractRaw(properties, 'job_id'),
           JSONExtractString(properties, 'job_id')) AS job_id,
        if(startsWith(event_type, 'processing_'), 'processing', 'import') AS kind,
        if(JSONExtractString(properties, 'source') != '', JSONExtractString(properties, 'source'),
           if(startsWith(event_type, 'processing_'), JSONExtractString(properties, 'kind'), '')) AS e_source,
        JSONExtractString(properties, 'stage') AS e_stage,
        JSONExtractString(properties, 'failure_reason') AS e_failure_reason,
        if(JSONType(properties, 'duration_ms') IN ('Int64', 'UInt64', 'Double'),
           greatest(JSONExtractFloat(properties, 'duration_ms'), 0), NULL) AS e_duration_ms,
        if(JSONType(properties, 'records_total') IN ('Int64', 'UInt64', 'Double'),
           toInt64(least(greatest(JSONExtractFloat(properties, 'records_total'), 0), 1e15)), NULL) AS e_records_total,
        if(JSONType(properties, 'records_processed') IN ('Int64', 'UInt64', 'Double'),
           toInt64(least(greatest(JSONExtractFloat(properties, 'records_processed'), 0), 1e15)), NULL) AS e_records_processed,
        if(JSONType(properties, 'records_failed') IN ('Int64', 'UInt64', 'Double'),
           toInt64(least(greatest(JSONExtractFloat(properties, 'records_failed'), 0), 1e15)), NULL) AS e_records_failed,
        if(JSONType(properties, 'duplicates') IN ('Int64', 'UInt64', 'Double'),
           toInt64(least(greatest(JSONExtractFloat(properties, 'duplicates'), 0), 1e15)), NULL) AS e_duplicates,
        if(JSONType(properties, 'invalid_rows') IN ('Int64', 'UInt64', 'Double'),
           toInt64(least(greatest(JSONExtractFloat(properties, 'invalid_rows'), 0), 1e15)), NULL) AS e_invalid_rows,
        if(JSONType(properties, 'missing_fields') IN ('Int64', 'UInt64', 'Double'),
           toInt64(least(greatest(JSONExtractFloat(properties, 'missing_fields'), 0), 1e15)), NULL) AS e_missing_fields,
        if(JSONType(properties, 'transform_errors') IN ('Int64', 'UInt64', 'Double'),
           toInt64(least(greatest(JSONExtractFloat(properties, 'transform_errors'), 0), 1e15)), NULL) AS e_transform_errors
    FROM events_rollup_feed
    WHERE event_type IN ('import_started', 'import_stage_completed', 'import_completed', 'import_failed',
                         'processing_started', 'processing_completed', 'processing_failed')
)
WHERE job_id != ''
GROUP BY job_id, kind
