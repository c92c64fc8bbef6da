"""Helpers for reconciliation tests against the session regtest bitcoind."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from reserve.ledger import CheckpointSigner, Ledger
from reserve.ledger.verify import export_lines
from reserve.reconcile.report import AuditorSigner, create_auditor_key
from tests.support.bitcoin_fixtures import VaultKit
from wallets.bitcoin.psbt_check import parse_psbt
from wallets.bitcoin.rpc import BitcoinRPC, sats_to_btc

PASSPHRASE = "auditor-test-passphrase"


def signed_ledger(tmp_path: Path, name: str) -> Ledger:
    signer = CheckpointSigner("test.reserve.example/reconcile", Ed25519PrivateKey.generate())
    return Ledger.open(f"sqlite:///{tmp_path}/{name}.sqlite", signer=signer)


def auditor(tmp_path: Path, name: str = "auditor-general") -> AuditorSigner:
    return create_auditor_key(tmp_path / f"{name}.key.json", name, PASSPHRASE, scrypt_n=2**12)


def export(ledger: Ledger, path: Path) -> Path:
    path.write_text("".join(line + "\n" for line in export_lines(ledger)))
    return path


def transfer_out(kit: VaultKit, miner: BitcoinRPC, amount_sats: int, label: str) -> str:
    """A transfer through the workflow: PSBT, two shares, broadcast (not mined)."""
    transfer = kit.transfer([(miner.getnewaddress("", "bech32"), amount_sats)], label)
    base = kit.service.build_psbt(transfer)
    for signer in (0, 1):
        share = parse_psbt(base.serialize())
        share.sign_with(kit.roots[signer])
        kit.service.add_share(transfer, share.serialize())
    return kit.service.finalize_and_broadcast(transfer)


def spend_behind_the_back(kit: VaultKit, node: BitcoinRPC, destination: str,
                          amount_sats: int) -> str:
    """Custodian keys used outside the workflow: the watch-only wallet funds a PSBT, two
    custodians sign it with embit, the node finalises and broadcasts it; nothing recorded."""
    wallet = kit.service.wallet
    funded = wallet.walletcreatefundedpsbt([], [{destination: sats_to_btc(amount_sats)}], 0,
                                           {"includeWatching": True})
    psbt = parse_psbt(funded["psbt"])
    for signer in (0, 1):
        psbt.sign_with(kit.roots[signer])
    final = node.finalizepsbt(psbt.to_base64())
    assert final["complete"], final
    txid: str = node.sendrawtransaction(final["hex"])
    return txid


def resign(document: dict[str, Any], signer: AuditorSigner, edit: Any) -> dict[str, Any]:
    """A copy of the report with `edit(body)` applied and signed again by `signer`."""
    body = copy.deepcopy(document["report"])
    edit(body)
    return signer.sign(body)


def dump(document: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(document))
    return path
