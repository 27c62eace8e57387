-- Privacy (docs/security.md#privacy): erasure jobs and the suppression list of erased users.
--
-- An erasure job removes one user's data everywhere the service keeps it. It is persisted here so that
-- a job cut short (a replica or actor killed) is resumed by the next runner: each step it finished is
-- recorded, and every step can run again. The ids to erase are held only while the job runs
-- (user_ids); a completed job keeps the user's digest and its receipt, never the id.
CREATE TABLE IF NOT EXISTS erasure_jobs (
    id              TEXT PRIMARY KEY,
    -- SHA-256 (hex) of the user id as the request gave it (core/user_ids.py suppression_digest).
    user_digest     TEXT NOT NULL,
    -- The id as given and its stored forms (pseudonyms under the current and previous salts);
    -- cleared when the job completes.
    user_ids        TEXT[],
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'completed')),
    -- The last step finished (semantic/erasure.py STEPS); '' before the first.
    step            TEXT NOT NULL DEFAULT '',
    requested_by    TEXT,
    requested_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at      TIMESTAMPTZ,
    suppressed_at   TIMESTAMPTZ,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at    TIMESTAMPTZ,
    -- What the user's data was before anything was removed (which days, sessions and rows), so a
    -- resumed job rebuilds the same slices however far the first run got; cleared with user_ids.
    plan            JSONB,
    -- What each finished step removed, by store.
    removed         JSONB NOT NULL DEFAULT '{}'::jsonb,
    receipt         JSONB,
    receipt_sha256  TEXT,
    attempts        INT NOT NULL DEFAULT 0,
    last_error      TEXT
);
-- The runners look for unfinished jobs. A user has at most one: a request for a user whose job is not
-- finished gets that job.
CREATE INDEX IF NOT EXISTS erasure_jobs_open ON erasure_jobs (requested_at) WHERE status <> 'completed';
CREATE UNIQUE INDEX IF NOT EXISTS erasure_jobs_open_user ON erasure_jobs (user_digest) WHERE status <> 'completed';

-- Erased users: the SHA-256 of each id form, checked at ingest so late events for them are refused.
-- seq orders the rows for the replicas' incremental reloads (storage/suppression_list.py).
CREATE TABLE IF NOT EXISTS suppressed_users (
    digest          BYTEA PRIMARY KEY CHECK (octet_length(digest) = 32),
    seq             BIGSERIAL NOT NULL,
    job_id          TEXT NOT NULL,
    suppressed_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS suppressed_users_seq ON suppressed_users (seq);
