"""Register wallets, build, sign, publish and verify statements (the shell tying the parts).

Build order, as for reconciliation reports: the ledger is checkpointed first and only the
entries inside that checkpoint are read (registry, declared classes, attributions), so the
statement names the ledger state it used; then the node is walked over pinned blocks; the
pure core classifies and adds up; the auditor signs; the hash goes into the ledger.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from reserve.errors import StatementError, StatementRejected
from reserve.events.transparency import WalletRegistered
from reserve.ledger.checkpoint import VerifierKey, parse_note
from reserve.ledger.entry import Entry, format_time
from reserve.ledger.store import Ledger
from reserve.reconcile.report import AuditorSigner, check_signature
from reserve.statement import chain, records
from reserve.statement.commitments import Commitment, parse
from reserve.statement.statement import (
    FORMAT,
    build_body,
    check_in,
    compare,
    decisions_of,
    figures,
    mining_wallets,
    published,
)
from reserve.statement.wallets import PublicWallet, check_new, registered
from wallets.bitcoin.rpc import BitcoinRPC


def register_wallet(ledger: Ledger, node: BitcoinRPC, wallet: PublicWallet, *,
                    actor: str) -> Entry:
    """Check the wallet (descriptors by the node), import it watch-only if it is only
    watched, and append `wallet.registered`. Nothing is written on refusal."""
    chain.check_network(node, wallet.network)
    normalized = tuple(chain.normalize_descriptor(node, d) for d in wallet.descriptors)
    wallet = replace(wallet, descriptors=normalized)
    existing = registered(ledger.entries(kinds=(WalletRegistered.KIND,)))
    check_new(wallet, existing)
    chain.owners(node, [*existing, wallet])  # no address may belong to two wallets
    if wallet.custody == "watched":
        chain.import_watch_only(node, wallet)
    event = wallet.event()
    return ledger.append(event.KIND, actor, event.to_payload())


def build(ledger: Ledger, node: BitcoinRPC, *, start_height: int, end_height: int,
          period: tuple[datetime | None, datetime | None] = (None, None),
          now: datetime | None = None,
          commitments: Sequence[Commitment] = ()) -> dict[str, Any]:
    """The unsigned statement body over blocks start_height..end_height."""
    note = ledger.checkpoint(now=now)
    checkpoint, _signatures = parse_note(note)
    entries = list(ledger.entries(0, checkpoint.tree_size))
    wallets = registered(entries)
    if not wallets:
        raise StatementError("no wallet is registered: `reserve wallet register` first")
    networks = {w.network for w in wallets}
    if len(networks) != 1:
        raise StatementError(f"the registered wallets are on several networks: {networks}")
    scan_from = min(w.birth_height for w in wallets)
    pin = chain.pin(node, networks.pop(), scan_from, start_height, end_height)
    walk = chain.walk(node, pin, chain.owners(node, wallets), [w.name for w in wallets])
    start, end = period
    return build_body(
        created=format_time(now or ledger.now()),
        period={"start": start.isoformat() if start else None,
                "end": end.isoformat() if end else None},
        pin=pin, ledger={"tree_size": checkpoint.tree_size,
                         "root_hash": checkpoint.root_hash.hex(), "note": note},
        wallets=wallets, walk=walk, declared=records.declared_classes(entries),
        attributed=records.attributions(entries), commitments=commitments,
        mining_sites=records.mining_sites(entries))


def publish(ledger: Ledger, node: BitcoinRPC, signer: AuditorSigner, *, start_height: int,
            end_height: int, period: tuple[datetime | None, datetime | None] = (None, None),
            now: datetime | None = None,
            commitments: Sequence[Commitment] = ()) -> tuple[dict[str, Any], Entry]:
    """Build, sign and check in a statement; the signed document and its entry."""
    document = signer.sign(build(ledger, node, start_height=start_height,
                                 end_height=end_height, period=period, now=now,
                                 commitments=commitments))
    return document, check_in(ledger, document, f"auditor:{signer.verifier.name}")


def verify(document: Any, auditors: Iterable[VerifierKey], node: BitcoinRPC,
           ledger_entries: Sequence[Entry] | None = None) -> dict[str, Any]:
    """The statement's body if it holds: signed by one of `auditors`, its pinned blocks on
    the node's chain, and its figures what the node's blocks, its registered descriptors and
    its recorded decisions give again. With `ledger_entries`, also: its hash is published
    there, and its registry and decisions are the ledger's at its checkpoint.
    StatementRejected (reason code, message naming both values) otherwise."""
    body = check_signature(document, auditors, format_name=FORMAT)
    try:
        wallets = [PublicWallet(**w) for w in body["registry"]]
        pin = chain.Pin.from_json(body["blocks"])
        declared, attributed = decisions_of(body)
        commitments = parse(body.get("commitments"))
        sites = body.get("mining_sites", [])
        mining_wallets(sites)  # the shape is checked before the node is asked
    except (KeyError, TypeError, ValueError, StatementError) as error:
        raise StatementRejected("malformed", f"the statement is malformed: {error}") from None
    chain.check_pin(node, pin)
    walk = chain.walk(node, pin, chain.owners(node, wallets), [w.name for w in wallets])
    compare(body, figures(wallets, walk, declared, attributed, commitments, sites))
    if ledger_entries is not None:
        _check_ledger(body, document["signature"]["report_sha256"], ledger_entries, walk)
    return body


def _check_ledger(body: dict[str, Any], sha256: str, entries: Sequence[Entry],
                  walk: chain.Walk) -> None:
    from reserve.statement.statement import decisions_used

    if not any(event.statement_sha256 == sha256 for _e, event in published(entries)):
        raise StatementRejected("not_published", f"statement {sha256} is not published in "
                                                 "the ledger")
    size = int(body["ledger"]["tree_size"])
    read = list(entries[:size])
    registry = [w.to_json() for w in registered(read)]
    if registry != body["registry"]:
        raise StatementRejected("registry", "the statement's wallets are not the ledger's "
                                            f"registry at entry {size}")
    if records.mining_sites(read) != body.get("mining_sites", []):
        raise StatementRejected("mining_sites", "the statement's mining sites are not the "
                                                f"ledger's at entry {size}")
    again = decisions_used(walk, records.declared_classes(read), records.attributions(read))
    if again != body["decisions"]:
        raise StatementRejected("decisions", f"the statement's decisions {body['decisions']} "
                                             f"are not the ledger's {again}")
