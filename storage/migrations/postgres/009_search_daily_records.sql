-- The daily job's search record (pipelines/daily_aggregation.py): one row per UTC day, the spec's search
-- analytics of that day as GET /api/v1/analytics/search/overview answers it for the day alone. A day with
-- no searches has its row of zeros; each run of the day replaces it with the content records, in one
-- transaction. docs/batch.md documents every column.
CREATE TABLE IF NOT EXISTS search_analytics_daily (
    day                        DATE PRIMARY KEY,
    searches                   BIGINT NOT NULL,
    searchers                  BIGINT NOT NULL,
    zero_result_searches       BIGINT NOT NULL,
    zero_result_rate           DOUBLE PRECISION NOT NULL,
    average_results            DOUBLE PRECISION NOT NULL,
    clicks                     BIGINT NOT NULL,
    click_through_rate         DOUBLE PRECISION NOT NULL,
    average_click_position     DOUBLE PRECISION,
    click_positions            JSONB NOT NULL,
    searches_with_session      BIGINT NOT NULL,
    converted_searches         BIGINT NOT NULL,
    conversion_rate            DOUBLE PRECISION NOT NULL,
    conversion_minutes         INT NOT NULL,
    search_impressions         BIGINT NOT NULL,
    search_clicks              BIGINT NOT NULL,
    search_impression_ctr      DOUBLE PRECISION NOT NULL,
    recommendation_impressions BIGINT NOT NULL,
    recommendation_clicks      BIGINT NOT NULL,
    recommendation_ctr         DOUBLE PRECISION NOT NULL,
    run_id                     TEXT NOT NULL,
    calculated_at              TIMESTAMPTZ NOT NULL
);
