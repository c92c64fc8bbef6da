"""Reconciliation and audit: ledger balances against the chain at a pinned block.

`compute` is the pure core (findings as values), `report` the signed canonical report,
`bitcoin` the node shell, `export` the JSON/CSV/HTML exports, `verify` the independent
verifier, and `proof` the publishable proof-of-reserves statement.
"""
