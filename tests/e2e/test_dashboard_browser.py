"""A stakeholder opens the dashboard in a real browser and checks the ledger themselves.

The story: the reserve's service runs on a fresh ledger where an admin has set up users
and a few events have happened (a vault registered, a checkpoint signed and anchored,
more events after it). A viewer logs in with the token they were issued, sees the
overview with the latest checkpoint (its Ed25519 signature checked by the browser), opens
the ledger explorer and clicks "Verify this entry" on an entry under the signed
checkpoint and on one newer than it: the browser recomputes the leaf hash and walks the
RFC 9162 audit path with WebCrypto. Finally, a server that lies about one bit of a proof
is caught. The viewer also sees the reserve's holdings (a recorded deposit, as an exact
decimal with its history chart) and opens a pending proposal from its panel to read the
policy's decision. Screenshots are saved in test-artifacts/dashboard/.

Driven by tests/e2e/dashboard.mjs (playwright-core from node_modules, Debian's chromium).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from reserve.events.chain_evm import EvmDeposit
from reserve.events.custody import BitcoinVaultRegistered, EvmVaultRegistered
from reserve.events.records import CheckpointAnchored, ReconcileReport
from reserve.ledger import CheckpointSigner, Ledger
from reserve.ledger.checkpoint import parse_note
from tests.support.api_server import ORIGIN, running_server
from tests.support.workflow import COLD, SETTLEMENT, FakeChain, vote, workflow_service
from wallets.bitcoin.vault import load_vault

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() or shutil.which("node") is None
    or not (ROOT / "node_modules" / "playwright-core").exists(),
    reason="needs /usr/bin/chromium (scripts/install-chromium.sh), node and playwright-core")


def awkward_signer() -> CheckpointSigner:
    """A fixed key whose base64 form holds a '+', the verifier key's field separator:
    the browser's parser once split on it and failed for about one key in three."""
    for seed in range(256):  # bounded; the first few seeds already qualify
        signer = CheckpointSigner(ORIGIN, Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32))
        if "+" in signer.verifier.encode().split("+", 2)[2]:
            return signer
    raise AssertionError("no seed gives a key with '+' in its base64 form")


def _slug(key: str) -> str:
    """'390 /dashboard/vaults/x' -> 'layout-390-dashboard-vaults-x' (the screenshot's name);
    dashboard.mjs names its screenshots the same way."""
    width, path = key.split(" ", 1)
    return f"layout-{width}-" + ("-".join(part[:24] for part in path.strip("/").split("/"))
                                 or "root")


def _evm_vault(ledger: Ledger, now: datetime) -> None:
    """An EVM Safe vault as the registry would record it, with an ether deposit."""
    safe = "0x" + "5a" * 20
    ledger.append("vault.registered", "root-admin", EvmVaultRegistered(
        chain="evm", vault="reserve-evm", chain_id=31337, safe=safe, guard="0x" + "6b" * 20,
        registry="0x" + "12" * 20, token="0x" + "7c" * 20,
        owners=["0x" + f"{n}d" * 20 for n in range(1, 4)], threshold=2,
        safe_singleton="0x" + "01" * 20, safe_proxy_factory="0x" + "02" * 20,
        safe_fallback_handler="0x" + "03" * 20, block_number=3, token_symbol="tRGT",
        token_decimals=18).to_payload(), now=now)
    ledger.append("evm.deposit", "evm-watcher", EvmDeposit(
        key=f"31337:0x{'ed' * 32}:1", chain_id=31337, vault="reserve-evm", safe=safe,
        asset="0x" + "7c" * 20, sender="0x" + "99" * 20, amount_wei=1_500 * 10**18,
        tx_hash="0x" + "ed" * 32, log_index=1, block_number=9,
        block_hash="0x" + "fe" * 32).to_payload(), now=now)
    ledger.append("evm.deposit", "evm-watcher", EvmDeposit(
        key=f"31337:0x{'ee' * 32}:0", chain_id=31337, vault="reserve-evm", safe=safe,
        asset="ETH", sender="0x" + "99" * 20, amount_wei=50 * 10**18,
        tx_hash="0x" + "ee" * 32, log_index=0, block_number=10,
        block_hash="0x" + "ff" * 32).to_payload(), now=now)


def _report(ledger: Ledger, now: datetime) -> None:
    """A reconciliation report as `reserve reconcile run` checks it in: one discrepancy."""
    ledger.append("reconcile.report", "aldo-auditor", ReconcileReport(
        report_sha256="ef" * 32, auditor_key="ed25519:test", signature="00" * 64,
        ledger_tree_size=ledger.size(), ledger_root_hash="00" * 32,
        block={"network": "regtest", "height": 102, "hash": "44" * 32},
        summary=[{"vault_id": "national-btc", "asset": "BTC", "ledger": 995_000_000,
                  "chain": 995_000_000, "difference": 0, "status": "ok", "coins": 2,
                  "unit": "sats"},
                 {"vault_id": "national-btc-2of3", "asset": "BTC", "ledger": 250_000_000,
                  "chain": 240_000_000, "difference": -10_000_000, "status": "discrepancy",
                  "coins": 1, "unit": "sats"}],
        findings_by_severity={"warning": 1}).to_payload(), now=now)


def test_a_viewer_verifies_ledger_entries_in_the_browser(tmp_path: Path) -> None:
    with running_server(f"sqlite:///{tmp_path}/ledger.sqlite", checkpoint_every=1000,
                        signer=awkward_signer()) as server:
        now = server.clock.wall()
        ledger = server.ledger
        # Events of the reserve so far (the seed wrote users and tokens already).
        btc_vault = load_vault(ROOT / "config" / "vaults" / "national-btc-2of3.toml")
        ledger.append("vault.registered", "root-admin", BitcoinVaultRegistered(
            chain="bitcoin", vault=btc_vault.vault_id, network=btc_vault.network,
            threshold=btc_vault.threshold, descriptor=btc_vault.descriptor(),
            custodians=[{"name": c.name, "institution": c.institution}
                        for c in btc_vault.custodians]).to_payload(), now=now)
        workflow = workflow_service(ledger, clock=server.clock.wall, actor="root-admin")
        note = ledger.checkpoint(now=now)
        signed_size = int(note.split("\n")[1])
        ledger.append("ledger.anchor", "aldo-auditor", CheckpointAnchored(
            subject="checkpoint", chain_id=31337, registry="0x" + "12" * 20, index=0,
            anchorer="0x" + "34" * 20, tx_hash="0x" + "ab" * 32, block_number=7,
            block_hash="0x" + "cd" * 32, tree_size=signed_size,
            root_hash=parse_note(note)[0].root_hash.hex()).to_payload(), now=now)
        # Holdings and a pending proposal for the panels (the watcher and an operator
        # would have written these).
        ledger.append("btc.deposit", "btc-watcher", {
            "vault_id": btc_vault.vault_id, "txid": "11" * 32, "blockhash": "22" * 32,
            "height": 101, "confirmations": 1, "delta_sats": 250_000_000,
            "amount_sats": 250_000_000, "outputs": [{"vout": 0, "amount_sats": 250_000_000,
                                                     "address": btc_vault.address(0, 0)}]},
            now=now)
        ledger.append("btc.deposit", "btc-watcher", {
            "vault_id": "national-btc", "txid": "33" * 32, "blockhash": "44" * 32,
            "height": 102, "confirmations": 1, "delta_sats": 1_000_000_000,
            "amount_sats": 1_000_000_000, "outputs": []}, now=now)
        _evm_vault(ledger, now)
        # A small transfer that went all the way: released, signed, broadcast, confirmed.
        done = workflow.propose_transfer(
            vault="national-btc", proposer="treasury-ops", asset="BTC",
            outputs=[(SETTLEMENT, 5_000_000)], fee_max=20_000, purpose="mining settlement",
            reference="T-0")
        for custodian in ("central-bank", "vasp-regulator"):
            workflow.vote(vote(done.proposal, custodian))
        chain = FakeChain()
        workflow.release(done.digest, chain, "treasury-ops")
        for signer in ("finance-ministry", "central-bank", "crypto-council"):
            workflow.add_signature_share(done.digest, chain, signer, "share")
        workflow.broadcast(done.digest, chain, "treasury-ops")
        chain.depth = 2
        workflow.check_confirmation(done.digest, chain)
        _report(ledger, now)
        latest_size = int(ledger.checkpoint(now=now).split("\n")[1])
        proposal = workflow.propose_transfer(
            vault="national-btc", proposer="treasury-ops", asset="BTC",
            outputs=[(COLD, 150_000_000)], fee_max=20_000, purpose="cold storage top-up",
            reference="T-1", expires_in_seconds=7 * 86400)
        workflow.vote(vote(proposal.proposal, "central-bank"))
        head = ledger.append("ledger.note", "olga-operator",
                             {"text": "after the checkpoint"}, now=now)
        pages = ["/dashboard", "/dashboard/vaults", "/dashboard/vaults/national-btc",
                 f"/dashboard/vaults/{btc_vault.vault_id}", "/dashboard/vaults/reserve-evm",
                 "/dashboard/transfers", "/dashboard/checkpoints",
                 "/dashboard/reconciliation", "/dashboard/ledger",
                 f"/dashboard/ledger/{signed_size - 2}",
                 f"/dashboard/proposals/{proposal.digest}"]
        if ARTIFACTS.exists():
            shutil.rmtree(ARTIFACTS)
        result = subprocess.run(
            ["node", str(ROOT / "tests" / "e2e" / "dashboard.mjs"), "--base", server.base_url,
             "--token", server.tokens["viewer"], "--out", str(ARTIFACTS),
             "--signed-seq", str(signed_size - 2), "--head-seq", str(head.seq),
             "--proposal", proposal.digest, "--pages", ",".join(pages)],
            capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])

    assert seen["redirected_to_login"]
    assert seen["who"] == "Vic"
    assert seen["checkpoint_signature"].startswith("\u2713 valid")
    assert seen["ledger_size"] == head.seq + 1
    assert dict(seen["panels"]) == {"holdings": "ok", "policies": "ok", "proposals": "ok",
                                    "transfers": "ok", "reconciliation": "ok"}
    # Sees holdings: the deposit as an exact decimal, with its history chart.
    assert ["national-btc-2of3", "2.50000000 BTC"] in [row[:2] for row in seen["holdings"]]
    assert ["national-btc", "9.95000000 BTC"] in [row[:2] for row in seen["holdings"]]
    # The test token reads in its own symbol and decimals, never as raw base units.
    assert ["reserve-evm", "1500.000000000000000000 tRGT"] in \
        [row[:2] for row in seen["holdings"]]
    assert seen["holdings_charts"] == 4
    # ... and the table fits its third of the page, no column cut off.
    assert seen["holdings_clipped"] <= 0, seen["holdings_clipped"]
    # Opens a proposal from the pending list and reads the policy's decision.
    assert seen["proposal_url"].endswith(f"/dashboard/proposals/{proposal.digest}")
    assert seen["proposal_state"] == "proposed"
    assert seen["proposal_amount"].startswith("1.50000000 BTC")
    assert seen["decision"] == ("needs 2 more approvals from different institutions; "
                                "then 24 h of time delay")
    assert "central-bank" not in seen["still_to_act"]
    assert seen["next_step"].startswith("custodians vote (needs 2 more approvals")
    assert "central-bank" not in seen["next_who"] and "vasp-regulator" in seen["next_who"]
    assert seen["rows"] == head.seq + 1

    signed = seen["verdicts"][str(signed_size - 2)]
    assert signed["verified"] == "true", signed
    assert f"signed checkpoint of {latest_size} entries" in signed["text"]
    at_head = seen["verdicts"][str(head.seq)]
    assert at_head["verified"] == "true", at_head
    assert "current tree head" in at_head["text"]

    assert any(step.startswith("checkpoint signature valid") for step in seen["steps"])
    assert seen["tampered"].startswith("\u2717 Not verified")
    assert seen["console_errors"] == []
    # The reserve pages: one row per transfer, signed checkpoints checked and consistent,
    # the ledger in sentences.
    assert sorted(seen["transfers"]) == sorted([[done.digest[:12], "confirmed"],
                                                [proposal.digest[:12], "proposed"]])
    assert seen["checkpoints"] and all(c[0].startswith("\u2713") for c in seen["checkpoints"])
    assert [c[1] for c in seen["checkpoints"]][-1] == "the first checkpoint"
    assert all(c[1].startswith("consistent") for c in seen["checkpoints"][:-1])
    assert f"central-bank approved proposal {proposal.digest[:6]}…: 1.50000000 BTC to " \
           "Central bank cold storage (TEST)" in seen["sentences"]
    # Every page at a desk and a phone width: no horizontal page overflow, every table
    # inside its panel (or scrolling inside it), every panel inside the page.
    assert sorted(seen["layout"]) == sorted(f"{width} {path}" for path in [*pages, "/login"]
                                            for width in (1400, 390))
    broken = {key: found for key, found in seen["layout"].items()
              if found["page_overflow"] > 0 or found["outside"]}
    assert broken == {}, broken
    for key in seen["layout"]:
        assert (ARTIFACTS / f"{_slug(key)}.png").stat().st_size > 5000, key
    for name in ("01-login", "02-overview", "03-explorer-verified", "04-entry-steps",
                 "05-tampered-proof-rejected", "06-holdings", "07-proposal"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 5000
