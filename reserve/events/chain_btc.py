"""Events of the Bitcoin chain layer: a released transfer's PSBT, shares, broadcast, and
what the node showed (deposits, confirmations, reorgs). The vault is `vault_id` and the
proposal digest `proposal_digest` on this layer's wire."""

from __future__ import annotations

from dataclasses import dataclass

from reserve.events.base import ABSENT, Event, Hex, Json

_WIRE = {"vault": "vault_id", "digest": "proposal_digest"}


@dataclass(frozen=True)
class BtcPsbtCreated(Event):
    """The unsigned PSBT built for an approved transfer (without previous transactions)."""

    KIND = "btc.psbt_created"
    WIRE = _WIRE
    vault: str
    network: str
    digest: Hex
    policy_version: int
    txid: Hex
    psbt_sha256: Hex  # of the full PSBT handed to the signers
    psbt_base64: str
    inputs: Json  # [{"txid", "vout", "amount_sats"}]
    outputs: Json  # [{"address", "amount_sats", "change"}]
    amount_sats: int
    input_sats: int
    change_sats: int
    fee_sats: int
    fee_rate_msat_vb: int
    fee_rate_source: str

    def outpoints(self) -> list[tuple[str, int]]:
        return [(item["txid"], item["vout"]) for item in self.inputs]


@dataclass(frozen=True)
class BtcShareReceived(Event):
    """One custodian's verified signature share."""

    KIND = "btc.share_received"
    WIRE = _WIRE
    vault: str
    digest: Hex
    txid: Hex
    custodian: str
    institution: str
    fingerprint: Hex
    share_sha256: Hex
    signatures: Json  # [[input index, public key hex, signature hex]]
    signers_count: int
    threshold: int


@dataclass(frozen=True)
class _Sent(Event):
    WIRE = _WIRE
    vault: str
    digest: Hex
    txid: Hex
    amount_sats: int
    fee_sats: int
    psbt_sha256: Hex


@dataclass(frozen=True)
class BtcFinalized(_Sent):
    KIND = "btc.finalized"
    signers: Json  # [custodian name]
    vsize: int


@dataclass(frozen=True)
class BtcBroadcast(_Sent):
    KIND = "btc.broadcast"


@dataclass(frozen=True)
class _OnChain(Event):
    """A wallet transaction of the vault in a block; `delta_sats` is its effect."""

    WIRE = _WIRE
    vault: str
    txid: Hex
    blockhash: Hex
    height: int
    confirmations: int
    delta_sats: int
    outputs: Json  # [{"vout", "address", "amount_sats"}] paid to the vault
    amount_sats: int


@dataclass(frozen=True)
class BtcDeposit(_OnChain):
    KIND = "btc.deposit"


@dataclass(frozen=True)
class BtcConfirmed(_OnChain):
    """A spend from the vault confirmed; `digest` is null for one the service never sent."""

    KIND = "btc.confirmed"
    fee_sats: int
    digest: Hex | None


@dataclass(frozen=True)
class BtcReorg(Event):
    """Reverses the deposit or confirmation at `reverses_seq`: its block left the chain."""

    KIND = "btc.reorg"
    WIRE = _WIRE
    vault: str
    txid: Hex
    blockhash: Hex
    height: int
    reverses_seq: int
    reverses_kind: str
    delta_sats: int
    reason: str
    digest: Hex = ABSENT  # the transfer whose confirmation this undoes


EVENTS: tuple[type[Event], ...] = (BtcPsbtCreated, BtcShareReceived, BtcFinalized,
                                   BtcBroadcast, BtcDeposit, BtcConfirmed, BtcReorg)
