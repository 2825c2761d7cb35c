-- Revocation reaches every API process at once (docs/api.md, "Keys, scopes and tiers").
--
-- Each `levibot api` process keeps the key rows it has read in memory and LISTENs on the channel
-- `levibot_api_keys`; this trigger sends the key id on that channel whenever a row of `api_keys` changes (in
-- practice: a revocation, the only UPDATE the guard trigger of 0004 lets through, or a new key). PostgreSQL delivers
-- the notification when the revoking transaction commits, whoever ran it (`levibot api-keys revoke`, plain SQL), and
-- the processes drop that key's cached row. A process whose listening connection is down does not use its cache.

CREATE OR REPLACE FUNCTION levibot_api_keys_notify() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
BEGIN
    PERFORM pg_notify('levibot_api_keys', NEW.key_id);
    RETURN NULL;
END;
$fn$;

CREATE OR REPLACE TRIGGER api_keys_notify
    AFTER INSERT OR UPDATE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION levibot_api_keys_notify();
