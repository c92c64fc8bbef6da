"""Benchmark: reconcile one vault holding N coins against N ledger entries.

Starts a throwaway regtest bitcoind, pays N outputs to N derived vault addresses with a few
large sendmany transactions, records N `btc.deposit` entries, then times (a) a full
reconciliation (ledger checkpoint, ledger read, scan at a pinned block, compare) and (b)
bitcoind's own `scantxoutset` for the same descriptors and range, in the same run, and
prints their ratio (target: within 1.5x). The ledger is SQLite at synchronous=FULL.

    .venv/bin/python bench/reconcile.py            # N = 10,000
    .venv/bin/python bench/reconcile.py --coins 50 # smoke run
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from reserve.ledger import CheckpointSigner, Ledger
from reserve.reconcile.bitcoin import vault_descriptors
from reserve.reconcile.run import compute_body
from wallets.bitcoin.regtest import RegtestNode
from wallets.bitcoin.rpc import BitcoinRPC, btc_to_sats
from wallets.bitcoin.testkeys import demo_vault
from wallets.bitcoin.vault import RECEIVE, Vault

BATCH = 1000
AMOUNT_BTC = "0.00010000"


def fund(node: RegtestNode, miner: BitcoinRPC, vault: Vault, coins: int) -> list[dict[str, Any]]:
    """Pay `coins` outputs to the vault; the deposit payloads the watcher would record."""
    addresses = node.rpc().deriveaddresses(vault.branch_descriptor(RECEIVE), [0, coins - 1])
    mined = []
    for start in range(0, coins, BATCH):
        # one block per batch: a chain of big unconfirmed transactions hits mempool limits
        txid = miner.sendmany("", {a: AMOUNT_BTC for a in addresses[start:start + BATCH]})
        (blockhash,) = node.mine(1)
        mined.append((txid, blockhash, int(node.rpc().getblockheader(blockhash)["height"])))
    wanted = set(addresses)
    payloads = []
    for txid, blockhash, height in mined:
        tx = node.rpc().getrawtransaction(txid, True)
        for out in tx["vout"]:
            address = out["scriptPubKey"].get("address")
            if address in wanted:
                amount = btc_to_sats(out["value"])
                payloads.append({"vault_id": vault.vault_id, "txid": txid,
                                 "blockhash": blockhash, "height": height, "confirmations": 1,
                                 "delta_sats": amount, "amount_sats": amount,
                                 "outputs": [{"vout": out["n"], "address": address,
                                              "amount_sats": amount}]})
    return payloads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coins", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    vault = demo_vault(2, 3, account=7)
    with RegtestNode() as node, tempfile.TemporaryDirectory() as folder:
        miner = node.miner()
        payloads = fund(node, miner, vault, args.coins)
        signer = CheckpointSigner("bench.reserve.example/reconcile", Ed25519PrivateKey.generate())
        ledger = Ledger.open(f"sqlite:///{Path(folder) / 'ledger.sqlite'}", signer=signer)
        ledger.append_many([("btc.deposit", "bench", p) for p in payloads])
        range_end = args.coins - 1
        scan_args = [{"desc": d, "range": [0, range_end]} for d in vault_descriptors(vault)]
        ours, theirs = [], []
        for _round in range(args.repeat):
            start = time.perf_counter()
            body = compute_body(ledger, node.rpc(), [(vault, range_end)])
            ours.append(time.perf_counter() - start)
            start = time.perf_counter()
            node.rpc().scantxoutset("start", scan_args)
            theirs.append(time.perf_counter() - start)
        (row,) = body["summary"]
        assert row["difference"] == 0 and row["coins"] == args.coins, row
        best_ours, best_theirs = min(ours), min(theirs)
        print(f"coins {args.coins}, ledger entries {ledger.size()}, status {row['status']}")
        print(f"reconcile      {best_ours * 1000:9.1f} ms (best of {args.repeat})")
        print(f"scantxoutset   {best_theirs * 1000:9.1f} ms (same descriptors and range)")
        print(f"ratio          {best_ours / best_theirs:9.2f}x (target <= 1.5x)")
        ledger.close()


if __name__ == "__main__":
    main()
