# ruff: noqa: F811  (pytest fixtures imported from tests/support are parameters here)
"""A Bitcoin payment from proposal to confirmation, driven only through the HTTP API.

A real uvicorn server, a real regtest node: the operator proposes, two custodians upload
their offline-signed approvals, the operator releases, each custodian fetches the signing
package, signs offline and uploads their own share, the operator broadcasts and confirms.
Every answer names the next step and who must act. Steps by the wrong role, a share
uploaded under someone else's name, a broadcast with too few shares and steps out of turn
are refused with a reason and change nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from reserve.api import accounts
from reserve.ledger import Ledger
from reserve.policy import loader
from reserve.proposals.proposal import from_document as proposal_from_document
from reserve.transfers.service import WorkflowService
from tests.support.api_server import running_server
from tests.support.bitcoin_fixtures import VaultKit, bitcoind, make_vault, miner  # noqa: F401
from tests.support.workflow import SETTLEMENT, btc_policy, vote
from wallets.bitcoin.adapter import BitcoinAdapter, approved_transfer
from wallets.bitcoin.regtest import RegtestNode
from wallets.bitcoin.rpc import BitcoinRPC
from wallets.chains import share_from_file
from wallets.signer.bitcoin import sign_psbt
from wallets.signer.package import Enrolment, check_bitcoin, verify_signing_package

OPERATOR = "treasury-ops"
APPROVERS = ("central-bank", "crypto-council")
SIGNERS = (0, 2, 4)  # the vault's TEST custodians who sign the PSBT (3 of 5)


@dataclass
class KitChains:
    """The service's chain connections for one test vault (its adapter on the shared node)."""

    adapter: Callable[[str, str], BitcoinAdapter]

    def share(self, vault_id: str, chain: str, custodian: str, data: bytes
              ) -> tuple[str, str]:
        return share_from_file(None, vault_id, chain, custodian, data)  # type: ignore[arg-type]


def _ok(response: httpx.Response, code: int = 200) -> dict[str, Any]:
    assert response.status_code == code, response.text
    body: dict[str, Any] = response.json()
    return body


def test_payment_through_the_http_api(bitcoind: RegtestNode, miner: BitcoinRPC,
                                      make_vault: Callable[..., VaultKit],
                                      tmp_path: Path) -> None:
    holder: dict[str, BitcoinAdapter] = {}
    url = f"sqlite:///{tmp_path}/api.sqlite"
    with running_server(url, chains=lambda _ledger: KitChains(
            lambda _vault, _chain: holder["adapter"])) as server:
        server.clock.now = datetime.now(UTC).replace(microsecond=0)
        kit = make_vault(threshold=3, count=5, ledger=server.ledger)
        vault_id = kit.vault.vault_id
        holder["adapter"] = BitcoinAdapter.connect(kit.vault, server.ledger, bitcoind.rpc(),
                                                   clock=server.clock.wall)
        WorkflowService(server.ledger, clock=server.clock.wall).register_policy(
            btc_policy(vault=vault_id), "lead")
        kit.deposit(bitcoind, miner, [30_000_000])
        assert len(kit.watcher.sync().deposits) == 1

        tokens = {}
        people = [(OPERATOR, "operator", [])] + [
            (c.name, "custodian", [vault_id]) for c in kit.vault.custodians]
        for person, role, vaults in people:
            accounts.create_user(server.store, server.record, person=person, name=person,
                                 institution="test", roles=[role], vaults=vaults,
                                 now=server.clock.wall())
            issued, _ = accounts.issue_token(
                server.store, server.record, person=person, role=role,
                expires_in_seconds=86400, label="api transfer test", issued_by="test",
                now=server.clock.wall())
            tokens[person] = issued.token

        def client(person: str) -> httpx.Client:
            return httpx.Client(base_url=server.base_url, timeout=30,
                                headers={"Authorization": f"Bearer {tokens[person]}"})

        operator = client(OPERATOR)
        custodians = {c.name: client(c.name) for c in kit.vault.custodians}

        # 1. The operator proposes 0.05 BTC; two custodians approve (signed offline).
        created = _ok(operator.post("/api/proposals", json={
            "vault": vault_id, "asset": "BTC", "fee_max": "20000", "purpose": "settlement",
            "outputs": [{"destination": SETTLEMENT, "amount": "5000000"}]}), 201)
        digest = created["digest"]
        proposal = proposal_from_document(created["document"])
        assert _ok(operator.get(f"/api/transfers/{digest}"))["next"]["step"] == "vote"
        for custodian in APPROVERS:
            _ok(custodians[custodian].post(f"/api/proposals/{digest}/approvals",
                                           json=vote(proposal, custodian).document()), 201)
        shown = _ok(operator.get(f"/api/transfers/{digest}"))
        assert shown["state"] == "releasable"
        assert shown["next"]["step"] == "release" and shown["next"]["who"] == ["<operator>"]

        # 2. A custodian may not release; the operator does, and the PSBT is built.
        size = server.ledger.size()
        assert custodians["central-bank"].post(
            f"/api/transfers/{digest}/release").status_code == 403
        assert server.ledger.size() == size
        assert operator.get(f"/api/transfers/{digest}/signing-package").status_code == 409
        released = _ok(operator.post(f"/api/transfers/{digest}/release"))
        assert released["state"] == "signing" and released["next"]["step"] == "sign"
        again = operator.post(f"/api/transfers/{digest}/release")
        assert again.status_code == 409 and "is signing" in again.json()["detail"]

        # 3. Each custodian fetches the package, signs offline and uploads their own share.
        package = _ok(custodians["finance-ministry"].get(
            f"/api/transfers/{digest}/signing-package"))
        # Each custodian's device checks the package against its own enrolment (the
        # ledger's published key, the policy it reviewed) before it signs anything.
        enrolment = Enrolment(ledger_key=server.ledger.signer.verifier, vault=vault_id,
                              policy_sha256=loader.policy_sha256(btc_policy(vault=vault_id)))
        verified = verify_signing_package(package, enrolment, now=server.clock.wall())
        psbt, summary = check_bitcoin(verified, kit.vault)
        assert [(o.address, o.amount_sats) for o in summary.outputs if o.change_index is None] == \
            [(SETTLEMENT, 5_000_000)]

        def share(number: int) -> str:
            signed = sign_psbt(psbt.serialize(), kit.vault, approved_transfer(verified.order),
                               kit.roots[number])
            text: str = signed.psbt.to_base64()
            return text

        first = kit.vault.custodians[SIGNERS[0]].name
        size = server.ledger.size()
        wrong = custodians["central-bank"].post(f"/api/transfers/{digest}/shares",
                                                json={"share": share(SIGNERS[0])})
        assert wrong.status_code == 400 and "not by 'central-bank'" in wrong.json()["detail"]
        assert operator.post(f"/api/transfers/{digest}/shares",
                             json={"share": share(0)}).status_code == 403
        bad = custodians[first].post(f"/api/transfers/{digest}/shares", json={"share": "zz"})
        assert bad.status_code == 400 and "malformed PSBT" in bad.json()["detail"]
        assert server.ledger.size() == size
        for number in SIGNERS[:2]:
            name = kit.vault.custodians[number].name
            _ok(custodians[name].post(f"/api/transfers/{digest}/shares",
                                      json={"share": share(number)}), 201)
        size = server.ledger.size()
        short = operator.post(f"/api/transfers/{digest}/broadcast")
        assert short.status_code == 400 and "2 of 3" in short.json()["detail"]
        assert server.ledger.size() == size
        last = kit.vault.custodians[SIGNERS[2]].name
        signed = _ok(custodians[last].post(f"/api/transfers/{digest}/shares",
                                           json={"share": share(SIGNERS[2])}), 201)
        assert signed["next"]["step"] == "broadcast"

        # 4. The operator broadcasts; a block confirms it; nothing more to do.
        sent = _ok(operator.post(f"/api/transfers/{digest}/broadcast"))
        assert sent["state"] == "broadcast" and sent["txid"] in bitcoind.rpc().getrawmempool()
        early = _ok(operator.post(f"/api/transfers/{digest}/confirm"))
        assert early["state"] == "broadcast" and early["next"]["step"] == "confirm"
        bitcoind.mine(1)
        done = _ok(operator.post(f"/api/transfers/{digest}/confirm"))
        assert done["state"] == "confirmed" and done["next"]["step"] == "none"

    with Ledger.open(url) as ledger:
        steps = [e.kind for e in ledger.entries() if e.payload.get("vault_id") == vault_id
                 and e.kind.startswith("btc.") and e.kind != "btc.deposit"]
        assert steps == ["btc.psbt_created", *["btc.share_received"] * 3, "btc.finalized",
                         "btc.broadcast", "btc.confirmed"]


def test_transfer_steps_without_chain_connections_answer_503(tmp_path: Path) -> None:
    with running_server(f"sqlite:///{tmp_path}/api.sqlite") as server:
        from tests.support.api_workflow import seed_matrix

        digest = seed_matrix(server)["approved"]  # releasable: two approvals, no delay
        with server.client("operator") as operator:
            size = server.ledger.size()
            answer = operator.post(f"/api/transfers/{digest}/release")
            assert answer.status_code == 503
            assert "without chain connections" in answer.json()["detail"]
            assert server.ledger.size() == size


@dataclass
class RecordingMirror:
    """A FreezeMirror that records what it was asked to carry to the chain."""

    calls: list[tuple[str, str]]
    fail: bool = False

    def covers(self, vault: str) -> bool:
        return True

    def freeze(self, vault: str) -> str | None:
        if self.fail:
            from reserve.errors import NodeUnavailable

            raise NodeUnavailable("anvil is down")
        self.calls.append(("freeze", vault))
        return "0x" + "ab" * 32

    def unfreeze(self, vault: str) -> str | None:
        self.calls.append(("unfreeze", vault))
        return "0x" + "cd" * 32


@dataclass
class MirroringChains:
    mirror: RecordingMirror

    def freeze_mirror(self) -> RecordingMirror:
        return self.mirror


def test_a_freeze_over_the_api_reaches_the_chain_mirror(tmp_path: Path) -> None:
    from tests.support.api_workflow import register

    calls: list[tuple[str, str]] = []
    mirror = RecordingMirror(calls)
    with running_server(f"sqlite:///{tmp_path}/api.sqlite",
                        chains=lambda _ledger: MirroringChains(mirror)) as server:
        register(server, "vault-a")
        with server.client("auditor") as auditor:
            _ok(auditor.post("/api/vaults/vault-a/freeze", json={"reason": "drill"}))
            assert calls == [("freeze", "vault-a")]
            # The node is down: the ledger's freeze stands, and the answer says so (502).
            register(server, "vault-b")
            mirror.fail = True
            size = server.ledger.size()
            failed = auditor.post("/api/vaults/vault-b/freeze", json={"reason": "drill"})
            assert failed.status_code == 502, failed.text
            assert "frozen in the ledger" in failed.json()["detail"]
            assert server.ledger.size() > size
            assert auditor.get("/api/vaults/vault-b").json()["frozen"]["by"] == "aldo-auditor"
