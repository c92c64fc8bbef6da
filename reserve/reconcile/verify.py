"""The independent verifier: re-derive a signed report from a ledger export and the chain.

Trust nothing in the report but its claims: the signature must be an auditor's and cover
the report as it is; the ledger export must verify on its own (reserve.ledger.verify); the
report's checkpoint must be one of the ledger's signed checkpoints; the report must be
checked into the ledger; its pinned block must be on the node's best chain at its height.
Then each vault's summary and findings are computed again from the exported entries inside
the checkpoint and from the chain at the pinned block (coins rebuilt by undoing newer
blocks) and must match. Mempool presence is the one fact a later reader cannot see again,
so "in the mempool" and "missing" compare as one kind: "not confirmed at the pinned block".

EVM vaults (the report's `evm` section) are re-derived the same way: the pinned number and
hash must be on the EVM node's best chain, the Safe's balances are read again AT that
number (historical state: anvil, or an archive node) with the events up to it, the pure
core (`evm_compute`) runs on the exported entries, and summary and findings must match. If
the ledger records the report's hash as anchored in a ReserveRegistry, the anchor is
checked too (`verify_report_anchor`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from web3 import Web3

from reserve.errors import CheckpointError, ReconcileError, ReportRejected
from reserve.events.records import ReconcileReport
from reserve.ledger.checkpoint import VerifierKey, verify_note
from reserve.ledger.entry import decode_body
from reserve.ledger.verify import read_export, verify_stream
from reserve.reconcile import evm as reconcile_evm
from reserve.reconcile.bitcoin import chain_view, check_pinned_block, coins_at, vault_addresses
from reserve.reconcile.compute import LEGACY_KINDS, UNAUTHORISED, ledger_view, reconcile
from reserve.reconcile.releases import releases_of
from reserve.reconcile.report import ENTRY_KIND, BlockPin, check_signature, coins_digest
from wallets.bitcoin.rpc import BitcoinRPC

NOT_CONFIRMED = {"transfer_unconfirmed": "transfer_not_confirmed",
                 "transfer_missing": "transfer_not_confirmed"}


@dataclass(frozen=True)
class Verdict:
    report_sha256: str
    entry_seq: int
    vaults: tuple[str, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)


def _finding_key(finding: dict[str, Any]) -> tuple[Any, ...]:
    kind = LEGACY_KINDS.get(finding["kind"], finding["kind"])
    kind = NOT_CONFIRMED.get(kind, kind)
    severity = None if kind == "transfer_not_confirmed" else finding["severity"]
    return (kind, severity, finding["vault_id"], finding["asset"], finding["txid"],
            finding["amount_sats"], finding["difference_sats"], tuple(finding["outpoints"]),
            tuple(finding["ledger_seqs"]))


def _ledger(export: Path, ledger_key: VerifierKey | None, body: dict[str, Any]
            ) -> tuple[list[tuple[int, bytes, bytes]], VerifierKey, list[str]]:
    header, rows, notes, claims = read_export(export)
    key = ledger_key or (VerifierKey.parse(header["verifier_key"])
                         if header.get("verifier_key") else None)
    if key is None:
        raise ReportRejected("ledger_export", "no ledger verifier key: pass one")
    checked = verify_stream(rows, notes, key, claims=claims)
    if not checked.ok:
        raise ReportRejected("ledger_export", f"the ledger export does not verify: "
                                              f"{checked.findings[0]}")
    notes_out = [] if ledger_key else ["ledger key taken from the export itself"]
    pin = body["ledger"]
    try:
        checkpoint = verify_note(pin["note"], key)
    except CheckpointError as error:
        raise ReportRejected("checkpoint_unknown", f"the report's checkpoint is not signed "
                                                   f"by the ledger's key: {error}") from None
    known = set()
    for note in notes:
        try:
            known.add(verify_note(note, key))
        except CheckpointError:
            continue
    if checkpoint not in known or (checkpoint.tree_size, checkpoint.root_hash.hex()) != (
            pin["tree_size"], pin["root_hash"]):
        raise ReportRejected("checkpoint_unknown", f"the report was computed against a "
                                                   f"checkpoint (size {pin['tree_size']}, root "
                                                   f"{pin['root_hash']}) that is not in the "
                                                   "ledger")
    return rows, key, notes_out


def _checked_in(rows: Iterable[tuple[int, bytes, bytes]], digest: str) -> int:
    for seq, body, entry_hash in rows:
        entry = decode_body(body, entry_hash)
        if entry.kind == ENTRY_KIND and ReconcileReport.of(entry).report_sha256 == digest:
            return seq
    raise ReportRejected("not_checked_in", f"report {digest} is not checked into the ledger")


def _compare(vault_id: str, claimed: dict[str, Any], derived: dict[str, Any],
             claimed_findings: list[dict[str, Any]], derived_findings: list[dict[str, Any]]
             ) -> None:
    if claimed != derived:
        raise ReportRejected("mismatch", f"vault {vault_id}: the report's summary {claimed} "
                                         f"differs from the re-derived {derived}")
    mine = sorted(map(_finding_key, claimed_findings), key=repr)
    again = sorted(map(_finding_key, derived_findings), key=repr)
    if mine != again:
        extra = [f for f in mine if f not in again][:3]
        lost = [f for f in again if f not in mine][:3]
        raise ReportRejected("mismatch", f"vault {vault_id}: findings differ; only in the "
                                         f"report: {extra}; only re-derived: {lost}")


def _bitcoin(body: dict[str, Any], node: BitcoinRPC | None, entries: list[Any]) -> None:
    """Re-derive every Bitcoin vault (none in an EVM-only report) and compare."""
    if not body["vaults"]:
        if not body["summary"] and not body["findings"] and "evm" in body:
            return
        raise ReportRejected("mismatch", "the report has Bitcoin rows but no Bitcoin vaults")
    if node is None:
        raise ReconcileError("this report has Bitcoin vaults: give a Bitcoin node")
    block = BlockPin(**body["block"])
    released = releases_of(entries)
    summaries = {(s["vault_id"], s["asset"]): s for s in body["summary"]}
    for scope in body["vaults"]:
        coins = coins_at(node, scope["descriptors"], int(scope["range_end"]), block)
        if coins_digest(coins) != scope["coins_sha256"]:
            raise ReportRejected("mismatch", f"vault {scope['vault_id']}: the chain's coins at "
                                             "the pinned block differ from the report's")
        view = ledger_view(entries, scope["vault_id"], scope["asset"], released)
        addresses = partial(vault_addresses, node, scope["descriptors"],
                            int(scope["range_end"]))
        result = reconcile(view, chain_view(node, view, coins, block, addresses))
        claimed = summaries.get((scope["vault_id"], scope["asset"]), {})
        _compare(scope["vault_id"], claimed, result.summary.to_json(),
                 [f for f in body["findings"] if f["vault_id"] == scope["vault_id"]],
                 [f.to_json() for f in result.findings])
    if len(summaries) != len(body["vaults"]):
        raise ReportRejected("mismatch", "the summary names vaults the report did not scan")


def _check_pins(body: dict[str, Any], node: BitcoinRPC | None, w3: Web3 | None) -> None:
    """Each pinned block on its chain; an EVM-only report's `block` must be the EVM pin."""
    section = body.get("evm")
    if section is not None:
        if w3 is None:
            raise ReconcileError("this report has an EVM section: give an EVM node "
                                 "(--evm-rpc-url or RESERVE_EVM_RPC_URL)")
        reconcile_evm.check_pinned_block(w3, section["block"])
    if body["vaults"]:
        if node is None:
            raise ReconcileError("this report has Bitcoin vaults: give a Bitcoin node")
        check_pinned_block(node, BlockPin(**body["block"]))
    elif section is not None:
        pin = section["block"]
        if body["block"] != {"network": f"evm:{pin['chain_id']}", "height": pin["number"],
                             "blockhash": pin["hash"]}:
            raise ReportRejected("mismatch", f"the report's block {body['block']} is not its "
                                             f"EVM pin {pin}")
    else:
        raise ReportRejected("malformed", "the report scanned no vaults")


def _evm_finding_key(finding: dict[str, Any]) -> dict[str, Any]:
    """An EVM finding as compared: whole, except that a report signed before the rename
    said `unexpected_spend` (in other words) for what is now `unauthorised_spend`, so those
    compare by their facts and not their text."""
    kind = LEGACY_KINDS.get(finding["kind"], finding["kind"])
    if kind != UNAUTHORISED:
        return finding
    return {**finding, "kind": kind, "detail": None}


def _evm(section: dict[str, Any], w3: Web3, entries: list[Any]) -> None:
    """Re-derive the EVM section at its pinned block from the ledger's entries; compare."""
    derived = reconcile_evm.section_at(w3, section["block"], reconcile_evm.targets_of(section),
                                       entries)
    if derived["vaults"] != section["vaults"]:
        raise ReportRejected("mismatch", f"EVM vaults {section['vaults']} are not as scanned "
                                         f"again: {derived['vaults']}")
    for scope in section["vaults"]:
        vault_id = scope["vault_id"]
        claimed = sorted((r for r in section["summary"] if r["vault_id"] == vault_id), key=repr)
        again = sorted((r for r in derived["summary"] if r["vault_id"] == vault_id), key=repr)
        if claimed != again:
            raise ReportRejected("mismatch", f"EVM vault {vault_id}: the report's summary "
                                             f"{claimed} differs from the re-derived {again}")
        mine = sorted((_evm_finding_key(f) for f in section["findings"]
                       if f["vault_id"] == vault_id), key=repr)
        found = sorted((_evm_finding_key(f) for f in derived["findings"]
                        if f["vault_id"] == vault_id), key=repr)
        if mine != found:
            extra = [f for f in mine if f not in found][:3]
            lost = [f for f in found if f not in mine][:3]
            raise ReportRejected("mismatch", f"EVM vault {vault_id}: findings differ; only in "
                                             f"the report: {extra}; only re-derived: {lost}")
    if len(section["summary"]) != len(derived["summary"]) or \
            len(section["findings"]) != len(derived["findings"]):
        raise ReportRejected("mismatch", "the EVM section names vaults it did not scan")


def _anchors(entries: list[Any], w3: Web3 | None, digest: str) -> list[str]:
    """Check every recorded anchor of the report (ReportRejected `anchor` if one fails);
    notes for the anchors that could not be checked here."""
    notes: list[str] = []
    recorded = [anchor for _entry, anchor in reconcile_evm.report_anchors(entries, digest)]
    chain_id = int(w3.eth.chain_id) if w3 is not None and recorded else None
    for registry in sorted({anchor.registry for anchor in recorded}):
        chains = {anchor.chain_id for anchor in recorded if anchor.registry == registry}
        if w3 is None or chains != {chain_id}:
            notes.append(f"anchor in registry {registry} (chain {sorted(map(str, chains))}) "
                         "not checked: no EVM node of that chain given")
            continue
        failed = reconcile_evm.verify_report_anchor(entries, w3, registry, digest)
        if failed:
            raise ReportRejected("anchor", f"the report's anchor does not hold: {failed[0]}")
        notes.append(f"anchor in registry {registry} holds")
    return notes


def verify_report(document: Any, export: Path, node: BitcoinRPC | None,
                  auditors: Iterable[VerifierKey], *,
                  ledger_key: VerifierKey | None = None, evm: Web3 | None = None) -> Verdict:
    """A Verdict if the report holds; ReportRejected with a reason code if it does not.

    `node` is needed for Bitcoin vaults, `evm` (web3, serving historical state) for a report
    with an `evm` section; the other may be None.
    """
    body = check_signature(document, auditors)
    digest = document["signature"]["report_sha256"]
    rows, _key, notes = _ledger(export, ledger_key, body)
    _check_pins(body, node, evm)
    seq = _checked_in(rows, digest)
    size = int(body["ledger"]["tree_size"])
    entries = [decode_body(b, h) for _s, b, h in rows[:size]]
    _bitcoin(body, node, entries)
    section = body.get("evm")
    if section is not None and evm is not None:
        _evm(section, evm, entries)
    notes += _anchors([decode_body(b, h) for _s, b, h in rows], evm, digest)
    vaults = [s["vault_id"] for s in body["vaults"]]
    vaults += [v["vault_id"] for v in section["vaults"]] if section else []
    return Verdict(digest, seq, tuple(vaults), tuple(notes))
