"""A custodian acts from the dashboard in a real browser; their keys never reach the server.

On the proposal page a custodian of the vault downloads the proposal document, signs it
offline (here: with their TEST approval key, as `reserve-sign approval sign` would) and
uploads the vote with their own API token typed into the form; a vote signed by someone
else is refused with the reason and nothing is recorded. On a transfer being signed they
download the signing package and upload their share. The session cookie is never sent
with the uploads. Driven by tests/e2e/custodian.mjs; screenshots in
test-artifacts/dashboard-custodian/.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.api_server import running_server
from tests.support.api_workflow import CUSTODIAN, OPERATOR, propose, register, vote_document
from tests.support.workflow import FakeChain

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "dashboard-custodian"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() or shutil.which("node") is None
    or not (ROOT / "node_modules" / "playwright-core").exists(),
    reason="needs /usr/bin/chromium (scripts/install-chromium.sh), node and playwright-core")


class FakeChains:
    """Chain connections on a FakeChain (the share's chain check is the adapter's job)."""

    def adapter(self, vault: str, chain: str) -> FakeChain:
        return FakeChain(threshold=2)

    def share(self, vault: str, chain: str, custodian: str, data: bytes) -> tuple[str, str]:
        return custodian, data.decode()


def test_a_custodian_uploads_an_approval_and_a_share_from_the_dashboard(tmp_path: Path
                                                                        ) -> None:
    with running_server(f"sqlite:///{tmp_path}/ledger.sqlite",
                        chains=lambda _ledger: FakeChains()) as server:
        register(server, "vault-a")
        pending = propose(server, purpose="pending").digest
        signing = propose(server, purpose="being signed", amount=4_000_000)
        from tests.support.api_workflow import workflow

        service = workflow(server)
        for who in (CUSTODIAN, "central-bank"):
            from reserve.proposals import approval

            service.vote(approval.from_document(vote_document(signing.digest, who)))
        service.release(signing.digest, FakeChain(threshold=2), OPERATOR)
        vote = tmp_path / "vote.json"
        vote.write_text(json.dumps(vote_document(pending, CUSTODIAN)))
        forged = tmp_path / "forged.json"  # central-bank's vote, uploaded by cora
        forged.write_text(json.dumps(vote_document(pending, "central-bank")))
        share = tmp_path / "share.psbt"
        share.write_text("cHNidP8BAAoCAAAAAAAAAAAAAA==\n")
        before = server.ledger.size()
        result = subprocess.run(
            ["node", str(ROOT / "tests" / "e2e" / "custodian.mjs"), "--base", server.base_url,
             "--token", server.tokens["custodian"], "--out", str(ARTIFACTS),
             "--proposal", pending, "--signing", signing.digest, "--vote", str(vote),
             "--forged", str(forged), "--share", str(share)],
            capture_output=True, text=True, timeout=180, cwd=ROOT)
        assert result.returncode == 0, result.stderr[-3000:]
        seen = json.loads(result.stdout.strip().splitlines()[-1])
        votes = [v.custodian for v in service.status(pending).votes]
        shares = [s.payload["custodian"] for s in service.status(signing.digest).chain_steps
                  if s.kind == "btc.share_received"]
        written = list(server.ledger.entries(before))
    assert seen["downloaded_digest"] == pending
    assert seen["forged"].startswith("Refused (403): you may upload only your own vote")
    assert seen["vote"].startswith("Recorded. Next: custodians vote")
    assert seen["forged_token_cleared"] and seen["vote_token_cleared"]
    assert seen["package_format"] == "reserve-signing-package/1"
    assert seen["share"].startswith("Recorded. Next: custodians sign")
    assert votes == [CUSTODIAN] and shares == [CUSTODIAN]
    assert seen["requests_with_cookie"] == [False, False, False]
    assert seen["console_errors"] == [] or all("403" in e for e in seen["console_errors"])
    assert {e.kind for e in written} >= {"proposal.approved", "btc.share_received"}
