-- Monthly partitions for the natively partitioned tables (plain PostgreSQL variant).
--
-- levibot_ensure_monthly_partitions(table, from, months) creates the UTC-month partitions
-- <table>_pYYYYMM covering `months` months starting with the month of `from`, skipping existing ones, and
-- returns how many it created. Rows already sitting in <table>_default for such a month are moved into the new
-- partition (PostgreSQL refuses to attach a partition whose range the default partition still holds).
-- Run it from a maintenance job ahead of time (e.g. daily with now(), 3); the replay tool may call it for
-- the historical months it loads. Rows outside every monthly partition land in <table>_default, so nothing is
-- ever rejected for lack of a partition. The timescale variant defines the same function as a no-op.

CREATE OR REPLACE FUNCTION levibot_ensure_monthly_partitions(
    p_table  text,
    p_from   timestamptz,
    p_months integer DEFAULT 3
) RETURNS integer
LANGUAGE plpgsql
AS $fn$
DECLARE
    v_month0  timestamp := date_trunc('month', p_from AT TIME ZONE 'UTC');  -- UTC wall time of month start
    v_lo      timestamptz;
    v_hi      timestamptz;
    v_name    text;
    v_default text := p_table || '_default';
    v_created integer := 0;
BEGIN
    IF p_months IS NULL OR p_months < 1 OR p_months > 1200 THEN
        RAISE EXCEPTION 'levibot_ensure_monthly_partitions: months must be in 1..1200, got %', p_months;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(p_table)) THEN
        RAISE EXCEPTION 'levibot_ensure_monthly_partitions: % is not a partitioned table', p_table;
    END IF;
    -- One maintenance run at a time (two concurrent runs would race on CREATE TABLE).
    PERFORM pg_advisory_xact_lock(hashtext('levibot_ensure_monthly_partitions'));
    FOR i IN 0 .. p_months - 1 LOOP
        v_lo := (v_month0 + make_interval(months => i)) AT TIME ZONE 'UTC';
        v_hi := (v_month0 + make_interval(months => i + 1)) AT TIME ZONE 'UTC';
        v_name := format('%s_p%s', p_table, to_char(v_month0 + make_interval(months => i), 'YYYYMM'));
        CONTINUE WHEN to_regclass(v_name) IS NOT NULL;
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', v_name, p_table);
        IF to_regclass(v_default) IS NOT NULL THEN
            EXECUTE format(
                'WITH moved AS (DELETE FROM %I WHERE ts >= $1 AND ts < $2 RETURNING *) INSERT INTO %I SELECT * FROM moved',
                v_default, v_name
            ) USING v_lo, v_hi;
        END IF;
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', p_table, v_name, v_lo, v_hi);
        v_created := v_created + 1;
    END LOOP;
    RETURN v_created;
END;
$fn$;

SELECT levibot_ensure_monthly_partitions(t, now(), 3)
FROM unnest(ARRAY['ticks', 'bars', 'orders', 'fills', 'risk_decisions']) AS t;
