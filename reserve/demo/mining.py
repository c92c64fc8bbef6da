"""The demo's chapter on the 2,000 MW allocation (docs/mining.md): two mining sites and an
AI data centre share it, a meter operator signs hourly readings, regtest blocks are mined
to the sites' payout wallets (real coinbase outputs), a pool pays one site from the address
it declared, one site is paid for an hour no reading covers, and the auditor's energy
report shows the anomaly.

The node's clock is moved with `setmocktime` so that the blocks fall in the hours the
readings cover: each step sets it and mines eleven blocks to an outside address, so the
median time past (by which a statement selects a period's blocks) follows. The clock is
left at the end of the period: later blocks keep counting up from there.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from reserve import present
from reserve.demo.stage import Stage
from reserve.errors import VerificationError
from reserve.mining import publish, record
from reserve.mining.basis import Difficulty, Price
from reserve.mining.export import write_exports
from reserve.mining.readings import sign_reading
from reserve.mining.sites import PHASE_ONE_KW, Allocation, Site
from reserve.reconcile.report import AuditorSigner
from reserve.statement import chain, commitments, run
from reserve.statement.export import write_exports as write_statement
from reserve.statement.wallets import PublicWallet
from reserve.supervision.keys import create_key
from wallets.bitcoin.rpc import btc_to_sats, sats_to_btc

SOUTH_WALLET = "south-payout"
POOL_WALLET = "mining-pool"  # an outside pool: its wallet is not the public sector's
METER_NAME = "grid-meters"
METER_PASSPHRASE = "demo-only-meter-operator-passphrase"  # noqa: S105 - labelled demo secret
# Stated inputs, named as such in the report: regtest's own difficulty is trivial and it has
# no market. The difficulty is mainnet's order of magnitude at the end of 2025.
DIFFICULTY = "110000000000000"
BTC_PRICE = "97250.00"
HOURS = 3


def public_descriptors(wallet: Any) -> tuple[str, ...]:
    """A node wallet's active receive and change descriptors, public keys only."""
    listed = wallet.listdescriptors(False)["descriptors"]
    return tuple(d["desc"] for d in sorted(listed, key=lambda d: (d["internal"], d["desc"]))
                 if d.get("active"))


def _at(stage: Stage, moment: datetime) -> None:
    stage.bitcoind.rpc().setmocktime(int(moment.timestamp()))
    stage.bitcoind.mine(11)


def _sites(meter_key: str, north_wallet: str, pool_payer: str) -> list[Site]:
    return [
        Site(site="north-mine", operator="State Power Company", kind="mining",
             capacity_kw=1_200_000, meter="MTR-NORTH-1", meter_key=meter_key,
             tariff_minor_per_kwh=5, currency="USD", payout_wallets=(north_wallet,),
             efficiency_mj_per_th=17_500),
        Site(site="south-mine", operator="Southern Hashing Cooperative", kind="mining",
             capacity_kw=500_000, meter="MTR-SOUTH-1", meter_key=meter_key,
             tariff_minor_per_kwh=6, currency="USD", payout_wallets=(SOUTH_WALLET,),
             pool_payers=(pool_payer,), efficiency_mj_per_th=21_000),
        Site(site="coastal-ai", operator="Coastal AI Compute", kind="ai",
             capacity_kw=300_000, meter="MTR-COAST-1", meter_key=meter_key,
             tariff_minor_per_kwh=9, currency="USD")]


# (site, meter, first hour, energy per hour in kWh): south-mine's meter reports the first
# hour only, so its payout in the third hour has no reading.
READINGS = (("north-mine", "MTR-NORTH-1", (0, 1, 2), 1_100_000),
            ("south-mine", "MTR-SOUTH-1", (0,), 450_000),
            ("coastal-ai", "MTR-COAST-1", (0, 1, 2), 280_000))


def chapter_mining(stage: Stage, signer: AuditorSigner, promised: Sequence[dict[str, Any]],
                   north_wallet: str, network: str) -> dict[str, Any]:
    node, rpc = stage.bitcoind, stage.bitcoind.rpc()
    ledger = stage.ledger
    for name in (SOUTH_WALLET, POOL_WALLET):
        rpc.createwallet(name)
    north, south, pool = (node.rpc(n) for n in (north_wallet, SOUTH_WALLET, POOL_WALLET))
    payer = pool.getnewaddress("", "bech32")
    node.mine(1, address=payer)
    node.mine(100)  # the pool's reward matures
    run.register_wallet(ledger, rpc, PublicWallet(
        SOUTH_WALLET, "Southern Hashing Cooperative", "mining payout", "watched", "bitcoin",
        network, public_descriptors(south), range_end=100), actor="treasury-ops")

    meter = create_key(stage.path("keys", "meter-operator.json"), METER_NAME,
                       METER_PASSPHRASE, role="meter-operator", scrypt_n=2**12)
    record.set_allocation(ledger, Allocation("phase-one", PHASE_ONE_KW,
                                             "surplus electricity, phase one"),
                          actor="treasury-ops")
    for site in _sites(meter.verifier.encode(), north_wallet, payer):
        record.register_site(ledger, site, actor="treasury-ops")
    stage.say("allocation phase-one: 2,000,000 kW shared by north-mine (1,200,000 kW, pays "
              f"into {north_wallet}), south-mine (500,000 kW, paid by a pool from {payer}) "
              "and the AI data centre coastal-ai (300,000 kW); each meter's readings must "
              f"be signed by the grid's meter operator ({meter.verifier.encode()})")

    header = rpc.getblockheader(rpc.getbestblockhash())
    latest = max(int(header["time"]), int(stage.clock().timestamp()))
    start = datetime.fromtimestamp(latest - latest % 3600 + 3600, UTC)
    end = start + timedelta(hours=HOURS)
    _at(stage, start + timedelta(minutes=10))
    pool_paid = btc_to_sats(pool.getbalances()["mine"]["trusted"]) // 4
    payout = pool.sendtoaddress(south.getnewaddress("", "bech32"), sats_to_btc(pool_paid))
    blocks = node.mine(1, address=north.getnewaddress("", "bech32"))
    _at(stage, start + timedelta(minutes=70))
    blocks += node.mine(1, address=north.getnewaddress("", "bech32"))
    _at(stage, start + timedelta(minutes=130))
    blocks += node.mine(1, address=south.getnewaddress("", "bech32"))  # no reading covers it
    _at(stage, end + timedelta(minutes=10))
    reward = btc_to_sats(rpc.getblock(blocks[0], 2)["tx"][0]["vout"][0]["value"])
    stage.say(f"over {start:%Y-%m-%d %H:%M} .. {end:%H:%M} UTC: two blocks mined to "
              f"north-mine, the pool pays south-mine "
              f"{present.amount_words(pool_paid, present.BTC)} (tx {payout[:16]}...), and a "
              "block is mined straight to south-mine in its third hour")

    for name, meter_id, hours, kwh in READINGS:
        for hour in hours:
            reading = sign_reading(meter.private_key, meter.name, site=name, meter=meter_id,
                                   period_start=start + timedelta(hours=hour),
                                   period_end=start + timedelta(hours=hour + 1),
                                   energy_kwh=kwh)
            record.submit_reading(ledger, reading, actor="grid-meters")
    stage.say("the meter operator signs hourly readings: north-mine and coastal-ai for all "
              "three hours, south-mine for the first hour only")

    first, last = chain.heights_of_period(rpc, start, end)
    statement, _entry = run.publish(ledger, rpc, signer, start_height=first, end_height=last,
                                    period=(start, end),
                                    commitments=commitments.parse(list(promised)))
    write_statement(statement, stage.path("statements"))
    price = Price.parse(BTC_PRICE, "USD", "stated for the demo (regtest has no market)")
    basis = Difficulty.parse(DIFFICULTY, reward, "mainnet's order of magnitude, stated for "
                             "the demo (regtest's own is trivial); reward: the coinbase "
                             "value (subsidy and fees) of regtest block "
                             f"{rpc.getblock(blocks[0])['height']}")
    document, entry = publish.publish(ledger, signer, statement, start, end, price=price,
                                      difficulty=basis)
    stem = write_exports(document, stage.path("mining"))
    body = document["report"]
    total = body["total"]
    for row in body["sites"]:
        mined = "" if row["mined_sats"] is None else \
            f", mined {present.amount_words(row['mined_sats'], present.BTC)}"
        stage.say(f"{row['site']}: {row['energy_mwh']} of {row['allocated_kwh']:,} kWh "
                  f"allocated{mined}")
    for anomaly in body["anomalies"]:
        stage.say(f"anomaly {anomaly['kind']}: {anomaly['detail']}")
    stage.say(f"energy report signed by {signer.verifier.name}, ledger entry #{entry.seq}; "
              f"mined {present.amount_words(total['mined_sats'], present.BTC)}, equal to the "
              f"statement's mining flow; {stem}.html and /public/energy")
    found = {(a["kind"], a["site"]) for a in body["anomalies"]}
    if not total["matches_statement"] or ("payout_without_reading", "south-mine") not in found:
        raise VerificationError("the energy report does not match the statement's mining "
                                "flow, or misses the payout without a reading")
    return {"entry_seq": entry.seq, "files": str(stem),
            "report_sha256": document["signature"]["report_sha256"],
            "statement_sha256": statement["signature"]["report_sha256"],
            "period": body["period"], "mined_sats": total["mined_sats"],
            "statement_mining_sats": total["statement_mining_sats"],
            "energy_kwh": total["energy_kwh"],
            "sites": [{k: row[k] for k in ("site", "kind", "energy_kwh", "mined_sats")}
                      for row in body["sites"]],
            "anomalies": [{"kind": a["kind"], "site": a["site"]} for a in body["anomalies"]]}
