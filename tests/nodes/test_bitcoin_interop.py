"""Interoperability with Bitcoin Core: our PSBTs are standard, and Core's shares combine with
shares from the project's own signing code (and the other way round)."""

from __future__ import annotations

from embit.descriptor.checksum import add_checksum

from tests.support.bitcoin_fixtures import VaultKit
from wallets.bitcoin.psbt_check import parse_psbt
from wallets.bitcoin.vault import RECEIVE


def _core_cosigner(bitcoind, kit: VaultKit, signer: int) -> object:  # type: ignore[no-untyped-def]
    """A Bitcoin Core wallet holding one custodian's account xprv (both chains)."""
    name = f"cosigner-{kit.account}-{signer}"
    bitcoind.rpc().createwallet(name, False, True, "", False, True, False)
    wallet = bitcoind.rpc(name)
    custodian = kit.vault.custodians[signer]
    account = kit.roots[signer].derive(custodian.origin_path)
    requests = []
    for branch in (0, 1):
        keys = []
        for i, other in enumerate(kit.vault.custodians):
            key = account.to_base58() if i == signer else other.xpub
            keys.append(f"{other.key_origin}{key}/{branch}/*")
        descriptor = add_checksum(f"wsh(sortedmulti({kit.vault.threshold},{','.join(keys)}))")
        requests.append({"desc": descriptor, "timestamp": "now", "range": [0, 50],
                         "active": False})
    assert all(r["success"] for r in wallet.importdescriptors(requests))
    return wallet


def test_core_accepts_our_psbts_and_shares_interoperate(bitcoind, miner, make_vault) -> None:  # type: ignore[no-untyped-def]
    kit: VaultKit = make_vault(2, 3)
    kit.deposit(bitcoind, miner, [70_000_000, 20_000_000, 30_000_000])
    kit.watcher.sync()
    transfer = kit.transfer([(miner.getnewaddress("", "bech32"), 40_000_000),
                             (kit.vault.address(RECEIVE, 40), 1_000_000)])
    base = kit.service.build_psbt(transfer).to_base64()
    node = bitcoind.rpc()
    decoded = node.decodepsbt(base)
    assert decoded["tx"]["txid"] == parse_psbt(base).tx.txid().hex()
    assert all(i["sequence"] == 0xFFFFFFFD for i in decoded["tx"]["vin"])  # RBF
    assert all(len(i["bip32_derivs"]) == 3 and "witness_script" in i
               for i in decoded["inputs"])
    assert decoded["proprietary"] and decoded["proprietary"][0]["identifier"] == "72657365727665"
    analysis = node.analyzepsbt(base)
    assert analysis["next"] == "signer" and "error" not in analysis

    core = _core_cosigner(bitcoind, kit, 0)
    core_share = core.walletprocesspsbt(base, True, "ALL", True)["psbt"]  # type: ignore[attr-defined]
    assert node.analyzepsbt(core_share)["next"] == "signer"
    progress = kit.service.add_share(transfer, core_share)
    assert progress.signers == ("finance-ministry",)
    ours = parse_psbt(base)
    ours.sign_with(kit.roots[1])
    tool_share = ours.to_base64()
    assert node.analyzepsbt(tool_share)["next"] == "signer"

    # Core combines and finalises our share with its own, to the same transaction.
    final = node.finalizepsbt(node.combinepsbt([core_share, tool_share]))
    assert final["complete"]
    progress = kit.service.add_share(transfer, tool_share)
    assert progress.complete
    txid = kit.service.finalize_and_broadcast(transfer)
    assert node.decoderawtransaction(final["hex"])["txid"] == txid
    assert node.getmempoolentry(txid)["bip125-replaceable"] is True
    bitcoind.mine(1)
    kit.watcher.sync()
    assert kit.watcher.ledger_balance_sats() == kit.service.node_balance_sats()
