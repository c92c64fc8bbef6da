"""`reserve propose|approve|freeze|unfreeze`, `reserve proposal|policy|destination ...`.

The operator's side of the custody workflow. Each command opens the ledger, lets the
workflow service validate and record, and prints a short human summary (or `--json`).
Domain errors become one line on stderr and exit code 2. Custodians sign approvals
offline with `reserve-sign approval sign` and upload the file with `reserve approve`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from reserve import present
from reserve.cli.common import emit, load_settings, open_ledger
from reserve.config import Settings
from reserve.errors import ConfigError, ReserveError
from reserve.present import format_duration, format_time
from reserve.proposals.state import STATES
from wallets import addresses

# The workflow, the policy engine and the ledger load when a command runs, not for
# `reserve --help` (tests/unit/test_cli_imports.py).
if TYPE_CHECKING:
    from reserve.policy.evaluate import Decision
    from reserve.transfers.projection import ProposalStatus, VaultState
    from reserve.transfers.service import WorkflowService

T = TypeVar("T")
NOW_ENV = "RESERVE_NOW"  # demo clock override, honoured on regtest only
EVM_RPC_URL_ENV = "RESERVE_EVM_RPC_URL"  # the freeze mirror's node (default: the config's)
EVM_KEY_FILE_ENV = "RESERVE_EVM_KEY_FILE"  # its registrar key (default: [evm] key_file)
FILE_BYTES_MAX = 1024 * 1024

proposal_app = typer.Typer(no_args_is_help=True, help="Show, list, cancel and advance proposals.")
policy_app = typer.Typer(no_args_is_help=True, help="Custody policies: load, show, change.")
destination_app = typer.Typer(no_args_is_help=True, help="The destination allowlist.")

Config = Annotated[Path | None, typer.Option("--config", help="Service config file.")]
Database = Annotated[str | None, typer.Option("--database-url", help="Ledger database URL.")]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
By = Annotated[str, typer.Option("--by", help="Member id of whoever acts.")]
Vault = Annotated[str, typer.Option("--vault", help="Vault id.")]
Purpose = Annotated[str, typer.Option("--purpose", help="Why (recorded and signed).")]
Reference = Annotated[str, typer.Option("--reference", help="External reference.")]
ExpiresIn = Annotated[int | None, typer.Option(
    "--expires-in", help="Seconds until expiry (default: the policy's maximum).")]


def register(app: typer.Typer) -> None:
    """Add the workflow commands to the `reserve` command (one call from main.py)."""
    app.command("propose")(propose)
    app.command("approve")(approve)
    app.command("freeze")(freeze)
    app.command("unfreeze")(unfreeze)
    app.add_typer(proposal_app, name="proposal")
    app.add_typer(policy_app, name="policy")
    app.add_typer(destination_app, name="destination")


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def _clock(source: Settings | str) -> Callable[[], datetime]:
    """The service's clock (`Settings.clock`: UTC time plus `[clock] offset_seconds`, which
    only a regtest config may set); RESERVE_NOW may fix it, only on regtest, so demos skip
    the waits. Given only a network name: UTC time, or RESERVE_NOW."""
    network = source if isinstance(source, str) else source.network
    override = os.environ.get(NOW_ENV)
    if not override:
        return (lambda: datetime.now(UTC)) if isinstance(source, str) else source.clock()
    if network != "regtest":
        raise ConfigError(f"{NOW_ENV} is only honoured on regtest, not on {network}")
    from reserve.proposals.proposal import parse_time

    fixed = parse_time(override)
    return lambda: fixed


@contextmanager
def _service(config: Path | None, database_url: str | None,
             write: bool = True) -> Iterator[WorkflowService]:
    from reserve.transfers.service import WorkflowService
    from wallets.chains import ChainOptions, ConfiguredGuards

    settings = load_settings(str(config) if config else None)
    ledger = open_ledger(settings, database_url, with_signer=write)
    try:
        # Every freeze or unfreeze a command records reaches the EVM vault's guard.
        yield WorkflowService(ledger, clock=_clock(settings),
                              freeze_mirror=ConfiguredGuards(settings, ledger, ChainOptions(
                                  evm_rpc_url=os.environ.get(EVM_RPC_URL_ENV) or None,
                                  evm_key_file=_env_path(EVM_KEY_FILE_ENV))))
    finally:
        ledger.close()


def _guarded(action: Callable[[], T]) -> T:
    """Domain errors become exactly one line on stderr (never wrapped) and exit code 2."""
    try:
        return action()
    except ReserveError as error:
        sys.stderr.write("error: " + " ".join(str(error).split()) + "\n")
        raise typer.Exit(2) from None


def _decision_json(decision: Decision) -> dict[str, Any]:
    return {"action": decision.action, "explanation": decision.explain(),
            **present.decision_fields(decision)}


def _status_json(status: ProposalStatus, decision: Decision | None) -> dict[str, Any]:
    return {"digest": status.digest, "state": status.state, "action": status.proposal.action,
            "vault": status.proposal.vault, "proposal": status.proposal.document(),
            "votes": [{"custodian": v.custodian, "decision": v.decision,
                       "recorded_at": format_time(v.recorded_at) if v.recorded_at else None}
                      for v in status.votes],
            "changes": [{"state": c.state, "at": format_time(c.at), "seq": c.seq,
                         "reason": c.reason} for c in status.changes],
            "chain_steps": [{"kind": s.kind} for s in status.chain_steps],
            "txid": status.txid or None,
            "decision": _decision_json(decision) if decision else None}


def _summary(status: ProposalStatus) -> str:
    from reserve.proposals.proposal import TransferBody

    body = status.proposal.body
    what = (f"{present.format_amount(body.amount, body.asset)} to "
            + ", ".join(o.destination for o in body.outputs)
            if isinstance(body, TransferBody) else status.proposal.action)
    return f"{status.digest[:16]}  {status.state:<10} {status.proposal.vault:<14} {what}"


def _human_status(status: ProposalStatus, decision: Decision | None) -> str:
    lines = [_summary(status), f"digest    {status.digest}",
             f"purpose   {status.proposal.purpose}  (ref {status.proposal.reference or '-'})",
             f"proposer  {status.proposal.proposer}; expires "
             f"{format_time(status.proposal.expires_at)}"]
    lines += [f"vote      {v.custodian}: {v.decision}" for v in status.votes]
    lines += [f"history   {format_time(c.at)} {c.state} ({c.reason})" for c in status.changes]
    if decision is not None:
        lines.append(f"policy    {decision.explain()}")
    return "\n".join(lines)


def _parse_output(text: str, asset: str) -> tuple[str, int]:
    address, separator, amount = text.rpartition("=")
    if not separator or not address:
        raise ConfigError(f"--to expects ADDRESS=AMOUNT (e.g. ADDRESS=0.2{asset} or base "
                          f"units), got {text!r}")
    return address, addresses.typed_amount(amount, asset, "--to amount")


def propose(vault: Vault, by: By, asset: Annotated[str, typer.Option(help="Asset, e.g. BTC.")],
            to: Annotated[list[str], typer.Option(
                "--to", help="ADDRESS=AMOUNT, in asset units (0.2 or 0.2BTC) or base units "
                             "(20000000, 20000000sat); repeatable.")],
            purpose: Purpose,
            fee_max: Annotated[str | None, typer.Option(
                "--fee-max", help="Fee cap (Bitcoin: required; units as --to). A Safe "
                                  "transfer pays no fee from the vault: 0.")] = None,
            reference: Reference = "", expires_in: ExpiresIn = None,
            flow_class: Annotated[str | None, typer.Option(
                "--flow-class", help="What the transfer is for the public-sector statement: "
                                     "purchase, sale, seizure, donation or internal_transfer "
                                     "(signed with the proposal).")] = None,
            config: Config = None, database_url: Database = None, as_json: Json = False,
            ) -> None:
    """Propose a transfer to allowlisted destinations."""
    def run() -> tuple[ProposalStatus, Decision]:
        outputs = [_parse_output(item, asset) for item in to]
        with _service(config, database_url) as service:
            chain = service.policy(vault).chain
            fee_cap = addresses.fee_cap(chain, asset, fee_max)
            addresses.check_transfer(chain, [amount for _, amount in outputs], fee_cap)
            status = service.propose_transfer(
                vault=vault, proposer=by, asset=asset, outputs=outputs, fee_max=fee_cap,
                purpose=purpose, reference=reference, expires_in_seconds=expires_in,
                flow_class=flow_class)
            return status, service.decision(status.digest)
    status, decision = _guarded(run)
    emit(_status_json(status, decision), as_json,
         f"proposed {_summary(status)}\ndigest {status.digest}\nnext: {decision.explain()}")


def approve(approval_file: Annotated[Path, typer.Argument(
                help="Signed approval or rejection from `reserve-sign approval sign`.")],
            config: Config = None, database_url: Database = None, as_json: Json = False,
            ) -> None:
    """Upload a custodian's signed approval (or rejection); it counts once verified."""
    def run() -> tuple[ProposalStatus, Decision]:
        try:
            data = approval_file.read_bytes()[:FILE_BYTES_MAX + 1]
            document = json.loads(data)
        except (OSError, ValueError) as error:
            raise ConfigError(f"cannot read approval file {approval_file}: {error}") from None
        from reserve.proposals import approval as approval_module

        vote = approval_module.from_document(document)
        with _service(config, database_url) as service:
            decision = service.vote(vote)
            return service.status(decision.digest), decision
    status, decision = _guarded(run)
    emit(_status_json(status, decision), as_json,
         f"recorded {status.votes[-1].decision} by {status.votes[-1].custodian}\n"
         f"{_summary(status)}\nnext: {decision.explain()}")


def freeze(vault: Annotated[str, typer.Argument(help="Vault id.")], by: By,
           reason: Annotated[str, typer.Option(help="Why (recorded).")] = "",
           config: Config = None, database_url: Database = None, as_json: Json = False,
           ) -> None:
    """Freeze a vault at once (any custodian or auditor): nothing is released.

    An EVM vault's guard is frozen in the same step, after the ledger entry; if the node
    is down the ledger freeze stands, the command fails saying so, and `reserve evm sync`
    re-applies it.
    """
    mirrored: list[str] = []

    def run() -> list[Any]:
        with _service(config, database_url) as service:
            entries = service.freeze(vault, by, reason)
            mirrored.extend(getattr(service.freeze_mirror, "sent", []))
            return entries
    entries = _guarded(run)
    chain = f"; guard frozen on chain (tx {mirrored[0]})" if mirrored else ""
    emit({"vault": vault, "frozen": True, "by": by, "seq": entries[0].seq,
          "chain_tx": mirrored[0] if mirrored else None}, as_json,
         f"{vault} frozen by {by} (ledger entry {entries[0].seq}){chain}; unfreezing needs "
         "a quorum: reserve unfreeze")


def unfreeze(vault: Annotated[str, typer.Argument(help="Vault id.")], by: By,
             purpose: Purpose, reference: Reference = "", expires_in: ExpiresIn = None,
             config: Config = None, database_url: Database = None, as_json: Json = False,
             ) -> None:
    """Propose to unfreeze a vault; it takes effect after a quorum and a delay."""
    def run() -> tuple[ProposalStatus, Decision]:
        with _service(config, database_url) as service:
            status = service.propose_unfreeze(vault=vault, proposer=by, purpose=purpose,
                                              reference=reference,
                                              expires_in_seconds=expires_in)
            return status, service.decision(status.digest)
    status, decision = _guarded(run)
    emit(_status_json(status, decision), as_json,
         f"unfreeze proposed: {status.digest}\nnext: {decision.explain()}")


@proposal_app.command("show")
def proposal_show(digest: Annotated[str, typer.Argument(help="Digest (or a unique prefix).")],
                  config: Config = None, database_url: Database = None,
                  as_json: Json = False) -> None:
    """A proposal, its votes and history, and what the policy says now."""
    def run() -> tuple[ProposalStatus, Decision | None]:
        with _service(config, database_url, write=False) as service:
            status = service.status(digest)
            open_states = {"proposed", "approved", "releasable"}
            return status, service.decision(status.digest) \
                if status.state in open_states else None
    status, decision = _guarded(run)
    emit(_status_json(status, decision), as_json, _human_status(status, decision))


@proposal_app.command("list")
def proposal_list(vault: Annotated[str | None, typer.Option(help="Only this vault.")] = None,
                  state: Annotated[list[str] | None, typer.Option(
                      help=f"Only these states ({', '.join(STATES)}).")] = None,
                  limit: Annotated[int, typer.Option(
                      min=1, max=10_000, help="At most this many (a page).")] = 100,
                  after: Annotated[int | None, typer.Option(
                      min=0, help="Only proposals created after this ledger seq (the "
                                  "cursor the page before printed).")] = None,
                  newest: Annotated[bool, typer.Option(
                      "--newest", help="Newest first (then --after does not apply).")] = False,
                  config: Config = None, database_url: Database = None,
                  as_json: Json = False) -> None:
    """Proposals, oldest first, a page at a time."""
    from reserve.transfers.projection import ProposalQuery

    unknown = sorted(set(state or ()) - set(STATES))
    if unknown:
        typer.echo(f"error: unknown state {', '.join(unknown)}; the states are "
                   f"{', '.join(STATES)}", err=True)
        raise typer.Exit(2)
    if newest and after is not None:
        typer.echo("error: --after pages oldest first; leave out --newest", err=True)
        raise typer.Exit(2)
    query = ProposalQuery(vaults=None if vault is None else frozenset({vault}),
                          states=frozenset(state) if state else None,
                          after_seq=after, limit=limit + 1, newest_first=newest)

    def run() -> list[ProposalStatus]:
        with _service(config, database_url, write=False) as service:
            return service.page(query)
    found = _guarded(run)
    shown = found[:limit]
    more = f"\nmore: --after {shown[-1].seq}" if len(found) > limit and not newest else \
        "\nmore: raise --limit" if len(found) > limit else ""
    emit([_status_json(s, None) for s in shown], as_json,
         ("\n".join(_summary(s) for s in shown) or "no proposals") + more)


@proposal_app.command("cancel")
def proposal_cancel(digest: Annotated[str, typer.Argument(help="Digest or unique prefix.")],
                    by: By, reason: Annotated[str, typer.Option(help="Why.")] = "cancelled",
                    config: Config = None, database_url: Database = None,
                    as_json: Json = False) -> None:
    """Cancel a proposal before signing starts (proposer, custodian or auditor)."""
    def run() -> ProposalStatus:
        with _service(config, database_url) as service:
            return service.cancel(digest, by, reason)
    status = _guarded(run)
    emit(_status_json(status, None), as_json, f"cancelled {_summary(status)}")


@proposal_app.command("refresh")
def proposal_refresh(vault: Annotated[str | None, typer.Option(help="Only this vault.")] = None,
                     config: Config = None, database_url: Database = None,
                     as_json: Json = False) -> None:
    """Record transitions that time has made due (delays over, expiries, applications)."""
    def run() -> list[Any]:
        with _service(config, database_url) as service:
            return service.refresh(vault=vault)
    entries = _guarded(run)
    emit([e.to_json() for e in entries], as_json,
         "\n".join(_refreshed(e) for e in entries) or "nothing due")


def _refreshed(entry: Any) -> str:
    """One line per entry a refresh wrote: a proposal's move, or what was applied."""
    from reserve.events.workflow import ProposalCancelled, ProposalExpired, ProposalState

    event = entry.event
    if isinstance(event, ProposalState | ProposalCancelled | ProposalExpired):
        return (f"{entry.seq}: {entry.kind} {event.digest[:16]} "
                f"{event.source} -> {event.target}")
    digest = getattr(event, "digest", "")
    return f"{entry.seq}: {entry.kind} {digest[:16] if isinstance(digest, str) else ''}"


def _vault_json(state: VaultState) -> dict[str, Any]:
    from reserve.policy import loader

    return {"vault": state.vault, "policy": loader.to_document(state.policy),
            "versions": [{"version": v, "policy_sha256": sha, "seq": seq}
                         for v, sha, seq in state.policy_versions],
            "frozen": state.freeze is not None,
            "freeze": {"since": format_time(state.freeze.since), "by": state.freeze.by,
                       "reason": state.freeze.reason} if state.freeze else None,
            "added_destinations": [{"asset": d.asset, "address": d.address, "label": d.label,
                                    "usable_from": format_time(d.usable_from)}
                                   for d in state.destinations]}


def _asset(amount: int, asset: str) -> str:
    """'0.10000000 BTC (10000000 sat)': asset units, then the base units recorded."""
    unit = present.unit_of(asset)
    return f"{present.format_amount(amount, asset)} ({amount} {unit.base})"


def _vault_human(state: VaultState) -> str:
    policy = state.policy
    lines = [f"vault {policy.vault}: policy v{policy.version} on {policy.network} "
             f"({policy.chain})",
             "frozen since " + format_time(state.freeze.since) + f" by {state.freeze.by}"
             if state.freeze else "not frozen"]
    lines += [f"custodian {c.id} ({c.institution})" for c in policy.custodians]
    for rules in policy.assets:
        for tier in rules.tiers:
            top = (f" to {_asset(tier.amount_max, rules.asset)}" if tier.amount_max is not None
                   else " and above")
            lines.append(f"{rules.asset} tier {tier.name}: {_asset(tier.amount_min, rules.asset)}"
                         f"{top}"
                         f" -> {tier.rule.approvals_min} approvals from "
                         f"{tier.rule.institutions_min} institutions, "
                         f"{format_duration(tier.rule.delay_seconds)} delay")
        lines += [f"{rules.asset} velocity: {_asset(v.amount_max, rules.asset)}"
                  f" per {format_duration(v.window_seconds)}" for v in rules.velocity]
    lines += [f"destination {d.label}: {d.address}" for d in policy.destinations]
    lines += [f"destination {d.label}: {d.address} (usable from "
              f"{format_time(d.usable_from)})" for d in state.destinations]
    return "\n".join(lines)


@policy_app.command("load")
def policy_load(policy_file: Annotated[Path, typer.Argument(help="Policy TOML (v1).")], by: By,
                config: Config = None, database_url: Database = None,
                as_json: Json = False) -> None:
    """Record a new vault's first policy (v1) in the ledger."""
    from reserve.policy import loader

    def run() -> tuple[str, list[Any]]:
        policy = loader.load_file(policy_file)
        with _service(config, database_url) as service:
            return policy.vault, service.register_policy(policy, by)
    vault, entries = _guarded(run)
    emit({"vault": vault, "recorded": bool(entries)}, as_json,
         f"policy of {vault} recorded" if entries else f"policy of {vault} already recorded")


@policy_app.command("show")
def policy_show(vault: Annotated[str, typer.Argument(help="Vault id.")],
                config: Config = None, database_url: Database = None,
                as_json: Json = False) -> None:
    """The policy in force for a vault, its versions, freeze and added destinations."""
    def run() -> VaultState:
        with _service(config, database_url, write=False) as service:
            return service.sync().vault(vault)
    state = _guarded(run)
    emit(_vault_json(state), as_json, _vault_human(state))


@policy_app.command("check")
def policy_check(policy_file: Annotated[Path, typer.Argument(help="Policy TOML.")],
                 as_json: Json = False) -> None:
    """Validate a policy file without recording anything."""
    from reserve.policy import loader

    policy = _guarded(lambda: loader.load_file(policy_file))
    emit({"vault": policy.vault, "version": policy.version,
          "policy_sha256": loader.policy_sha256(policy)}, as_json,
         f"{policy_file}: valid policy {policy.vault} v{policy.version}")


@policy_app.command("propose-change")
def policy_propose_change(policy_file: Annotated[Path, typer.Argument(
                              help="The new policy TOML (version = current + 1).")],
                          by: By, purpose: Purpose, reference: Reference = "",
                          expires_in: ExpiresIn = None, config: Config = None,
                          database_url: Database = None, as_json: Json = False) -> None:
    """Propose a new policy version; approved under the policy in force."""
    from reserve.policy import loader

    def run() -> tuple[ProposalStatus, Decision]:
        policy = loader.load_file(policy_file)
        with _service(config, database_url) as service:
            status = service.propose_policy_change(policy=policy, proposer=by,
                                                   purpose=purpose, reference=reference,
                                                   expires_in_seconds=expires_in)
            return status, service.decision(status.digest)
    status, decision = _guarded(run)
    emit(_status_json(status, decision), as_json,
         f"policy change proposed: {status.digest}\nnext: {decision.explain()}")


@destination_app.command("propose")
def destination_propose(vault: Vault, by: By,
                        asset: Annotated[str, typer.Option(help="Asset, e.g. BTC.")],
                        address: Annotated[str, typer.Option(help="Destination address.")],
                        label: Annotated[str, typer.Option(help="Readable label.")],
                        purpose: Purpose, reference: Reference = "",
                        expires_in: ExpiresIn = None, config: Config = None,
                        database_url: Database = None, as_json: Json = False) -> None:
    """Propose adding a destination; usable after approval and a cooling-off period."""
    def run() -> tuple[ProposalStatus, Decision]:
        with _service(config, database_url) as service:
            policy = service.policy(vault)
            addresses.check_destination(policy.chain, policy.network, asset, address)
            status = service.propose_destination(
                vault=vault, proposer=by, asset=asset, address=address, label=label,
                purpose=purpose, reference=reference, expires_in_seconds=expires_in)
            return status, service.decision(status.digest)
    status, decision = _guarded(run)
    emit(_status_json(status, decision), as_json,
         f"destination proposed: {status.digest}\nnext: {decision.explain()}")
