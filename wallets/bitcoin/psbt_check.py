"""Read a PSBT and check it against a vault and an approved transfer (pure).

Used by the service before it records anything and by the custodian's offline signing tool
before it signs. Nothing in the PSBT is trusted: each input's witness script and scriptPubKey
are recomputed from the vault's own xpubs at the claimed derivation, change is recognised
only if it re-derives to the vault's internal chain, and the outputs must equal the approved
outputs exactly, in order.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from io import BytesIO

from embit.psbt import PSBT
from embit.transaction import Transaction

from reserve.errors import PSBTError
from wallets.bitcoin.psbt_build import (
    SUBTYPE_NETWORK,
    SUBTYPE_POLICY_VERSION,
    SUBTYPE_PROPOSAL_DIGEST,
    SUBTYPE_VAULT_ID,
    check_fee,
    plan_outputs,
    proprietary_key,
)
from wallets.bitcoin.transfer import ApprovedTransfer
from wallets.bitcoin.vault import CHANGE, INDEX_MAX, Vault

PSBT_BYTES_MAX = 4 * 1024 * 1024
MAGIC = b"psbt\xff"


def parse_psbt(data: bytes | str) -> PSBT:
    """Parse a PSBT from raw bytes, base64 or hex; any defect raises PSBTError."""
    raw = psbt_bytes(data)
    try:
        stream = BytesIO(raw)
        psbt = PSBT.read_from(stream)
        if stream.read(1):
            raise PSBTError("trailing bytes after the PSBT")
    except PSBTError:
        raise
    except Exception as error:  # embit raises many types on truncated or garbled input
        raise PSBTError(f"malformed PSBT: {type(error).__name__}: {error}") from None
    if psbt.version not in (None, 0):
        raise PSBTError(f"unsupported PSBT version {psbt.version}")
    return psbt


def psbt_bytes(data: bytes | str) -> bytes:
    """The raw bytes of a PSBT given as bytes, base64 text or hex text."""
    if isinstance(data, bytes) and data.startswith(MAGIC):
        raw = data
    else:
        text = data.decode("ascii", "replace") if isinstance(data, bytes) else data
        text = text.strip()
        try:
            raw = bytes.fromhex(text) if text.startswith("70736274ff") else \
                base64.b64decode(text, validate=True)
        except (ValueError, binascii.Error):
            raise PSBTError("malformed PSBT: neither binary, base64 nor hex") from None
    if len(raw) > PSBT_BYTES_MAX:
        raise PSBTError(f"PSBT too large: {len(raw)} bytes > {PSBT_BYTES_MAX}")
    if not raw.startswith(MAGIC):
        raise PSBTError("malformed PSBT: missing magic bytes")
    return raw


@dataclass(frozen=True)
class PsbtMetadata:
    proposal_digest: bytes
    policy_version: int
    vault_id: str
    network: str


def read_metadata(psbt: PSBT) -> PsbtMetadata:
    """The proprietary fields this project writes; a PSBT without them is refused."""
    try:
        return PsbtMetadata(
            proposal_digest=psbt.unknown[proprietary_key(SUBTYPE_PROPOSAL_DIGEST)],
            policy_version=int.from_bytes(psbt.unknown[proprietary_key(SUBTYPE_POLICY_VERSION)],
                                          "little"),
            vault_id=psbt.unknown[proprietary_key(SUBTYPE_VAULT_ID)].decode(),
            network=psbt.unknown[proprietary_key(SUBTYPE_NETWORK)].decode(),
        )
    except (KeyError, UnicodeDecodeError):
        raise PSBTError("PSBT lacks the reserve's proposal digest / policy version fields") \
            from None


@dataclass(frozen=True)
class InputView:
    txid: str
    vout: int
    amount_sats: int
    branch: int
    index: int


@dataclass(frozen=True)
class OutputView:
    address: str
    amount_sats: int
    change_index: int | None  # set when the output re-derives to the vault's change chain


@dataclass(frozen=True)
class PsbtSummary:
    txid: str
    inputs: tuple[InputView, ...]
    outputs: tuple[OutputView, ...]
    fee_sats: int
    metadata: PsbtMetadata

    @property
    def input_sats(self) -> int:
        return sum(i.amount_sats for i in self.inputs)

    @property
    def change_sats(self) -> int:
        return sum(o.amount_sats for o in self.outputs if o.change_index is not None)

    @property
    def payments(self) -> tuple[OutputView, ...]:
        return tuple(o for o in self.outputs if o.change_index is None)


def _vault_path(vault: Vault, derivations: dict) -> tuple[int, int] | None:  # type: ignore[type-arg]
    """(branch, index) claimed by a derivation carrying a vault custodian's key origin."""
    for derivation in derivations.values():
        for custodian in vault.custodians:
            prefix = custodian.origin_path
            path = list(derivation.derivation)
            if derivation.fingerprint == custodian.fingerprint and len(path) == len(prefix) + 2 \
                    and path[:len(prefix)] == prefix and path[-2] in (0, 1) \
                    and 0 <= path[-1] <= INDEX_MAX:
                return path[-2], path[-1]
    return None


def _input_view(vault: Vault, psbt: PSBT, i: int) -> InputView:
    scope = psbt.inputs[i]
    where = f"input {i} ({scope.txid.hex()}:{scope.vout})"
    if scope.witness_utxo is None and scope.non_witness_utxo is None:
        raise PSBTError(f"{where}: no UTXO data")
    if scope.non_witness_utxo is not None:
        if scope.non_witness_utxo.txid() != scope.txid:
            raise PSBTError(f"{where}: previous transaction does not match the outpoint")
        full = scope.non_witness_utxo.vout[scope.vout]
        if scope.witness_utxo is not None and full.serialize() != \
                scope.witness_utxo.serialize():
            raise PSBTError(f"{where}: witness UTXO disagrees with the previous transaction")
    utxo = psbt.utxo(i)
    claimed = _vault_path(vault, scope.bip32_derivations)
    if claimed is None:
        raise PSBTError(f"{where} does not spend from vault {vault.vault_id}")
    branch, index = claimed
    if utxo.script_pubkey.data != vault.script_pubkey(branch, index) or \
            scope.witness_script is None or \
            scope.witness_script.data != vault.witness_script(branch, index).data:
        raise PSBTError(f"{where} does not spend from vault {vault.vault_id} "
                        f"(script differs at {branch}/{index})")
    return InputView(scope.txid.hex(), scope.vout, utxo.value, branch, index)


def _output_view(vault: Vault, psbt: PSBT, i: int) -> OutputView:
    scope = psbt.outputs[i]
    address = scope.script_pubkey.address(vault.chain.embit)
    claimed = _vault_path(vault, scope.bip32_derivations)
    change_index = None
    if claimed is not None and claimed[0] == CHANGE and \
            scope.script_pubkey.data == vault.script_pubkey(*claimed):
        change_index = claimed[1]
    return OutputView(address, scope.value, change_index)


def describe(psbt: PSBT, vault: Vault) -> PsbtSummary:
    """What the PSBT does, with every input proven to belong to `vault`."""
    metadata = read_metadata(psbt)
    if metadata.vault_id != vault.vault_id or metadata.network != vault.network:
        raise PSBTError(f"PSBT is for vault {metadata.vault_id!r} on {metadata.network!r}, "
                        f"not {vault.vault_id!r} on {vault.network!r}")
    if not psbt.inputs or not psbt.outputs:
        raise PSBTError("PSBT has no inputs or no outputs")
    inputs = tuple(_input_view(vault, psbt, i) for i in range(len(psbt.inputs)))
    outputs = tuple(_output_view(vault, psbt, i) for i in range(len(psbt.outputs)))
    fee = sum(i.amount_sats for i in inputs) - sum(o.amount_sats for o in outputs)
    if fee < 0:
        raise PSBTError(f"outputs exceed inputs by {-fee} sats")
    return PsbtSummary(txid=psbt.tx.txid().hex(), inputs=inputs, outputs=outputs,
                       fee_sats=fee, metadata=metadata)


def check_against_transfer(summary: PsbtSummary, vault: Vault,
                           transfer: ApprovedTransfer) -> None:
    """Refuse a PSBT that differs from the approved transfer in any way that moves money."""
    metadata = summary.metadata
    if metadata.proposal_digest != transfer.proposal_digest:
        raise PSBTError(f"proposal digest mismatch: approved {transfer.proposal_digest.hex()}, "
                        f"PSBT carries {metadata.proposal_digest.hex()}")
    if metadata.policy_version != transfer.policy_version:
        raise PSBTError(f"policy version mismatch: approved {transfer.policy_version}, "
                        f"PSBT carries {metadata.policy_version}")
    planned = plan_outputs(vault, transfer)
    expected = [(o.address, o.amount_sats) for o in transfer.outputs]
    found = [(o.address, o.amount_sats) for o in summary.payments]
    if found != expected or len(planned) != len(found):
        raise PSBTError(f"outputs differ from the approved transfer: approved {expected}, "
                        f"PSBT pays {found}")
    if len(summary.outputs) - len(summary.payments) > 1:
        raise PSBTError("PSBT has more than one change output")
    check_fee(summary.fee_sats, vault, transfer)


def unsigned_tx_bytes(psbt: PSBT) -> bytes:
    """The unsigned transaction: what every signature share must leave unchanged."""
    tx: Transaction = psbt.tx
    raw: bytes = tx.serialize()
    return raw
