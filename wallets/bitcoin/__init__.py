"""The national Bitcoin wallet: descriptor multisig vaults, PSBTs, shares, chain recording.

Pure core: networks (network safety), vault (descriptors, derivation), transfer (the approved
transfer), fees, coins (selection), psbt_build, psbt_check, shares, records (state from the
ledger). Shell: rpc (bitcoind JSON-RPC), regtest (throwaway node), service (build, collect,
broadcast), watcher (deposits, confirmations, reorgs). testkeys holds the public TEST keys.
"""
