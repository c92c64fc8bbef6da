"""The Bitcoin layer behind the workflow's ChainAdapter seam (reserve/transfers/chain.py).

At `releasable` the workflow hands over a `ReleaseOrder`; this adapter maps it one to one
onto the `ApprovedTransfer` the Bitcoin layer checks every PSBT against, and drives
`BitcoinVaultService` (build, verify shares, finalise, broadcast) and `ChainWatcher`
(confirmations). Those two write their own btc.* entries, each naming the proposal by
"proposal_digest", so every step returned here is `recorded=True`: the workflow records only
its state change and the projection files the btc.* entries under the proposal. The adapter
keeps no state; everything it needs is re-read from the ledger, so it resumes after a
restart. Every refusal (another vault, network or chain; a share by someone else than the
signer named; too few shares) raises a WalletError before anything is written.

Construct it from a vault, a ledger and a node (the vault's id must be the policy's vault
id, and its custodian names the policy's custodian ids)::

    from reserve.ledger.store import Ledger
    from reserve.transfers.service import WorkflowService
    from wallets.bitcoin.adapter import BitcoinAdapter
    from wallets.bitcoin.rpc import BitcoinRPC
    from wallets.bitcoin.vault import load_vault

    ledger = Ledger.open(url)
    adapter = BitcoinAdapter.connect(load_vault("config/vaults/reserve-btc-3of5.toml"),
                                     ledger, BitcoinRPC(rpc_url, user, password),
                                     clock=None)   # or the workflow's injected clock
    adapter.service.ensure_watch_only()        # once: import the vault's descriptor
    workflow = WorkflowService(ledger)         # same clock= as the adapter
    step = workflow.release(digest, adapter, actor="treasury-ops")
    psbt_base64 = step.payload["psbt_base64"]  # what each custodian signs (reserve-sign btc-sign)
    workflow.add_signature_share(digest, adapter, "central-bank", signed_psbt_base64)
    txid = workflow.broadcast(digest, adapter, actor="treasury-ops")
    workflow.check_confirmation(digest, adapter, confirmations_min=1)

or from existing pieces: `BitcoinAdapter(service)` (a watcher on the same wallet is made)
or `BitcoinAdapter(service, watcher)`. `adapter.transfer_for(order)` gives the approved
transfer the service checks every PSBT against; a custodian's signer never takes it on
trust: it re-derives it from a signing package (reserve/transfers/package.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from reserve.errors import PSBTError, WalletError
from reserve.events.chain_btc import BtcConfirmed
from reserve.ledger.store import Ledger
from reserve.transfers.chain import BroadcastReport, ChainStep, ConfirmationReport, ReleaseOrder
from wallets.bitcoin import records
from wallets.bitcoin.psbt_check import describe, parse_psbt
from wallets.bitcoin.rpc import BitcoinRPC
from wallets.bitcoin.service import BitcoinVaultService
from wallets.bitcoin.shares import verify_share
from wallets.bitcoin.transfer import ApprovedTransfer, TransferOutput
from wallets.bitcoin.vault import Vault
from wallets.bitcoin.watcher import ChainWatcher

ASSET = "BTC"
CAIP2_NAMESPACE = "bip122"
CAIP2_REFERENCE_LENGTH = 32  # CAIP-2 bip122 ids carry the first 16 bytes of the genesis hash


def approved_transfer(order: ReleaseOrder) -> ApprovedTransfer:
    """The ReleaseOrder as the Bitcoin layer's ApprovedTransfer, field for field (pure)."""
    return ApprovedTransfer(
        proposal_digest=order.proposal_digest, policy_version=order.policy_version,
        vault_id=order.vault_id, network=order.network, fee_sats_max=order.fee_max,
        outputs=tuple(TransferOutput(o.destination, o.amount) for o in order.outputs))


class BitcoinAdapter:
    """ChainAdapter for one Bitcoin vault on one node, writing to one ledger."""

    def __init__(self, service: BitcoinVaultService, watcher: ChainWatcher | None = None
                 ) -> None:
        self.service = service
        # The watcher must read the same watch-only wallet the service builds from.
        self.watcher = watcher or ChainWatcher(service.vault, service.ledger, service.node,
                                               wallet_name=service.wallet_name,
                                               clock=service.clock)
        self._genesis_prefix = ""

    @classmethod
    def connect(cls, vault: Vault, ledger: Ledger, rpc: BitcoinRPC, *,
                wallet_name: str | None = None,
                clock: Callable[[], datetime] | None = None) -> BitcoinAdapter:
        """Service and watcher for `vault` on the node `rpc` points at.

        Give the workflow's `clock` when it is injected (tests, demo), so btc.* entries
        are dated on the same clock as the workflow's; None means the real time.
        """
        service = BitcoinVaultService(vault, ledger, rpc, wallet_name=wallet_name, clock=clock)
        return cls(service)

    @property
    def vault(self) -> Vault:
        return self.service.vault

    # -- checks (before anything is written) ---------------------------------------------
    def _chain_reference(self) -> str:
        if not self._genesis_prefix:
            genesis: str = self.service.node.getblockhash(0)
            self._genesis_prefix = genesis[:CAIP2_REFERENCE_LENGTH]
        return self._genesis_prefix

    def transfer_for(self, order: ReleaseOrder) -> ApprovedTransfer:
        """The approved transfer for `order`; refuses an order for another vault or chain."""
        vault = self.vault
        if order.vault_id != vault.vault_id:
            raise WalletError(f"order is for vault {order.vault_id!r}, this adapter serves "
                              f"{vault.vault_id!r}")
        if order.network != vault.network:
            raise WalletError(f"order is for network {order.network!r}, vault "
                              f"{vault.vault_id} is on {vault.network!r}")
        if order.asset != ASSET:
            raise WalletError(f"a Bitcoin vault moves {ASSET}, not {order.asset!r}")
        namespace, _, reference = order.chain.partition(":")
        expected = self._chain_reference()
        if namespace != CAIP2_NAMESPACE or reference != expected:
            raise WalletError(f"order is for chain {order.chain!r}, the node is on "
                              f"{CAIP2_NAMESPACE}:{expected}")
        return approved_transfer(order)

    def _record(self, transfer: ApprovedTransfer) -> records.TransferRecord:
        record = self.service.record(transfer)
        if record is None:
            raise PSBTError(f"no PSBT was built for proposal {transfer.proposal_digest.hex()}"
                            ": release it first")
        return record

    def _share_signer(self, transfer: ApprovedTransfer, share: str) -> str:
        """Who signed `share` (verified against the recorded PSBT; pure apart from reading)."""
        record = self._record(transfer)
        base = parse_psbt(record.created.psbt_base64)
        summary = describe(base, self.vault)
        name: str = verify_share(base, summary, self.vault, share).custodian.name
        return name

    # -- the ChainAdapter protocol -------------------------------------------------------
    def prepare(self, order: ReleaseOrder) -> ChainStep:
        """Build (or find) the PSBT; BitcoinVaultService records btc.psbt_created."""
        transfer = self.transfer_for(order)
        psbt = self.service.build_psbt(transfer)
        created = self._record(transfer).created
        # Not written again: the payload tells the caller what to hand to the custodians.
        return ChainStep("btc.psbt_created", {
            "txid": created.txid, "psbt_sha256": created.psbt_sha256,
            "psbt_base64": psbt.to_base64(), "fee_sats": created.fee_sats,
            "approved_transfer": transfer.to_dict()}, recorded=True)

    def add_share(self, order: ReleaseOrder, steps: tuple[ChainStep, ...], signer: str,
                  share: str) -> ChainStep:
        """Accept one custodian's signed PSBT (base64); it must be signed by `signer`."""
        transfer = self.transfer_for(order)
        signed_by = self._share_signer(transfer, share)
        if signed_by != signer:
            raise PSBTError(f"share is signed by {signed_by!r}, not by {signer!r} who "
                            "submitted it")
        progress = self.service.add_share(transfer, share)
        return ChainStep("btc.share_received", {
            "txid": progress.txid, "custodian": signer, "signers": list(progress.signers),
            "threshold": progress.threshold, "complete": progress.complete}, recorded=True)

    def broadcast(self, order: ReleaseOrder, steps: tuple[ChainStep, ...]) -> BroadcastReport:
        """Finalise with the recorded shares and broadcast; QuorumNotMet if too few."""
        transfer = self.transfer_for(order)
        txid = self.service.finalize_and_broadcast(transfer)
        return BroadcastReport(txid, ChainStep("btc.broadcast", {"txid": txid}, recorded=True))

    def confirmation(self, order: ReleaseOrder, steps: tuple[ChainStep, ...],
                     txid: str) -> ConfirmationReport:
        """Depth of `txid`; once deep enough the watcher records btc.confirmed.

        The watcher's sync also records any other confirmed vault transaction it finds
        (a deposit, say): those are true facts about the vault, recorded once.
        """
        transfer = self.transfer_for(order)
        record = self._record(transfer)
        if txid != record.txid:
            raise PSBTError(f"proposal {transfer.proposal_digest.hex()[:16]} built "
                            f"transaction {record.txid}, not {txid}")
        answer: dict[str, Any] = self.service.wallet.gettransaction(txid, True)
        # A negative count means the transaction conflicts with the best chain.
        depth = max(int(answer.get("confirmations", 0)), 0)
        if depth < self.watcher.confirmations_min:
            return ConfirmationReport(depth)
        self.watcher.sync()
        confirmed = self._confirmed_event(txid)
        if confirmed is None:
            return ConfirmationReport(depth)
        return ConfirmationReport(depth, ChainStep("btc.confirmed", {
            "txid": txid, "blockhash": confirmed.blockhash, "height": confirmed.height},
            recorded=True))

    def _confirmed_event(self, txid: str) -> BtcConfirmed | None:
        entries = list(self.service.ledger.entries(kinds=records.BTC_KINDS))
        live = records.chain_state(entries, self.vault.vault_id).events
        found = [e for e in live if isinstance(e, BtcConfirmed) and e.txid == txid]
        return found[-1] if found else None
