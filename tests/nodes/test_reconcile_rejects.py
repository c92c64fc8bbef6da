"""The verifier is attacked, not trusted: each bad report is rejected with a clear reason
(and verifying writes nothing to the ledger)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from reserve.errors import ReportRejected
from reserve.ledger import Checkpoint, CheckpointSigner
from reserve.reconcile.report import AuditorSigner
from reserve.reconcile.run import run_report
from reserve.reconcile.verify import verify_report
from tests.support.bitcoin_fixtures import VaultKit
from tests.support.reconcile_fixtures import auditor, export, resign, signed_ledger


@pytest.fixture()
def signed(bitcoind, miner, make_vault, tmp_path):  # type: ignore[no-untyped-def]
    kit: VaultKit = make_vault(2, 3, ledger=signed_ledger(tmp_path, "rejects"))
    kit.deposit(bitcoind, miner, [20_000_000])
    kit.watcher.sync()
    signer = auditor(tmp_path)
    document, _entry = run_report(kit.ledger, bitcoind.rpc(), [(kit.vault, 20)], signer)
    return kit, signer, document, export(kit.ledger, tmp_path / "ledger.jsonl")


def _rejected(kit: VaultKit, node: Any, document: Any, path: Path, auditors: list[Any],
              reason: str, match: str) -> None:
    size = kit.ledger.size()
    with pytest.raises(ReportRejected, match=match) as caught:
        verify_report(document, path, node, auditors)
    assert caught.value.reason == reason
    assert kit.ledger.size() == size


def _edit_summary(body: dict[str, Any]) -> None:
    body["summary"][0]["chain"] += 1


def test_the_untouched_report_holds(signed, bitcoind) -> None:  # type: ignore[no-untyped-def]
    _kit, signer, document, path = signed
    verify_report(document, path, bitcoind.rpc(), [signer.verifier])


def test_report_edited_after_signing(signed, bitcoind) -> None:  # type: ignore[no-untyped-def]
    kit, signer, document, path = signed
    document["report"]["summary"][0]["chain"] += 1
    _rejected(kit, bitcoind.rpc(), document, path, [signer.verifier], "tampered",
              "edited after signing")
    document["report"]["summary"][0]["chain"] -= 1
    raw = bytearray(base64.b64decode(document["signature"]["value"]))
    raw[7] ^= 1
    document["signature"]["value"] = base64.b64encode(bytes(raw)).decode()
    _rejected(kit, bitcoind.rpc(), document, path, [signer.verifier], "tampered",
              "edited after signing")


def test_signed_by_a_key_that_is_not_an_auditor(signed, bitcoind) -> None:  # type: ignore[no-untyped-def]
    kit, signer, document, path = signed
    impostor = AuditorSigner("auditor-general", Ed25519PrivateKey.generate())
    forged = resign(document, impostor, lambda body: None)
    _rejected(kit, bitcoind.rpc(), forged, path, [signer.verifier], "not_auditor",
              "not an auditor key")


def test_checkpoint_not_in_the_ledger(signed, bitcoind) -> None:  # type: ignore[no-untyped-def]
    kit, signer, document, path = signed
    ledger_key = CheckpointSigner("test.reserve.example/reconcile", Ed25519PrivateKey.generate())
    fake_root = bytes(32)

    def other_checkpoint(body: dict[str, Any]) -> None:
        size = body["ledger"]["tree_size"]
        body["ledger"] = {"tree_size": size, "root_hash": fake_root.hex(),
                          "note": ledger_key.sign(Checkpoint(ledger_key.name, size, fake_root))}

    forged = resign(document, signer, other_checkpoint)
    _rejected(kit, bitcoind.rpc(), forged, path, [signer.verifier], "checkpoint_unknown",
              "not signed by the ledger's key|not in the ledger")


def test_block_hash_not_on_the_chain(signed, bitcoind) -> None:  # type: ignore[no-untyped-def]
    kit, signer, document, path = signed
    edit: Callable[[dict[str, Any]], None] = lambda body: body["block"].update(  # noqa: E731
        blockhash="00" * 32)
    _rejected(kit, bitcoind.rpc(), resign(document, signer, edit), path, [signer.verifier],
              "block_not_on_chain", "unknown to the node")


def test_report_not_checked_into_the_ledger(signed, bitcoind) -> None:  # type: ignore[no-untyped-def]
    kit, signer, document, path = signed
    again = resign(document, signer, lambda body: body.update(created="2030-01-01T00:00:00Z"))
    _rejected(kit, bitcoind.rpc(), again, path, [signer.verifier], "not_checked_in",
              "not checked into the ledger")


def test_pinned_block_reorganised_away(signed, bitcoind) -> None:  # type: ignore[no-untyped-def]
    kit, signer, document, path = signed
    node = bitcoind.rpc()
    pinned = document["report"]["block"]["blockhash"]
    assert node.getbestblockhash() == pinned
    node.invalidateblock(pinned)
    try:
        _rejected(kit, node, document, path, [signer.verifier], "block_not_on_chain",
                  "not on the best chain")
    finally:
        node.reconsiderblock(pinned)
    verify_report(document, path, node, [signer.verifier])
