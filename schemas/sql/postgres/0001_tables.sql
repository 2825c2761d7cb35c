-- LeviBot schema, plain PostgreSQL variant (selected when the timescaledb extension is not available).
-- Same tables as the `timescale` variant; time partitioning by native `PARTITION BY RANGE (ts)` with a default
-- partition per table (monthly partitions come from levibot_ensure_monthly_partitions, migration 0002).
-- Native partitioning needs the partition key `ts` in every primary key / unique constraint: it is there.
-- Idempotent: every statement is IF NOT EXISTS.

-- Columns shared by both PostgreSQL variants. Times: `ts` timestamptz (microseconds, converted from the event's
-- ns by the connector: ts = to_timestamp(ts_ns div 1000 / 1e6)), `ts_ns` bigint keeps the exact event time.
-- Money in quote currency, quantities in base units, slippage in basis points, var/cvar fractions of equity.
-- Every primary key holds the deterministic id and, for time-partitioned tables, the partition column `ts`,
-- so `INSERT ... ON CONFLICT DO NOTHING` makes every sink idempotent.

CREATE TABLE IF NOT EXISTS ticks (
    symbol          text             NOT NULL,
    ts              timestamptz      NOT NULL,
    ts_ns           bigint           NOT NULL,
    venue           text             NOT NULL,
    trade_id        text             NOT NULL,
    price           double precision NOT NULL CHECK (price > 0 AND price < 'Infinity'),
    qty             double precision NOT NULL CHECK (qty >= 0 AND qty < 'Infinity'),
    side            text             NOT NULL CHECK (side IN ('buy', 'sell', 'unknown')),
    synthetic       boolean          NOT NULL DEFAULT false,
    schema_version  smallint         NOT NULL DEFAULT 1,
    PRIMARY KEY (symbol, ts, venue, trade_id)
) PARTITION BY RANGE (ts);

CREATE TABLE IF NOT EXISTS bars (
    symbol          text             NOT NULL,
    resolution_s    integer          NOT NULL CHECK (resolution_s > 0),
    ts              timestamptz      NOT NULL,
    ts_ns           bigint           NOT NULL,
    open            double precision NOT NULL,
    high            double precision NOT NULL,
    low             double precision NOT NULL,
    close           double precision NOT NULL,
    volume          double precision NOT NULL CHECK (volume >= 0 AND volume < 'Infinity'),
    buy_volume      double precision NOT NULL DEFAULT 0,
    sell_volume     double precision NOT NULL DEFAULT 0,
    vwap            double precision NOT NULL,
    trade_count     bigint           NOT NULL DEFAULT 0,
    synthetic       boolean          NOT NULL DEFAULT false,
    schema_version  smallint         NOT NULL DEFAULT 1,
    CHECK (low > 0 AND low <= open AND low <= close AND open <= high AND close <= high AND high < 'Infinity'),
    PRIMARY KEY (symbol, resolution_s, ts)
) PARTITION BY RANGE (ts);

CREATE TABLE IF NOT EXISTS orders (
    order_id        text             NOT NULL,
    parent_id       text,
    strategy        text             NOT NULL,
    symbol          text             NOT NULL,
    side            text             NOT NULL CHECK (side IN ('buy', 'sell')),
    qty             double precision NOT NULL CHECK (qty > 0 AND qty < 'Infinity'),
    order_type      text             NOT NULL CHECK (order_type IN ('market', 'limit')),
    limit_price     double precision CHECK (limit_price > 0 AND limit_price < 'Infinity'),
    tif             text             NOT NULL CHECK (tif IN ('GTC', 'IOC', 'FOK', 'DAY')),
    reduce_only     boolean          NOT NULL DEFAULT false,
    ts              timestamptz      NOT NULL,
    ts_ns           bigint           NOT NULL,
    schema_version  smallint         NOT NULL DEFAULT 1,
    CHECK ((order_type = 'limit') = (limit_price IS NOT NULL)),
    PRIMARY KEY (order_id, ts)
) PARTITION BY RANGE (ts);
CREATE INDEX IF NOT EXISTS orders_symbol_ts_idx ON orders (symbol, ts);
CREATE INDEX IF NOT EXISTS orders_parent_id_idx ON orders (parent_id);

CREATE TABLE IF NOT EXISTS fills (
    fill_id         text             NOT NULL,
    order_id        text             NOT NULL,
    symbol          text             NOT NULL,
    side            text             NOT NULL CHECK (side IN ('buy', 'sell')),
    price           double precision NOT NULL CHECK (price > 0 AND price < 'Infinity'),
    qty             double precision NOT NULL CHECK (qty > 0 AND qty < 'Infinity'),
    fee             double precision NOT NULL DEFAULT 0,
    slippage_bps    double precision NOT NULL DEFAULT 0,
    liquidity       text             NOT NULL CHECK (liquidity IN ('maker', 'taker')),
    ts              timestamptz      NOT NULL,
    ts_ns           bigint           NOT NULL,
    schema_version  smallint         NOT NULL DEFAULT 1,
    PRIMARY KEY (fill_id, ts)
) PARTITION BY RANGE (ts);
CREATE INDEX IF NOT EXISTS fills_order_id_idx ON fills (order_id);
CREATE INDEX IF NOT EXISTS fills_symbol_ts_idx ON fills (symbol, ts);

CREATE TABLE IF NOT EXISTS risk_decisions (
    id              text             NOT NULL,
    intent_id       text             NOT NULL,
    symbol          text             NOT NULL,
    strategy        text,
    side            text             CHECK (side IN ('buy', 'sell')),
    action          text             NOT NULL CHECK (action IN ('approved', 'resized', 'rejected')),
    requested_qty   double precision NOT NULL,
    approved_qty    double precision NOT NULL,
    reasons         text[]           NOT NULL DEFAULT '{}',
    var             double precision NOT NULL DEFAULT 0,
    cvar            double precision NOT NULL DEFAULT 0,
    portfolio       jsonb            NOT NULL,
    ts              timestamptz      NOT NULL,
    ts_ns           bigint           NOT NULL,
    schema_version  smallint         NOT NULL DEFAULT 1,
    PRIMARY KEY (id, ts)
) PARTITION BY RANGE (ts);
CREATE INDEX IF NOT EXISTS risk_decisions_symbol_ts_idx ON risk_decisions (symbol, ts);

-- Low-volume tables, not time-partitioned: the natural key alone deduplicates.
CREATE TABLE IF NOT EXISTS signals (
    id                 text             NOT NULL,
    version            integer          NOT NULL CHECK (version >= 1),
    source_chat        text             NOT NULL,
    source_message_id  bigint           NOT NULL,
    symbol             text             NOT NULL,
    side               text             NOT NULL CHECK (side IN ('long', 'short')),
    kind               text             NOT NULL CHECK (kind IN ('open', 'update', 'cancel', 'close')),
    entries            double precision[] NOT NULL DEFAULT '{}',
    targets            double precision[] NOT NULL DEFAULT '{}',
    stop               double precision,
    leverage           double precision,
    ref_id             text,
    close_fraction     double precision,
    trust              double precision NOT NULL CHECK (trust >= 0 AND trust <= 1),
    raw_text           text             NOT NULL DEFAULT '',
    ts                 timestamptz      NOT NULL,
    ts_ns              bigint           NOT NULL,
    schema_version     smallint         NOT NULL DEFAULT 1,
    PRIMARY KEY (id, version)
);
CREATE INDEX IF NOT EXISTS signals_symbol_ts_idx ON signals (symbol, ts);

CREATE TABLE IF NOT EXISTS dead_letters (
    source_topic      text        NOT NULL,
    source_partition  integer     NOT NULL,
    source_offset     bigint      NOT NULL,
    stage             text        NOT NULL,
    error             text        NOT NULL,
    detail            text        NOT NULL DEFAULT '',
    msg_key           bytea,
    raw               bytea       NOT NULL,
    raw_size          bigint      NOT NULL DEFAULT -1,
    ts                timestamptz NOT NULL,
    ts_ns             bigint      NOT NULL,
    schema_version    smallint    NOT NULL DEFAULT 1,
    PRIMARY KEY (source_topic, source_partition, source_offset, stage, ts)
);
CREATE INDEX IF NOT EXISTS dead_letters_error_ts_idx ON dead_letters (error, ts);

CREATE TABLE IF NOT EXISTS ticks_default PARTITION OF ticks DEFAULT;
CREATE TABLE IF NOT EXISTS bars_default PARTITION OF bars DEFAULT;
CREATE TABLE IF NOT EXISTS orders_default PARTITION OF orders DEFAULT;
CREATE TABLE IF NOT EXISTS fills_default PARTITION OF fills DEFAULT;
CREATE TABLE IF NOT EXISTS risk_decisions_default PARTITION OF risk_decisions DEFAULT;
