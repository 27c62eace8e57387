-- System analytics (semantic/system*.py, docs/system.md): the platform's services as their system
-- events describe them, per UTC hour. One table per kind of event, each keyed by what its answers
-- group by:
--   system_requests_hourly   api_request      per service, endpoint and method
--   system_errors_hourly     error_occurred   per service, endpoint, error type, severity and message
--   system_resources_hourly  resource_usage   per service and instance
--   system_health_hourly     health_check     per service
-- (database_query events, this service's own statements, are in database_statements, migration 019.)
-- Each view selects the event's properties as storage/system_rows.py spells them (the catalog's raw
-- sources select the same from events; tests/semantic/test_system_rollups.py checks the spelling).
-- Counts and sums are exact; response times keep a quantileTiming state (deterministic: the same
-- events give the same quantile however they were merged).
--
-- Each table is filled from events before its view exists, and emptied first: migrations run once
-- every stored insert was fed and before the writer starts (storage/events.py), so a re-run after
-- a crash anywhere in here fills it again exactly. Monthly partitions: every read has a window.

-- --- api_request ---------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS system_requests_hourly
(
    hour DateTime('UTC'),
    service LowCardinality(String),
    endpoint String,
    method LowCardinality(String),
    requests SimpleAggregateFunction(sum, UInt64),
    successful_requests SimpleAggregateFunction(sum, UInt64),
    client_error_requests SimpleAggregateFunction(sum, UInt64),
    server_error_requests SimpleAggregateFunction(sum, UInt64),
    status_codes SimpleAggregateFunction(sumMap, Map(Int64, UInt64)),
    timed_requests SimpleAggregateFunction(sum, UInt64),
    response_time_total_ms SimpleAggregateFunction(sum, Float64),
    response_time AggregateFunction(quantileTiming, Float64),
    db_queries SimpleAggregateFunction(sum, UInt64),
    db_time_total_ms SimpleAggregateFunction(sum, Float64),
    cache_hits SimpleAggregateFunction(sum, UInt64),
    cache_misses SimpleAggregateFunction(sum, UInt64),
    external_calls_total SimpleAggregateFunction(sum, UInt64),
    external_errors_total SimpleAggregateFunction(sum, UInt64),
    external_time_total_ms SimpleAggregateFunction(sum, Float64),
    users AggregateFunction(uniqExact, UInt64),
    last_seen SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, service, endpoint, method)
TTL hour + INTERVAL ${retention_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

TRUNCATE TABLE system_requests_hourly;

INSERT INTO system_requests_hourly
SELECT
    toStartOfHour(timestamp) AS hour,
    service,
    endpoint,
    method,
    count() AS requests,
    countIf(status >= 100 AND status < 400) AS successful_requests,
    countIf(status >= 400 AND status < 500) AS client_error_requests,
    countIf(status >= 500) AS server_error_requests,
    sumMap(map(status, toUInt64(1))) AS status_codes,
    count(duration_ms) AS timed_requests,
    sum(ifNull(duration_ms, 0)) AS response_time_total_ms,
    quantileTimingStateIf(ifNull(duration_ms, 0), isNotNull(duration_ms)) AS response_time,
    sum(db_query_count) AS db_queries,
    sum(db_time_ms) AS db_time_total_ms,
    countIf(cache_hit = 1) AS cache_hits,
    countIf(cache_hit = 0) AS cache_misses,
    sum(external_calls) AS external_calls_total,
    sum(external_errors) AS external_errors_total,
    sum(external_time_ms) AS external_time_total_ms,
    uniqExactStateIf(cityHash64(user_id), user_id != '') AS users,
    max(timestamp) AS last_seen
FROM
(
    SELECT timestamp, user_id,
        tupleElement(p, 'service') AS service,
        tupleElement(p, 'endpoint') AS endpoint,
        tupleElement(p, 'method') AS method,
        tupleElement(p, 'status') AS status,
        if(isNull(tupleElement(p, 'duration_ms')), NULL, greatest(tupleElement(p, 'duration_ms'), 0)) AS duration_ms,
        toUInt64(greatest(ifNull(tupleElement(p, 'db_query_count'), 0), 0)) AS db_query_count,
        greatest(ifNull(tupleElement(p, 'db_time_ms'), 0), 0) AS db_time_ms,
        multiIf(isNull(tupleElement(p, 'cache_hit')), -1, tupleElement(p, 'cache_hit'), 1, 0) AS cache_hit,
        toUInt64(greatest(ifNull(tupleElement(p, 'external_calls'), 0), 0)) AS external_calls,
        toUInt64(greatest(ifNull(tupleElement(p, 'external_errors'), 0), 0)) AS external_errors,
        greatest(ifNull(tupleElement(p, 'external_time_ms'), 0), 0) AS external_time_ms
    FROM
    (
        SELECT timestamp, user_id,
            JSONExtract(properties, 'Tuple(service String, endpoint String, method String, status Int64, duration_ms Nullable(Float64), db_query_count Nullable(Float64), db_time_ms Nullable(Float64), cache_hit Nullable(Bool), external_calls Nullable(Float64), external_errors Nullable(Float64), external_time_ms Nullable(Float64))') AS p
        FROM events
        WHERE event_type = 'api_request'
    )
)
GROUP BY hour, service, endpoint, method;

CREATE MATERIALIZED VIEW IF NOT EXISTS system_requests_hourly_mv TO system_requests_hourly AS
SELECT
    toStartOfHour(timestamp) AS hour,
    service,
    endpoint,
    method,
    count() AS requests,
    countIf(status >= 100 AND status < 400) AS successful_requests,
    countIf(status >= 400 AND status < 500) AS client_error_requests,
    countIf(status >= 500) AS server_error_requests,
    sumMap(map(status, toUInt64(1))) AS status_codes,
    count(duration_ms) AS timed_requests,
    sum(ifNull(duration_ms, 0)) AS response_time_total_ms,
    quantileTimingStateIf(ifNull(duration_ms, 0), isNotNull(duration_ms)) AS response_time,
    sum(db_query_count) AS db_queries,
    sum(db_time_ms) AS db_time_total_ms,
    countIf(cache_hit = 1) AS cache_hits,
    countIf(cache_hit = 0) AS cache_misses,
    sum(external_calls) AS external_calls_total,
    sum(external_errors) AS external_errors_total,
    sum(external_time_ms) AS external_time_total_ms,
    uniqExactStateIf(cityHash64(user_id), user_id != '') AS users,
    max(timestamp) AS last_seen
FROM
(
    SELECT timestamp, user_id,
        tupleElement(p, 'service') AS service,
        tupleElement(p, 'endpoint') AS endpoint,
        tupleElement(p, 'method') AS method,
        tupleElement(p, 'status') AS status,
        if(isNull(tupleElement(p, 'duration_ms')), NULL, greatest(tupleElement(p, 'duration_ms'), 0)) AS duration_ms,
        toUInt64(greatest(ifNull(tupleElement(p, 'db_query_count'), 0), 0)) AS db_query_count,
        greatest(ifNull(tupleElement(p, 'db_time_ms'), 0), 0) AS db_time_ms,
        multiIf(isNull(tupleElement(p, 'cache_hit')), -1, tupleElement(p, 'cache_hit'), 1, 0) AS cache_hit,
        toUInt64(greatest(ifNull(tupleElement(p, 'external_calls'), 0), 0)) AS external_calls,
        toUInt64(greatest(ifNull(tupleElement(p, 'external_errors'), 0), 0)) AS external_errors,
        greatest(ifNull(tupleElement(p, 'external_time_ms'), 0), 0) AS external_time_ms
    FROM
    (
        SELECT timestamp, user_id,
            JSONExtract(properties, 'Tuple(service String, endpoint String, method String, status Int64, duration_ms Nullable(Float64), db_query_count Nullable(Float64), db_time_ms Nullable(Float64), cache_hit Nullable(Bool), external_calls Nullable(Float64), external_errors Nullable(Float64), external_time_ms Nullable(Float64))') AS p
        FROM events_rollup_feed
        WHERE event_type = 'api_request'
    )
)
GROUP BY hour, service, endpoint, method;

-- --- error_occurred ------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS system_errors_hourly
(
    hour DateTime('UTC'),
    service LowCardinality(String),
    endpoint String,
    error_type LowCardinality(String),
    severity LowCardinality(String),
    message String,
    errors SimpleAggregateFunction(sum, UInt64),
    last_seen SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, service, endpoint, error_type, severity, message)
TTL hour + INTERVAL ${retention_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

TRUNCATE TABLE system_errors_hourly;

INSERT INTO system_errors_hourly
SELECT
    toStartOfHour(timestamp) AS hour, service, endpoint, error_type, severity, message,
    count() AS errors,
    max(timestamp) AS last_seen
FROM
(
    SELECT timestamp,
        tupleElement(p, 'service') AS service,
        tupleElement(p, 'endpoint') AS endpoint,
        tupleElement(p, 'error_type') AS error_type,
        tupleElement(p, 'severity') AS severity,
        substringUTF8(tupleElement(p, 'message'), 1, 500) AS message
    FROM
    (
        SELECT timestamp,
            JSONExtract(properties, 'Tuple(service String, endpoint String, error_type String, severity String, message String)') AS p
        FROM events
        WHERE event_type = 'error_occurred'
    )
)
GROUP BY hour, service, endpoint, error_type, severity, message;

CREATE MATERIALIZED VIEW IF NOT EXISTS system_errors_hourly_mv TO system_errors_hourly AS
SELECT
    toStartOfHour(timestamp) AS hour, service, endpoint, error_type, severity, message,
    count() AS errors,
    max(timestamp) AS last_seen
FROM
(
    SELECT timestamp,
        tupleElement(p, 'service') AS service,
        tupleElement(p, 'endpoint') AS endpoint,
        tupleElement(p, 'error_type') AS error_type,
        tupleElement(p, 'severity') AS severity,
        substringUTF8(tupleElement(p, 'message'), 1, 500) AS message
    FROM
    (
        SELECT timestamp,
            JSONExtract(properties, 'Tuple(service String, endpoint String, error_type String, severity String, message String)') AS p
        FROM events_rollup_feed
        WHERE event_type = 'error_occurred'
    )
)
GROUP BY hour, service, endpoint, error_type, severity, message;

-- --- resource_usage ------------------------------------------------------------------------------
-- Maxima of a resource an hour reported nothing of are 0; its sample count says so.
CREATE TABLE IF NOT EXISTS system_resources_hourly
(
    hour DateTime('UTC'),
    service LowCardinality(String),
    instance String,
    samples SimpleAggregateFunction(sum, UInt64),
    cpu_samples SimpleAggregateFunction(sum, UInt64),
    cpu_percent_total SimpleAggregateFunction(sum, Float64),
    cpu_percent_max SimpleAggregateFunction(max, Float64),
    memory_samples SimpleAggregateFunction(sum, UInt64),
    memory_percent_total SimpleAggregateFunction(sum, Float64),
    memory_percent_max SimpleAggregateFunction(max, Float64),
    disk_samples SimpleAggregateFunction(sum, UInt64),
    disk_percent_total SimpleAggregateFunction(sum, Float64),
    disk_percent_max SimpleAggregateFunction(max, Float64),
    cpu_cores_max SimpleAggregateFunction(max, Float64),
    memory_gb_max SimpleAggregateFunction(max, Float64),
    last_seen SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, service, instance)
TTL hour + INTERVAL ${retention_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

TRUNCATE TABLE system_resources_hourly;

INSERT INTO system_resources_hourly
SELECT
    toStartOfHour(timestamp) AS hour, service, instance,
    count() AS samples,
    count(cpu_percent) AS cpu_samples,
    sum(ifNull(cpu_percent, 0)) AS cpu_percent_total,
    max(ifNull(cpu_percent, 0)) AS cpu_percent_max,
    count(memory_percent) AS memory_samples,
    sum(ifNull(memory_percent, 0)) AS memory_percent_total,
    max(ifNull(memory_percent, 0)) AS memory_percent_max,
    count(disk_percent) AS disk_samples,
    sum(ifNull(disk_percent, 0)) AS disk_percent_total,
    max(ifNull(disk_percent, 0)) AS disk_percent_max,
    max(ifNull(cpu_cores, 0)) AS cpu_cores_max,
    max(ifNull(memory_gb, 0)) AS memory_gb_max,
    max(timestamp) AS last_seen
FROM
(
    SELECT timestamp,
        tupleElement(p, 'service') AS service,
        tupleElement(p, 'instance') AS instance,
        if(isNull(tupleElement(p, 'cpu_percent')), NULL, least(greatest(tupleElement(p, 'cpu_percent'), 0), 100)) AS cpu_percent,
        if(isNull(tupleElement(p, 'memory_percent')), NULL, least(greatest(tupleElement(p, 'memory_percent'), 0), 100)) AS memory_percent,
        if(isNull(tupleElement(p, 'disk_percent')), NULL, least(greatest(tupleElement(p, 'disk_percent'), 0), 100)) AS disk_percent,
        if(isNull(tupleElement(p, 'cpu_cores')), NULL, greatest(tupleElement(p, 'cpu_cores'), 0)) AS cpu_cores,
        if(isNull(tupleElement(p, 'memory_gb')), NULL, greatest(tupleElement(p, 'memory_gb'), 0)) AS memory_gb
    FROM
    (
        SELECT timestamp,
            JSONExtract(properties, 'Tuple(service String, instance String, cpu_percent Nullable(Float64), memory_percent Nullable(Float64), disk_percent Nullable(Float64), cpu_cores Nullable(Float64), memory_gb Nullable(Float64))') AS p
        FROM events
        WHERE event_type = 'resource_usage'
    )
)
GROUP BY hour, service, instance;

CREATE MATERIALIZED VIEW IF NOT EXISTS system_resources_hourly_mv TO system_resources_hourly AS
SELECT
    toStartOfHour(timestamp) AS hour, service, instance,
    count() AS samples,
    count(cpu_percent) AS cpu_samples,
    sum(ifNull(cpu_percent, 0)) AS cpu_percent_total,
    max(ifNull(cpu_percent, 0)) AS cpu_percent_max,
    count(memory_percent) AS memory_samples,
    sum(ifNull(memory_percent, 0)) AS memory_percent_total,
    max(ifNull(memory_percent, 0)) AS memory_percent_max,
    count(disk_percent) AS disk_samples,
    sum(ifNull(disk_percent, 0)) AS disk_percent_total,
    max(ifNull(disk_percent, 0)) AS disk_percent_max,
    max(ifNull(cpu_cores, 0)) AS cpu_cores_max,
    max(ifNull(memory_gb, 0)) AS memory_gb_max,
    max(timestamp) AS last_seen
FROM
(
    SELECT timestamp,
        tupleElement(p, 'service') AS service,
        tupleElement(p, 'instance') AS instance,
        if(isNull(tupleElement(p, 'cpu_percent')), NULL, least(greatest(tupleElement(p, 'cpu_percent'), 0), 100)) AS cpu_percent,
        if(isNull(tupleElement(p, 'memory_percent')), NULL, least(greatest(tupleElement(p, 'memory_percent'), 0), 100)) AS memory_percent,
        if(isNull(tupleElement(p, 'disk_percent')), NULL, least(greatest(tupleElement(p, 'disk_percent'), 0), 100)) AS disk_percent,
        if(isNull(tupleElement(p, 'cpu_cores')), NULL, greatest(tupleElement(p, 'cpu_cores'), 0)) AS cpu_cores,
        if(isNull(tupleElement(p, 'memory_gb')), NULL, greatest(tupleElement(p, 'memory_gb'), 0)) AS memory_gb
    FROM
    (
        SELECT timestamp,
            JSONExtract(properties, 'Tuple(service String, instance String, cpu_percent Nullable(Float64), memory_percent Nullable(Float64), disk_percent Nullable(Float64), cpu_cores Nullable(Float64), memory_gb Nullable(Float64))') AS p
        FROM events_rollup_feed
        WHERE event_type = 'resource_usage'
    )
)
GROUP BY hour, service, instance;

-- --- health_check --------------------------------------------------------------------------------
-- latest_status: the status of the hour's latest check; of checks at the same instant the worst
-- (down, degraded, up, then any other text), then the greatest text, so the choice never depends on
-- the order rows were merged in.
CREATE TABLE IF NOT EXISTS system_health_hourly
(
    hour DateTime('UTC'),
    service LowCardinality(String),
    checks SimpleAggregateFunction(sum, UInt64),
    up_checks SimpleAggregateFunction(sum, UInt64),
    degraded_checks SimpleAggregateFunction(sum, UInt64),
    down_checks SimpleAggregateFunction(sum, UInt64),
    timed_checks SimpleAggregateFunction(sum, UInt64),
    latency_total_ms SimpleAggregateFunction(sum, Float64),
    latest_status AggregateFunction(argMax, String, Tuple(DateTime64(3, 'UTC'), UInt8, String)),
    last_check SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, service)
TTL hour + INTERVAL ${retention_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

TRUNCATE TABLE system_health_hourly;

INSERT INTO system_health_hourly
SELECT
    toStartOfHour(timestamp) AS hour, service,
    count() AS checks,
    countIf(check_status = 'up') AS up_checks,
    countIf(check_status = 'degraded') AS degraded_checks,
    countIf(check_status = 'down') AS down_checks,
    count(latency_ms) AS timed_checks,
    sum(ifNull(latency_ms, 0)) AS latency_total_ms,
    argMaxState(check_status, (timestamp, toUInt8(multiIf(check_status = 'down', 3, check_status = 'degraded', 2, check_status = 'up', 1, 0)), check_status)) AS latest_status,
    max(timestamp) AS last_check
FROM
(
    SELECT timestamp,
        tupleElement(p, 'service') AS service,
        lower(tupleElement(p, 'status')) AS check_status,
        if(isNull(tupleElement(p, 'latency_ms')), NULL, greatest(tupleElement(p, 'latency_ms'), 0)) AS latency_ms
    FROM
    (
        SELECT timestamp,
            JSONExtract(properties, 'Tuple(service String, status String, latency_ms Nullable(Float64))') AS p
        FROM events
        WHERE event_type = 'health_check'
    )
)
GROUP BY hour, service;

CREATE MATERIALIZED VIEW IF NOT EXISTS system_health_hourly_mv TO system_health_hourly AS
SELECT
    toStartOfHour(timestamp) AS hour, service,
    count() AS checks,
    countIf(check_status = 'up') AS up_checks,
    countIf(check_status = 'degraded') AS degraded_checks,
    countIf(check_status = 'down') AS down_checks,
    count(latency_ms) AS timed_checks,
    sum(ifNull(latency_ms, 0)) AS latency_total_ms,
    argMaxState(check_status, (timestamp, toUInt8(multiIf(check_status = 'down', 3, check_status = 'degraded', 2, check_status = 'up', 1, 0)), check_status)) AS latest_status,
    max(timestamp) AS last_check
FROM
(
    SELECT timestamp,
        tupleElement(p, 'service') AS service,
        lower(tupleElement(p, 'status')) AS check_status,
        if(isNull(tupleElement(p, 'latency_ms')), NULL, greatest(tupleElement(p, 'latency_ms'), 0)) AS latency_ms
    FROM
    (
        SELECT timestamp,
            JSONExtract(properties, 'Tuple(service String, status String, latency_ms Nullable(Float64))') AS p
        FROM events_rollup_feed
        WHERE event_type = 'health_check'
    )
)
GROUP BY hour, service
