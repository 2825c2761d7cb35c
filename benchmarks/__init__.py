"""Benchmarks: `make bench` (python -m benchmarks). Results go to docs/performance.md with date, machine, command."""
