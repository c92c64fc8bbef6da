"""`reserve transfer status|release|signing-package|submit-share|broadcast|confirm DIGEST`.

The only path by which a vault's coins move: a proposal the policy made releasable is
released by an operator (the chain layer builds the PSBT or Safe transaction for exactly
the approved outputs), each custodian signs offline from the signing package and hands
back a share, an operator broadcasts once enough have signed, and the chain confirms.
Every step goes through the workflow service, which checks the proposal's state, the
freeze and the policy again before anything is written; the chain layer is found from the
proposal's vault and chain (wallets/chains.py). `status` says what is next and who acts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from reserve import present
from reserve.cli.common import emit, load_settings, open_ledger
from reserve.cli.workflow import Config, Database, Json, _clock, _guarded
from reserve.config import Settings
from reserve.errors import ConfigError, WorkflowError
from reserve.proposals.state import BROADCAST, OPEN, RELEASABLE, SIGNING

# The workflow and the chain layers load when a command runs, not for `reserve --help`.
if TYPE_CHECKING:
    from reserve.transfers.chain import ChainAdapter
    from reserve.transfers.next_step import NextStep
    from reserve.transfers.projection import ProposalStatus
    from reserve.transfers.service import WorkflowService
    from wallets.chains import ChainOptions, ConfiguredChains

transfer_app = typer.Typer(no_args_is_help=True, help=(
    "Move an approved transfer to the chain: release, sign, broadcast, confirm."))
SHARE_BYTES_MAX = 1024 * 1024

Digest = Annotated[str, typer.Argument(help="Proposal digest (or a unique prefix).")]
Operator = Annotated[str, typer.Option("--by", help="Operator id (the vault's policy names it).")]
BtcRpcUrl = Annotated[str | None, typer.Option("--btc-rpc-url", envvar="RESERVE_BTC_RPC_URL",
                                               help="bitcoind RPC (default: config).")]
BtcRpcUser = Annotated[str | None, typer.Option("--btc-rpc-user",
                                                envvar="RESERVE_BTC_RPC_USER")]
EvmRpcUrl = Annotated[str | None, typer.Option("--evm-rpc-url", envvar="RESERVE_EVM_RPC_URL",
                                               help="EVM node (default: the vault's network).")]
EvmKeyFile = Annotated[Path | None, typer.Option(
    "--evm-key-file", help="Service EVM keystore that pays gas (default: config [evm]).")]
Mainnet = Annotated[bool, typer.Option("--mainnet", help="Allow mainnet (config must too).")]


@dataclass
class Session:
    settings: Settings
    workflow: WorkflowService
    ledger: Any
    options: ChainOptions

    def chains(self) -> ConfiguredChains:
        from wallets.chains import ConfiguredChains

        return ConfiguredChains(self.settings, self.ledger, self.options, self.workflow.clock)

    def adapter(self, status: ProposalStatus) -> ChainAdapter:
        return self.chains().adapter(status.proposal.vault, status.proposal.chain)


@contextmanager
def _session(config: Path | None, database_url: str | None, *, write: bool = True,
             btc_rpc_url: str | None = None, btc_rpc_user: str | None = None,
             evm_rpc_url: str | None = None, evm_key_file: Path | None = None,
             mainnet: bool = False) -> Iterator[Session]:
    from wallets.chains import ChainOptions

    settings = load_settings(str(config) if config else None)
    ledger = open_ledger(settings, database_url, with_signer=write)
    try:
        options = ChainOptions(btc_rpc_url=btc_rpc_url, btc_rpc_user=btc_rpc_user,
                               evm_rpc_url=evm_rpc_url, evm_key_file=evm_key_file,
                               mainnet=mainnet)
        from reserve.transfers.service import WorkflowService

        yield Session(settings, WorkflowService(ledger, clock=_clock(settings)),
                      ledger, options)
    finally:
        ledger.close()


def _transfer(workflow: WorkflowService, digest: str, state: str | None = None
              ) -> ProposalStatus:
    """The transfer `digest`; with `state`, refused (before any node is asked) unless in it."""
    from reserve.proposals.proposal import TransferBody

    status = workflow.status(digest)
    if not isinstance(status.proposal.body, TransferBody):
        raise ConfigError(f"proposal {status.digest[:16]} is a {status.proposal.action}, not "
                          "a transfer: it is applied by `reserve proposal refresh`")
    if state is not None and status.state != state:
        step = _next(workflow, status)
        raise WorkflowError(f"transfer {status.digest[:16]} is {status.state}; this step needs "
                            f"{state}. Next: {step.text}")
    return status


def _next(workflow: WorkflowService, status: ProposalStatus) -> NextStep:
    from reserve.transfers.next_step import next_step

    policy = workflow.projection.vault(status.proposal.vault).policy
    decision = workflow.decision(status.digest) if status.state in OPEN else None
    return next_step(status, policy, decision, workflow.clock())


def _status_json(workflow: WorkflowService, status: ProposalStatus) -> dict[str, Any]:
    from reserve.proposals.proposal import TransferBody

    body = status.proposal.body
    assert isinstance(body, TransferBody)
    step = _next(workflow, status)
    return {"digest": status.digest, "state": status.state, "vault": status.proposal.vault,
            "chain": status.proposal.chain, "asset": body.asset,
            "outputs": [{"destination": o.destination, "amount": str(o.amount),
                         "amount_text": present.format_amount(o.amount, body.asset)}
                        for o in body.outputs],
            "txid": status.txid or None,
            "chain_steps": [step.kind for step in status.chain_steps],
            "next": step.to_json()}


def _status_human(workflow: WorkflowService, status: ProposalStatus) -> str:
    from reserve.proposals.proposal import TransferBody

    body = status.proposal.body
    assert isinstance(body, TransferBody)
    step = _next(workflow, status)
    lines = [f"transfer  {status.digest}", f"vault     {status.proposal.vault} "
             f"({status.proposal.chain})", f"state     {status.state}"]
    lines += [f"output    {present.format_amount(o.amount, body.asset)} to {o.destination}"
              for o in body.outputs]
    if status.txid:
        lines.append(f"txid      {status.txid}")
    lines += [f"step      {s.kind}" for s in status.chain_steps]
    lines.append(f"next      {step.text}")
    if step.who:
        lines.append(f"who       {', '.join(step.who)}")
    if step.command:
        lines.append(f"command   {step.command}")
    return "\n".join(lines)


def _nodes(btc_rpc_url: str | None, btc_rpc_user: str | None, evm_rpc_url: str | None,
           evm_key_file: Path | None, mainnet: bool) -> dict[str, Any]:
    return {"btc_rpc_url": btc_rpc_url, "btc_rpc_user": btc_rpc_user,
            "evm_rpc_url": evm_rpc_url, "evm_key_file": evm_key_file, "mainnet": mainnet}


def _on_chain(digest: str, state: str, config: Path | None, database_url: str | None,
              nodes: dict[str, Any], action: Callable[[Session, ProposalStatus], Any]
              ) -> dict[str, Any]:
    """One step on a transfer in `state` (checked before any node is asked), then its
    status and next step, with whatever mapping `action` returns merged in."""
    def run() -> dict[str, Any]:
        with _session(config, database_url, **nodes) as session:
            found = _transfer(session.workflow, digest, state)
            extra = action(session, found)
            shown = _status_json(session.workflow, session.workflow.status(found.digest))
            return {**shown, **(extra if isinstance(extra, dict) else {})}
    result: dict[str, Any] = _guarded(run)
    return result


@transfer_app.command("status")
def status(digest: Digest, config: Config = None, database_url: Database = None,
           as_json: Json = False) -> None:
    """Where a transfer is, its chain steps, and the next step with who must act."""
    def run() -> tuple[dict[str, Any], str]:
        with _session(config, database_url, write=False) as session:
            found = _transfer(session.workflow, digest)
            return (_status_json(session.workflow, found),
                    _status_human(session.workflow, found))
    data, human = _guarded(run)
    emit(data, as_json, human)


@transfer_app.command("release")
def release(digest: Digest, by: Operator, config: Config = None, database_url: Database = None,
            btc_rpc_url: BtcRpcUrl = None, btc_rpc_user: BtcRpcUser = None,
            evm_rpc_url: EvmRpcUrl = None, evm_key_file: EvmKeyFile = None,
            mainnet: Mainnet = False, as_json: Json = False) -> None:
    """Release a releasable transfer: the chain layer builds what the custodians sign."""
    data = _on_chain(digest, RELEASABLE, config, database_url, _nodes(
        btc_rpc_url, btc_rpc_user, evm_rpc_url, evm_key_file, mainnet),
        lambda session, found: session.workflow.release(found.digest, session.adapter(found),
                                                        actor=by))
    emit(data, as_json, f"released {data['digest']} to the chain layer "
         f"({', '.join(data['chain_steps'])})\nnext: {data['next']['text']}\n"
         f"      reserve transfer signing-package {data['digest'][:16]} --out PACKAGE")


@transfer_app.command("signing-package")
def package(digest: Digest, out: Annotated[Path | None, typer.Option(
                "--out", help="Write the package here (default: stdout).")] = None,
            config: Config = None, database_url: Database = None) -> None:
    """The signing package custodians verify and sign offline (reserve-sign btc-sign|evm-sign).

    It holds the ledger entries that decided the release, each proven against a checkpoint
    signed by the ledger key (one is signed now if needed), and the PSBT or Safe transaction.
    """
    def run() -> dict[str, Any]:
        from reserve.transfers.package import build_signing_package

        with _session(config, database_url) as session:
            found = _transfer(session.workflow, digest, SIGNING)
            return build_signing_package(session.ledger, found.digest)
    data = _guarded(run)
    from reserve.transfers.package import package_json

    text = package_json(data)
    if out is None:
        typer.echo(text, nl=False)
        return
    out.write_text(text)
    typer.echo(f"signing package for {data['digest'][:16]} ({len(data['entries'])} ledger "
               f"entries, proven against one signed checkpoint) written to {out}")


@transfer_app.command("submit-share")
def submit_share(digest: Digest,
                 share: Annotated[Path, typer.Argument(
                     exists=True, dir_okay=False,
                     help="Signed PSBT (Bitcoin) or signature JSON (EVM) from reserve-sign.")],
                 by: Annotated[str, typer.Option("--by", help="The custodian who signed.")],
                 config: Config = None, database_url: Database = None,
                 btc_rpc_url: BtcRpcUrl = None, btc_rpc_user: BtcRpcUser = None,
                 evm_rpc_url: EvmRpcUrl = None, evm_key_file: EvmKeyFile = None,
                 mainnet: Mainnet = False, as_json: Json = False) -> None:
    """Check one custodian's signature share against the recorded transaction and record it."""
    def action(session: Session, found: ProposalStatus) -> None:
        data = share.read_bytes()[:SHARE_BYTES_MAX + 1]
        if len(data) > SHARE_BYTES_MAX:
            raise ConfigError(f"{share}: larger than {SHARE_BYTES_MAX} bytes")
        signer, text = session.chains().share(found.proposal.vault, found.proposal.chain, by,
                                              data)
        session.workflow.add_signature_share(found.digest, session.adapter(found), signer,
                                             text)
    shown = _on_chain(digest, SIGNING, config, database_url, _nodes(
        btc_rpc_url, btc_rpc_user, evm_rpc_url, evm_key_file, mainnet), action)
    emit(shown, as_json, f"share of {by} recorded for {shown['digest'][:16]}\n"
         f"next: {shown['next']['text']}")


@transfer_app.command("broadcast")
def broadcast(digest: Digest, by: Operator, config: Config = None,
              database_url: Database = None, btc_rpc_url: BtcRpcUrl = None,
              btc_rpc_user: BtcRpcUser = None, evm_rpc_url: EvmRpcUrl = None,
              evm_key_file: EvmKeyFile = None, mainnet: Mainnet = False,
              as_json: Json = False) -> None:
    """Finalise with the shares collected and broadcast (refused if too few)."""
    data = _on_chain(digest, SIGNING, config, database_url, _nodes(
        btc_rpc_url, btc_rpc_user, evm_rpc_url, evm_key_file, mainnet),
        lambda session, found: session.workflow.broadcast(
            found.digest, session.adapter(found), actor=by))
    emit(data, as_json, f"broadcast {data['txid']}\nnext: {data['next']['text']}")


@transfer_app.command("confirm")
def confirm(digest: Digest, confirmations: Annotated[int, typer.Option(
                "--confirmations", min=1, help="Depth that counts as confirmed.")] = 1,
            config: Config = None, database_url: Database = None,
            btc_rpc_url: BtcRpcUrl = None, btc_rpc_user: BtcRpcUser = None,
            evm_rpc_url: EvmRpcUrl = None, mainnet: Mainnet = False,
            as_json: Json = False) -> None:
    """Ask the chain how deep the transaction is; record `confirmed` once deep enough."""
    data = _on_chain(digest, BROADCAST, config, database_url, _nodes(
        btc_rpc_url, btc_rpc_user, evm_rpc_url, None, mainnet),
        lambda session, found: {"depth": session.workflow.check_confirmation(
            found.digest, session.adapter(found), confirmations_min=confirmations)})
    emit(data, as_json, f"{data['txid']}: {data['depth']} confirmation(s); {data['state']}")
