"""The public-sector statement on a real regtest bitcoind.

The story: the national vault (held in custody here), a state mining company's payout
wallet, a seized-assets wallet and a cold wallet (all three only watched) are registered.
During the period the miner's wallet mines a block (mining), pays 10 BTC into the vault
(an internal transfer, its fee charged to the miner), an outsider pays the vault 0.6 BTC
(unattributed until an operator and an auditor attribute it as a purchase) and pays the
seized-assets wallet 0.5 BTC (left unattributed), and the vault sends 0.05 BTC to the cold
wallet through the workflow declaring it a `purchase`: classified internal all the same.
The consolidated statement's flows outside internal transfers add up to the change of the
public sector's stock, which the node's own UTXO scan confirms; `verify` re-derives it and
refuses every tampered copy.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reserve.errors import ReportRejected, StatementError, StatementRejected
from reserve.ledger import Ledger
from reserve.reconcile.bitcoin import vault_descriptors
from reserve.statement import chain, commitments, records, statement
from reserve.statement.export import to_csv, to_html
from reserve.statement.flows import Decided
from reserve.statement.run import publish, register_wallet, verify
from reserve.statement.wallets import PublicWallet
from reserve.supervision.attest import attest, attestations_of
from reserve.supervision.keys import create_key
from tests.support.bitcoin_fixtures import VaultKit
from tests.support.reconcile_fixtures import auditor, resign, signed_ledger
from tests.support.statement_fixtures import (
    declared_transfer,
    keyed_wallet,
    public_descriptors,
    workflow_to,
)
from wallets.bitcoin.regtest import RegtestNode
from wallets.bitcoin.rpc import BitcoinRPC, btc_to_sats, sats_to_btc

MakeVault = Callable[..., VaultKit]


def wallet(name: str, descriptors: list[str], *, custody: str = "watched",
           role: str = "test", birth_height: int = 0, range_end: int = 50) -> PublicWallet:
    return PublicWallet(name=name, institution=f"{name} institution", role=role,
                        custody=custody, chain="bitcoin", network="regtest",
                        descriptors=tuple(descriptors), range_end=range_end,
                        birth_height=birth_height)


def flows(account: dict[str, Any]) -> dict[str, int]:
    return {f["class"]: f["sats"] for f in account["flows"]}


def scanned_sats(node: BitcoinRPC, wallets: list[PublicWallet]) -> int:
    """The registered wallets' coins at the tip, by the node's own UTXO scan."""
    scan = node.scantxoutset("start", [{"desc": d, "range": [0, w.range_end]}
                                       if chain.is_ranged(node, d) else d
                                       for w in wallets for d in w.descriptors])
    return btc_to_sats(scan["total_amount"])


def test_statement_story(bitcoind: RegtestNode, miner: BitcoinRPC, make_vault: MakeVault,
                         tmp_path: Path) -> None:
    node = bitcoind.rpc()
    ledger = signed_ledger(tmp_path, "statement")
    kit = make_vault(3, 5, ledger=ledger)
    state_miner = keyed_wallet(bitcoind, f"state-miner-{kit.account}")
    seized = keyed_wallet(bitcoind, f"seized-{kit.account}")
    cold = keyed_wallet(bitcoind, f"cold-{kit.account}")
    seized_address = seized.getnewaddress("", "bech32")
    birth = int(node.getblockcount()) + 1
    cold_address = cold.getnewaddress("", "bech32")
    workflow = workflow_to(kit, ledger, cold_address)  # the cold wallet is allowlisted

    registry = [wallet("national", list(vault_descriptors(kit.vault)), custody="custody",
                       role="national reserve", birth_height=birth),
                wallet("state-miner", public_descriptors(state_miner), role="mining payout",
                       birth_height=birth),
                wallet("seized", [seized_address], role="seized assets", birth_height=birth),
                wallet("cold", public_descriptors(cold), role="cold storage",
                       birth_height=birth)]
    for item in registry:
        register_wallet(ledger, node, item, actor="operator")
    # Watched wallets are watch-only on the node: private keys disabled.
    info = bitcoind.rpc("reserve-watch-state-miner").getwalletinfo()
    assert info["private_keys_enabled"] is False
    registered = [PublicWallet(**w.to_json()) for w in records.registered(ledger.entries())]
    seized_descriptor = registered[2].descriptors[0]
    assert seized_descriptor.startswith(f"addr({seized_address})#")

    # Before the period: the seized-assets wallet already holds 1 BTC.
    miner.sendtoaddress(seized_address, sats_to_btc(100_000_000))
    bitcoind.mine(1)
    start = int(node.getblockcount()) + 1

    (coinbase_block,) = bitcoind.mine(1, address=state_miner.getnewaddress("", "bech32"))
    coinbase_txid = node.getblock(coinbase_block)["tx"][0]
    bitcoind.mine(100)  # coinbase maturity (to the outside miner)
    internal = state_miner.sendtoaddress(kit.service.receive_address()[0],
                                         sats_to_btc(1_000_000_000))
    outside = kit.deposit(bitcoind, miner, [60_000_000], mine=False)[0]
    unattributed = miner.sendtoaddress(seized_address, sats_to_btc(50_000_000))
    bitcoind.mine(1)
    consolidation = declared_transfer(kit, workflow, bitcoind, cold_address, 5_000_000,
                                      "purchase")
    assert records.declared_classes(ledger.entries())[consolidation["txid"]].flow_class \
        == "purchase"

    # An operator proposes, an auditor (another person) confirms: a purchase.
    proposed = records.propose_attribution(ledger, txid=outside, wallet="national",
                                           flow_class="purchase", note="auction lot 7",
                                           by="treasury-ops")
    records.confirm_attribution(ledger, proposed_seq=proposed.seq, by="external-auditor")
    end = int(node.getblockcount())

    signer = auditor(tmp_path)
    promised = commitments.parse([
        {"id": "no-purchases", "text": "No purchases", "rule": "no_flow",
         "classes": ["purchase"]},
        {"id": "stock", "text": "The stock grows only through mining and seizures",
         "rule": "stock_grows_only_through", "classes": ["mining", "seizure"]},
        {"id": "outflows", "text": "No single outflow above 0.01 BTC",
         "rule": "outflow_max", "sats_max": 1_000_000}])
    document, entry = publish(ledger, node, signer, start_height=start, end_height=end,
                              commitments=promised)
    body = document["report"]
    kept = {c["id"]: c for c in body["commitments"]}
    assert kept["no-purchases"]["findings"] == ["purchase flows of 60000000 sats"]
    assert not kept["stock"]["kept"] and "outside mining, seizure" in kept["stock"]["findings"][0]
    assert kept["outflows"]["kept"]  # the consolidation is internal, fees are not outflows
    assert [c["kept"] for c in entry.payload["commitments"]] == [False, False, True]
    # The regulator's supervisor countersigns the published statement with its own key.
    supervisor = create_key(tmp_path / "supervisor.json", "sara", "test-passphrase", role="supervisor",
                            scrypt_n=4096)
    attestation = attest(supervisor, entry, "re-derived from our own node")
    ledger.append(attestation.KIND, "sara-supervisor", attestation.to_payload())
    [seen] = attestations_of(ledger, entry)
    assert seen.verified and seen.by == "sara-supervisor"
    assert entry.kind == "statement.published"
    assert entry.payload["statement_sha256"] == document["signature"]["report_sha256"]
    assert (body["blocks"]["start_height"], body["blocks"]["end_height"]) == (start, end)
    assert body["blocks"]["end_hash"] == node.getblockhash(end)

    by_txid = {(m["txid"], m["wallet"], m["class"]): m for m in body["movements"]}
    subsidy = btc_to_sats(node.getblock(coinbase_block, 2)["tx"][0]["vout"][0]["value"])
    assert by_txid[(coinbase_txid, "state-miner", "mining")]["sats"] == subsidy
    assert by_txid[(internal, "national", "internal_transfer")]["sats"] == 1_000_000_000
    assert (internal, "state-miner", "fee") in by_txid
    assert by_txid[(outside, "national", "purchase")]["evidence"].startswith(
        f"attribution {proposed.seq} confirmed")
    assert by_txid[(unattributed, "seized", "unattributed")]["sats"] == 50_000_000
    declared = {m["class"] for m in body["movements"] if m["txid"] == consolidation["txid"]}
    assert declared == {"internal_transfer", "fee"}  # declared a purchase: internal

    public = body["consolidated"]
    fees = sum(m["sats"] for m in body["movements"] if m["class"] == "fee")
    assert public["opening_sats"] == 100_000_000
    assert flows(public) == {"purchase": 60_000_000, "mining": subsidy,
                             "unattributed": 50_000_000, "fee": fees}
    assert sum(flows(public).values()) == public["closing_sats"] - public["opening_sats"]
    assert public["closing_sats"] == scanned_sats(node, registered)
    accounts = {w["wallet"]: w for w in body["wallets"]}
    assert flows(accounts["cold"]) == {"internal_transfer": 5_000_000}
    assert accounts["cold"]["closing_coins"][0][2] == 5_000_000
    for account in accounts.values():
        assert sum(flows(account).values()) == account["closing_sats"] - account["opening_sats"]
    assert statement.holdings(ledger)[0]["sats"] == accounts["national"]["closing_sats"]

    rows = to_csv(document).splitlines()
    assert rows[0] == "scope,wallet,row,class,sats,txids"
    assert f"consolidated,,flow,mining,{subsidy},{coinbase_txid}" in rows
    assert "Consolidated (internal transfers eliminated)" in to_html(document)

    # Anyone with a node re-derives it, also against the ledger it names.
    bitcoind.mine(2)
    assert verify(document, [signer.verifier], node, list(ledger.entries())) == body

    # Tampered copies are refused.
    edited = copy.deepcopy(document)
    edited["report"]["consolidated"]["closing_sats"] += 1
    with pytest.raises(ReportRejected, match="edited after signing"):
        verify(edited, [signer.verifier], node)
    other = auditor(tmp_path, "other-auditor")
    with pytest.raises(ReportRejected, match="not an auditor key"):
        verify(other.sign(body), [signer.verifier], node)

    def more_mining(edit: dict[str, Any]) -> None:
        edit["consolidated"]["flows"][0]["sats"] += 1
    with pytest.raises(StatementRejected, match="the chain gives"):
        verify(resign(document, signer, more_mining), [signer.verifier], node)

    def as_purchase(edit: dict[str, Any]) -> None:  # the inflow re-attributed, figures too
        for item in edit["decisions"]["attributed"]:
            item["class"] = "donation"
        for item in edit["movements"]:
            if item["class"] == "purchase":
                item["class"] = "donation"
    lying = resign(document, signer, as_purchase)
    with pytest.raises(StatementRejected):
        verify(lying, [signer.verifier], node)

    def all_kept(edit: dict[str, Any]) -> None:  # the breaches hidden, re-signed
        for item in edit["commitments"]:
            item["kept"], item["findings"] = True, []
    with pytest.raises(StatementRejected, match="commitments"):
        verify(resign(document, signer, all_kept), [signer.verifier], node)

    def hidden_wallet(edit: dict[str, Any]) -> None:  # a wallet left out
        edit["registry"] = edit["registry"][:3]
    with pytest.raises(StatementRejected):
        verify(resign(document, signer, hidden_wallet), [signer.verifier], node)

    # A consistent lie (the attribution changed and every figure recomputed from it) holds
    # against the chain alone; the ledger, whose attribution says otherwise, refuses it.
    wallets = [PublicWallet(**w) for w in body["registry"]]
    pin = chain.Pin.from_json(body["blocks"])
    walk = chain.walk(node, pin, chain.owners(node, wallets), [w.name for w in wallets])
    declared, attributed = statement.decisions_of(body)
    attributed[outside]["national"] = Decided("donation", "made up")
    lie = signer.sign({**body, **statement.figures(wallets, walk, declared, attributed),
                       "decisions": statement.decisions_used(walk, declared, attributed)})
    assert verify(lie, [signer.verifier], node)["consolidated"] != public
    with pytest.raises(StatementRejected, match="not published"):
        verify(lie, [signer.verifier], node, list(ledger.entries()))
    statement.check_in(ledger, lie, "auditor:auditor-general")
    with pytest.raises(StatementRejected, match="are not the ledger's"):
        verify(lie, [signer.verifier], node, list(ledger.entries()))


def test_registration_refusals_write_nothing(bitcoind: RegtestNode, tmp_path: Path) -> None:
    node = bitcoind.rpc()
    ledger = Ledger.open(f"sqlite:///{tmp_path}/refusals.sqlite")
    hot = keyed_wallet(bitcoind, "refusals-hot")
    good = wallet("hot", public_descriptors(hot), role="operational hot wallet")
    register_wallet(ledger, node, good, actor="operator")
    size = ledger.size()
    private = hot.listdescriptors(True)["descriptors"][0]["desc"]
    broken = good.descriptors[0][:-1] + ("a" if good.descriptors[0][-1] != "a" else "b")
    cases = [
        (wallet("hot", [hot.getnewaddress()]), "registered already"),
        (wallet("copy", [good.descriptors[0]]), "registered already for wallet 'hot'"),
        (wallet("bad", ["wpkh(nonsense)"]), "bad descriptor"),
        (wallet("bad", [broken]), "bad descriptor"),
        (wallet("bad", ["not-an-address"]), "neither a descriptor nor an address"),
        (wallet("bad", [private]), "private keys"),
        (wallet("bad", [good.descriptors[0].split("#")[0].replace("/0/*", "/<0;1>/*")]),
         "multipath"),
        (PublicWallet(**{**wallet("main", [hot.getnewaddress()]).to_json(),
                         "network": "signet"}), "node is on"),
    ]
    for candidate, message in cases:
        with pytest.raises(StatementError, match=message):
            register_wallet(ledger, node, candidate, actor="operator")
        assert ledger.size() == size, message
    assert "reserve-watch-bad" not in node.listwallets()


def test_attribution_refusals_write_nothing(bitcoind: RegtestNode, tmp_path: Path) -> None:
    from tests.support.workflow import workflow_service

    node = bitcoind.rpc()
    ledger = Ledger.open(f"sqlite:///{tmp_path}/attributions.sqlite")
    workflow_service(ledger, clock=None)  # the national policy: its operators and auditors
    hot = keyed_wallet(bitcoind, "attribution-hot")
    register_wallet(ledger, node, wallet("inflows", public_descriptors(hot)), actor="operator")
    txid = "ab" * 32
    size = ledger.size()
    for fields, message in [
        ({"by": "somebody"}, "not an operator"),
        ({"flow_class": "mining"}, "can be attributed to"),
        ({"flow_class": "internal_transfer"}, "can be attributed to"),
        ({"wallet": "nowhere"}, "no registered wallet"),
        ({"txid": "XY"}, "64 lowercase hex"),
        ({"note": ""}, "note"),
    ]:
        arguments = {"txid": txid, "wallet": "inflows", "flow_class": "seizure",
                     "note": "court order 12", "by": "external-auditor", **fields}
        with pytest.raises(StatementError, match=message):
            records.propose_attribution(ledger, **arguments)  # type: ignore[arg-type]
        assert ledger.size() == size
    # external-auditor is an operator and an auditor: it may propose, not confirm its own.
    proposed = records.propose_attribution(ledger, txid=txid, wallet="inflows",
                                           flow_class="seizure", note="court order 12",
                                           by="external-auditor")
    size = ledger.size()
    for seq, by, message in [(proposed.seq, "external-auditor", "another person"),
                             (proposed.seq, "treasury-ops", "not an auditor"),
                             (0, "auditor-general", "not an attribution proposal"),
                             (size + 5, "auditor-general", "no ledger entry")]:
        with pytest.raises(StatementError, match=message):
            records.confirm_attribution(ledger, proposed_seq=seq, by=by)
        assert ledger.size() == size
    records.confirm_attribution(ledger, proposed_seq=proposed.seq, by="auditor-general")
    assert records.attributions(ledger.entries())[txid]["inflows"].flow_class == "seizure"
    with pytest.raises(StatementError, match="attributed already"):
        records.confirm_attribution(ledger, proposed_seq=proposed.seq, by="auditor-general")
    with pytest.raises(StatementError, match="attributed already"):
        records.propose_attribution(ledger, txid=txid, wallet="inflows", flow_class="donation",
                                    note="again", by="treasury-ops")
