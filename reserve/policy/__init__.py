"""Custody policy: what a vault's custodians must agree on before value may move.

`model` holds the frozen policy values, `loader` reads and validates TOML files and ledger
documents, `evaluate` decides (purely) whether a proposal may proceed and explains why,
and `testkeys` derives the clearly labelled test approval keys used by config/policies.
Nothing in this package does I/O except `loader.load_file`, which only reads the file named.
"""
