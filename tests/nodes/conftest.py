"""Node-tier fixtures for Bitcoin: one session regtest bitcoind, per-test vaults and ledgers.

The fixtures live in tests/support/bitcoin_fixtures.py so the e2e story can share them.
"""

from tests.support.bitcoin_fixtures import bitcoind, make_vault, miner

__all__ = ["bitcoind", "make_vault", "miner"]
