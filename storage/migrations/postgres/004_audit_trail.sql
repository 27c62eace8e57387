-- The audit trail (storage/audit_log.py, docs/security.md#audit-log). Each entry says who acted (the
-- key, its role and name), what they did (action, the permission matrix's operation, the target, a
-- SHA-256 digest of the parameters: never the parameters themselves), how it ended (outcome and HTTP
-- status) and where from (the request id and the client's address).
ALTER TABLE audit_log
    ADD COLUMN IF NOT EXISTS actor_role TEXT
        CHECK (actor_role IN ('admin', 'analyst', 'content_manager', 'viewer', 'service')),
    ADD COLUMN IF NOT EXISTS actor_name TEXT,
    ADD COLUMN IF NOT EXISTS operation TEXT,
    ADD COLUMN IF NOT EXISTS parameter_digest TEXT CHECK (parameter_digest ~ '^[0-9a-f]{64}$'),
    -- Entries written before this migration were all successful changes.
    ADD COLUMN IF NOT EXISTS outcome TEXT NOT NULL DEFAULT 'ok'
        CHECK (outcome IN ('ok', 'denied', 'failed', 'error', 'started')),
    ADD COLUMN IF NOT EXISTS status SMALLINT CHECK (status BETWEEN 100 AND 599),
    ADD COLUMN IF NOT EXISTS request_id TEXT,
    ADD COLUMN IF NOT EXISTS client_address TEXT;

-- Readers page newest first (by id) within one filter: each index keeps a filter's entries in that order.
CREATE INDEX IF NOT EXISTS audit_log_actor ON audit_log (actor_key_id, id DESC);
CREATE INDEX IF NOT EXISTS audit_log_role ON audit_log (actor_role, id DESC);
CREATE INDEX IF NOT EXISTS audit_log_action ON audit_log (action, id DESC);
CREATE INDEX IF NOT EXISTS audit_log_operation ON audit_log (operation, id DESC);
CREATE INDEX IF NOT EXISTS audit_log_target ON audit_log (target, id DESC);
CREATE INDEX IF NOT EXISTS audit_log_outcome ON audit_log (outcome, id DESC);
CREATE INDEX IF NOT EXISTS audit_log_client ON audit_log (client_address, id DESC);
CREATE INDEX IF NOT EXISTS audit_log_request ON audit_log (request_id);

-- Append-only in the database itself: whatever code runs against it, an entry once written is never
-- changed or removed. Statement triggers, so even a statement that matches no row is refused.
CREATE OR REPLACE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'audit entries are never changed or removed; see docs/security.md#audit-log';
END;
$$;

DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log;
CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
