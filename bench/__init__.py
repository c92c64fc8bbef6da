"""Benchmarks: reproducible figures for the README, each measured against a floor and a peer."""
