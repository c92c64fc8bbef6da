"""A ledger as the public portal would find it after the transparency story: a Bitcoin
vault with named custodians, three registered wallets, deposits (BTC, ETH, a token), two
signed statements (one exported to the statements folder), a checkpoint and its anchor."""

from __future__ import annotations

import json
from pathlib import Path

from reserve.events.chain_evm import EvmDeposit
from reserve.events.custody import BitcoinVaultRegistered, EvmVaultRegistered
from reserve.events.mining import EnergyReportPublished
from reserve.events.records import CheckpointAnchored
from reserve.events.transparency import StatementPublished, WalletRegistered
from reserve.ledger.checkpoint import parse_note
from tests.support.api_server import RunningServer

# People's names that must never reach a public page (show_custodians is off).
CUSTODIAN_NAMES = ("Alice Treasurer", "Bruno Keyholder", "Chiara Signatory")
AUDITOR_KEY = "auditor-general+0a1b2c3d+" + "A" * 43 + "="
FIRST, SECOND = "a1" * 32, "b2" * 32
ENERGY = "e3" * 32
DESCRIPTOR = "wpkh([d34db33f/84h/1h/0h]tpubD6NzVbkrYhZ4XgiXtGrdW5XDAPFCL9h7we1vwNCpn8tGbBcgfVYjXyhWo4E1xkh56hjod1RhGjxbaTLV3X4FyWuejifB9jusQ46QzG87VKp/0/*)#abcdefgh"
ADDRESS = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"


def _statement(sha: str, start: str, end: str, heights: tuple[int, int], opening: int,
               mining: int, seizure: int, fee: int) -> StatementPublished:
    closing = opening + mining + seizure + fee
    return StatementPublished(
        statement_sha256=sha, auditor_key=AUDITOR_KEY, signature="c2lnbmF0dXJl" * 7,
        period_start=start, period_end=end,
        blocks={"network": "regtest", "scan_from_height": 100, "start_height": heights[0],
                "start_hash": "0f" * 32, "end_height": heights[1], "end_hash": "1e" * 32},
        consolidated={"opening_sats": opening, "closing_sats": closing,
                      "flows": [{"class": "mining", "sats": mining},
                                {"class": "seizure", "sats": seizure},
                                {"class": "fee", "sats": fee}]},
        wallets=[{"wallet": "national", "opening_sats": opening,
                  "closing_sats": opening + mining + fee,
                  "flows": [{"class": "internal_transfer", "sats": mining},
                            {"class": "fee", "sats": fee}]},
                 {"wallet": "state-miner", "opening_sats": 0, "closing_sats": 0,
                  "flows": [{"class": "mining", "sats": mining},
                            {"class": "internal_transfer", "sats": -mining}]},
                 {"wallet": "seized", "opening_sats": 0, "closing_sats": seizure,
                  "flows": [{"class": "seizure", "sats": seizure}]}],
        commitments=[{"id": "no-purchases", "text": "No purchases", "kept": True,
                      "findings": []},
                     {"id": "outflows", "text": "No outflow above 0.1 BTC", "kept": False,
                      "findings": ["ab" * 32 + ": 20000000 sats left national, over 10000000"]}])


def _energy_report() -> EnergyReportPublished:
    """July's energy report: a mining site paid 6.25 BTC for 1,100 MWh and an AI data
    centre, with one anomaly (a payout no reading covers)."""
    def row(site: str, kind: str, kwh: int, mined: int | None) -> dict[str, object]:
        return {"site": site, "kind": kind, "operator": f"{site} operator",
                "capacity_kw": 1_000_000, "energy_kwh": kwh,
                "energy_mwh": f"{kwh // 1000:,}.{kwh % 1000:03d} MWh",
                "allocated_kwh": 744_000_000, "utilisation_bp": kwh * 10_000 // 744_000_000,
                "mined_sats": mined, "sats_per_mwh": None if mined is None else
                mined * 1000 // kwh, "tariff_per_mwh_minor": 6_000, "currency": "USD",
                "revenue_per_mwh_minor": None if mined is None else
                mined * 9_725_000 * 1000 // (10**8 * kwh), "yield_bp": None}
    return EnergyReportPublished(
        report_sha256=ENERGY, signature="c2lnbmF0dXJl" * 7, auditor_key=AUDITOR_KEY,
        period={"start": "2026-07-01T00:00:00Z", "end": "2026-08-01T00:00:00Z"},
        statement_sha256=SECOND, ledger={"tree_size": 9, "root_hash": "ab" * 32},
        price={"minor_per_btc": 9_725_000, "currency": "USD", "minor_digits": 2,
               "source": "a stated price", "text": "97,250.00 USD"}, difficulty=None,
        sites=[row("north-mine", "mining", 1_100_000, 625_000_000),
               row("gpu-park", "ai", 500_000, None)],
        total={"energy_kwh": 1_600_000, "energy_mwh": "1,600.000 MWh",
               "allocated_kwh": 1_488_000_000, "mining_energy_kwh": 1_100_000,
               "mined_sats": 625_000_000, "sats_per_mwh": 568_181,
               "statement_mining_sats": 625_000_000, "matches_statement": True},
        anomalies=[{"kind": "payout_without_reading", "site": "north-mine",
                    "detail": "625000000 sats paid to north-mine at 2026-07-09T10:00:00Z"}])


def seed(server: RunningServer, statements_dir: Path) -> dict[str, str]:
    """Write the story's entries; returns the two statement hashes by name."""
    ledger, now = server.ledger, server.clock.wall()
    ledger.append("vault.registered", "root-admin", BitcoinVaultRegistered(
        chain="bitcoin", vault="national-btc", network="regtest", threshold=2,
        descriptor=DESCRIPTOR,
        custodians=[{"name": name, "institution": "Central Bank"}
                    for name in CUSTODIAN_NAMES]).to_payload(), now=now)
    ledger.append("vault.registered", "root-admin", EvmVaultRegistered(
        chain="evm", vault="reserve-evm", chain_id=31337, safe="0x" + "5a" * 20,
        guard="0x" + "6b" * 20, registry="0x" + "12" * 20, token="0x" + "7c" * 20,
        owners=["0x" + f"{n}d" * 20 for n in range(1, 4)], threshold=2,
        safe_singleton="0x" + "01" * 20, safe_proxy_factory="0x" + "02" * 20,
        safe_fallback_handler="0x" + "03" * 20, block_number=3, token_symbol="tRGT",
        token_decimals=18).to_payload(), now=now)
    for name, institution, role, custody, descriptors in (
            ("national", "Ministry of Finance", "national reserve", "custody", [DESCRIPTOR]),
            ("state-miner", "State Mining Company", "mining payout", "watched",
             [DESCRIPTOR.replace("/0/*", "/1/*")]),
            ("seized", "Attorney General", "seized assets", "watched",
             [f"addr({ADDRESS})#qwertyui"])):
        ledger.append("wallet.registered", "root-admin", WalletRegistered(
            name=name, institution=institution, role=role, custody=custody, chain="bitcoin",
            network="regtest", descriptors=descriptors, range_end=999,
            birth_height=100).to_payload(), now=now)
    ledger.append("btc.deposit", "btc-watcher", {
        "vault_id": "national-btc", "txid": "33" * 32, "blockhash": "44" * 32,
        "height": 102, "confirmations": 1, "delta_sats": 1_250_000_000,
        "amount_sats": 1_250_000_000, "outputs": []}, now=now)
    for key, asset, amount in ((f"31337:0x{'ed' * 32}:1", "0x" + "7c" * 20, 1_500 * 10**18),
                               (f"31337:0x{'ee' * 32}:0", "ETH", 50 * 10**18)):
        ledger.append("evm.deposit", "evm-watcher", EvmDeposit(
            key=key, chain_id=31337, vault="reserve-evm", safe="0x" + "5a" * 20, asset=asset,
            sender="0x" + "99" * 20, amount_wei=amount, tx_hash="0x" + key[8:72],
            log_index=int(key[-1]), block_number=9, block_hash="0x" + "fe" * 32
        ).to_payload(), now=now)
    ledger.append("statement.published", "aldo-auditor", _statement(
        FIRST, "2026-06-01T00:00:00Z", "2026-07-01T00:00:00Z", (101, 150), 1_000_000_000,
        312_500_000, 0, -2_000).to_payload(), now=now)
    ledger.append("statement.published", "aldo-auditor", _statement(
        SECOND, "2026-07-01T00:00:00Z", "2026-08-01T00:00:00Z", (151, 200), 1_312_498_000,
        625_000_000, 40_000_000, -3_500).to_payload(), now=now)
    statements_dir.mkdir(parents=True, exist_ok=True)
    (statements_dir / f"statement-{SECOND[:16]}.json").write_text(json.dumps(
        {"report": {"format": "reserve-public-statement/1"},
         "signature": {"algorithm": "ed25519", "key": AUDITOR_KEY, "report_sha256": SECOND,
                       "value": "c2lnbmF0dXJl"}}))
    ledger.append(EnergyReportPublished.KIND, "aldo-auditor", _energy_report().to_payload(),
                  now=now)
    energy_dir = statements_dir.parent / "mining"
    energy_dir.mkdir(parents=True, exist_ok=True)
    (energy_dir / f"energy-report-{ENERGY[:16]}.json").write_text(json.dumps(
        {"report": {"format": "reserve-energy-report/1"},
         "signature": {"algorithm": "ed25519", "key": AUDITOR_KEY, "report_sha256": ENERGY,
                       "value": "c2lnbmF0dXJl"}}))
    note = ledger.checkpoint(now=now)
    ledger.append("ledger.anchor", "aldo-auditor", CheckpointAnchored(
        subject="checkpoint", chain_id=31337, registry="0x" + "12" * 20, index=0,
        anchorer="0x" + "34" * 20, tx_hash="0x" + "ab" * 32, block_number=7,
        block_hash="0x" + "cd" * 32, tree_size=parse_note(note)[0].tree_size,
        root_hash=parse_note(note)[0].root_hash.hex()).to_payload(), now=now)
    return {"first": FIRST, "second": SECOND}
