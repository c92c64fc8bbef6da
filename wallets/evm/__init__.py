"""The EVM side of the reserve: Safe multisig vaults, the on-chain guard, deposits, anchoring.

Pure modules (`safe_tx`, `signatures`, `transfer`, `network`, `revert`, `deposits_core`)
compute and check; shell modules (`anvil`, `contracts`, `vault`, `executor`, `deposits`,
`anchor`) talk to the node and the ledger.
"""
