-- The daily job's system records (pipelines/daily_aggregation.py): the spec's SystemAnalytics of every
-- service and UTC hour of the day in which it sent requests or resource samples or ran slow statements,
-- as GET /api/v1/analytics/services answers them for that day. Replaced with the day's other records, in
-- one transaction. docs/batch.md documents every column.
CREATE TABLE IF NOT EXISTS system_analytics_hourly (
    day                        DATE NOT NULL,
    hour                       INT NOT NULL CHECK (hour BETWEEN 0 AND 23),
    service_name               TEXT NOT NULL,
    request_count              BIGINT NOT NULL,
    success_count              BIGINT NOT NULL,
    error_count                BIGINT NOT NULL,
    average_response_time      DOUBLE PRECISION NOT NULL,
    cpu_usage_avg              DOUBLE PRECISION NOT NULL,
    memory_usage_avg           DOUBLE PRECISION NOT NULL,
    disk_usage_avg             DOUBLE PRECISION NOT NULL,
    endpoint_stats             JSONB NOT NULL,
    status_code_distribution   JSONB NOT NULL,
    db_query_count             BIGINT NOT NULL,
    db_avg_query_time          DOUBLE PRECISION NOT NULL,
    db_slow_queries            BIGINT NOT NULL,
    cache_hits                 BIGINT NOT NULL,
    cache_misses               BIGINT NOT NULL,
    cache_hit_rate             DOUBLE PRECISION NOT NULL,
    external_api_calls         BIGINT NOT NULL,
    external_api_errors        BIGINT NOT NULL,
    external_avg_response_time DOUBLE PRECISION NOT NULL,
    run_id                     TEXT NOT NULL,
    calculated_at              TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (day, hour, service_name)
);
CREATE INDEX IF NOT EXISTS system_analytics_hourly_service ON system_analytics_hourly (service_name, day DESC, hour);
