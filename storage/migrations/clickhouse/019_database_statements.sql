-- Database statements (database_query events, docs/system.md) per UTC hour, service, database,
-- operation and fingerprint, with one row per distinct duration (to the hundredth of a millisecond,
-- as the service records them): how many statements took that long, the rows they reported and how
-- many failed. Keeping each duration makes every figure of /database/performance exact from here:
-- counts and sums add up, the slow count compares each duration with the threshold the request gives,
-- and quantiles are weighted by the counts (semantic/database_performance.py), equal to the same
-- quantile over the raw events (tests/semantic/test_database_performance.py). Events without a
-- numeric duration_ms are not statements here.
--
-- Filled from events before the view exists, and emptied first: migrations run once every stored
-- insert was fed and before the writer starts (storage/events.py), so a re-run after a crash anywhere
-- in here fills it again exactly.
CREATE TABLE IF NOT EXISTS database_statements
(
    hour DateTime('UTC'),
    service LowCardinality(String),
    database LowCardinality(String),
    operation LowCardinality(String),
    fingerprint String,
    duration_ms Float64,
    statements SimpleAggregateFunction(sum, UInt64),
    row_count SimpleAggregateFunction(sum, UInt64),
    failed SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, database, operation, fingerprint, service, duration_ms)
TTL hour + INTERVAL ${retention_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

TRUNCATE TABLE database_statements;

INSERT INTO database_statements
SELECT
    toStartOfHour(timestamp) AS hour,
    JSONExtractString(properties, 'service') AS service,
    JSONExtractString(properties, 'database') AS database,
    JSONExtractString(properties, 'operation') AS operation,
    JSONExtractString(properties, 'fingerprint') AS fingerprint,
    round(greatest(JSONExtractFloat(properties, 'duration_ms'), 0), 2) AS duration_ms,
    count() AS statements,
    sum(toUInt64(greatest(JSONExtractInt(properties, 'rows'), 0))) AS row_count,
    countIf(JSONHas(properties, 'error')) AS failed
FROM events
WHERE event_type = 'database_query' AND JSONType(properties, 'duration_ms') IN ('Int64', 'UInt64', 'Double')
GROUP BY hour, service, database, operation, fingerprint, duration_ms;

CREATE MATERIALIZED VIEW IF NOT EXISTS database_statements_mv TO database_statements AS
SELECT
    toStartOfHour(timestamp) AS hour,
    JSONExtractString(properties, 'service') AS service,
    JSONExtractString(properties, 'database') AS database,
    JSONExtractString(properties, 'operation') AS operation,
    JSONExtractString(properties, 'fingerprint') AS fingerprint,
    round(greatest(JSONExtractFloat(properties, 'duration_ms'), 0), 2) AS duration_ms,
    count() AS statements,
    sum(toUInt64(greatest(JSONExtractInt(properties, 'rows'), 0))) AS row_count,
    countIf(JSONHas(properties, 'error')) AS failed
FROM events_rollup_feed
WHERE event_type = 'database_query' AND JSONType(properties, 'duration_ms') IN ('Int64', 'UInt64', 'Double')
GROUP BY hour, service, database, operation, fingerprint, duration_ms
