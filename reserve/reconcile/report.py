"""The reconciliation report: canonical JSON, signed by an auditor, checked into the ledger.

A report body is RFC 8785 canonical JSON (reserve.ledger.canonical) holding what it was
computed against (the ledger checkpoint: tree size, root and signed note; the pinned block:
network, height and hash; each vault's chain scope: descriptors, derivation range and a
digest of its coins), the summary per vault and asset, and the itemised findings. Its
SHA-256 identifies it. The auditor signs the canonical bytes with Ed25519 (key kept in the
encrypted keystore, kind "ed25519"); the auditor's public key is written in the C2SP
signed-note verifier-key format the ledger already uses, so one parser serves both. The
report's hash, signature and summary are appended to the ledger as a `reconcile.report`
entry.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from reserve import keystore
from reserve.errors import CheckpointError, KeystoreError, ReportRejected
from reserve.events import ABSENT
from reserve.events.records import ReconcileReport
from reserve.ledger.canonical import canonical_bytes
from reserve.ledger.checkpoint import VerifierKey
from reserve.ledger.entry import Entry
from reserve.ledger.store import Ledger
from reserve.reconcile.compute import Coin, VaultResult

FORMAT = "reserve-reconcile-report/1"
ENTRY_KIND = ReconcileReport.KIND


@dataclass(frozen=True)
class LedgerPin:
    tree_size: int
    root_hash: str  # hex
    note: str  # the signed checkpoint note (C2SP)

    def to_json(self) -> dict[str, Any]:
        return {"tree_size": self.tree_size, "root_hash": self.root_hash, "note": self.note}


@dataclass(frozen=True)
class BlockPin:
    network: str
    height: int
    blockhash: str

    def to_json(self) -> dict[str, Any]:
        return {"network": self.network, "height": self.height, "blockhash": self.blockhash}


@dataclass(frozen=True)
class VaultScope:
    """What was scanned on chain for one vault: enough for anyone to scan it again."""

    vault_id: str
    asset: str
    descriptors: tuple[str, ...]
    range_end: int  # derivation indices 0..range_end inclusive were scanned
    coins_sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"vault_id": self.vault_id, "asset": self.asset,
                "descriptors": list(self.descriptors), "range_end": self.range_end,
                "coins_sha256": self.coins_sha256}


def coins_digest(coins: Iterable[Coin]) -> str:
    """SHA-256 of the canonical sorted list [txid, vout, amount_sats] of a coin set."""
    rows = sorted([c.txid, c.vout, c.amount_sats] for c in coins)
    return hashlib.sha256(canonical_bytes(rows)).hexdigest()


def build_body(*, created: str, ledger: LedgerPin, block: BlockPin,
               scopes: Sequence[VaultScope], results: Sequence[VaultResult]) -> dict[str, Any]:
    """The report body (a JSON value). Requires one result per scope, in the same order."""
    if [s.vault_id for s in scopes] != [r.summary.vault_id for r in results]:
        raise ValueError("scopes and results must name the same vaults in the same order")
    body = {"format": FORMAT, "created": created, "ledger": ledger.to_json(),
            "block": block.to_json(), "vaults": [s.to_json() for s in scopes],
            "summary": [r.summary.to_json() for r in results],
            "findings": [f.to_json() for r in results for f in r.findings]}
    canonical_bytes(body)  # refuse now, not at signing time, anything that is not canonical
    return body


def body_sha256(body: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(body)).hexdigest()


class AuditorSigner:
    """The auditor's Ed25519 key; signs report bodies."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        if not name or any(c in name for c in "+ \n"):
            raise KeystoreError(f"auditor name {name!r} must be one word without '+'")
        self._private_key = private_key
        public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.verifier = VerifierKey(name=name, public_key=public)

    def sign(self, body: dict[str, Any]) -> dict[str, Any]:
        """The signed report document: {"report": body, "signature": {...}}."""
        data = canonical_bytes(body)
        signature = self._private_key.sign(data)
        return {"report": body, "signature": {
            "algorithm": "ed25519", "key": self.verifier.encode(),
            "report_sha256": hashlib.sha256(data).hexdigest(),
            "value": base64.b64encode(signature).decode()}}

    def __repr__(self) -> str:  # never show key material
        return f"AuditorSigner(name={self.verifier.name!r})"


def create_auditor_key(path: Path, name: str, passphrase: str, *,
                       scrypt_n: int = keystore.SCRYPT_N_DEFAULT) -> AuditorSigner:
    """Generate an auditor key and store it encrypted at `path` (never overwrites)."""
    private = Ed25519PrivateKey.generate()
    signer = AuditorSigner(name, private)
    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    keystore.write(path, keystore.seal(raw, kind="ed25519", label=f"reconcile auditor {name}",
                                       public=signer.verifier.encode(), passphrase=passphrase,
                                       scrypt_n=scrypt_n))
    return signer


def load_auditor_key(path: Path, passphrase: str) -> AuditorSigner:
    document = keystore.read(path)
    if document["kind"] != "ed25519":
        raise KeystoreError(f"{path} holds a {document['kind']} key, not an Ed25519 key")
    key = VerifierKey.parse(document["public"])
    signer = AuditorSigner(key.name, Ed25519PrivateKey.from_private_bytes(
        keystore.unseal(document, passphrase)))
    if signer.verifier != key:
        raise KeystoreError(f"{path}: key does not match its recorded public key")
    return signer


def parse_auditor_keys(texts: Iterable[str]) -> tuple[VerifierKey, ...]:
    try:
        return tuple(VerifierKey.parse(text) for text in texts)
    except CheckpointError as error:
        raise ReportRejected("bad_key", f"auditor key is malformed: {error}") from None


def check_signature(document: Any, auditors: Iterable[VerifierKey], *,
                    format_name: str = FORMAT) -> dict[str, Any]:
    """The report body if `document` is signed by one of `auditors`; ReportRejected if not."""
    if not isinstance(document, dict) or not isinstance(document.get("report"), dict) \
            or not isinstance(document.get("signature"), dict):
        raise ReportRejected("malformed", "not a signed reconciliation report")
    body: dict[str, Any] = document["report"]
    signature: dict[str, Any] = document["signature"]
    if body.get("format") != format_name:
        raise ReportRejected("malformed", f"document format is not {format_name}")
    try:
        key = VerifierKey.parse(str(signature.get("key", "")))
        value = base64.b64decode(str(signature.get("value", "")), validate=True)
    except (CheckpointError, binascii.Error):
        raise ReportRejected("malformed", "the signature block is malformed") from None
    if key not in set(auditors):
        raise ReportRejected("not_auditor", f"signed by {key.encode()}, which is not an "
                                            "auditor key")
    digest = body_sha256(body)
    if signature.get("report_sha256") != digest:
        raise ReportRejected("tampered", f"report edited after signing: its SHA-256 is "
                                         f"{digest}, the signed one "
                                         f"{signature.get('report_sha256')}")
    try:
        Ed25519PublicKey.from_public_bytes(key.public_key).verify(value, canonical_bytes(body))
    except InvalidSignature:
        raise ReportRejected("tampered", "the auditor's signature does not verify over this "
                                         "report: edited after signing") from None
    return body


def entry_payload(document: dict[str, Any]) -> dict[str, Any]:
    """The `reconcile.report` ledger payload: hash, signature, pins and summary."""
    body, signature = document["report"], document["signature"]
    counts: dict[str, int] = {}
    evm = body.get("evm")
    for finding in [*body["findings"], *(evm["findings"] if evm else [])]:
        counts[finding["severity"]] = counts.get(finding["severity"], 0) + 1
    return ReconcileReport(
        report_sha256=signature["report_sha256"], auditor_key=signature["key"],
        signature=signature["value"], ledger_tree_size=body["ledger"]["tree_size"],
        ledger_root_hash=body["ledger"]["root_hash"], block=body["block"],
        summary=body["summary"], findings_by_severity=counts,
        # EVM vaults (reserve.reconcile.evm): their pinned block and rows, in wei
        evm={"block": evm["block"], "summary": evm["summary"]} if evm else ABSENT,
    ).to_payload()


def check_in(ledger: Ledger, document: dict[str, Any], actor: str) -> Entry:
    """Append the report's `reconcile.report` entry (after checking its own signature)."""
    key = VerifierKey.parse(document["signature"]["key"])
    check_signature(document, [key], format_name=document["report"].get("format", ""))
    return ledger.append(ENTRY_KIND, actor, entry_payload(document))


def recorded_reports(entries: Iterable[Entry]) -> dict[str, Entry]:
    """report SHA-256 -> the ledger entry that checked it in."""
    return {ReconcileReport.of(e).report_sha256: e for e in entries if e.kind == ENTRY_KIND}
