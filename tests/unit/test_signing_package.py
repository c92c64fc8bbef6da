"""The custodian's signer checks a release itself, offline, from a signing package.

Each refusal is a package a compromised coordinator could hand a custodian. Most come from
`Forger`, which holds the ledger key and writes whatever entries it likes: the proofs then
verify, and it is the policy evaluation re-run on the device that refuses, with its reason.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from reserve.errors import SignerError, WorkflowError
from reserve.events.custody import PolicyVersion, VaultFrozen
from reserve.events.workflow import ProposalApproved
from reserve.ledger import Ledger
from reserve.policy import loader
from reserve.transfers.package import package_json
from tests.support import signing_package as sp
from tests.support.workflow import COLD, DAY, STRANGER, T0, vote
from wallets.bitcoin.psbt_check import parse_psbt
from wallets.signer.cli import app
from wallets.signer.package import (
    Enrolment,
    check_bitcoin,
    custodian_set,
    verify_signing_package,
)

SMALL = 5_000_000  # 0.05 BTC: tier small, 2 approvals from 2 institutions, no delay
LARGE = 200_000_000  # 2 BTC: tier large, 3 approvals from 3 institutions, 24 h delay
VOTERS = ("central-bank", "vasp-regulator")
runner = CliRunner()


@pytest.fixture()
def ledger() -> Any:
    with sp.open_ledger() as opened:
        yield opened


def refused(package: dict[str, Any], enrolment: Enrolment | None = None) -> str:
    with pytest.raises(SignerError) as caught:
        verified = verify_signing_package(package, enrolment or sp.enrolment(), now=sp.SIGN_AT)
        check_bitcoin(verified, sp.vault())
    return str(caught.value)


def test_an_honest_release_passes_with_its_reasons(ledger: Ledger) -> None:
    digest = sp.released(sp.workflow(ledger), SMALL, COLD, VOTERS)
    package = sp.package(ledger, digest)
    verified = verify_signing_package(json.loads(package_json(package)), sp.enrolment(),
                                      now=sp.SIGN_AT)
    _, summary = check_bitcoin(verified, sp.vault())
    assert [(o.address, o.amount_sats) for o in summary.payments] == [(COLD, SMALL)]
    assert any("tier small" in r for r in verified.reasons)
    assert any("quorum: 2 approvals" in r for r in verified.reasons)
    assert any("allowlisted" in r for r in verified.reasons)
    # The custodian-set enrolment accepts it too.
    members = Enrolment(ledger_key=sp.LEDGER_KEY.verifier, vault=sp.VAULT_ID,
                        custodians=custodian_set(sp.policy()))
    assert verify_signing_package(package, members, now=sp.SIGN_AT).digest == digest


def test_the_builder_refuses_a_proposal_not_released(ledger: Ledger) -> None:
    service = sp.workflow(ledger)
    digest = sp.propose(service, SMALL, COLD)
    with pytest.raises(WorkflowError, match="proposed; a signing package is made once"):
        sp.package(ledger, digest)


def test_hand_written_transfer_of_something_never_proposed(ledger: Ledger) -> None:
    """7 BTC to a non-allowlisted address, under a digest nobody ever proposed."""
    sp.workflow(ledger)
    forger = sp.Forger(ledger)
    ghost = forger.proposal(700_000_000, STRANGER)
    proposal_seq = ledger.size() - 1
    # Without its proposal entry: only the PSBT, as if the coordinator had made it up.
    forger.psbt(ghost)
    seqs = [e.seq for e in ledger.entries() if e.seq != proposal_seq]
    package = sp.assemble(ledger, ghost.digest_hex, seqs, ledger.checkpoint(now=T0))
    assert "never proposed" in refused(package)
    # Its proposal entry present, the rest forged: the policy refuses the destination.
    forger.votes(ghost.digest_hex, [vote(ghost, who) for who in VOTERS])
    forger.release(ghost)
    reason = refused(forger.package(ghost.digest_hex))
    assert f"destination {STRANGER} is not on the allowlist" in reason


def test_wrong_tier(ledger: Ledger) -> None:
    """2 BTC is tier large: two approvals and no delay do not make it releasable."""
    sp.workflow(ledger)
    forger = sp.Forger(ledger)
    proposal = forger.proposal(LARGE, COLD)
    forger.votes(proposal.digest_hex, [vote(proposal, who) for who in VOTERS])
    forger.release(proposal)
    reason = refused(forger.package(proposal.digest_hex))
    assert "not approvable" in reason and "needs 1 more approval" in reason


def test_delay_not_over(ledger: Ledger) -> None:
    sp.workflow(ledger)
    forger = sp.Forger(ledger)
    proposal = forger.proposal(LARGE, COLD)
    forger.votes(proposal.digest_hex,
                 [vote(proposal, who) for who in (*VOTERS, "finance-ministry")])
    forger.release(proposal)
    reason = refused(forger.package(proposal.digest_hex))
    assert "not releasable" in reason and "of time delay left" in reason


def test_non_allowlisted_destination(ledger: Ledger) -> None:
    sp.workflow(ledger)
    forger = sp.Forger(ledger)
    proposal = forger.proposal(SMALL, STRANGER)
    forger.votes(proposal.digest_hex, [vote(proposal, who) for who in VOTERS])
    forger.release(proposal)
    assert f"destination {STRANGER} is not on the allowlist" in \
        refused(forger.package(proposal.digest_hex))


def test_destination_still_cooling_off(ledger: Ledger) -> None:
    service = sp.workflow(ledger)
    added = service.propose_destination(vault=sp.VAULT_ID, proposer="treasury-ops",
                                        asset="BTC", address=STRANGER, label="new", purpose="p",
                                        expires_in_seconds=7 * DAY, now=T0)
    for who in (*VOTERS, "finance-ministry"):
        service.vote(vote(added.proposal, who), now=T0)
    assert service.status(added.digest).state == "applied"
    forger = sp.Forger(ledger)
    proposal = forger.proposal(SMALL, STRANGER)
    forger.votes(proposal.digest_hex, [vote(proposal, who) for who in VOTERS])
    forger.release(proposal)
    reason = refused(forger.package(proposal.digest_hex))
    assert "destination 'new' is cooling off for another 48 h" in reason


def test_frozen_vault(ledger: Ledger) -> None:
    service = sp.workflow(ledger)
    digest = sp.released(service, SMALL, COLD, VOTERS)
    service.freeze(sp.VAULT_ID, "auditor-general", "suspicious activity", now=T0)
    reason = refused(sp.package(ledger, digest))
    assert "frozen since 2026-01-05T09:00:00Z by auditor-general (suspicious activity)" \
        in reason


def test_frozen_before_release(ledger: Ledger) -> None:
    sp.workflow(ledger)
    forger = sp.Forger(ledger)
    proposal = forger.proposal(SMALL, COLD)
    forger.votes(proposal.digest_hex, [vote(proposal, who) for who in VOTERS])
    forger.write(VaultFrozen(vault=sp.VAULT_ID, reason="hold"), "auditor-general")
    forger.release(proposal)
    reason = refused(forger.package(proposal.digest_hex))
    assert "not releasable" in reason and "vault frozen since" in reason


def test_stale_policy_version(ledger: Ledger) -> None:
    """A v2 recorded after the release: the proposal was approved under rules no longer
    in force."""
    service = sp.workflow(ledger)
    digest = sp.released(service, SMALL, COLD, VOTERS)
    document = loader.to_document(sp.policy())
    document["version"] = 2
    document["description"] = "tighter"
    newer = loader.from_mapping(document, source="v2")
    sp.Forger(ledger).write(PolicyVersion(
        vault=sp.VAULT_ID, version=2, policy_sha256=loader.policy_sha256(newer),
        policy=loader.to_document(newer), reason="change", digest="cd" * 32), "workflow")
    reason = refused(sp.package(ledger, digest))
    assert "stale policy version: the proposal was approved under policy v1; v2 is in " \
        "force" in reason
    # And a device enrolled with another policy refuses even an honest package.
    other = Enrolment(ledger_key=sp.LEDGER_KEY.verifier, vault=sp.VAULT_ID,
                      policy_sha256=loader.policy_sha256(newer))
    fresh = sp.open_ledger()
    honest = sp.released(sp.workflow(fresh), SMALL, COLD, VOTERS)
    assert "is not the enrolled policy" in refused(sp.package(fresh, honest), other)
    fresh.close()


def test_approvals_from_one_institution_only() -> None:
    shared = sp.policy(central_bank={"institution": "Ministry of Finance"})
    with sp.open_ledger() as ledger:
        sp.workflow(ledger, shared)
        forger = sp.Forger(ledger)
        proposal = forger.proposal(SMALL, COLD)
        forger.votes(proposal.digest_hex,
                     [vote(proposal, who) for who in ("finance-ministry", "central-bank")])
        forger.release(proposal)
        reason = refused(forger.package(proposal.digest_hex), sp.enrolment(shared))
    assert "needs 1 more approval from a different institution" in reason


def test_replayed_approvals_from_another_proposal(ledger: Ledger) -> None:
    service = sp.workflow(ledger)
    earlier = sp.released(service, SMALL, COLD, VOTERS)
    signatures = [v for v in service.status(earlier).votes]
    forger = sp.Forger(ledger)
    proposal = forger.proposal(SMALL + 1, COLD)
    for old in signatures:  # the old signatures, recorded as votes for the new digest
        forger.write(ProposalApproved(vault=sp.VAULT_ID, digest=proposal.digest_hex,
                                      custodian=old.custodian, decision="approve",
                                      signature=old.signature.hex()), old.custodian)
    forger.release(proposal)
    reason = refused(forger.package(proposal.digest_hex))
    assert "needs 2 more approvals" in reason
    assert "signature by central-bank does not verify with their approval key" in reason


def test_checkpoint_signed_by_another_key(ledger: Ledger) -> None:
    digest = sp.released(sp.workflow(ledger), SMALL, COLD, VOTERS)
    package = sp.package(ledger, digest)
    with Ledger.open("sqlite:///:memory:", signer=sp.OTHER_KEY) as other:
        other_digest = sp.released(sp.workflow(other), SMALL, COLD, VOTERS)
        forged = sp.package(other, other_digest)
    reason = refused({**forged, "digest": digest})
    assert "checkpoint is not signed by the enrolled ledger key" in reason
    # The right note with someone else's signature line fails the same way.
    body = package["checkpoint"].rpartition("\n\n")[0]
    from reserve.ledger.checkpoint import Checkpoint, parse_note

    checkpoint, _ = parse_note(package["checkpoint"])
    resigned = sp.OTHER_KEY.sign(Checkpoint(checkpoint.origin, checkpoint.tree_size,
                                            checkpoint.root_hash))
    assert resigned.startswith(body)
    assert "not signed by the enrolled ledger key" in \
        refused({**package, "checkpoint": resigned})


def test_psbt_with_one_output_changed(ledger: Ledger) -> None:
    service = sp.workflow(ledger)
    digest = sp.released(service, SMALL, COLD, VOTERS)
    package = sp.package(ledger, digest)
    # Edited in the file: the entry no longer hashes to its leaf.
    entry = next(e for e in package["entries"] if '"btc.psbt_created"' in e["body"])
    fields = json.loads(entry["body"])
    psbt = parse_psbt(fields["payload"]["psbt_base64"])
    psbt.outputs[0].value -= 1
    fields["payload"]["psbt_base64"] = base64.b64encode(psbt.serialize()).decode()
    edited = {**package, "entries": [
        {**e, "body": json.dumps(fields)} if e is entry else e for e in package["entries"]]}
    assert "inclusion proof does not verify" in refused(edited)
    # Recorded in the ledger by its key holder: the PSBT no longer pays the proposal.
    proposal = service.status(digest).proposal
    sp.Forger(ledger).psbt(proposal, outputs=[(COLD, SMALL - 1)])
    assert "outputs differ from the approved transfer" in refused(sp.package(ledger, digest))


def test_a_stale_checkpoint_is_refused(ledger: Ledger) -> None:
    digest = sp.released(sp.workflow(ledger), SMALL, COLD, VOTERS)
    package = sp.package(ledger, digest)
    with pytest.raises(SignerError, match="checkpoint is stale"):
        verify_signing_package(package, sp.enrolment(), now=T0 + timedelta(days=2))
    without_head = {**package, "entries": package["entries"][:-1]}
    assert "lacks the checkpoint's newest entry" in refused(without_head)


# -- the command line --------------------------------------------------------------------
ENV = {"RESERVE_SIGNER_PASSPHRASE": "unit-test-passphrase"}
NOW = ["--now", "2026-01-05T10:00:00Z"]


def _files(ledger: Ledger, tmp_path: Path) -> dict[str, Path]:
    digest = sp.released(sp.workflow(ledger), SMALL, COLD, VOTERS)
    paths = {"package": tmp_path / "package.json", "enrolment": tmp_path / "enrolment.json",
             "key": tmp_path / "key.json", "policy": tmp_path / "policy.toml",
             "out": tmp_path / "signed.psbt"}
    paths["package"].write_text(package_json(sp.package(ledger, digest)))
    made = runner.invoke(app, ["enrol", "--ledger-key", sp.LEDGER_KEY.verifier.encode(),
                               "--vault", sp.VAULT_ID, "--policy-sha256",
                               loader.policy_sha256(sp.policy()),
                               "--out", str(paths["enrolment"])])
    assert made.exit_code == 0, made.output
    result = runner.invoke(app, ["keygen", "--name", "finance-ministry", "--institution",
                                 "Ministry of Finance", "--out", str(paths["key"]),
                                 "--test-custodian", "1", "--scrypt-n", "4096"], env=ENV)
    assert result.exit_code == 0, result.output
    return paths


def test_cli_shows_and_signs_a_package(ledger: Ledger, tmp_path: Path) -> None:
    files = _files(ledger, tmp_path)
    shown = runner.invoke(app, ["package", "show", str(files["package"]), "--enrolment",
                                str(files["enrolment"]), "--vault", sp.VAULT_FILE, *NOW])
    assert shown.exit_code == 0, shown.output
    assert f"pays       0.05000000 BTC to {COLD}" in shown.output
    assert "passes because:" in shown.output and "tier small" in shown.output
    signed = runner.invoke(app, ["btc-sign", "--package", str(files["package"]),
                                 "--enrolment", str(files["enrolment"]), "--vault",
                                 sp.VAULT_FILE, "--keystore", str(files["key"]), "--out",
                                 str(files["out"]), "--yes", *NOW], env=ENV)
    assert signed.exit_code == 0, signed.output
    assert "signed 1 input(s) as finance-ministry" in signed.output
    assert len(parse_psbt(files["out"].read_text()).inputs[0].partial_sigs) == 1


def test_cli_refuses_with_the_reason_and_writes_nothing(ledger: Ledger,
                                                        tmp_path: Path) -> None:
    files = _files(ledger, tmp_path)
    stale = ["--now", "2026-01-09T09:00:00Z"]
    result = runner.invoke(app, ["btc-sign", "--package", str(files["package"]),
                                 "--enrolment", str(files["enrolment"]), "--vault",
                                 sp.VAULT_FILE, "--keystore", str(files["key"]), "--out",
                                 str(files["out"]), "--yes", *stale], env=ENV)
    assert result.exit_code == 2 and "checkpoint is stale" in result.output
    assert not files["out"].exists()
    again = runner.invoke(app, ["enrol", "--ledger-key", sp.LEDGER_KEY.verifier.encode(),
                                "--vault", sp.VAULT_ID, "--policy-sha256", "ab" * 32,
                                "--out", str(files["enrolment"])])
    assert again.exit_code == 2 and "not overwriting" in again.output
    old = runner.invoke(app, ["btc-sign", "--psbt", "x", "--transfer", "y"])
    assert old.exit_code == 2 and "No such option" in old.output


# -- EVM: the Safe transaction -----------------------------------------------------------
SAFE = "0x" + "5a" * 20
EVM_DESTINATION = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # allowlisted in reserve-evm


class OfflineSafe:
    """Prepares the Safe transaction for an order as EVMAdapter would, without a node."""

    def __init__(self, to: str | None = None) -> None:
        self.to = to

    def prepare(self, order: Any) -> Any:
        from reserve.transfers.chain import ChainStep
        from wallets.evm import executor
        from wallets.evm.safe_tx import safe_tx_hash
        from wallets.evm.transfer import ApprovedEVMTransfer, to_safe_tx

        transfer = ApprovedEVMTransfer(
            proposal_digest=order.proposal_digest, policy_version=order.policy_version,
            vault_id=order.vault_id, chain_id=31337, safe_address=SAFE, asset="ETH",
            to=self.to or order.outputs[0].destination, amount_wei=order.outputs[0].amount,
            nonce=0)
        tx = to_safe_tx(transfer)
        return ChainStep("evm.safe_tx_created", executor.proposal_payload(
            transfer, tx, safe_tx_hash(31337, SAFE, tx)))


def _evm_package(ledger: Ledger, safe: OfflineSafe) -> tuple[dict[str, Any], Enrolment]:
    from reserve.transfers.service import WorkflowService
    from tests.support.workflow import EVM_POLICY

    policy = loader.load_file(EVM_POLICY)
    service = WorkflowService(ledger, clock=lambda: T0)
    service.register_policy(policy, "lead")
    status = service.propose_transfer(
        vault="reserve-safe", proposer="treasury-ops", asset="ETH",
        outputs=[(EVM_DESTINATION, 10**18)], fee_max=0, purpose="p", expires_in_seconds=DAY)
    for who in VOTERS:
        service.vote(vote(status.proposal, who))
    service.release(status.digest, safe, "treasury-ops")  # type: ignore[arg-type]
    enrolled = Enrolment(ledger_key=sp.LEDGER_KEY.verifier, vault="reserve-safe",
                         policy_sha256=loader.policy_sha256(policy), safe_address=SAFE)
    return sp.package(ledger, status.digest), enrolled


def test_evm_safe_transaction_is_checked_against_the_proposal(ledger: Ledger) -> None:
    from wallets.signer.package import check_evm

    package, enrolled = _evm_package(ledger, OfflineSafe())
    review = check_evm(verify_signing_package(package, enrolled, now=sp.SIGN_AT), enrolled)
    assert review.transfer.to == EVM_DESTINATION and review.transfer.amount_wei == 10**18
    with pytest.raises(SignerError, match="not a PSBT"):
        check_bitcoin(verify_signing_package(package, enrolled, now=sp.SIGN_AT), sp.vault())


def test_evm_safe_transaction_to_another_recipient_is_refused() -> None:
    from wallets.signer.package import check_evm

    with sp.open_ledger() as ledger:
        package, enrolled = _evm_package(ledger, OfflineSafe(to=STRANGER_EVM))
        verified = verify_signing_package(package, enrolled, now=sp.SIGN_AT)
        with pytest.raises(SignerError, match="approved transfer mismatch"):
            check_evm(verified, enrolled)


STRANGER_EVM = "0x" + "bad0" * 10


def test_entries_of_other_vaults_are_proven_context_only(ledger: Ledger) -> None:
    """The checkpoint's newest entry may be another vault's: it is not replayed."""
    from tests.support.workflow import btc_policy

    service = sp.workflow(ledger)
    digest = sp.released(service, SMALL, COLD, VOTERS)
    service.register_policy(btc_policy("another-vault"), "lead", now=T0)
    service.freeze("another-vault", "auditor-general", "drill", now=T0)
    package = sp.package(ledger, digest)
    assert '"vault.frozen"' in package["entries"][-1]["body"]
    assert verify_signing_package(package, sp.enrolment(), now=sp.SIGN_AT).digest == digest
    custodians = json.loads(json.dumps(Enrolment(
        ledger_key=sp.LEDGER_KEY.verifier, vault=sp.VAULT_ID,
        custodians=custodian_set(sp.policy())).to_json()))
    custodians["custodians"].reverse()  # any order in the file
    assert verify_signing_package(package, Enrolment.from_json(custodians),
                                  now=sp.SIGN_AT).digest == digest


def test_a_release_dated_into_the_future_is_refused(ledger: Ledger) -> None:
    """Dating the release a day ahead to skip the 24 h delay: the newest entry would then
    be in the device's future, or the times would go backwards."""
    sp.workflow(ledger)
    forger = sp.Forger(ledger)
    proposal = forger.proposal(LARGE, COLD)
    forger.votes(proposal.digest_hex,
                 [vote(proposal, who) for who in (*VOTERS, "finance-ministry")])
    later = T0 + timedelta(days=1, minutes=1)
    forger.release(proposal, at=later)
    assert "in this device's future" in refused(forger.package(proposal.digest_hex, at=later))
    forger.write(VaultFrozen(vault="elsewhere", reason="x"), "auditor-general", at=T0)
    assert "the ledger's times go backwards" in refused(forger.package(proposal.digest_hex))


def test_malformed_packages_and_enrolments_are_refused(ledger: Ledger, tmp_path: Path) -> None:
    digest = sp.released(sp.workflow(ledger), SMALL, COLD, VOTERS)
    package = sp.package(ledger, digest)
    assert "not a signing package" in refused({**package, "format": "something/1"})
    assert "malformed package entry" in refused(
        {**package, "entries": [{"seq": 0}, *package["entries"][1:]]})
    shuffled = {**package, "entries": list(reversed(package["entries"]))}
    assert "not in increasing order of seq" in refused(shuffled)
    for document, reason in (({"format": "x"}, "not an enrolment"),
                             ({"format": "reserve-signer-enrolment/1", "vault": "v",
                               "ledger_key": "nonsense", "policy_sha256": "ab" * 32},
                              "malformed enrolment"),
                             ({"format": "reserve-signer-enrolment/1", "vault": "v",
                               "ledger_key": sp.LEDGER_KEY.verifier.encode()},
                              "exactly one")):
        with pytest.raises(SignerError, match=reason):
            Enrolment.from_json(document)
    # The custodian-set enrolment, made by the CLI from a policy file: national-btc's
    # custodians are the test vault's.
    enrolment = tmp_path / "custodians.json"
    made = runner.invoke(app, ["enrol", "--ledger-key", sp.LEDGER_KEY.verifier.encode(),
                               "--vault", sp.VAULT_ID, "--custodians-of",
                               "config/policies/national-btc.toml", "--out", str(enrolment)])
    assert made.exit_code == 0, made.output
    assert "custodian set of 5" in made.output
    enrolled = Enrolment.from_json(json.loads(enrolment.read_text()))
    assert verify_signing_package(package, enrolled, now=sp.SIGN_AT).digest == digest


def test_without_a_key_the_builder_reuses_a_covering_checkpoint() -> None:
    from tests.support.workflow import btc_policy

    with sp.open_ledger() as ledger:
        service = sp.workflow(ledger)
        digest = sp.released(service, SMALL, COLD, VOTERS)
        ledger.checkpoint(now=T0)
        ledger.signer = None
        package = sp.package(ledger, digest)
        assert verify_signing_package(package, sp.enrolment(), now=sp.SIGN_AT).digest == digest
        # The ledger moves on; the old checkpoint still covers the release.
        service.register_policy(btc_policy("another-vault"), "lead", now=T0)
        assert sp.package(ledger, digest)["checkpoint"] == package["checkpoint"]
    with sp.open_ledger() as ledger:
        digest = sp.released(sp.workflow(ledger), SMALL, COLD, VOTERS)
        ledger.signer = None
        with pytest.raises(WorkflowError, match="no stored checkpoint covers"):
            sp.package(ledger, digest)
    # The interim format (an order and a PSBT, no proofs) is refused with a reason.
    assert "carries no checkpoint" in refused({"format": "reserve-signing-package/1",
                                               "digest": digest, "order": {}})


def test_the_indexed_selection_is_the_scanned_one(ledger: Ledger) -> None:
    """The builder selects through the kind and digest indexes; a scan of every entry
    (what a ledger without read models gets) must choose exactly the same entries."""
    from reserve.transfers.package import select_entries
    from reserve.transfers.projection import Projection
    from reserve.transfers.readmodel import StoredProjection
    from tests.support.workflow import btc_policy

    service = sp.workflow(ledger)
    earlier = sp.released(service, SMALL, COLD, VOTERS)
    service.register_policy(btc_policy("another-vault"), "lead", now=T0)
    service.freeze("another-vault", "auditor-general", "drill", now=T0)
    later = sp.released(service, SMALL + 1, COLD, VOTERS, at=T0 + timedelta(hours=1))
    stored, scanned = StoredProjection(ledger), Projection()
    scanned.catch_up(ledger)
    for digest in (earlier, later):
        chosen = select_entries(ledger, stored, stored.status(digest))
        assert chosen == select_entries(ledger, scanned, scanned.status(digest))
        assert {ledger.entry(seq).kind for seq in chosen} >= {
            "policy.version", "proposal.created", "proposal.approved", "btc.psbt_created"}
    assert set(select_entries(ledger, stored, stored.status(earlier))) < \
        set(select_entries(ledger, stored, stored.status(later)))  # in its velocity window
