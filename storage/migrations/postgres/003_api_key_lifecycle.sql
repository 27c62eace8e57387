-- API key lifecycle: an optional expiry, a content scope, and rotation. A rotated key keeps its id and
-- role; its previous secret (hash) keeps working until previous_key_valid_until, then stops.
-- Empty scope arrays mean all content.
ALTER TABLE api_keys
    ADD COLUMN IF NOT EXISTS expires_at TIMESTAMPTZ,
    ADD COLUMN IF NOT EXISTS scope_categories TEXT[] NOT NULL DEFAULT '{}',
    ADD COLUMN IF NOT EXISTS scope_content_ids TEXT[] NOT NULL DEFAULT '{}',
    ADD COLUMN IF NOT EXISTS rotated_at TIMESTAMPTZ,
    ADD COLUMN IF NOT EXISTS previous_key_hash TEXT,
    ADD COLUMN IF NOT EXISTS previous_key_valid_until TIMESTAMPTZ;

ALTER TABLE api_keys
    ADD CONSTRAINT api_keys_previous_key_pair
        CHECK ((previous_key_hash IS NULL) = (previous_key_valid_until IS NULL));

-- A presented secret is looked up by either hash (the current one has its own unique index).
CREATE UNIQUE INDEX IF NOT EXISTS api_keys_previous_key_hash ON api_keys (previous_key_hash)
    WHERE previous_key_hash IS NOT NULL;

-- The hash of every secret a rotation replaced: a configured bootstrap admin key
-- (ANALYTICS_BOOTSTRAP_ADMIN_KEY) that was rotated away is not made again at the next start.
CREATE TABLE IF NOT EXISTS api_key_retired_secrets (
    key_hash    TEXT PRIMARY KEY,
    key_id      TEXT NOT NULL,
    retired_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
