"""Exports, proof of reserves and the `reserve reconcile` commands against a real node."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reserve.cli.main import app
from reserve.errors import ReportRejected
from reserve.ledger import Ledger
from reserve.reconcile import export, proof
from reserve.reconcile.run import run_report
from tests.support.bitcoin_fixtures import VaultKit
from tests.support.reconcile_fixtures import (
    PASSPHRASE,
    auditor,
    resign,
    signed_ledger,
    spend_behind_the_back,
)


def test_exports_and_proof_of_reserves(bitcoind, miner, make_vault, tmp_path) -> None:  # type: ignore[no-untyped-def]
    kit: VaultKit = make_vault(2, 3, ledger=signed_ledger(tmp_path, "exports"))
    kit.deposit(bitcoind, miner, [12_000_000])
    kit.watcher.sync()
    kit.deposit(bitcoind, miner, [3_000])  # unrecorded
    signer = auditor(tmp_path)
    document, _entry = run_report(kit.ledger, bitcoind.rpc(), [(kit.vault, 20)], signer)
    rows = list(csv.DictReader(io.StringIO(export.findings_csv(document))))
    assert [r["kind"] for r in rows] == ["unrecorded_deposit"] and rows[0]["difference_sats"] == "3000"
    page = export.to_html(document)
    assert page.index("DISCREPANCY") < page.index("12,003,000 sats") < page.index("Findings")
    (statement,) = proof.statements(document, signer)
    bitcoind.mine(3)  # anyone can check later: the coins at the pinned block are rebuilt
    assert proof.check_statement(statement, bitcoind.rpc(), [signer.verifier]) == 12_003_000
    lying = resign(statement, signer, lambda body: body.update(balance_sats=99_000_000))
    with pytest.raises(ReportRejected, match="the chain holds 12003000 sats"):
        proof.check_statement(lying, bitcoind.rpc(), [signer.verifier])


def test_cli_run_show_verify(bitcoind, miner, make_vault, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    database = tmp_path / "cli.sqlite"
    kit: VaultKit = make_vault(2, 3, ledger=Ledger.open(f"sqlite:///{database}"))
    kit.deposit(bitcoind, miner, [8_000_000])
    kit.watcher.sync()
    vault_file = tmp_path / "vault.toml"
    custodians = "".join(
        f'[[custodians]]\nname = "{c.name}"\ninstitution = "{c.institution}"\n'
        f'key_origin = "{c.key_origin}"\nxpub = "{c.xpub}"\n' for c in kit.vault.custodians)
    vault_file.write_text(f'vault_id = "{kit.vault.vault_id}"\nnetwork = "regtest"\n'
                          f"threshold = 2\n{custodians}")
    (tmp_path / "config").mkdir()
    config = tmp_path / "config" / "reserve.toml"
    config.write_text(f'network = "regtest"\n[ledger]\ndatabase_url = "sqlite:///{database}"\n'
                      f'origin = "test.reserve.example/cli"\nkey_path = "keys/ledger.json"\n'
                      f'[bitcoin]\nrpc_url = "{bitcoind.url}"\nrpc_user = "{bitcoind.user}"\n')
    monkeypatch.setenv("RESERVE_BTC_RPC_PASSWORD", bitcoind.password)
    monkeypatch.setenv("RESERVE_AUDITOR_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("RESERVE_LEDGER_PASSPHRASE", PASSPHRASE)
    runner = CliRunner()
    made = runner.invoke(app, ["reconcile", "auditor-key", "--config", str(config),
                               "--key-file", "keys/auditor.json"])
    assert made.exit_code == 0, made.output
    public = made.output.strip()
    ran = runner.invoke(app, ["reconcile", "run", "--config", str(config), "--vault",
                              str(vault_file), "--key-file", "keys/auditor.json",
                              "--output-dir", "out", "--json"])
    assert ran.exit_code == 0, ran.output
    result = json.loads(ran.output)
    assert result["summary"][0]["difference"] == 0
    report = Path(result["files"] + ".json")
    shown = runner.invoke(app, ["reconcile", "show", str(report)])
    assert "status ok" in shown.output
    ledger_export = tmp_path / "ledger.jsonl"
    exported = runner.invoke(app, ["ledger", "export", "--config", str(config), "-o",
                                   str(ledger_export)])
    assert exported.exit_code == 0, exported.output
    verified = runner.invoke(app, ["reconcile", "verify", str(report), "--export",
                                   str(ledger_export), "--auditor-key", public, "--config",
                                   str(config)])
    assert verified.exit_code == 0 and "HOLDS" in verified.output, verified.output
    stranger = runner.invoke(app, ["reconcile", "verify", str(report), "--export",
                                   str(ledger_export), "--auditor-key",
                                   "other+00000000+AQ" + "A" * 43, "--config", str(config)])
    assert stranger.exit_code != 0
    # Custodian keys used outside the service: `reconcile run` reports the spend as
    # critical, and `reconcile verify` re-derives exactly that from the export and the chain.
    thief = spend_behind_the_back(kit, bitcoind.rpc(), bitcoind.miner().getnewaddress(
        "", "bech32"), 2_000_000)
    bitcoind.mine(1)
    ran = runner.invoke(app, ["reconcile", "run", "--config", str(config), "--vault",
                              str(vault_file), "--key-file", "keys/auditor.json",
                              "--output-dir", "out", "--json"])
    assert ran.exit_code == 0, ran.output
    report = Path(json.loads(ran.output)["files"] + ".json")
    (finding,) = json.loads(report.read_text())["report"]["findings"]
    assert (finding["kind"], finding["severity"], finding["txid"]) == (
        "unauthorised_spend", "critical", thief)
    assert "status critical" in runner.invoke(app, ["reconcile", "show", str(report)]).output
    exported = runner.invoke(app, ["ledger", "export", "--config", str(config), "-o",
                                   str(ledger_export)])
    assert exported.exit_code == 0, exported.output
    verified = runner.invoke(app, ["reconcile", "verify", str(report), "--export",
                                   str(ledger_export), "--auditor-key", public, "--config",
                                   str(config)])
    assert verified.exit_code == 0 and "HOLDS" in verified.output, verified.output
