-- LeviBot schema, TimescaleDB variant (selected when the timescaledb extension is available).
-- Same tables as the `postgres` variant; time partitioning by hypertables instead of native partitions.
-- Idempotent: every statement is IF NOT EXISTS / if_not_exists => TRUE.

CREATE EXTENSION IF NOT EXISTS timescaledb;

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
);

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
);

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
);
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
);
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
);
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

-- Hypertables (chunk intervals sized for the expected volume). create_hypertable must run on an empty table,
-- which holds here because the tables are created just above.
SELECT create_hypertable('ticks', 'ts', chunk_time_interval => INTERVAL '1 day', if_not_exists => TRUE);
SELECT create_hypertable('bars', 'ts', chunk_time_interval => INTERVAL '7 days', if_not_exists => TRUE);
SELECT create_hypertable('orders', 'ts', chunk_time_interval => INTERVAL '30 days', if_not_exists => TRUE);
SELECT create_hypertable('fills', 'ts', chunk_time_interval => INTERVAL '30 days', if_not_exists => TRUE);
SELECT create_hypertable('risk_decisions', 'ts', chunk_time_interval => INTERVAL '30 days', if_not_exists => TRUE);
