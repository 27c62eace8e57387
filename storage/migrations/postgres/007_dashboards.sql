-- Dashboards, their widgets and every saved version of each. A dashboard belongs to the principal that
-- made it (owner_key_id: an API key id or jwt:<subject>); it is shared with principals by id and with
-- roles, or public. Prebuilt dashboards (prebuilt: their key) are made once, whoever starts first.
-- Every change (of the dashboard or of one of its widgets) raises the version by one and keeps the
-- whole dashboard as it then was in dashboard_versions, so any version can be looked at and restored.
CREATE TABLE IF NOT EXISTS dashboards (
    id                       TEXT PRIMARY KEY,
    name                     TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    description              TEXT,
    refresh_interval_seconds INT NOT NULL DEFAULT 5 CHECK (refresh_interval_seconds BETWEEN 1 AND 3600),
    theme                    TEXT NOT NULL DEFAULT 'light' CHECK (theme IN ('light', 'dark')),
    columns                  INT NOT NULL DEFAULT 12 CHECK (columns BETWEEN 1 AND 48),
    prebuilt                 TEXT UNIQUE,
    created_by               TEXT NOT NULL,
    owner_key_id             TEXT NOT NULL,
    owner_role               TEXT NOT NULL,
    shared_with              TEXT[] NOT NULL DEFAULT '{}',
    shared_with_roles        TEXT[] NOT NULL DEFAULT '{}',
    is_public                BOOLEAN NOT NULL DEFAULT false,
    last_refreshed_at        TIMESTAMPTZ,
    created_at               TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at               TIMESTAMPTZ NOT NULL DEFAULT now(),
    version                  INT NOT NULL DEFAULT 1 CHECK (version >= 1)
);
CREATE INDEX IF NOT EXISTS dashboards_owner ON dashboards (owner_key_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS dashboards_shared ON dashboards USING GIN (shared_with);
CREATE INDEX IF NOT EXISTS dashboards_shared_roles ON dashboards USING GIN (shared_with_roles);

CREATE TABLE IF NOT EXISTS dashboard_widgets (
    id           TEXT PRIMARY KEY,
    dashboard_id TEXT NOT NULL REFERENCES dashboards (id) ON DELETE CASCADE,
    widget_type  TEXT NOT NULL,
    title        TEXT NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    config       JSONB NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(config) = 'object'),
    layout       JSONB NOT NULL CHECK (jsonb_typeof(layout) = 'object'),
    -- The clock, not the transaction's start: widgets saved together keep the order they were given in.
    created_at   TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS dashboard_widgets_dashboard ON dashboard_widgets (dashboard_id);

CREATE TABLE IF NOT EXISTS dashboard_versions (
    dashboard_id TEXT NOT NULL REFERENCES dashboards (id) ON DELETE CASCADE,
    version      INT NOT NULL,
    snapshot     JSONB NOT NULL CHECK (jsonb_typeof(snapshot) = 'object'),
    saved_by     TEXT NOT NULL,
    saved_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (dashboard_id, version)
);

-- The prebuilt dashboards made so far: each is made once, and one an admin deleted is not made again.
CREATE TABLE IF NOT EXISTS prebuilt_dashboards (
    key     TEXT PRIMARY KEY,
    made_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
