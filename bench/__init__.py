"""Benchmarks: scripts run from the repository root (`make bench-…`); see bench/README.md."""
