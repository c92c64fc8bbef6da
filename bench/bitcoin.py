"""Benchmark: the project's PSBT code versus bitcoind's own RPCs, in the same run.

1. Build a PSBT from a vault holding N UTXOs (default 1,000): ours (listunspent, fee
   estimate, coin selection, embit PSBT with derivations, self-check) versus bitcoind's
   `walletcreatefundedpsbt` on the same watch-only wallet.
2. Verify and combine the shares of a 3-of-5 and finalise: ours (signature checks against
   the vault's own keys, combine, finalise) versus `combinepsbt` + `finalizepsbt`.

Run manually: `python -m bench.bitcoin [--utxos 1000] [--repeat 5]`. Not part of the test
suite (a smoke test runs it with a tiny N). Starts and stops its own regtest node.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from reserve.ledger import Ledger
from wallets.bitcoin.psbt_check import describe, parse_psbt
from wallets.bitcoin.regtest import RegtestNode
from wallets.bitcoin.rpc import sats_to_btc
from wallets.bitcoin.service import BitcoinVaultService
from wallets.bitcoin.shares import combine, finalize, verify_share
from wallets.bitcoin.testkeys import demo_custodian_keys, demo_vault
from wallets.bitcoin.transfer import ApprovedTransfer, TransferOutput

UTXO_SATS = 1_000_000
OUTPUTS_PER_FUNDING_TX = 500


def _median_seconds(action: Callable[[], Any], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _fund(node: RegtestNode, service: BitcoinVaultService, count: int) -> None:
    miner = node.miner()
    need = count * UTXO_SATS // 100_000_000 + 50
    for _ in range(20):  # bounded: each round matures 50 more coinbase outputs
        if int(miner.getbalance()) >= need:
            break
        node.mine(50)
    for start in range(0, count, OUTPUTS_PER_FUNDING_TX):
        batch = range(start, min(count, start + OUTPUTS_PER_FUNDING_TX))
        miner.sendmany("", {service.vault.address(0, i): sats_to_btc(UTXO_SATS) for i in batch})
    node.mine(1)


def run(utxos: int, repeat: int, inputs: int,
        node: RegtestNode | None = None) -> dict[str, float]:
    """Requires utxos >= inputs >= 1. Starts (and stops) its own node unless given one."""
    if node is None:
        with RegtestNode() as own:
            return _run(own, utxos, repeat, inputs)
    return _run(node, utxos, repeat, inputs)


def _run(node: RegtestNode, utxos: int, repeat: int, inputs: int) -> dict[str, float]:
    account = 900 + secrets.randbelow(100_000)  # a fresh vault even on a shared node
    vault = demo_vault(3, 5, account=account, vault_id=f"bench-3of5-{account}")
    roots = [k.root for k in demo_custodian_keys(5, account=account)]
    ledger = Ledger.open("sqlite:///:memory:")
    rpc = replace(node.rpc(retries=0), timeout_seconds=600.0)
    service = BitcoinVaultService(vault, ledger, rpc)
    service.ensure_watch_only(rescan_timestamp="now")
    _fund(node, service, utxos)
    # The wallet's first look at a thousand new multisig coins is slow (it catches up
    # with the funding block); warm it up so both sides are timed in steady state.
    service.wallet.listunspent(0)
    destination = node.miner().getnewaddress("", "bech32")
    pay = inputs * UTXO_SATS - UTXO_SATS // 2  # needs `inputs` coins
    transfer = ApprovedTransfer(b"\x42" * 32, 1, vault.vault_id, "regtest",
                                (TransferOutput(destination, pay),), 200_000)
    ours_build = _median_seconds(lambda: service._build(transfer, []), repeat)
    core_build = _median_seconds(lambda: service.wallet.walletcreatefundedpsbt(
        [], [{destination: sats_to_btc(pay)}], 0,
        {"includeWatching": True, "fee_rate": 2, "replaceable": True}, True), repeat)

    psbt = service.build_psbt(transfer)
    summary = describe(psbt, vault)
    shares_b64 = []
    for root in roots[:3]:
        share = parse_psbt(psbt.serialize())
        share.sign_with(root)
        shares_b64.append(share.to_base64())

    def ours_combine() -> None:
        verified = [verify_share(psbt, summary, vault, s) for s in shares_b64]
        finalize(combine(psbt, verified), vault, verified)

    def core_combine() -> None:
        result = rpc.finalizepsbt(rpc.combinepsbt(shares_b64))
        assert result["complete"]

    ours_shares = _median_seconds(ours_combine, repeat)
    core_shares = _median_seconds(core_combine, repeat)
    ledger.close()
    return {"utxos": utxos, "inputs": len(summary.inputs), "ours_build_s": ours_build,
            "core_build_s": core_build, "ours_shares_s": ours_shares,
            "core_shares_s": core_shares}


def main(argv: list[str] | None = None, node: RegtestNode | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--utxos", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--inputs", type=int, default=10, help="coins the transfer needs")
    args = parser.parse_args(argv)
    result = run(args.utxos, args.repeat, args.inputs, node)
    print(f"vault of {result['utxos']} UTXOs, PSBT with {result['inputs']} inputs, 3-of-5, "
          f"median of {args.repeat}")
    print(f"build PSBT     ours {result['ours_build_s'] * 1000:8.1f} ms   "
          f"walletcreatefundedpsbt {result['core_build_s'] * 1000:8.1f} ms   "
          f"ratio {result['ours_build_s'] / result['core_build_s']:.2f}x")
    print(f"verify+combine ours {result['ours_shares_s'] * 1000:8.1f} ms   "
          f"combinepsbt+finalizepsbt {result['core_shares_s'] * 1000:8.1f} ms   "
          f"ratio {result['ours_shares_s'] / result['core_shares_s']:.2f}x")
    print("ours includes listunspent, estimatesmartfee, gettransaction per previous tx, a full "
          "re-check of the PSBT; verify+combine checks every signature against the vault's keys")
    return result


if __name__ == "__main__":
    main()
