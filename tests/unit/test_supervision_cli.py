"""`reserve licence ...` and `reserve supervise ...` end to end on SQLite.

The regulator's key and its signed change files are made offline (no ledger opened); a
change file edited after signing is refused with nothing written; the register lists and
verifies from the ledger and from an export; the supervisor reads alerts by cursor,
acknowledges one, and countersigns a reconciliation report.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reserve.cli import main
from reserve.events.records import ReconcileReport
from reserve.ledger import Ledger
from reserve.policy import loader
from tests.support.supervision import EXCHANGE, LICENCE, licensed_document, supervision_table
from tests.support.workflow import workflow_service
from tests.unit.test_transfers_cli import env as cli_env  # noqa: F401 - the fixture below uses it

runner = CliRunner()


@pytest.fixture()
def env(cli_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:  # noqa: F811
    """test_transfers_cli's ledger and config, with the regulator's and supervisor's
    passphrases, from the config's folder."""
    monkeypatch.chdir(cli_env)
    monkeypatch.setenv("RESERVE_REGULATOR_PASSPHRASE", "regulator-test-pass")
    monkeypatch.setenv("RESERVE_SUPERVISOR_PASSPHRASE", "supervisor-test-pass")
    return cli_env


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(main.app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def _ledger(folder: Path) -> Ledger:
    return Ledger.open(f"sqlite:///{folder}/var/l.sqlite")


def test_licences_from_keygen_to_offline_verification(env: Path) -> None:
    key = env / "regulator.json"
    public = json.loads(run("licence", "keygen", "--out", str(key), "--name", "vara",
                            "--json"))["public_key"]
    signed = env / "change-1.json"
    run("licence", "sign", "--key", str(key), "--licence", LICENCE, "--entity", EXCHANGE,
        "--scope", "exchange", "--status", "active", "--number", "1",
        "--effective-at", "2026-01-01T00:00:00Z", "--out", str(signed))
    assert not (env / "var" / "l.sqlite").exists()  # signing opened no ledger

    # No vault's policy trusts the key yet: refused, nothing written.
    assert "a key no vault's policy names" in run("licence", "submit", str(signed), code=2)
    document = licensed_document()
    document["supervision"] = supervision_table(regulator_key=public)
    with _ledger(env) as ledger:
        size = ledger.size()
        workflow_service(ledger, loader.from_mapping(document, source="test"), clock=None)
        size = ledger.size()

    edited = json.loads(signed.read_text())
    edited["status"] = "suspended"
    forged = env / "forged.json"
    forged.write_text(json.dumps(edited))
    assert "does not verify" in run("licence", "submit", str(forged), code=2)
    unsigned = env / "unsigned.json"
    unsigned.write_text(json.dumps({k: v for k, v in edited.items() if k != "signature"}))
    assert "carries no regulator signature" in run("licence", "submit", str(unsigned), code=2)
    with _ledger(env) as ledger:
        assert ledger.size() == size

    assert "recorded (ledger entry" in run("licence", "submit", str(signed))
    listed = json.loads(run("licence", "list", "--json"))
    assert listed[0]["status"] == "active" and listed[0]["licence_id"] == LICENCE
    assert "1 licence changes of 1 licences verify" in run("licence", "verify")
    assert "verify" in run("licence", "verify", "--regulator-key", public)
    export = env / "export.jsonl"
    run("ledger", "export", "--output", str(export))
    assert "ok: 1 licence changes" in run("licence", "verify", "--export", str(export))
    assert "a key no vault's policy names" in run(
        "licence", "verify", "--export", str(export), "--regulator-key",
        public.replace("vara", "other"), code=1)


def test_the_supervisor_reads_acknowledges_and_attests(env: Path) -> None:
    with _ledger(env) as ledger:
        service = workflow_service(ledger, loader.from_mapping(licensed_document(),
                                                               source="test"), clock=None)
        frozen = service.freeze("national-btc", "sara-supervisor", "a look at the books")[0]
        report = ledger.append(ReconcileReport.KIND, "auditor-general", ReconcileReport(
            report_sha256="cd" * 32, auditor_key="auditor.test+00000000+AAAA",
            signature="AAAA", ledger_tree_size=2, ledger_root_hash="ef" * 32,
            block={"height": 101, "hash": "ab" * 32},
            summary=[{"vault_id": "national-btc", "asset": "BTC", "status": "critical"}],
            findings_by_severity={"critical": 1}).to_payload())
    page = json.loads(run("supervise", "alerts", "--json"))
    assert [a["kind"] for a in page["alerts"]] == ["vault.frozen",
                                                   "reconcile.unauthorised_spend"]
    first = json.loads(run("supervise", "alerts", "--limit", "1", "--json"))
    assert first["cursor"] == frozen.seq and not first["complete"]
    rest = json.loads(run("supervise", "alerts", "--after", str(first["cursor"]), "--json"))
    assert [a["seq"] for a in rest["alerts"]] == [report.seq] and rest["complete"]

    assert "acknowledged by sara-supervisor" in run("supervise", "ack", str(frozen.seq),
                                                    "--by", "sara-supervisor")
    assert "already acknowledged" in run("supervise", "ack", str(frozen.seq), "--by",
                                         "sara-supervisor", code=2)
    assert "is not an alert" in run("supervise", "ack", "0", "--by", "sara-supervisor",
                                    code=2)
    shown = run("supervise", "alerts")
    assert "[acknowledged by sara-supervisor]" in shown

    key = env / "supervisor.json"
    run("supervise", "keygen", "--out", str(key), "--name", "sara")
    assert "entry 0 is a policy.version: only reconciliation reports and published " \
        "statements are attested" in run(
        "supervise", "attest", "0", "--key", str(key), "--by", "sara-supervisor",
        "--statement", "x", code=2)
    assert f"report {report.seq} attested by sara-supervisor" in run(
        "supervise", "attest", str(report.seq), "--key", str(key), "--by", "sara-supervisor",
        "--statement", "re-ran the reconciliation against our own node")
    from reserve.supervision.attest import attestations_of

    with _ledger(env) as ledger:
        found = list(attestations_of(ledger, ledger.entry(report.seq)))
    assert [(a.by, a.verified) for a in found] == [("sara-supervisor", True)]
