"""The service side of a Bitcoin vault: the thin shell between bitcoind, the ledger and the
pure PSBT code.

The workflow engine calls `build_psbt(transfer)`, `add_share(transfer, share)` and
`finalize_and_broadcast(transfer)`; each validates first, talks to the node, and only then
appends its ledger entries, so a refused input or an unreachable node leaves no trace and the
flow can simply be retried. State lives in the ledger (see records.py), never in memory.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from embit.psbt import PSBT
from embit.transaction import Transaction

from reserve.errors import LedgerConflict, NodeRPCError, PSBTError, WalletError
from reserve.events.chain_btc import BtcBroadcast, BtcFinalized, BtcPsbtCreated, BtcShareReceived
from reserve.ledger.entry import Entry
from reserve.ledger.store import Ledger
from wallets.bitcoin import records
from wallets.bitcoin.coins import Utxo, select_coins
from wallets.bitcoin.fees import FeeRate, rate_from_estimate
from wallets.bitcoin.networks import require_address
from wallets.bitcoin.psbt_build import build_psbt as build_unsigned
from wallets.bitcoin.psbt_build import plan_outputs, psbt_sha256
from wallets.bitcoin.psbt_check import PsbtSummary, check_against_transfer, describe, parse_psbt
from wallets.bitcoin.rpc import BitcoinRPC, btc_to_sats
from wallets.bitcoin.shares import DuplicateShare, Share, combine, finalize, verify_share
from wallets.bitcoin.transfer import ApprovedTransfer
from wallets.bitcoin.vault import CHANGE, RECEIVE, Vault

ACTOR = "btc-service"
LEDGER_RETRIES = 3
IMPORT_RANGE = (0, 999)
# sendrawtransaction answers -27 when the transaction is already in the chain or mempool.
RPC_VERIFY_ALREADY_IN_CHAIN = -27
_ORIGIN_TAIL = re.compile(r"\[[0-9a-fA-F]{8}(?:/\d+['h])+/(\d+)/(\d+)\]")


@dataclass(frozen=True)
class ShareProgress:
    txid: str
    signers: tuple[str, ...]
    threshold: int

    @property
    def complete(self) -> bool:
        return len(self.signers) >= self.threshold


def derivation_from_descriptor(descriptor: str) -> tuple[int, int]:
    """(branch, index) from a bitcoind per-address descriptor with key origins."""
    match = _ORIGIN_TAIL.search(descriptor)
    if match is None:
        raise WalletError(f"no key origin with branch/index in {descriptor[:60]}...")
    return int(match.group(1)), int(match.group(2))


class BitcoinVaultService:
    """One vault's service-side operations against one node and one ledger."""

    def __init__(self, vault: Vault, ledger: Ledger, rpc: BitcoinRPC, *,
                 actor: str = ACTOR, wallet_name: str | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.vault = vault
        self.ledger = ledger
        self.node = rpc.for_wallet(None)
        self.wallet_name = wallet_name or f"reserve-{vault.vault_id}"
        self.wallet = rpc.for_wallet(self.wallet_name)
        self.actor = actor
        # Injectable like the workflow's, so a story that advances time dates every entry alike.
        self.clock = clock

    def _now(self) -> datetime | None:
        return self.clock() if self.clock is not None else None

    # ----------------------------------------------------------------- node setup
    def check_chain(self) -> None:
        """Refuse a node on another network than the vault's."""
        chain = self.node.getblockchaininfo()["chain"]
        expected = {"regtest": "regtest", "signet": "signet", "testnet4": "testnet4",
                    "testnet": "test", "mainnet": "main"}[self.vault.network]
        if chain != expected:
            raise WalletError(f"node is on {chain!r}, vault {self.vault.vault_id} is on "
                              f"{self.vault.network!r}")

    def ensure_watch_only(self, rescan_timestamp: int | str = 0) -> None:
        """Load or create the watch-only descriptor wallet and import the vault's descriptor."""
        self.check_chain()
        if self.wallet_name not in self.node.listwallets():
            try:
                self.node.loadwallet(self.wallet_name)
            except NodeRPCError:
                # name, disable_private_keys, blank, passphrase, avoid_reuse, descriptors,
                # load_on_startup: a watch-only descriptor wallet that survives restarts.
                self.node.createwallet(self.wallet_name, True, True, "", False, True, True)
        wanted = {self.node.getdescriptorinfo(self.vault.branch_descriptor(b))["descriptor"]
                  for b in (RECEIVE, CHANGE)}
        present = {d["desc"] for d in self.wallet.listdescriptors()["descriptors"]}
        if not wanted <= present:
            self._import(rescan_timestamp)
        self.check_derivation()

    def _import(self, rescan_timestamp: int | str) -> None:
        request: dict[str, Any] = {"active": True, "range": list(IMPORT_RANGE),
                                   "timestamp": rescan_timestamp}
        try:
            answer = self.wallet.importdescriptors([{**request, "desc": self.vault.descriptor()}])
            if all(item.get("success") for item in answer):
                return
        except NodeRPCError:
            pass  # older nodes refuse multipath descriptors: import each chain on its own
        answer = self.wallet.importdescriptors([
            {**request, "desc": self.vault.branch_descriptor(RECEIVE), "internal": False},
            {**request, "desc": self.vault.branch_descriptor(CHANGE), "internal": True}])
        if not all(item.get("success") for item in answer):
            raise WalletError(f"importdescriptors failed: {answer}")

    def check_derivation(self, count: int = 5) -> None:
        """Local derivation must equal bitcoind's deriveaddresses for the same descriptor."""
        for branch in (RECEIVE, CHANGE):
            node = self.node.deriveaddresses(self.vault.branch_descriptor(branch), [0, count - 1])
            local = [self.vault.address(branch, i) for i in range(count)]
            if node != local:
                raise WalletError(f"derivation mismatch on branch {branch}: node {node}, "
                                  f"local {local}")

    # ----------------------------------------------------------------- addresses, coins
    def _derived_address(self, address: str, branch: int) -> int:
        info = self.wallet.getaddressinfo(address)
        found_branch, index = derivation_from_descriptor(info.get("desc", ""))
        if found_branch != branch or self.vault.address(branch, index) != address:
            raise WalletError(f"node address {address} is not the vault's {branch}/{index}")
        return index

    def receive_address(self) -> tuple[str, int]:
        """A fresh receive address from the node, checked against local derivation."""
        address = self.wallet.getnewaddress("", "bech32")
        require_address(address, self.vault.network)
        return address, self._derived_address(address, RECEIVE)

    def change_index(self) -> int:
        return self._derived_address(self.wallet.getrawchangeaddress("bech32"), CHANGE)

    def utxos(self) -> list[Utxo]:
        result = []
        for item in self.wallet.listunspent(0):
            # The node's claimed path is re-derived and checked for the coins actually
            # selected (build_psbt and describe), not for every coin: derivation is costly.
            branch, index = derivation_from_descriptor(item.get("desc", ""))
            result.append(Utxo(txid=item["txid"], vout=int(item["vout"]),
                               amount_sats=btc_to_sats(item["amount"]), branch=branch,
                               index=index, confirmations=int(item["confirmations"])))
        return result

    def node_balance_sats(self, confirmations_min: int | None = None) -> int:
        depth = self.vault.confirmations_min if confirmations_min is None else confirmations_min
        return sum(u.amount_sats for u in self.utxos() if u.confirmations >= depth)

    def fee_rate(self) -> FeeRate:
        fees = self.vault.fees
        estimate = self.node.estimatesmartfee(fees.confirmation_target)
        return rate_from_estimate(estimate, fees.floor_sat_vb, fees.ceiling_sat_vb)

    # ----------------------------------------------------------------- ledger helpers
    def _entries(self) -> tuple[list[Entry], int]:
        size = self.ledger.size()
        return list(self.ledger.entries(0, size, kinds=records.BTC_KINDS)), size

    def record(self, transfer: ApprovedTransfer) -> records.TransferRecord | None:
        entries, _size = self._entries()
        return records.transfer_record(entries, self.vault.vault_id,
                                       transfer.proposal_digest.hex())

    def _check_transfer(self, transfer: ApprovedTransfer) -> None:
        plan_outputs(self.vault, transfer)  # vault, network, addresses, dust: before any I/O

    # ----------------------------------------------------------------- the transfer flow
    def build_psbt(self, transfer: ApprovedTransfer) -> PSBT:
        """The unsigned PSBT for `transfer` (built once; later calls return the same one)."""
        self._check_transfer(transfer)
        for _attempt in range(LEDGER_RETRIES):
            entries, size = self._entries()
            existing = records.transfer_record(entries, self.vault.vault_id,
                                               transfer.proposal_digest.hex())
            if existing is not None:
                psbt = self._with_previous(parse_psbt(existing.created.psbt_base64))
                check_against_transfer(describe(psbt, self.vault), self.vault, transfer)
                return psbt
            psbt, summary, rate = self._build(transfer, entries)
            try:
                self.ledger.append("btc.psbt_created", self.actor,
                                   self._created_payload(transfer, psbt, summary, rate),
                                   expected_size=size, now=self._now())
            except LedgerConflict:
                continue
            return psbt
        raise WalletError("ledger kept changing while building the PSBT; retry")

    def _build(self, transfer: ApprovedTransfer,
               entries: list[Entry]) -> tuple[PSBT, PsbtSummary, FeeRate]:
        held = records.pending_outpoints(entries, self.vault.vault_id)
        utxos = [u for u in self.utxos() if (u.txid, u.vout) not in held]
        rate = self.fee_rate()
        planned = plan_outputs(self.vault, transfer)
        selection = select_coins(utxos, transfer.amount_sats,
                                 [len(p.script_pubkey) for p in planned], rate,
                                 self.vault.threshold, len(self.vault.custodians),
                                 self.vault.confirmations_min)
        change_index = self.change_index() if selection.change_sats else 0
        previous = {txid: self._previous_tx(txid) for txid in {u.txid for u in selection.inputs}}
        psbt = build_unsigned(self.vault, transfer, selection, change_index, previous)
        # Check what was built exactly as a signer will, before it is recorded.
        summary = describe(parse_psbt(psbt.serialize()), self.vault)
        check_against_transfer(summary, self.vault, transfer)
        return psbt, summary, rate

    def _previous_tx(self, txid: str) -> bytes:
        return bytes.fromhex(self.wallet.gettransaction(txid, True)["hex"])

    def _with_previous(self, psbt: PSBT) -> PSBT:
        """Re-attach full previous transactions (kept out of the ledger for size)."""
        fetched: dict[str, Transaction] = {}
        for scope in psbt.inputs:
            txid = scope.txid.hex()
            if scope.non_witness_utxo is None:
                if txid not in fetched:
                    fetched[txid] = Transaction.parse(self._previous_tx(txid))
                scope.non_witness_utxo = fetched[txid]
        return psbt

    def _created_payload(self, transfer: ApprovedTransfer, psbt: PSBT, summary: PsbtSummary,
                         rate: FeeRate) -> dict[str, Any]:
        raw = psbt.serialize()
        # The ledger keeps the PSBT without full previous transactions (a deposit from a
        # batch payout can be tens of kB per input); the witness UTXOs it keeps are what
        # the signatures commit to, and the hash is of the full PSBT handed to signers.
        compact = parse_psbt(raw)
        for scope in compact.inputs:
            scope.non_witness_utxo = None
        created = BtcPsbtCreated(
            vault=self.vault.vault_id, network=self.vault.network,
            digest=transfer.proposal_digest.hex(), policy_version=transfer.policy_version,
            txid=summary.txid, psbt_sha256=psbt_sha256(raw), psbt_base64=compact.to_base64(),
            inputs=[{"txid": i.txid, "vout": i.vout, "amount_sats": i.amount_sats}
                    for i in summary.inputs],
            outputs=[{"address": o.address, "amount_sats": o.amount_sats,
                      "change": o.change_index is not None} for o in summary.outputs],
            amount_sats=transfer.amount_sats, input_sats=summary.input_sats,
            change_sats=summary.change_sats, fee_sats=summary.fee_sats,
            fee_rate_msat_vb=rate.msat_per_vb, fee_rate_source=rate.source)
        payload: dict[str, Any] = records.jsonable(created.to_payload())
        return payload

    def _base(self, record: records.TransferRecord,
              transfer: ApprovedTransfer) -> tuple[PSBT, PsbtSummary]:
        base = parse_psbt(record.created.psbt_base64)
        summary = describe(base, self.vault)
        check_against_transfer(summary, self.vault, transfer)
        return base, summary

    def _shares(self, record: records.TransferRecord) -> list[Share]:
        shares = []
        for recorded in record.shares:
            custodian = self.vault.custodian(recorded.custodian)
            signatures = tuple((int(i), bytes.fromhex(p), bytes.fromhex(s))
                               for i, p, s in recorded.signatures)
            shares.append(Share(custodian=custodian, signatures=signatures))
        return shares

    def add_share(self, transfer: ApprovedTransfer, share_data: bytes | str) -> ShareProgress:
        """Verify one custodian's signature share and record it. Needs no node."""
        for _attempt in range(LEDGER_RETRIES):
            entries, size = self._entries()
            record = records.transfer_record(entries, self.vault.vault_id,
                                             transfer.proposal_digest.hex())
            if record is None:
                raise PSBTError("no PSBT was built for this transfer: build it first")
            base, summary = self._base(record, transfer)
            share = verify_share(base, summary, self.vault, share_data)
            if share.custodian.name in record.signers:
                raise DuplicateShare(f"{share.custodian.name} already signed {summary.txid}")
            signers = (*record.signers, share.custodian.name)
            payload = records.jsonable(BtcShareReceived(
                vault=self.vault.vault_id, digest=transfer.proposal_digest.hex(),
                txid=summary.txid, custodian=share.custodian.name,
                institution=share.custodian.institution,
                fingerprint=share.custodian.fingerprint.hex(),
                share_sha256=psbt_sha256(parse_psbt(share_data).serialize()),
                signatures=[[i, p.hex(), s.hex()] for i, p, s in share.signatures],
                signers_count=len(signers), threshold=self.vault.threshold).to_payload())
            try:
                self.ledger.append("btc.share_received", self.actor, payload, expected_size=size,
                                   now=self._now())
            except LedgerConflict:
                continue
            return ShareProgress(summary.txid, signers, self.vault.threshold)
        raise WalletError("ledger kept changing while recording the share; retry")

    def finalize_and_broadcast(self, transfer: ApprovedTransfer) -> str:
        """Combine the shares, finalise, broadcast, record. Idempotent: one record per txid.

        The intent (`btc.finalized`: this txid for this proposal) is recorded before the
        transaction is sent and `btc.broadcast` after, so a crash between the node accepting
        it and the ledger recording the broadcast loses no link: the watcher attributes the
        confirmation to the proposal, and calling this again re-sends (the node answers
        "already known") and records the broadcast.
        """
        for _attempt in range(LEDGER_RETRIES):
            entries, size = self._entries()
            record = records.transfer_record(entries, self.vault.vault_id,
                                             transfer.proposal_digest.hex())
            if record is None:
                raise PSBTError("no PSBT was built for this transfer")
            if record.broadcast is not None:
                return record.txid
            base, summary = self._base(record, transfer)
            shares = self._shares(record)
            combined = combine(base, shares)
            tx = finalize(combined, self.vault, shares)
            if tx.txid().hex() != summary.txid:
                raise PSBTError(f"finalised txid {tx.txid().hex()} != built txid "
                                f"{summary.txid}")
            vault, digest = self.vault.vault_id, transfer.proposal_digest.hex()
            try:
                if record.finalized is None:
                    finalized = BtcFinalized(
                        vault=vault, digest=digest, txid=summary.txid,
                        amount_sats=transfer.amount_sats, fee_sats=summary.fee_sats,
                        psbt_sha256=psbt_sha256(combined.serialize()),
                        signers=[s.custodian.name for s in shares], vsize=_vsize(tx))
                    self.ledger.append(finalized.KIND, self.actor, finalized.to_payload(),
                                       expected_size=size, now=self._now())
                    size += 1
                self._send(tx.serialize().hex())
                broadcast = BtcBroadcast(
                    vault=vault, digest=digest, txid=summary.txid,
                    amount_sats=transfer.amount_sats, fee_sats=summary.fee_sats,
                    psbt_sha256=record.created.psbt_sha256)
                self.ledger.append(broadcast.KIND, self.actor, broadcast.to_payload(),
                                   expected_size=size, now=self._now())
            except LedgerConflict:
                continue  # someone recorded meanwhile: re-read and go on from there
            return summary.txid
        raise WalletError("ledger kept changing while recording the broadcast; retry")

    def _send(self, raw_hex: str) -> None:
        try:
            self.node.sendrawtransaction(raw_hex)
        except NodeRPCError as error:
            if error.code != RPC_VERIFY_ALREADY_IN_CHAIN and "already" not in str(error):
                raise


def _vsize(tx: Any) -> int:
    full = len(tx.serialize())
    stripped = sum(len(part) for part in _non_witness_parts(tx))
    return -(-(stripped * 3 + full) // 4)


def _non_witness_parts(tx: Any) -> list[bytes]:
    from embit.transaction import Transaction

    bare = Transaction(version=tx.version, locktime=tx.locktime,
                       vin=[type(v)(v.txid, v.vout, sequence=v.sequence) for v in tx.vin],
                       vout=tx.vout)
    return [bare.serialize()]
