"""`reserve propose|approve|freeze|unfreeze|proposal|policy|destination` end to end on SQLite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from reserve.cli import main
from reserve.cli.workflow import register
from reserve.config import DEMO_PASSPHRASE
from reserve.ledger.keys import create_signer_file
from reserve.proposals import proposal as proposal_module
from tests.support.workflow import BTC_POLICY, COLD, STRANGER, vote

runner = CliRunner()
# Only the workflow commands: building every group of `reserve` costs 0.2 s per invocation.
app = typer.Typer()
register(app)


def test_registered_in_the_reserve_command() -> None:
    result = runner.invoke(main.app, ["--help"])
    for command in ("propose", "approve", "freeze", "unfreeze", "proposal", "policy",
                    "destination"):
        assert command in result.output


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "config" / "reserve.toml"
    config.parent.mkdir()
    config.write_text('network = "regtest"\n[ledger]\ndatabase_url = "sqlite:///var/l.sqlite"\n'
                      'origin = "test/ledger"\nkey_path = "var/key.json"\n')
    # A cheap KDF for the ledger's checkpoint key: every write command unseals it.
    create_signer_file(tmp_path / "var" / "key.json", "test/ledger", DEMO_PASSPHRASE,
                       scrypt_n=2**12)
    monkeypatch.setenv("RESERVE_CONFIG", str(config))
    monkeypatch.delenv("RESERVE_LEDGER_PASSPHRASE", raising=False)
    monkeypatch.setenv("RESERVE_NOW", "2026-01-05T09:00:00Z")
    monkeypatch.delenv("RESERVE_DATABASE_URL", raising=False)
    return tmp_path


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def _approve(tmp: Path, shown: dict[str, object], custodian: str, code: int = 0) -> str:
    proposal = proposal_module.from_document(shown["proposal"])
    path = tmp / f"{custodian}.json"
    path.write_text(json.dumps(vote(proposal, custodian).document()))
    return run("approve", str(path), code=code)


def test_transfer_flow_from_the_command_line(env: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    assert "recorded" in run("policy", "load", str(BTC_POLICY), "--by", "lead")
    assert "already recorded" in run("policy", "load", str(BTC_POLICY), "--by", "lead")
    out = run("propose", "--vault", "national-btc", "--by", "treasury-ops", "--asset", "BTC",
              "--to", f"{COLD}=150000000", "--fee-max", "20000", "--purpose", "top-up",
              "--reference", "T-1", "--expires-in", "604800", "--json")
    shown = json.loads(out)
    assert shown["state"] == "proposed"
    assert shown["proposal"]["outputs"][0]["amount"] == "150000000"
    assert shown["decision"]["explanation"] == ("needs 3 more approvals from different "
                                                "institutions; then 24 h of time delay")
    digest = shown["digest"]
    assert "needs 2 more approvals" in _approve(env, shown, "central-bank")
    error = _approve(env, shown, "central-bank", code=2)
    assert error.count("\n") == 1 and error.startswith("error: central-bank already voted")
    _approve(env, shown, "vasp-regulator")
    assert "24 h of time delay left" in _approve(env, shown, "crypto-council")
    monkeypatch.setenv("RESERVE_NOW", "2026-01-06T09:00:00Z")
    assert "approved -> releasable" in run("proposal", "refresh")
    listed = json.loads(run("proposal", "list", "--state", "releasable", "--json"))
    assert [p["digest"] for p in listed] == [digest]
    human = run("proposal", "show", digest[:12])
    assert "vote      crypto-council: approve" in human and "policy    releasable" in human
    assert "frozen by external-auditor" in run("freeze", "national-btc", "--by",
                                               "external-auditor", "--reason", "drill")
    policy = json.loads(run("policy", "show", "national-btc", "--json"))
    assert policy["frozen"] and policy["versions"][0]["version"] == 1
    assert "unfreeze proposed" in run("unfreeze", "national-btc", "--by", "central-bank",
                                      "--purpose", "drill over")
    assert "cancelled" in run("proposal", "cancel", digest, "--by", "treasury-ops",
                              "--reason", "no longer needed")


def test_errors_are_one_line_and_nothing_is_written(env: Path) -> None:
    run("policy", "load", str(BTC_POLICY), "--by", "lead")
    out = run("propose", "--vault", "national-btc", "--by", "treasury-ops", "--asset", "BTC",
              "--to", f"{STRANGER}=5", "--fee-max", "1", "--purpose", "x", code=2)
    assert out == f"error: proposal refused: destination {STRANGER} is not on the allowlist\n"
    assert run("proposal", "list") == "no proposals\n"
    assert run("freeze", "national-btc", "--by", "nobody", code=2).startswith(
        "error: nobody may not freeze")
    assert "expects ADDRESS=AMOUNT" in run("propose", "--vault", "national-btc", "--by",
                                           "treasury-ops", "--asset", "BTC", "--to", "oops",
                                           "--fee-max", "1", "--purpose", "x", code=2)
    bad = env / "bad.toml"
    bad.write_text(BTC_POLICY.read_text().replace("approvals_min = 4", "approvals_min = 6"))
    assert "threshold 6 is larger than the custodian set" in run("policy", "check", str(bad),
                                                                 code=2)
    assert "unknown proposal" in run("proposal", "show", "deadbeefdeadbeef", code=2)


def test_destination_proposal_from_the_command_line(env: Path) -> None:
    run("policy", "load", str(BTC_POLICY), "--by", "lead")
    shown = json.loads(run("destination", "propose", "--vault", "national-btc", "--by",
                           "treasury-ops", "--asset", "BTC", "--address", STRANGER,
                           "--label", "New bank", "--purpose", "diversify", "--json"))
    for custodian in ("central-bank", "vasp-regulator", "auditor-general"):
        _approve(env, shown, custodian)
    policy = json.loads(run("policy", "show", "national-btc", "--json"))
    assert policy["added_destinations"] == [{"asset": "BTC", "address": STRANGER,
                                             "label": "New bank",
                                             "usable_from": "2026-01-07T09:00:00Z"}]


def test_clock_override_only_on_regtest(env: Path) -> None:
    config = env / "config" / "reserve.toml"
    config.write_text(config.read_text().replace('"regtest"', '"signet"'))
    out = run("proposal", "list", code=2)
    assert "RESERVE_NOW is only honoured on regtest" in out


def test_the_proposal_list_is_a_page_with_a_cursor(env: Path) -> None:
    run("policy", "load", str(BTC_POLICY), "--by", "lead")
    digests = [json.loads(run("propose", "--vault", "national-btc", "--by", "treasury-ops",
                              "--asset", "BTC", "--to", f"{COLD}={n}00000", "--fee-max",
                              "20000", "--purpose", "top-up", "--reference", f"T-{n}",
                              "--json"))["digest"] for n in (1, 2, 3)]
    first = run("proposal", "list", "--limit", "2")
    assert first.count("\n") == 3 and "more: --after " in first
    after = first.rsplit("more: --after ", 1)[1].strip()
    rest = json.loads(run("proposal", "list", "--after", after, "--json"))
    assert [p["digest"] for p in rest] == digests[2:]
    newest = json.loads(run("proposal", "list", "--newest", "--limit", "1", "--json"))
    assert [p["digest"] for p in newest] == digests[-1:]
    assert "unknown state nope" in run("proposal", "list", "--state", "nope", code=2)
    assert "--after pages oldest first" in run("proposal", "list", "--newest", "--after",
                                                after, code=2)
    assert "Invalid value" in run("proposal", "list", "--limit", "0", code=2)


def test_a_transfer_declares_its_flow_class(env: Path) -> None:
    """`--flow-class` is signed with the proposal (docs/transparency.md); a wrong one is
    refused and nothing is written."""
    run("policy", "load", str(BTC_POLICY), "--by", "lead")
    common = ("propose", "--vault", "national-btc", "--by", "treasury-ops", "--asset", "BTC",
              "--to", f"{COLD}=5000000", "--fee-max", "20000", "--purpose", "auction")
    assert "cannot be declared" in run(*common, "--flow-class", "mining", code=2)
    assert run("proposal", "list") == "no proposals\n"
    shown = json.loads(run(*common, "--flow-class", "sale", "--json"))
    assert shown["proposal"]["flow_class"] == "sale"
    again = proposal_module.from_document(shown["proposal"])
    assert again.digest_hex == shown["digest"] and again.body.flow_class == "sale"  # type: ignore[union-attr]
    plain = json.loads(run(*common, "--json"))
    assert "flow_class" not in plain["proposal"]
