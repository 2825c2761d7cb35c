"""ClickHouse: embedded chDB (``chdb://path``) for tests and the embedded default, HTTP in production."""
