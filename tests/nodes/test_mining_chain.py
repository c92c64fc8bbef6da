"""Mined coins attributed from the chain, on a real regtest bitcoind (docs/mining.md).

Two mining sites and an AI data centre share the allocation. Over a three-hour period
(the node's clock set with `setmocktime`, so block times fall where the story needs them):
blocks are mined to the north site's payout wallet (real coinbase outputs), a pool pays the
south site from the address it declared as its payer, and later a block is mined straight
to the south site when no reading covers that hour. The statement classifies all three
as `mining` with their sites, from the blocks alone; the energy report's mined total is
the statement's mining flow, its anomalies are exactly the payout without a reading and
the reading without a payout, and both documents verify.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from reserve.errors import StatementRejected
from reserve.mining import publish, record, sites
from reserve.mining.basis import Price
from reserve.mining.readings import sign_reading
from reserve.statement import chain
from reserve.statement.run import publish as publish_statement
from reserve.statement.run import register_wallet, verify
from reserve.statement.wallets import PublicWallet
from tests.support.reconcile_fixtures import auditor, signed_ledger
from tests.support.statement_fixtures import keyed_wallet, public_descriptors
from tests.unit.test_mining import verifier
from wallets.bitcoin.regtest import RegtestNode
from wallets.bitcoin.rpc import btc_to_sats, sats_to_btc

METER = Ed25519PrivateKey.generate()
POOL_PAYOUT_SATS = 123_456_789


@pytest.fixture(scope="module")
def bitcoind() -> Iterator[RegtestNode]:
    """A node of this module's own: its clock is moved with setmocktime."""
    with RegtestNode() as node:
        node.miner()
        yield node


def at(bitcoind: RegtestNode, moment: datetime) -> None:
    """Set the node's clock and mine 11 blocks (to the outside miner), so that the median
    time past of the next block is `moment` too."""
    bitcoind.rpc().setmocktime(int(moment.timestamp()))
    bitcoind.mine(11)


def site(name: str, kind: str, capacity_kw: int, meter: str, **more: object) -> sites.Site:
    return sites.Site(site=name, operator=f"{name} operator", kind=kind,
                      capacity_kw=capacity_kw, meter=meter, meter_key=verifier(METER),
                      tariff_minor_per_kwh=6, currency="USD", **more)  # type: ignore[arg-type]


def test_mined_coins_are_attributed_from_the_chain(bitcoind: RegtestNode,
                                                   tmp_path: Path) -> None:
    node = bitcoind.rpc()
    ledger = signed_ledger(tmp_path, "mining")
    north, south, pool = (keyed_wallet(bitcoind, n) for n in ("north", "south", "pool"))
    payer = pool.getnewaddress("", "bech32")
    bitcoind.mine(1, address=payer)
    bitcoind.mine(100)  # the pool's reward matures
    birth = int(node.getblockcount()) + 1
    for name, wallet in (("north-payout", north), ("south-payout", south)):
        register_wallet(ledger, node, PublicWallet(
            name=name, institution="State Power Company", role="mining payout",
            custody="watched", chain="bitcoin", network="regtest",
            descriptors=tuple(public_descriptors(wallet)), range_end=20, birth_height=birth),
            actor="operator")
    record.set_allocation(ledger, sites.Allocation("phase-one", 2_000_000), actor="operator")
    for registered in (
            site("north-mine", "mining", 1_200_000, "MTR-N", payout_wallets=("north-payout",),
                 efficiency_mj_per_th=17_500),
            site("south-mine", "mining", 500_000, "MTR-S", payout_wallets=("south-payout",),
                 pool_payers=(payer,)),
            site("gpu-park", "ai", 300_000, "MTR-G")):
        record.register_site(ledger, registered, actor="operator")

    tip_time = int(node.getblockheader(node.getbestblockhash())["time"])
    h0 = datetime.fromtimestamp(tip_time - tip_time % 3600 + 2 * 3600, UTC)
    end = h0 + timedelta(hours=3)
    at(bitcoind, h0 + timedelta(minutes=10))
    pool_payout = pool.sendtoaddress(south.getnewaddress("", "bech32"),
                                     sats_to_btc(POOL_PAYOUT_SATS))
    (first,) = bitcoind.mine(1, address=north.getnewaddress("", "bech32"))
    assert pool_payout in node.getblock(first)["tx"]
    at(bitcoind, h0 + timedelta(minutes=70))
    (second,) = bitcoind.mine(1, address=north.getnewaddress("", "bech32"))
    at(bitcoind, h0 + timedelta(minutes=130))
    (unmetered,) = bitcoind.mine(1, address=south.getnewaddress("", "bech32"))
    at(bitcoind, end + timedelta(minutes=10))
    node.setmocktime(0)

    def read(name: str, meter: str, hour: int, hours: int, kwh: int) -> None:
        record.submit_reading(ledger, sign_reading(
            METER, "grid-meters", site=name, meter=meter,
            period_start=h0 + timedelta(hours=hour),
            period_end=h0 + timedelta(hours=hour + hours), energy_kwh=kwh), actor="operator")
    for hour in range(3):
        read("north-mine", "MTR-N", hour, 1, 1_100_000)
    read("south-mine", "MTR-S", 0, 1, 450_000)  # no reading for the hours after
    read("gpu-park", "MTR-G", 0, 3, 840_000)

    signer = auditor(tmp_path)
    start_height, end_height = chain.heights_of_period(node, h0, end)
    statement, _entry = publish_statement(ledger, node, signer, start_height=start_height,
                                          end_height=end_height, period=(h0, end))
    body = statement["report"]
    mined = {(m["txid"], m["wallet"]): m for m in body["movements"] if m["class"] == "mining"}
    coinbase = {h: node.getblock(h)["tx"][0] for h in (first, second, unmetered)}
    assert set(mined) == {(coinbase[first], "north-payout"), (coinbase[second], "north-payout"),
                          (pool_payout, "south-payout"), (coinbase[unmetered], "south-payout")}
    assert mined[(pool_payout, "south-payout")]["evidence"] == f"pool payout from {payer}"
    assert mined[(pool_payout, "south-payout")]["sats"] == POOL_PAYOUT_SATS
    assert {m["site"] for k, m in mined.items() if k[1] == "north-payout"} == {"north-mine"}
    for blockhash in (first, second, unmetered):  # each coinbase's value, from the node
        txid = coinbase[blockhash]
        value = btc_to_sats(node.getrawtransaction(txid, True)["vout"][0]["value"])
        wallet = "south-payout" if blockhash == unmetered else "north-payout"
        assert mined[(txid, wallet)]["sats"] == value
    entries = list(ledger.entries())
    assert verify(statement, [signer.verifier], node, entries)["movements"] == body["movements"]

    price = Price.parse("97250.00", "USD", "a stated test price")
    report, report_entry = publish.publish(ledger, signer, statement, h0, end, price=price)
    figures = report["report"]
    total = figures["total"]
    consolidated = {f["class"]: f["sats"] for f in body["consolidated"]["flows"]}
    assert total["mined_sats"] == consolidated["mining"] == total["statement_mining_sats"]
    assert total["matches_statement"] is True
    by_site = {row["site"]: row for row in figures["sites"]}
    assert by_site["south-mine"]["payouts"] == 2 and by_site["north-mine"]["payouts"] == 2
    assert by_site["gpu-park"]["mined_sats"] is None
    assert by_site["north-mine"]["energy_kwh"] == 3_300_000
    assert [(a["kind"], a["site"]) for a in figures["anomalies"]] == [
        ("reading_without_payout", "north-mine"), ("payout_without_reading", "south-mine")]
    assert publish.verify(report, [signer.verifier], statement,
                          [*entries, *ledger.entries(len(entries))])["total"] == total
    assert report_entry.payload["total"]["mined_sats"] == total["mined_sats"]

    # A statement claiming another site's payout wallets does not match the ledger.
    edited = copy.deepcopy(body)
    edited["mining_sites"][0]["payout_wallets"] = ["south-payout"]
    with pytest.raises(StatementRejected):
        verify(signer.sign(edited), [signer.verifier], node, list(ledger.entries()))
