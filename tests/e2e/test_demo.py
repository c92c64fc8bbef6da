"""`reserve demo --no-serve`, run exactly as a stakeholder runs it, then checked from outside.

The demo tells the whole story on its own regtest bitcoind and anvil and stops them. This
test runs it as a subprocess in a temporary working folder and then, with nothing but the
files it left (the SQLite ledger, the keystore's public key, the signed reconciliation
report, summary.json), checks that:

1. it exits 0 within the 2-minute target and narrates every chapter and the summary;
2. the ledger verifies against the checkpoint key's public half, and through the CLI;
3. the balances the ledger itself implies (recomputed here from its entries) equal the
   chain balances the demo read from the nodes at the end, and the balances pinned in the
   one auditor-signed reconciliation report, for the Bitcoin vault and the Safe (ETH and
   the token), every row `ok`;
4. every transfer is confirmed, with its transaction id printed;
5. the report's hash and the checkpoint are both anchored and recorded in the ledger;
6. the nodes are gone (bitcoind removed its pid file on a clean stop);
7. the records it wrote (ledger, keys, reports, summary.json) are its owner's alone:
   files 0600, folders 0700;
8. its leftovers work with the `reserve.toml` it wrote (paths relative to that file's own
   folder): `proposal list`, `transfer status` and `ledger verify` read them, and an entry
   appended afterwards is dated on the story's clock (stored in that config as
   `[clock] offset_seconds`), not a day before the story's last entry; the auditor's key
   it names signs proof-of-reserves statements; the summary printed the nodes' endpoints
   and the TEST credentials.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from reserve import keystore, present
from reserve.demo.custody import PASSPHRASE
from reserve.ledger import Ledger, VerifierKey
from reserve.ledger.verify import verify_ledger
from wallets.bitcoin import records
from wallets.evm.deposits_core import positions

ROOT = Path(__file__).resolve().parents[2]
RESERVE = ROOT / ".venv" / "bin" / "reserve"
DURATION_SECONDS_MAX = 120
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # entry times, as the ledger writes them


def run_reserve(*args: str, timeout: float,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join([str(ROOT / ".cache" / "bin"), str(ROOT / "node_modules" / ".bin"),
                            os.environ.get("PATH", "")])
    command = [str(RESERVE)] if RESERVE.exists() else [sys.executable, "-m", "reserve.cli.main"]
    return subprocess.run([*command, *args], cwd=ROOT,
                          env={**os.environ, "PATH": path, **(env or {})},
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_demo_story(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    started = time.monotonic()
    result = run_reserve("demo", "--no-serve", "--workdir", str(workdir), timeout=300)
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]

    # 1. The story is told, chapter by chapter, and it is fast.
    for words in ("Chapter 1: custody", "Chapter 2: inflows", "Chapter 3: transfers",
                  "Chapter 4: the public-sector statement", "an internal transfer, eliminated",
                  "Chapter 5: the 2,000 MW allocation", "anomaly payout_without_reading",
                  "Chapter 6: reconciliation", "Chapter 7: access", "Chapter 8: checkpoint",
                  "Chapter 9: a log anyone can mirror", "cosigned size",
                  "coinbase reward", "seized-assets transfer", "24 h of time delay left",
                  "24 h 1 min later", "Holdings: ledger vs chain", "Transfers", "Evidence",
                  "The story took", "Admin token", "srl_", "Public portal (no login)",
                  "[public] table turns it on"):
        assert words in output, f"{words!r} missing from the demo's output"
    assert "NO" not in output.split("Holdings: ledger vs chain")[1].split("Transfers")[0]
    facts = json.loads((workdir / "summary.json").read_text())
    assert facts["duration_seconds"] < DURATION_SECONDS_MAX
    assert elapsed < DURATION_SECONDS_MAX + 30  # interpreter start-up and teardown included
    assert "token" not in facts["access"]  # printed once, stored nowhere

    # 2. The ledger verifies against the key its owner holds, offline and through the CLI.
    key = VerifierKey.parse(keystore.read(workdir / "keys" / "ledger-checkpoint.json")["public"])
    assert key.encode() == facts["anchor"]["verifier_key"]
    ledger = Ledger.open(f"sqlite:///{workdir / 'ledger.sqlite'}")
    try:
        report = verify_ledger(ledger, key)
        assert report.ok, report.to_json()
        assert report.entries == facts["ledger_size"] == ledger.size()
        entries = list(ledger.entries())
    finally:
        ledger.close()
    cli = run_reserve("ledger", "verify", "--config", str(workdir / "reserve.toml"), timeout=120)
    assert cli.returncode == 0, cli.stdout + cli.stderr

    # 3. Balances: recomputed from the ledger's own entries = the chains' = the signed report.
    chain = {(row["vault"], row["asset"]): int(row["chain"]) for row in facts["holdings"]}
    btc_ledger = records.chain_state(entries, "national-btc").balance_sats
    assert btc_ledger == chain[("national-btc", "BTC")] > 0
    registered = next(e.payload for e in entries if e.kind == "vault.registered"
                      and e.payload.get("chain") == "evm")
    evm_ledger = positions(entries, registered["safe"], registered["chain_id"])
    assert evm_ledger["ETH"] == chain[("reserve-safe", "ETH")] > 0
    assert evm_ledger[registered["token"]] == chain[("reserve-safe", "tRGT")] > 0
    signed = json.loads(Path(facts["reconciliation"]["files"] + ".json").read_text())
    [row] = signed["report"]["summary"]
    assert (row["status"], row["chain"], row["ledger"]) == ("ok", btc_ledger, btc_ledger)
    # The same signed report covers the Safe: wei as decimal strings, one row per asset.
    evm_rows = {r["asset"]: r for r in signed["report"]["evm"]["summary"]}
    assert set(evm_rows) == {"ETH", registered["token"]}
    for asset, evm_row in evm_rows.items():
        assert evm_row["vault_id"] == "reserve-safe"
        assert (evm_row["status"], evm_row["chain"], evm_row["ledger"], evm_row["unit"]) == (
            "ok", str(evm_ledger[asset]), str(evm_ledger[asset]), "wei")
    assert signed["report"]["findings"] == signed["report"]["evm"]["findings"] == []
    assert facts["reconciliation"]["status"] == "ok"
    # Printed from the report's own rows, exact (cut from the integer, never a float).
    assert f"reserve-safe ETH: ledger {present.amount_words(evm_ledger['ETH'], present.ETH)}" in output

    # 4. Three transfers (small and large Bitcoin, one ETH), each confirmed and printed.
    transfers = facts["transfers"]
    assert [(t["reference"], t["state"]) for t in transfers] == [
        ("DEMO-BTC-1", "confirmed"), ("DEMO-BTC-2", "confirmed"), ("DEMO-ETH-1", "confirmed")]
    for transfer in transfers:
        assert transfer["txid"] and transfer["txid"] in output

    # 5. Anchors: the checkpoint's, and the signed report's hash, each recorded in the ledger.
    anchors = [e for e in entries if e.kind == "ledger.anchor"]
    assert [(a.payload["subject"], a.payload["tx_hash"]) for a in anchors] == [
        ("reconcile.report", facts["reconciliation"]["anchor_tx"]),
        ("checkpoint", facts["anchor"]["anchor_tx"])]
    report_anchor = anchors[0]
    assert report_anchor.seq == facts["reconciliation"]["anchor_seq"]
    assert report_anchor.payload["report_sha256"] == signed["signature"]["report_sha256"] \
        == facts["reconciliation"]["report_sha256"]
    assert report_anchor.payload["registry"] == facts["anchor"]["registry"]

    # 6. The nodes were stopped: bitcoind deletes its pid file on a clean shutdown.
    assert not (workdir / "bitcoind" / "regtest" / "bitcoind.pid").exists()

    # 7. Nobody but the owner may read what the demo wrote.
    written = [workdir / "ledger.sqlite", workdir / "summary.json",
               workdir / "keys" / "ledger-checkpoint.json",
               *(Path(facts["reconciliation"]["files"] + suffix)
                 for suffix in (".json", ".csv", ".html"))]
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for folder in {workdir, *(path.parent for path in written)}:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder

    # 8. The leftovers, used through the config the demo wrote (its nodes are stopped now).
    config = workdir / "reserve.toml"
    written_config = tomllib.loads(config.read_text())
    assert written_config["root"] == "."
    assert written_config["ledger"]["database_url"] == "sqlite:///ledger.sqlite"
    offset = written_config["clock"]["offset_seconds"]
    assert offset == facts["story_time_offset_seconds"] > 24 * 3600
    assert "test_access" not in facts
    for words in ("TEST access", "TEST RPC", written_config["bitcoin"]["rpc_url"],
                  "demo-only-custodian-passphrase", "export RESERVE_BTC_RPC_PASSWORD="):
        assert words in output, f"{words!r} missing from the demo's summary"
    listed = run_reserve("proposal", "list", "--json", "--config", str(config), timeout=60)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert sorted(p["state"] for p in json.loads(listed.stdout)) == ["confirmed"] * 3
    status = run_reserve("transfer", "status", transfers[0]["digest"], "--json", "--config",
                         str(config), timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr
    assert json.loads(status.stdout)["state"] == "confirmed"
    appended = run_reserve("ledger", "append", "ledger.note", "--actor", "test-operator",
                           "--payload", '{"text": "after the demo"}', "--json", "--config",
                           str(config), timeout=60)
    assert appended.returncode == 0, appended.stdout + appended.stderr
    after = json.loads(appended.stdout)
    assert after["seq"] == len(entries)
    # One clock: dated after the story's last entry (which the story moved 24 h+ ahead of
    # the wall clock), and by the same offset, not further.
    assert after["time"] >= entries[-1].time
    latest = (datetime.now(UTC) + timedelta(seconds=offset + 1)).strftime(TIME_FORMAT)
    assert after["time"] <= latest
    # The auditor's key and passphrase from the config and the summary: signed statements.
    statements = run_reserve("reconcile", "proof-of-reserves",
                             facts["reconciliation"]["files"] + ".json", "--config", str(config),
                             timeout=60, env={"RESERVE_AUDITOR_PASSPHRASE": PASSPHRASE})
    assert statements.returncode == 0, statements.stdout + statements.stderr
    signed_statements = {s["report"]["vault_id"]: s["report"] for s in json.loads(statements.stdout)}
    assert signed_statements["national-btc"]["balance_sats"] == btc_ledger
    verified = run_reserve("ledger", "verify", "--config", str(config), timeout=120)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"{len(entries) + 1} entries" in verified.stdout

    # 9. The public tile log: its checkpoint carries the witness's cosignature, and
    # publishing again through the demo's config writes only what grew since.
    checkpoint = (workdir / "public-log" / "checkpoint").read_text()
    witness_name = facts["public_log"]["witness_key"].split("+")[0]
    assert f"\u2014 {witness_name} " in checkpoint
    assert facts["public_log"]["cosigned_size"] == facts["public_log"]["size"]
    again = run_reserve("publish", "--json", "--config", str(config), timeout=60)
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["previous_size"] == facts["public_log"]["size"]

    # 10. The public-sector statement: the consolidation of the state miner's reward into
    # the national vault is internal (no purchase), the promises hold, the stock adds up.
    public = facts["statement"]
    flows = {f["class"]: f["sats"] for f in public["flows"]}
    assert "purchase" not in flows and flows["mining"] > 0 and flows["fee"] < 0
    assert sum(flows.values()) == public["closing_sats"] - public["opening_sats"]
    assert all(c["kept"] for c in public["commitments"]) and len(public["commitments"]) == 2
    document = json.loads(Path(public["files"] + ".json").read_text())
    moved = {m["class"] for m in document["report"]["movements"]
             if m["txid"] == public["consolidation_txid"]}
    assert moved == {"internal_transfer", "fee"}
    published = next(e.payload for e in entries if e.kind == "statement.published")
    assert published["statement_sha256"] == public["statement_sha256"]

    # 11. The demo's config serves the public portal, with the statement and its document.
    from fastapi.testclient import TestClient

    from reserve.api.app import create_app
    from reserve.config import load as load_settings

    with TestClient(create_app(load_settings(str(config)))) as client:
        page = client.get(f"/public/statements/{public['statement_sha256']}")
        assert page.status_code == 200, page.text
        assert "<strong>kept</strong>: The public sector makes no purchases" in page.text
        signed_file = client.get(f"/public/api/statements/{public['statement_sha256']}"
                                 "/document")
        assert signed_file.status_code == 200
        assert signed_file.json()["signature"]["report_sha256"] == public["statement_sha256"]
        energy_page = client.get("/public/energy")
        assert energy_page.status_code == 200, energy_page.text
        assert "payout without reading</strong> at south-mine" in energy_page.text
        assert facts["energy"]["report_sha256"] in energy_page.text

    # 12. The energy report: two mining sites and an AI data centre share the allocation;
    # its mined coins are the statement's mining flow, the unmetered payout is flagged,
    # and `reserve mining verify` re-derives it from a ledger export.
    energy = facts["energy"]
    assert energy["mined_sats"] == energy["statement_mining_sats"] > 0
    assert {s["site"]: s["kind"] for s in energy["sites"]} == {
        "north-mine": "mining", "south-mine": "mining", "coastal-ai": "ai"}
    assert ("payout_without_reading", "south-mine") in {
        (a["kind"], a["site"]) for a in energy["anomalies"]}
    exported = tmp_path / "ledger.jsonl"
    dumped = run_reserve("ledger", "export", "-o", str(exported), "--config", str(config),
                         timeout=60)
    assert dumped.returncode == 0, dumped.stdout + dumped.stderr
    statement_file = workdir / "statements" / f"statement-{energy['statement_sha256'][:16]}.json"
    holds = run_reserve("mining", "verify", energy["files"] + ".json", "--statement",
                        str(statement_file), "--export", str(exported), "--auditor-key",
                        facts["reconciliation"]["auditor_key"], "--json", timeout=60)
    assert holds.returncode == 0, holds.stdout + holds.stderr
    assert json.loads(holds.stdout)["holds"] is True
