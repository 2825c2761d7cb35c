-- The audit trail (schemas.events.AuditEvent, topic `audit`): who did what, when, with which result.
--
-- Append-only: rows are only ever inserted. A statement-level trigger raises on every UPDATE, DELETE and TRUNCATE
-- (also on INSERT ... ON CONFLICT DO UPDATE, and on statements that match no row), with SQLSTATE 23001
-- (restrict_violation). Writers insert with ON CONFLICT DO NOTHING: an event re-emitted after a recovery carries
-- the same deterministic id and is skipped. The table is small and a plain table, not a hypertable (same in both
-- PostgreSQL variants), so `id` alone is the primary key. `recorded_at` is when the row was stored (the server's
-- clock); `ts`/`ts_ns` are the event time of the command or request.
-- The table owner (or a superuser) can still disable the trigger: give writers a role that owns nothing and has
-- only INSERT and SELECT on it (docs/control.md).

CREATE TABLE IF NOT EXISTS audit (
    id                 text        NOT NULL,
    actor              text        NOT NULL,
    action             text        NOT NULL,
    scope              text        NOT NULL DEFAULT '',
    result             text        NOT NULL CHECK (result IN ('applied', 'refused', 'denied', 'error')),
    command_id         text,
    detail             text        NOT NULL DEFAULT '',
    parameters_digest  text        NOT NULL DEFAULT '',
    source             text        NOT NULL DEFAULT 'flow',
    client_address     text        NOT NULL DEFAULT '',
    ts                 timestamptz NOT NULL,
    ts_ns              bigint      NOT NULL,
    schema_version     smallint    NOT NULL DEFAULT 1,
    recorded_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS audit_ts_idx ON audit (ts);
CREATE INDEX IF NOT EXISTS audit_command_id_idx ON audit (command_id);
CREATE INDEX IF NOT EXISTS audit_scope_ts_idx ON audit (scope, ts);

CREATE OR REPLACE FUNCTION levibot_audit_append_only() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
BEGIN
    RAISE EXCEPTION 'audit is append-only: % on table % is not allowed', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END;
$fn$;

CREATE OR REPLACE TRIGGER audit_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION levibot_audit_append_only();
