-- API keys of the operator API (`levibot api`, `levibot api-keys create|list|revoke`; docs/api.md).
--
-- Only a slow hash of each key's secret is stored (`secret_hash`: Argon2id in PHC string form); the token is shown
-- once, when the key is created. `scopes` are among read/trade/admin, `tier` names a configured tier
-- (LEVIBOT_API_TIERS), `accounts` the accounts the key may send control commands for ('*': any), `rate` an
-- optional per-key quota that replaces the tier's (e.g. '120/minute').
-- Keys are never deleted, only revoked: a row-level trigger refuses DELETE, TRUNCATE and every UPDATE except
-- setting `revoked_at`/`revoked_by` once (SQLSTATE 23001, restrict_violation), so a revoked key cannot come back
-- and a stored hash cannot be swapped. The same table in both PostgreSQL variants (small, unpartitioned).

CREATE TABLE IF NOT EXISTS api_keys (
    key_id          text        NOT NULL CHECK (key_id ~ '^[0-9a-f]{12}$'),
    name            text        NOT NULL DEFAULT '',
    secret_hash     text        NOT NULL CHECK (secret_hash LIKE '$argon2%'),
    scopes          text[]      NOT NULL CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['read', 'trade', 'admin']),
    tier            text        NOT NULL,
    accounts        text[]      NOT NULL DEFAULT '{default}',
    rate            text        NOT NULL DEFAULT '',
    created_by      text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz,
    revoked_at      timestamptz,
    revoked_by      text        NOT NULL DEFAULT '',
    PRIMARY KEY (key_id)
);
CREATE INDEX IF NOT EXISTS api_keys_created_at_idx ON api_keys (created_at);

CREATE OR REPLACE FUNCTION levibot_api_keys_guard() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL
       AND (NEW.key_id, NEW.name, NEW.secret_hash, NEW.scopes, NEW.tier, NEW.accounts, NEW.rate, NEW.created_by,
            NEW.created_at, NEW.expires_at)
           IS NOT DISTINCT FROM
           (OLD.key_id, OLD.name, OLD.secret_hash, OLD.scopes, OLD.tier, OLD.accounts, OLD.rate, OLD.created_by,
            OLD.created_at, OLD.expires_at) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'api_keys: % is not allowed (keys are only created and revoked, once)', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$fn$;

CREATE OR REPLACE TRIGGER api_keys_guard
    BEFORE UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION levibot_api_keys_guard();

CREATE OR REPLACE TRIGGER api_keys_no_truncate
    BEFORE TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION levibot_api_keys_guard();
