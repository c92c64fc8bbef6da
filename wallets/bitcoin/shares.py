"""Signature shares: verify each custodian's partial signatures, combine, finalise (pure).

A share is a PSBT returned by one custodian. It is accepted only if its unsigned transaction
is byte-for-byte the one that was built, every signature is by that custodian's key at the
input's derivation (recomputed from the vault's xpubs, not read from the PSBT), uses
SIGHASH_ALL, verifies against the input's BIP 143 sighash, and covers every input. Only the
signatures are kept: whatever else a share carries is ignored, so a share made by Bitcoin
Core's `walletprocesspsbt` combines with shares from the project's own tool.
"""

from __future__ import annotations

from dataclasses import dataclass

from embit.ec import PublicKey, Signature
from embit.finalizer import finalize_psbt
from embit.psbt import PSBT
from embit.transaction import SIGHASH, Transaction

from reserve.errors import PSBTError
from wallets.bitcoin.psbt_check import PsbtSummary, parse_psbt, unsigned_tx_bytes
from wallets.bitcoin.vault import Custodian, Vault


class NotACustodian(PSBTError):
    """A signature in a share is by a key that is not one of the vault's custodians."""


class DuplicateShare(PSBTError):
    """The custodian's share was already received for this transaction."""


class QuorumNotMet(PSBTError):
    """Fewer custodians have signed than the vault's threshold."""


@dataclass(frozen=True)
class Share:
    """One custodian's verified signatures: input index -> (public key SEC, signature)."""

    custodian: Custodian
    signatures: tuple[tuple[int, bytes, bytes], ...]  # (input index, pubkey sec, der+sighash)


def _custodian_keys(vault: Vault, summary: PsbtSummary, i: int) -> dict[bytes, Custodian]:
    view = summary.inputs[i]
    return {sec: custodian for sec, (custodian, _path)
            in vault.derivations(view.branch, view.index).items()}


def _verify_signature(base: PSBT, i: int, sec: bytes, signature: bytes) -> None:
    if not signature or signature[-1] != SIGHASH.ALL:
        raise PSBTError(f"input {i}: signature does not use SIGHASH_ALL")
    try:
        valid = PublicKey.parse(sec).verify(Signature.parse(signature[:-1]),
                                            base.sighash(i, SIGHASH.ALL))
    except Exception:
        valid = False
    if not valid:
        raise PSBTError(f"input {i}: invalid signature by key {sec.hex()}")


def verify_share(base: PSBT, summary: PsbtSummary, vault: Vault,
                 share_data: bytes | str | PSBT) -> Share:
    """Check one custodian's share against the built PSBT `base` (described by `summary`)."""
    share = share_data if isinstance(share_data, PSBT) else parse_psbt(share_data)
    if unsigned_tx_bytes(share) != unsigned_tx_bytes(base):
        raise PSBTError(f"share changes the unsigned transaction (expected txid "
                        f"{summary.txid}, share has {share.tx.txid().hex()})")
    signers: set[str] = set()
    collected: list[tuple[int, bytes, bytes]] = []
    by_name: dict[str, Custodian] = {}
    for i, scope in enumerate(share.inputs):
        keys = _custodian_keys(vault, summary, i)
        for public_key, signature in scope.partial_sigs.items():
            sec = public_key.sec()
            custodian = keys.get(sec)
            if custodian is None:
                raise NotACustodian(f"input {i}: signature by {sec.hex()}, which is not a "
                                    f"custodian key of vault {vault.vault_id}")
            _verify_signature(base, i, sec, signature)
            signers.add(custodian.name)
            by_name[custodian.name] = custodian
            collected.append((i, sec, signature))
    if not signers:
        raise PSBTError("share carries no signatures")
    if len(signers) > 1:
        raise PSBTError(f"a share must come from one custodian, this one is signed by "
                        f"{sorted(signers)}")
    signed_inputs = {i for i, _sec, _sig in collected}
    if signed_inputs != set(range(len(base.inputs))):
        missing = sorted(set(range(len(base.inputs))) - signed_inputs)
        raise PSBTError(f"share does not sign every input (missing {missing})")
    return Share(custodian=by_name[signers.pop()], signatures=tuple(sorted(collected)))


def combine(base: PSBT, shares: list[Share]) -> PSBT:
    """A copy of `base` carrying the partial signatures of every share."""
    combined = PSBT.parse(base.serialize())
    for share in shares:
        for i, sec, signature in share.signatures:
            combined.inputs[i].partial_sigs[PublicKey.parse(sec)] = signature
    return combined


def finalize(combined: PSBT, vault: Vault, shares: list[Share]) -> Transaction:
    """The signed transaction; requires signatures from at least `threshold` custodians."""
    signers = {share.custodian.name for share in shares}
    if len(signers) < vault.threshold:
        raise QuorumNotMet(f"{len(signers)} of {vault.threshold} required custodians have "
                           f"signed ({sorted(signers)})")
    tx = finalize_psbt(combined)
    if tx is None:
        raise PSBTError("PSBT could not be finalised")
    for i, vin in enumerate(tx.vin):
        items = vin.witness.items
        if len(items) != vault.threshold + 2:
            raise PSBTError(f"input {i}: finalised witness has {len(items)} items, expected "
                            f"{vault.threshold + 2}")
    final: Transaction = tx
    return final
