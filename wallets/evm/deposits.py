"""The EVM deposit watcher: reads vault credits from logs and records them in the ledger.

ETH credits are the Safe's own `SafeReceived` events (emitted by its receive function, so
transfers from contracts are seen too); ERC-20 credits are `Transfer` logs whose recipient
is the vault. Both come from `eth_getLogs`, in bounded block ranges. Before new deposits are
recorded, every recorded deposit and execution still in force within the reorg horizon is
checked against the canonical block hash at its height; a mismatch appends a compensating
`evm.reorg` entry. The decisions are made by `deposits_core`; this module only reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from web3 import Web3

from reserve.errors import EVMError, NodeUnavailable
from reserve.events.chain_evm import EvmReorg
from wallets.evm import contracts
from wallets.evm import deposits_core as core
from wallets.evm.safe_tx import checksum

LOG_RANGE_BLOCKS = 2_000  # per eth_getLogs call; public RPCs cap ranges
SCAN_BLOCKS_MAX = 200_000  # per sync call: bounds the work of one run
REORG_HORIZON_BLOCKS = 256  # records older than this many blocks are treated as final
WATCHED_KINDS = (core.DEPOSIT, core.EXECUTED, core.CONFIRMED, core.REORG)


def _hex(value: Any) -> str:
    return "0x" + bytes(value).hex()


def scan(w3: Web3, *, chain_id: int, vault_id: str, safe: str, tokens: Iterable[str],
         from_block: int, to_block: int) -> list[core.ObservedDeposit]:
    """Credits to `safe` in blocks [from_block, to_block], ETH and each token."""
    if to_block - from_block + 1 > SCAN_BLOCKS_MAX:
        raise EVMError(f"scan of {to_block - from_block + 1} blocks exceeds {SCAN_BLOCKS_MAX}; "
                       "sync in steps with --from-block")
    safe_contract = contracts.at(w3, "Safe", safe)
    token_contracts = [contracts.at(w3, "ReserveToken", token) for token in tokens]
    observed: list[core.ObservedDeposit] = []
    start = from_block
    while start <= to_block:
        end = min(start + LOG_RANGE_BLOCKS - 1, to_block)
        for log in safe_contract.events.SafeReceived().get_logs(from_block=start, to_block=end):
            observed.append(_observed(chain_id, vault_id, safe, "ETH", log,
                                      log["args"]["sender"], log["args"]["value"]))
        for token in token_contracts:
            for log in token.events.Transfer().get_logs(
                    argument_filters={"to": safe}, from_block=start, to_block=end):
                observed.append(_observed(chain_id, vault_id, safe, token.address, log,
                                          log["args"]["from"], log["args"]["value"]))
        start = end + 1
    return observed


def _observed(chain_id: int, vault_id: str, safe: str, asset: str, log: Mapping[str, Any],
              sender: str, amount: int) -> core.ObservedDeposit:
    return core.ObservedDeposit(
        chain_id=chain_id, vault_id=vault_id, safe=safe, asset=asset,
        sender=checksum(sender), amount_wei=int(amount), tx_hash=_hex(log["transactionHash"]),
        log_index=int(log["logIndex"]), block_number=int(log["blockNumber"]),
        block_hash=_hex(log["blockHash"]))


def canonical_hashes(w3: Web3, heights: Iterable[int], tip: int) -> dict[int, str | None]:
    """The canonical block hash at each height within the reorg horizon (None above tip)."""
    result: dict[int, str | None] = {}
    for height in sorted(set(heights)):
        if height < tip - REORG_HORIZON_BLOCKS:
            continue
        result[height] = None if height > tip else _hex(w3.eth.get_block(height)["hash"])
    return result


def sync(ledger: Any, w3: Web3, *, vault_id: str, safe: str, tokens: Iterable[str],
         confirmations: int, from_block: int, actor: str = "service:evm-watcher"
         ) -> list[Any]:
    """Bring the ledger up to date with the chain for one vault; returns appended entries.

    All entries of one run are appended atomically, guarded by the ledger size read at the
    start (a concurrent watcher makes this run fail with LedgerConflict instead of
    double-recording).
    """
    safe = checksum(safe, "safe")
    try:
        chain_id = w3.eth.chain_id
        tip = w3.eth.block_number
        size = ledger.size()
        entries = list(ledger.entries(kinds=WATCHED_KINDS))
        active = core.in_force(entries, safe, chain_id)
        heights = [recorded.event.block_number for recorded in active.values()]
        reorgs = core.plan_reorgs(active, canonical_hashes(w3, heights, tip))
        observed = scan(w3, chain_id=chain_id, vault_id=vault_id, safe=safe,
                        tokens=[checksum(token) for token in tokens],
                        from_block=from_block, to_block=max(from_block - 1, tip))
    except (ConnectionError, OSError) as error:
        raise NodeUnavailable(f"EVM node unreachable during sync: {error}") from None
    reversed_now = {EvmReorg.from_payload(payload).reverses_seq for _, payload in reorgs}
    planned = reorgs + core.plan_deposits(active, reversed_now, observed, tip, confirmations)
    planned += core.plan_confirmations(active, core.confirmed_seqs(entries), reversed_now, tip,
                                       confirmations)
    if not planned:
        return []
    return list(ledger.append_many([(kind, actor, payload) for kind, payload in planned],
                                   expected_size=size))
