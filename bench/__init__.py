"""Benchmarks: reproducible figures for docs/benchmarks.md, each measured against a floor and a peer."""
