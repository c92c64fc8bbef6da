"""Build the unsigned PSBT (BIP 174) for an approved transfer (pure).

The PSBT carries everything a signer needs to check it offline and a hardware wallet needs
to sign it: each input's UTXO (witness and, when known, the full previous transaction),
witness script and every custodian's BIP 32 derivation; the change output's witness script
and derivations, so signers can see that change returns to the vault; the custodians' xpubs;
and, in proprietary fields (BIP 174 type 0xFC, prefix "reserve"), the approved proposal's
digest, the policy version, the vault id and the network. RBF is signalled on every input.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

from embit import compact
from embit.ec import PublicKey
from embit.psbt import PSBT, DerivationPath
from embit.script import Script
from embit.transaction import Transaction, TransactionInput, TransactionOutput

from reserve.errors import PSBTError
from wallets.bitcoin.coins import Selection
from wallets.bitcoin.fees import dust_threshold
from wallets.bitcoin.networks import require_address
from wallets.bitcoin.transfer import ApprovedTransfer
from wallets.bitcoin.vault import CHANGE, Vault

PROPRIETARY_PREFIX = b"reserve"
SUBTYPE_PROPOSAL_DIGEST = 0x00
SUBTYPE_POLICY_VERSION = 0x01
SUBTYPE_VAULT_ID = 0x02
SUBTYPE_NETWORK = 0x03
SEQUENCE_RBF = 0xFFFFFFFD  # BIP 125: replaceable, and lets locktime apply


class FeeAboveCap(PSBTError):
    """The fee needed exceeds the approved transfer's or the vault's absolute cap."""


class DustOutput(PSBTError):
    """An approved output is below the dust limit for its script type."""


def proprietary_key(subtype: int) -> bytes:
    """BIP 174 proprietary key: 0xFC <compact len><prefix> <subtype>, no key data."""
    key: bytes = (b"\xfc" + compact.to_bytes(len(PROPRIETARY_PREFIX)) + PROPRIETARY_PREFIX
                  + compact.to_bytes(subtype))
    return key


def psbt_sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class PlannedOutput:
    script_pubkey: bytes
    amount_sats: int


def plan_outputs(vault: Vault, transfer: ApprovedTransfer) -> tuple[PlannedOutput, ...]:
    """The approved outputs as scripts, refusing other vaults, networks and dust."""
    if transfer.vault_id != vault.vault_id:
        raise PSBTError(f"transfer is for vault {transfer.vault_id!r}, not {vault.vault_id!r}")
    if transfer.network != vault.network:
        raise PSBTError(f"transfer is for network {transfer.network!r}, vault {vault.vault_id} "
                        f"is on {vault.network!r}")
    planned = []
    for output in transfer.outputs:
        script_pubkey = require_address(output.address, vault.network)
        limit = dust_threshold(script_pubkey)
        if output.amount_sats < limit:
            raise DustOutput(f"output to {output.address} of {output.amount_sats} sats is "
                             f"below the dust limit of {limit} sats")
        planned.append(PlannedOutput(script_pubkey, output.amount_sats))
    return tuple(planned)


def check_fee(fee_sats: int, vault: Vault, transfer: ApprovedTransfer) -> None:
    cap = min(vault.fees.fee_sats_max, transfer.fee_sats_max)
    if fee_sats > cap:
        raise FeeAboveCap(f"fee of {fee_sats} sats is above the cap of {cap} sats "
                          f"(transfer cap {transfer.fee_sats_max}, vault cap "
                          f"{vault.fees.fee_sats_max})")


def _derivations(vault: Vault, branch: int, index: int) -> OrderedDict[PublicKey, DerivationPath]:
    result: OrderedDict[PublicKey, DerivationPath] = OrderedDict()
    for sec, (custodian, path) in vault.derivations(branch, index).items():
        result[PublicKey.parse(sec)] = DerivationPath(custodian.fingerprint, path)
    return result


def _metadata(vault: Vault, transfer: ApprovedTransfer) -> dict[bytes, bytes]:
    unknown: dict[bytes, bytes] = {
        proprietary_key(SUBTYPE_PROPOSAL_DIGEST): transfer.proposal_digest,
        proprietary_key(SUBTYPE_POLICY_VERSION): transfer.policy_version.to_bytes(4, "little"),
        proprietary_key(SUBTYPE_VAULT_ID): vault.vault_id.encode(),
        proprietary_key(SUBTYPE_NETWORK): vault.network.encode(),
    }
    return unknown


def build_psbt(vault: Vault, transfer: ApprovedTransfer, selection: Selection,
               change_index: int, previous_txs: dict[str, bytes] | None = None,
               locktime: int = 0) -> PSBT:
    """The unsigned PSBT: approved outputs in order, then change (if any) on the vault's
    internal chain at `change_index`. `previous_txs` maps txid -> raw previous transaction.
    """
    planned = plan_outputs(vault, transfer)
    check_fee(selection.fee_sats, vault, transfer)
    outputs_sats = sum(p.amount_sats for p in planned)
    if selection.input_sats != outputs_sats + selection.change_sats + selection.fee_sats:
        raise PSBTError("selection does not balance: inputs != outputs + change + fee")
    vin = [TransactionInput(bytes.fromhex(u.txid), u.vout, sequence=SEQUENCE_RBF)
           for u in selection.inputs]
    vout = [TransactionOutput(p.amount_sats, Script(p.script_pubkey)) for p in planned]
    if selection.change_sats:
        vout.append(TransactionOutput(selection.change_sats,
                                      Script(vault.script_pubkey(CHANGE, change_index))))
    psbt = PSBT(Transaction(version=2, vin=vin, vout=vout, locktime=locktime),
                unknown=_metadata(vault, transfer))
    for custodian in vault.custodians:
        psbt.xpubs[custodian.hdkey] = DerivationPath(custodian.fingerprint,
                                                     custodian.origin_path)
    for utxo, scope in zip(selection.inputs, psbt.inputs, strict=True):
        script_pubkey = vault.script_pubkey(utxo.branch, utxo.index)
        scope.witness_utxo = TransactionOutput(utxo.amount_sats, Script(script_pubkey))
        scope.witness_script = vault.witness_script(utxo.branch, utxo.index)
        scope.bip32_derivations = _derivations(vault, utxo.branch, utxo.index)
        raw = (previous_txs or {}).get(utxo.txid)
        if raw is not None:
            previous = Transaction.parse(raw)
            spent = previous.vout[utxo.vout]
            if previous.txid().hex() != utxo.txid or spent.value != utxo.amount_sats \
                    or spent.script_pubkey.data != script_pubkey:
                raise PSBTError(f"previous transaction {utxo.txid} does not match the UTXO")
            scope.non_witness_utxo = previous
    if selection.change_sats:
        change = psbt.outputs[-1]
        change.witness_script = vault.witness_script(CHANGE, change_index)
        change.bip32_derivations = _derivations(vault, CHANGE, change_index)
    return psbt
