"""Benchmarks: run by `python -m bench.run` (see README)."""
