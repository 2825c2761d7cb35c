-- TimescaleDB creates chunks on demand, so there is nothing to pre-create. This no-op keeps the maintenance API
-- identical across the two PostgreSQL variants: levibot_ensure_monthly_partitions(table, from, months) exists in
-- both and returns the number of partitions it created (always 0 here).

CREATE OR REPLACE FUNCTION levibot_ensure_monthly_partitions(
    p_table  text,
    p_from   timestamptz,
    p_months integer DEFAULT 3
) RETURNS integer
LANGUAGE sql
AS $fn$
    SELECT 0;
$fn$;
