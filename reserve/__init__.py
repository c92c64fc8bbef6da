"""Sovereign Reserve Ledger: a national Bitcoin wallet and crypto reserve under multisig
custody, recorded in an append-only, tamper-evident ledger."""

__version__ = "0.1.0"
