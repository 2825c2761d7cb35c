"""Everything that touches the outside world: Kafka, PostgreSQL/TimescaleDB, ClickHouse, files, metrics."""
