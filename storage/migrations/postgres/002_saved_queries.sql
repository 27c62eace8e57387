-- Saved query definitions (query, funnel, retention, paths, stickiness) that reports and dashboards
-- refer to by id. Each belongs to the API key that made it; it is shared with roles and keys by name.
-- owner_key_id has no foreign key: API keys are revoked, never deleted, so the owner stays known.
CREATE TABLE IF NOT EXISTS saved_queries (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    description       TEXT NOT NULL DEFAULT '',
    kind              TEXT NOT NULL,
    definition        JSONB NOT NULL CHECK (jsonb_typeof(definition) = 'object'),
    owner_key_id      TEXT NOT NULL,
    owner_name        TEXT NOT NULL,
    shared_with_roles TEXT[] NOT NULL DEFAULT '{}',
    shared_with_keys  TEXT[] NOT NULL DEFAULT '{}',
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    version           INT NOT NULL DEFAULT 1 CHECK (version >= 1),
    -- A name names one query among its owner's: the 409 on a duplicate comes from here.
    CONSTRAINT saved_queries_owner_name UNIQUE (owner_key_id, name)
);
-- Lists are newest first: by owner, by kind, and through the sharing arrays (containment, GIN).
CREATE INDEX IF NOT EXISTS saved_queries_owner ON saved_queries (owner_key_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS saved_queries_kind ON saved_queries (kind, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS saved_queries_shared_roles ON saved_queries USING GIN (shared_with_roles);
CREATE INDEX IF NOT EXISTS saved_queries_shared_keys ON saved_queries USING GIN (shared_with_keys);
