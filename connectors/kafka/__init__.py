"""Kafka connectors: typed batch source and idempotent sink for Bytewax, a plain producer, topic admin."""
