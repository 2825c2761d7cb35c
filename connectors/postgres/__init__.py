"""PostgreSQL / TimescaleDB: migrations and an idempotent batched sink (psycopg 3)."""
