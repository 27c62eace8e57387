-- Reports (the spec's Report model), their runs, the slots their schedules claimed, the deliveries of
-- each finished run, and data exports. A report belongs to the principal that made it (owner_key_id:
-- an API key id or jwt:<subject>); it is shared with principals by id (shared_with) and with roles.
-- Scheduled runs are computed as the owner: its role and content scope are kept with the report.
CREATE TABLE IF NOT EXISTS reports (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    description          TEXT,
    report_type          TEXT NOT NULL,
    report_format        TEXT NOT NULL,
    data_source          TEXT NOT NULL,
    date_range           JSONB NOT NULL CHECK (jsonb_typeof(date_range) = 'object'),
    filters              JSONB NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(filters) = 'object'),
    chart_type           TEXT,
    visualization_config JSONB NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(visualization_config) = 'object'),
    is_scheduled         BOOLEAN NOT NULL DEFAULT false,
    schedule_config      JSONB,
    notifications        JSONB NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(notifications) = 'array'),
    created_by           TEXT NOT NULL,
    owner_key_id         TEXT NOT NULL,
    owner_role           TEXT NOT NULL,
    owner_scope          JSONB,
    shared_with          TEXT[] NOT NULL DEFAULT '{}',
    shared_with_roles    TEXT[] NOT NULL DEFAULT '{}',
    is_public            BOOLEAN NOT NULL DEFAULT false,
    status               TEXT NOT NULL DEFAULT 'draft',
    last_generated       TIMESTAMPTZ,
    output_url           TEXT,
    file_size            BIGINT,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    version              INT NOT NULL DEFAULT 1 CHECK (version >= 1)
);
CREATE INDEX IF NOT EXISTS reports_owner ON reports (owner_key_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS reports_shared ON reports USING GIN (shared_with);
CREATE INDEX IF NOT EXISTS reports_shared_roles ON reports USING GIN (shared_with_roles);
CREATE INDEX IF NOT EXISTS reports_scheduled ON reports (id) WHERE is_scheduled;

-- One row per generation. A run is 'generating' until its task finishes it; a run whose task stopped
-- beating (its worker died) is failed or retried by the reaper, never left generating.
CREATE TABLE IF NOT EXISTS report_runs (
    id              TEXT PRIMARY KEY,
    report_id       TEXT NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    status          TEXT NOT NULL DEFAULT 'generating'
                    CHECK (status IN ('generating', 'completed', 'failed')),
    trigger         TEXT NOT NULL CHECK (trigger IN ('manual', 'schedule')),
    slot_at         TIMESTAMPTZ,
    report_format   TEXT NOT NULL,
    requested_by    TEXT NOT NULL,
    requested_role  TEXT NOT NULL,
    requested_scope JSONB,
    period_start    DATE,
    period_end      DATE,
    as_of           TIMESTAMPTZ,
    attempts        INT NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at      TIMESTAMPTZ,
    heartbeat_at    TIMESTAMPTZ,
    finished_at     TIMESTAMPTZ,
    error           TEXT,
    blob_key        TEXT,
    content_type    TEXT,
    file_name       TEXT,
    file_size       BIGINT,
    sha256          TEXT
);
CREATE INDEX IF NOT EXISTS report_runs_report ON report_runs (report_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS report_runs_generating ON report_runs (heartbeat_at) WHERE status = 'generating';

-- A schedule's slot is run once: the first scheduler to insert the slot's row runs it; a slot the
-- catch-up policy does not run is kept as 'missed'.
CREATE TABLE IF NOT EXISTS report_schedule_slots (
    report_id   TEXT NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    slot_at     TIMESTAMPTZ NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('run', 'missed')),
    run_id      TEXT,
    scheduler   TEXT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (report_id, slot_at)
);

-- Every notification of a finished run: one row per channel and target, with its attempts.
CREATE TABLE IF NOT EXISTS report_deliveries (
    id           BIGSERIAL PRIMARY KEY,
    run_id       TEXT NOT NULL REFERENCES report_runs (id) ON DELETE CASCADE,
    channel      TEXT NOT NULL,
    target       TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts     INT NOT NULL DEFAULT 0,
    last_error   TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    delivered_at TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS report_deliveries_run ON report_deliveries (run_id, id);

-- Data exports: a dataset (raw events, an analyticsQuery or a saved query) written to a file in chunks.
CREATE TABLE IF NOT EXISTS exports (
    id              TEXT PRIMARY KEY,
    dataset         TEXT NOT NULL,
    definition      JSONB NOT NULL CHECK (jsonb_typeof(definition) = 'object'),
    export_format   TEXT NOT NULL CHECK (export_format IN ('csv', 'ndjson', 'parquet')),
    status          TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'completed', 'failed')),
    owner_key_id    TEXT NOT NULL,
    owner_role      TEXT NOT NULL,
    owner_scope     JSONB,
    attempts        INT NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at      TIMESTAMPTZ,
    heartbeat_at    TIMESTAMPTZ,
    finished_at     TIMESTAMPTZ,
    as_of           TIMESTAMPTZ,
    row_count       BIGINT,
    error           TEXT,
    blob_key        TEXT,
    content_type    TEXT,
    file_name       TEXT,
    file_size       BIGINT,
    sha256          TEXT
);
CREATE INDEX IF NOT EXISTS exports_owner ON exports (owner_key_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS exports_running ON exports (heartbeat_at) WHERE status = 'running';

-- Secrets the service makes for itself and every replica shares (the key that signs download links
-- when ANALYTICS_LINK_SIGNING_SECRET is not set). Made once, on first use.
CREATE TABLE IF NOT EXISTS service_secrets (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
