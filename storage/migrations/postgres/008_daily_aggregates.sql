-- The batch jobs' records (pipelines/daily_aggregation.py): what BI tools read as stable daily numbers.
-- Columns are the spec's ContentAnalytics; a day's records are replaced as a whole by each run of that
-- day, so a re-run never duplicates them. docs/batch.md documents every column.
CREATE TABLE IF NOT EXISTS aggregation_runs (
    id            TEXT PRIMARY KEY,
    job           TEXT NOT NULL CHECK (job IN ('daily')),
    day           DATE NOT NULL,
    engine        TEXT NOT NULL CHECK (engine IN ('ray', 'spark')),
    trigger       TEXT NOT NULL CHECK (trigger IN ('cli', 'api', 'schedule', 'backfill', 'late_events')),
    requested_by  TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'completed', 'failed')),
    started_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at   TIMESTAMPTZ,
    -- Every event acknowledged before this instant is counted in the run's records.
    as_of         TIMESTAMPTZ,
    partitions    INT,
    records       JSONB NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(records) = 'object'),
    error         TEXT
);
CREATE INDEX IF NOT EXISTS aggregation_runs_day ON aggregation_runs (job, day DESC, started_at DESC);
CREATE INDEX IF NOT EXISTS aggregation_runs_started ON aggregation_runs (started_at DESC, id DESC);
-- The schedule runs each day once, however many schedulers run: the first to insert the day's row runs it.
CREATE UNIQUE INDEX IF NOT EXISTS aggregation_runs_scheduled ON aggregation_runs (day) WHERE trigger = 'schedule';

CREATE TABLE IF NOT EXISTS content_analytics_daily (
    day                        DATE NOT NULL,
    content_id                 TEXT NOT NULL,
    category                   TEXT,
    total_views                BIGINT NOT NULL,
    unique_views               BIGINT NOT NULL,
    average_view_duration      DOUBLE PRECISION NOT NULL,
    completion_rate            DOUBLE PRECISION NOT NULL,
    likes                      BIGINT NOT NULL,
    shares                     BIGINT NOT NULL,
    bookmarks                  BIGINT NOT NULL,
    comments                   BIGINT NOT NULL,
    search_impressions         BIGINT NOT NULL,
    search_clicks              BIGINT NOT NULL,
    recommendation_impressions BIGINT NOT NULL,
    recommendation_clicks      BIGINT NOT NULL,
    direct_traffic             BIGINT NOT NULL,
    search_traffic             BIGINT NOT NULL,
    recommendation_traffic     BIGINT NOT NULL,
    external_traffic           BIGINT NOT NULL,
    desktop_views              BIGINT NOT NULL,
    mobile_views               BIGINT NOT NULL,
    tablet_views               BIGINT NOT NULL,
    top_countries              JSONB NOT NULL,
    top_regions                JSONB NOT NULL,
    hourly_distribution        JSONB NOT NULL,
    daily_trend                DOUBLE PRECISION NOT NULL,
    popularity_score           DOUBLE PRECISION NOT NULL,
    engagement_score           DOUBLE PRECISION NOT NULL,
    quality_score              DOUBLE PRECISION NOT NULL,
    performance_score          DOUBLE PRECISION NOT NULL,
    run_id                     TEXT NOT NULL,
    calculated_at              TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (day, content_id)
);
CREATE INDEX IF NOT EXISTS content_analytics_daily_content ON content_analytics_daily (content_id, day DESC);
CREATE INDEX IF NOT EXISTS content_analytics_daily_category ON content_analytics_daily (category, day DESC);

-- The content performance rankings of each day: overall (category '') and within each category.
CREATE TABLE IF NOT EXISTS content_rankings_daily (
    day               DATE NOT NULL,
    category          TEXT NOT NULL,
    rank              INT NOT NULL CHECK (rank >= 1),
    content_id        TEXT NOT NULL,
    performance_score DOUBLE PRECISION NOT NULL,
    total_views       BIGINT NOT NULL,
    run_id            TEXT NOT NULL,
    PRIMARY KEY (day, category, rank)
);
CREATE INDEX IF NOT EXISTS content_rankings_daily_content ON content_rankings_daily (content_id, day DESC);
