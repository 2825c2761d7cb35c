-- LeviBot analytics schema for ClickHouse (server or embedded chDB). Database-agnostic: tables are created in the
-- connection's current database. Idempotent: CREATE TABLE IF NOT EXISTS.
--
-- * Times are DateTime64(9, 'UTC'): the event's nanoseconds exactly.
-- * ReplacingMergeTree with the deterministic id inside ORDER BY: a row re-inserted after a recovery collapses
--   with its twin on merge (query with FINAL, or insert with deduplication tokens, for exact counts before that).
-- * non_replicated_deduplication_window: the server remembers the last 10,000 insert deduplication tokens per
--   table, so a retried batch (same token) is dropped at once.
-- * PARTITION BY toYYYYMM(ts): monthly parts, cheap to drop or move.
-- * Raw ticks expire 180 days after they were *stored* (TTL on inserted_at, not on the event time: a replay of
--   years-old history must not vanish on the next merge); everything derived (bars, features, ...) is kept.

CREATE TABLE IF NOT EXISTS ticks
(
    symbol          LowCardinality(String),
    ts              DateTime64(9, 'UTC'),
    venue           LowCardinality(String),
    trade_id        String,
    price           Float64,
    qty             Float64,
    side            LowCardinality(String),
    synthetic       Bool DEFAULT false,
    schema_version  UInt16 DEFAULT 1,
    inserted_at     DateTime('UTC') DEFAULT now() COMMENT 'storage time, drives the TTL'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (symbol, ts, venue, trade_id)
TTL inserted_at + INTERVAL 180 DAY
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS bars
(
    symbol          LowCardinality(String),
    resolution_s    UInt32,
    ts              DateTime64(9, 'UTC'),
    open            Float64,
    high            Float64,
    low             Float64,
    close           Float64,
    volume          Float64,
    buy_volume      Float64,
    sell_volume     Float64,
    vwap            Float64,
    trade_count     UInt64,
    synthetic       Bool DEFAULT false,
    schema_version  UInt16 DEFAULT 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (symbol, resolution_s, ts)
SETTINGS non_replicated_deduplication_window = 10000;

-- The offline feature store: one row per (symbol, feature set, version, window end).
CREATE TABLE IF NOT EXISTS features
(
    symbol               LowCardinality(String),
    ts                   DateTime64(9, 'UTC'),
    feature_set          LowCardinality(String),
    feature_set_version  UInt32,
    names                Array(LowCardinality(String)),
    values               Array(Float64),
    schema_version       UInt16 DEFAULT 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (symbol, feature_set, feature_set_version, ts)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS scores
(
    symbol          LowCardinality(String),
    ts              DateTime64(9, 'UTC'),
    model_versions  Map(LowCardinality(String), String),
    raw             Map(LowCardinality(String), Float64),
    calibrated      Float64,
    ensemble        Float64,
    uncertainty     Float64,
    schema_version  UInt16 DEFAULT 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (symbol, ts)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS orders
(
    order_id        String,
    parent_id       Nullable(String),
    strategy        LowCardinality(String),
    symbol          LowCardinality(String),
    side            LowCardinality(String),
    qty             Float64,
    order_type      LowCardinality(String),
    limit_price     Nullable(Float64),
    tif             LowCardinality(String),
    reduce_only     Bool DEFAULT false,
    ts              DateTime64(9, 'UTC'),
    schema_version  UInt16 DEFAULT 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (symbol, ts, order_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS fills
(
    fill_id         String,
    order_id        String,
    symbol          LowCardinality(String),
    side            LowCardinality(String),
    price           Float64,
    qty             Float64,
    fee             Float64,
    slippage_bps    Float64,
    liquidity       LowCardinality(String),
    ts              DateTime64(9, 'UTC'),
    schema_version  UInt16 DEFAULT 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (symbol, ts, fill_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS risk_decisions
(
    id              String,
    intent_id       String,
    symbol          LowCardinality(String),
    strategy        LowCardinality(Nullable(String)),
    side            LowCardinality(Nullable(String)),
    action          LowCardinality(String),
    requested_qty   Float64,
    approved_qty    Float64,
    reasons         Array(String),
    var             Float64,
    cvar            Float64,
    portfolio       String COMMENT 'PortfolioSnapshot as JSON text',
    ts              DateTime64(9, 'UTC'),
    schema_version  UInt16 DEFAULT 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (symbol, ts, id)
SETTINGS non_replicated_deduplication_window = 10000;

-- Every revision of a signal is its own row (id, version): edits are analysed, not overwritten.
CREATE TABLE IF NOT EXISTS signals
(
    id                 String,
    version            UInt32,
    source_chat        String,
    source_message_id  Int64,
    symbol             LowCardinality(String),
    side               LowCardinality(String),
    kind               LowCardinality(String),
    entries            Array(Float64),
    targets            Array(Float64),
    stop               Nullable(Float64),
    leverage           Nullable(Float64),
    ref_id             Nullable(String),
    close_fraction     Nullable(Float64),
    trust              Float64,
    raw_text           String,
    ts                 DateTime64(9, 'UTC'),
    schema_version     UInt16 DEFAULT 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (symbol, ts, id, version)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS alerts
(
    id              String,
    severity        LowCardinality(String),
    kind            LowCardinality(String),
    message         String,
    labels          Map(String, String),
    dedupe_key      String,
    ts              DateTime64(9, 'UTC'),
    schema_version  UInt16 DEFAULT 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (kind, ts, id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS dead_letters
(
    source_topic      LowCardinality(String),
    source_partition  Int32,
    source_offset     Int64,
    stage             LowCardinality(String),
    error             LowCardinality(String),
    detail            String,
    msg_key           Nullable(String),
    raw               String,
    raw_size          Int64,
    ts                DateTime64(9, 'UTC'),
    schema_version    UInt16 DEFAULT 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (source_topic, ts, source_partition, source_offset, stage)
SETTINGS non_replicated_deduplication_window = 10000;
