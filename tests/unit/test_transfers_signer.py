"""The custodian's offline approval signer: keys in the keystore, signing what was shown."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reserve import keystore
from reserve.errors import ApprovalError, KeystoreError
from reserve.policy.testkeys import public_key_of
from reserve.proposals import approval as approval_module
from reserve.proposals.proposal import Output, Proposal, TransferBody
from tests.support.workflow import COLD, T0
from wallets.signer import approval
from wallets.signer.approval_cli import approval_app

PASSPHRASE = "correct horse battery"
FAST = 2**12


def _proposal() -> Proposal:
    return Proposal(vault="national-btc", network="regtest",
                    chain="bip122:0f9188f13cb7b2c71f2a335e3a4fc328", policy_version=1,
                    proposer="treasury-ops", purpose="cold storage", reference="R-1",
                    created_at=T0, expires_at=T0 + timedelta(days=7),
                    body=TransferBody("BTC", (Output(COLD, 150_000_000),), 20_000))


def test_create_load_and_sign(tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    public = approval.create_key(path, custodian="central-bank", passphrase=PASSPHRASE,
                                 scrypt_n=FAST)
    assert json.loads(path.read_text())["kind"] == "ed25519"
    assert PASSPHRASE not in path.read_text()
    key, custodian = approval.load_key(path, PASSPHRASE)
    assert custodian == "central-bank"
    proposal = _proposal()
    signed = approval.sign_proposal(proposal, key, custodian,
                                    expected_digest=proposal.digest_hex)
    assert signed.verifies(bytes.fromhex(public))
    with pytest.raises(KeystoreError, match="wrong passphrase"):
        approval.load_key(path, "not the passphrase")
    with pytest.raises(KeystoreError, match="refusing to overwrite"):
        approval.create_key(path, custodian="x", passphrase=PASSPHRASE, scrypt_n=FAST)


def test_refuses_digest_mismatch_and_self_approval(tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    approval.create_key(path, custodian="treasury-ops", passphrase=PASSPHRASE, scrypt_n=FAST)
    key, custodian = approval.load_key(path, PASSPHRASE)
    with pytest.raises(ApprovalError, match="digest mismatch"):
        approval.sign_proposal(_proposal(), key, "central-bank", expected_digest="00" * 32)
    with pytest.raises(ApprovalError, match="may not vote"):
        approval.sign_proposal(_proposal(), key, custodian)


def test_refuses_other_key_kinds(tmp_path: Path) -> None:
    path = tmp_path / "xprv.json"
    keystore.write(path, keystore.seal(b"x" * 32, kind="bip32-xprv", label="funds",
                                       public="", passphrase=PASSPHRASE, scrypt_n=FAST))
    with pytest.raises(KeystoreError, match="not an approval key"):
        approval.load_key(path, PASSPHRASE)


def test_cli_signs_offline_from_a_proposal_file(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(approval.PASSPHRASE_ENV, PASSPHRASE)
    runner = CliRunner()
    key = tmp_path / "cb.json"
    result = runner.invoke(approval_app, ["test-key", "--custodian", "central-bank", "--out",
                                          str(key), "--scrypt-n", str(FAST)])
    assert result.exit_code == 0, result.output
    assert "TEST-ONLY" in result.output
    proposal = _proposal()
    shown = tmp_path / "proposal.json"
    shown.write_text(json.dumps({"digest": proposal.digest_hex,
                                 "proposal": proposal.document()}))
    result = runner.invoke(approval_app, ["show", str(shown)])
    assert proposal.digest_hex in result.output and COLD in result.output
    out = tmp_path / "vote.json"
    result = runner.invoke(approval_app, ["sign", str(shown), "--key", str(key), "--out",
                                          str(out), "--digest", proposal.digest_hex])
    assert result.exit_code == 0, result.output
    signed = approval_module.from_document(json.loads(out.read_text()))
    assert signed.custodian == "central-bank" and signed.proposal_digest == proposal.digest
    assert signed.verifies(public_key_of("central-bank"))
    result = runner.invoke(approval_app, ["sign", str(shown), "--key", str(key),
                                          "--digest", "ff" * 32])
    assert result.exit_code == 2 and "digest mismatch" in result.output
    keygen = runner.invoke(approval_app, ["keygen", "--custodian", "central-bank", "--out",
                                          str(tmp_path / "new.json"), "--scrypt-n", str(FAST),
                                          "--json"])
    assert keygen.exit_code == 0 and len(json.loads(keygen.output)["approval_public_key"]) == 64


def test_sign_digest_for_automation() -> None:
    from reserve.policy.testkeys import private_key_of

    proposal = _proposal()
    signed = approval.sign_digest(private_key_of("crypto-council"), "crypto-council",
                                  proposal.digest_hex, decision="reject")
    assert signed.decision == "reject" and signed.verifies(public_key_of("crypto-council"))
    with pytest.raises(ApprovalError, match="not a hex digest"):
        approval.sign_digest(private_key_of("crypto-council"), "crypto-council", "xyz")
