"""`reserve wallet ...`, `reserve flow ...`, `reserve statement ...`: the public-sector
statement (docs/transparency.md).

`wallet register` checks the descriptors with the node, imports a watched wallet
watch-only, and records `wallet.registered`; `flow attribute` and `flow confirm` record an
operator's and an auditor's attribution of a flow; `statement build` walks the period's
blocks, signs with the auditor's key (RESERVE_AUDITOR_PASSPHRASE or a prompt), checks the
statement into the ledger and writes JSON, CSV and HTML; `statement verify` needs only the
statement, the auditor's public key and a node (and, optionally, a ledger export).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from reserve.cli.common import emit, fail, load_settings, open_ledger, verdict, working
from reserve.cli.reconcile import (
    DEFAULT_KEY,
    AuditorKeys,
    Config,
    KeyFile,
    RpcPassword,
    RpcUrl,
    RpcUser,
    _auditor_passphrase,
    _configured,
    _guard,
    _keys,
    _read_json,
    _rpc,
)
from reserve.errors import ReportRejected, StatementRejected

wallet_app = typer.Typer(no_args_is_help=True, add_completion=False,
                         help="The registry of public-sector wallets the statement covers.")
flow_app = typer.Typer(no_args_is_help=True, add_completion=False,
                       help="Attribute a flow to a class: an operator proposes, an auditor "
                            "confirms.")
statement_app = typer.Typer(no_args_is_help=True, add_completion=False,
                            help="The consolidated public-sector statement: build, verify.")
AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
By = Annotated[str, typer.Option("--by", help="Member id of whoever acts (policy roles).")]
DEFAULT_OUTPUT = "var/statements"


@wallet_app.command("register")
def wallet_register(
        name: Annotated[str, typer.Argument(help="Wallet name (a-z 0-9 . _ -).")],
        institution: Annotated[str, typer.Option(help="Who holds it.")],
        role: Annotated[str, typer.Option(
            help="What it is for: national reserve, mining payout, seized assets ...")],
        descriptor: Annotated[list[str], typer.Option(
            "--descriptor", help="An output descriptor (public keys only; one branch each); "
                                 "repeatable.")] = [],  # noqa: B006 (typer reads it)
        address: Annotated[list[str], typer.Option(
            "--address", help="An address of the wallet; repeatable.")] = [],  # noqa: B006
        vault_config: Annotated[Path | None, typer.Option(
            "--vault-config", help="A vault's config (config/vaults/*.toml): its two "
                                   "branches, held in custody.")] = None,
        watched: Annotated[bool | None, typer.Option(
            "--watched/--custody", help="Only watched (imported watch-only on the node) or "
                                        "held in custody here (default: custody with "
                                        "--vault-config, else watched).")] = None,
        range_end: Annotated[int, typer.Option(
            "--range-end", help="Ranged descriptors are scanned over 0..this index.")] = 999,
        birth_height: Annotated[int, typer.Option(
            "--birth-height", help="No coin of the wallet is older than this block.")] = 0,
        config: Config = None, rpc_url: RpcUrl = None, rpc_user: RpcUser = None,
        rpc_password: RpcPassword = None, as_json: AsJson = False) -> None:
    """Register a public-sector wallet (recorded as `wallet.registered`)."""
    def action() -> tuple[Any, Any]:
        from reserve.reconcile.bitcoin import vault_descriptors
        from reserve.statement.run import register_wallet
        from reserve.statement.wallets import PublicWallet
        from wallets.bitcoin.vault import load_vault

        settings = load_settings(str(config) if config else None)
        descriptors = [*descriptor, *address]
        network = settings.network
        if vault_config is not None:
            vault = load_vault(vault_config)
            descriptors = [*vault_descriptors(vault), *descriptors]
            network = vault.network
        wallet = PublicWallet(
            name=name, institution=institution, role=role,
            custody="watched" if (watched if watched is not None else vault_config is None)
            else "custody", chain="bitcoin", network=network, descriptors=tuple(descriptors),
            range_end=range_end, birth_height=birth_height)
        node = _rpc(settings, rpc_url, rpc_user, rpc_password)
        with open_ledger(settings) as ledger:
            entry = register_wallet(ledger, node, wallet, actor="operator")
            return entry, entry.payload
    entry, payload = _guard(action)
    emit({"seq": entry.seq, **payload}, as_json,
         f"registered {payload['name']} ({payload['custody']}, {payload['role']}, "
         f"{payload['institution']}): {len(payload['descriptors'])} descriptor(s), "
         f"ledger entry {entry.seq}")


@wallet_app.command("list")
def wallet_list(config: Config = None, as_json: AsJson = False) -> None:
    """The registered wallets, in registration order."""
    def action() -> list[Any]:
        from reserve.statement.wallets import registered

        settings = load_settings(str(config) if config else None)
        with open_ledger(settings, with_signer=False) as ledger:
            return registered(ledger.entries())
    wallets = _guard(action)
    emit([w.to_json() for w in wallets], as_json,
         "\n".join(f"{w.name:<24} {w.custody:<8} {w.role:<20} {w.institution}\n"
                   + "\n".join(f"    {d}" for d in w.descriptors) for w in wallets)
         or "no wallets registered")


@flow_app.command("attribute")
def flow_attribute(txid: Annotated[str, typer.Argument(help="The transaction.")],
                   wallet: Annotated[str, typer.Option(help="The registered wallet.")],
                   flow_class: Annotated[str, typer.Option(
                       "--class", help="purchase, sale, seizure or donation.")],
                   note: Annotated[str, typer.Option(help="Why (recorded).")], by: By,
                   config: Config = None, as_json: AsJson = False) -> None:
    """Propose the class of a flow (an operator); it counts once an auditor confirms."""
    def action() -> Any:
        from reserve.statement.records import propose_attribution

        settings = load_settings(str(config) if config else None)
        with open_ledger(settings) as ledger:
            return propose_attribution(ledger, txid=txid, wallet=wallet,
                                       flow_class=flow_class, note=note, by=by)
    entry = _guard(action)
    emit({"seq": entry.seq, **entry.payload}, as_json,
         f"attribution proposed (entry {entry.seq}): {txid} -> {flow_class} for {wallet}; "
         f"an auditor confirms it with: reserve flow confirm {entry.seq} --by AUDITOR")


@flow_app.command("confirm")
def flow_confirm(proposed_seq: Annotated[int, typer.Argument(
                     help="The ledger entry of the proposed attribution.")], by: By,
                 config: Config = None, as_json: AsJson = False) -> None:
    """Confirm an attribution (an auditor, not its proposer)."""
    def action() -> Any:
        from reserve.statement.records import confirm_attribution

        settings = load_settings(str(config) if config else None)
        with open_ledger(settings) as ledger:
            return confirm_attribution(ledger, proposed_seq=proposed_seq, by=by)
    entry = _guard(action)
    from reserve.events.transparency import FlowAttributionConfirmed

    confirmed = FlowAttributionConfirmed.of(entry)
    emit({"seq": entry.seq, **confirmed.to_payload()}, as_json,
         f"attribution confirmed (entry {entry.seq}): {confirmed.txid} is "
         f"{confirmed.flow_class} for {confirmed.wallet}")


def _time(text: str) -> datetime:
    from reserve.proposals.proposal import parse_time

    moment: datetime = _guard(lambda: parse_time(text))
    return moment


def _heights(node: Any, start: str | None, end: str | None, start_height: int | None,
             end_height: int | None) -> tuple[int, int, tuple[datetime | None, datetime | None]]:
    if (start is None) != (end is None):
        fail("give both --period-start and --period-end")
    if start is not None and (start_height is not None or end_height is not None):
        fail("give a period by time (--period-start/--period-end) or by height "
             "(--start-height/--end-height), not both")
    if start is not None and end is not None:
        from reserve.statement.chain import heights_of_period

        moments = (_time(start), _time(end))
        first, last = _guard(lambda: heights_of_period(node, moments[0], moments[1]))
        return first, last, (moments[0], moments[1])
    if start_height is None or end_height is None:
        fail("give --period-start and --period-end (or --start-height and --end-height)")
    return int(start_height), int(end_height), (None, None)  # type: ignore[arg-type]


@statement_app.command("build")
def statement_build(
        period_start: Annotated[str | None, typer.Option(
            "--period-start", help="ISO time; blocks whose median time past is in "
                                   "[start, end).")] = None,
        period_end: Annotated[str | None, typer.Option("--period-end")] = None,
        start_height: Annotated[int | None, typer.Option(
            "--start-height", help="Or the first block of the period ...")] = None,
        end_height: Annotated[int | None, typer.Option(
            "--end-height", help="... and its last block.")] = None,
        output: Annotated[Path | None, typer.Option("--output-dir", help=(
            f"Where the exports go (default: [statement] output_dir, else "
            f"{DEFAULT_OUTPUT}))."))] = None,
        key_path: KeyFile = None, config: Config = None, rpc_url: RpcUrl = None,
        rpc_user: RpcUser = None, rpc_password: RpcPassword = None,
        as_json: AsJson = False) -> None:
    """Build the consolidated statement of a period; sign, check into the ledger, export."""
    def action() -> tuple[dict[str, Any], int, Path]:
        from reserve.reconcile.report import load_auditor_key
        from reserve.statement.export import write_exports
        from reserve.statement.run import publish

        settings = load_settings(str(config) if config else None)
        node = _rpc(settings, rpc_url, rpc_user, rpc_password)
        first, last, moments = _heights(node, period_start, period_end, start_height,
                                        end_height)
        signer = load_auditor_key(
            _configured(settings, "auditor_key_file", key_path, DEFAULT_KEY),
            _auditor_passphrase())
        from reserve.statement.commitments import parse

        table: dict[str, Any] = settings.raw.get("statement", {})
        commitments = parse(table.get("commitments"))
        with open_ledger(settings) as ledger, working("walking the period's blocks"):
            document, entry = publish(ledger, node, signer, start_height=first,
                                      end_height=last, period=moments,
                                      commitments=commitments)
        folder = Path(settings.resolve(output if output is not None
                                       else table.get("output_dir", DEFAULT_OUTPUT)))
        return document, entry.seq, write_exports(document, folder)
    document, seq, stem = _guard(action)
    body = document["report"]
    emit({"entry_seq": seq, "files": str(stem),
          "statement_sha256": document["signature"]["report_sha256"],
          "blocks": body["blocks"], "consolidated": body["consolidated"],
          "wallets": [{k: w[k] for k in ("wallet", "opening_sats", "closing_sats", "flows")}
                      for w in body["wallets"]],
          "commitments": body.get("commitments", [])}, as_json, _human(body, seq, stem))


def _human(body: dict[str, Any], seq: int | None, stem: Path) -> str:
    blocks, public = body["blocks"], body["consolidated"]
    entry = "" if seq is None else f"ledger entry {seq}; "
    lines = [f"statement of blocks {blocks['start_height']}..{blocks['end_height']} "
             f"({entry}{stem}.json/.csv/.html)",
             f"public sector: opening {public['opening_sats']} sat, closing "
             f"{public['closing_sats']} sat"]
    lines += [f"  {f['class']:<18} {f['sats']:>16} sat" for f in public["flows"]]
    for wallet in body["wallets"]:
        lines.append(f"{wallet['wallet']}: opening {wallet['opening_sats']} sat, closing "
                     f"{wallet['closing_sats']} sat")
        lines += [f"  {f['class']:<18} {f['sats']:>16} sat" for f in wallet["flows"]]
    for kept in body.get("commitments", []):
        state = "kept" if kept["kept"] else "BROKEN: " + "; ".join(kept["findings"])
        lines.append(f"commitment {kept['id']} ({kept['text']}): {state}")
    return "\n".join(lines)


@statement_app.command("check")
def statement_check(
        start_height: Annotated[int | None, typer.Option(
            "--start-height", help="First block (default: the block after the latest "
                                   "published statement's last, else the wallets' "
                                   "earliest birth height).")] = None,
        config: Config = None, rpc_url: RpcUrl = None, rpc_user: RpcUser = None,
        rpc_password: RpcPassword = None, as_json: AsJson = False) -> None:
    """The commitments between statements: the figures from the last statement to the
    chain's tip, computed as a statement would, neither signed nor published. Exit 1 when
    a commitment is broken (run it on a timer to watch them continuously)."""
    def action() -> dict[str, Any]:
        from reserve.statement.commitments import parse
        from reserve.statement.run import build
        from reserve.statement.statement import latest

        settings = load_settings(str(config) if config else None)
        table: dict[str, Any] = settings.raw.get("statement", {})
        commitments = parse(table.get("commitments"))
        if not commitments:
            fail("no commitment is declared: add [[statement.commitments]] to the config")
        node = _rpc(settings, rpc_url, rpc_user, rpc_password)
        with open_ledger(settings) as ledger:
            first = start_height
            if first is None:
                last = latest(ledger)
                first = int(last["blocks"]["end_height"]) + 1 if last is not None else 0
            tip = int(node.getblockcount())
            if first > tip:
                fail(f"no block after {first - 1} yet (the tip is {tip})")
            with working("walking the blocks since the last statement"):
                return build(ledger, node, start_height=first, end_height=tip,
                             commitments=commitments)
    body = _guard(action)
    results = body["commitments"]
    broken = [c for c in results if not c["kept"]]
    emit({"blocks": body["blocks"], "consolidated": body["consolidated"],
          "commitments": results, "kept": not broken}, as_json,
         "\n".join([f"blocks {body['blocks']['start_height']}..{body['blocks']['end_height']}"
                    " (not signed, not published)"]
                   + [f"commitment {c['id']} ({c['text']}): "
                      + ("kept" if c["kept"] else "BROKEN: " + "; ".join(c["findings"]))
                      for c in results]))
    if broken:
        raise typer.Exit(1)


@statement_app.command("show")
def statement_show(
        statement: Annotated[Path, typer.Argument(help="The statement's JSON export.")],
        csv: Annotated[bool, typer.Option("--csv", help="Its CSV export.")] = False,
        html: Annotated[bool, typer.Option("--html", help="Its HTML page.")] = False,
        as_json: AsJson = False) -> None:
    """Show a statement: consolidated and per-wallet figures (or its CSV / HTML export)."""
    from reserve.statement import export

    document = _read_json(statement)
    if not isinstance(document, dict) or not isinstance(document.get("report"), dict) \
            or "consolidated" not in document["report"]:
        fail(f"{statement} is not a signed public-sector statement")
    if csv or html:
        typer.echo(export.to_csv(document) if csv else export.to_html(document), nl=False)
        return
    emit(document, as_json, _human(document["report"], None, statement.with_suffix("")))


@statement_app.command("verify")
def statement_verify(
        statement: Annotated[Path, typer.Argument(help="The statement's JSON export.")],
        auditor_keys: AuditorKeys = [],  # noqa: B006 (typer reads the default)
        ledger_export: Annotated[Path | None, typer.Option(
            "--export", help="Also check it against this ledger export (`reserve ledger "
                             "export`): published, registry and decisions as recorded.")
        ] = None,
        ledger_key: Annotated[str | None, typer.Option("--ledger-key")] = None,
        config: Config = None, rpc_url: RpcUrl = None, rpc_user: RpcUser = None,
        rpc_password: RpcPassword = None, as_json: AsJson = False) -> None:
    """Re-derive STATEMENT from its pinned blocks, its registered descriptors and a node;
    exit 1 if it does not hold, 2 if it cannot be checked here."""
    if not auditor_keys:
        fail("give the auditor's public key with --auditor-key")
    document = _read_json(statement)
    settings = load_settings(str(config) if config else None)

    def check() -> Any:
        from reserve.statement.run import verify

        entries = _export_entries(ledger_export, ledger_key, document) \
            if ledger_export else None
        return verify(document, _keys(auditor_keys),
                      _rpc(settings, rpc_url, rpc_user, rpc_password), entries)
    body = verdict(check, as_json, (StatementRejected, ReportRejected))
    sha = document["signature"]["report_sha256"]
    emit({"holds": True, "statement_sha256": sha, "blocks": body["blocks"],
          "ledger_checked": ledger_export is not None}, as_json,
         f"HOLDS: statement {sha} re-derived from blocks {body['blocks']['start_height']}.."
         f"{body['blocks']['end_height']}"
         + ("" if ledger_export else " (ledger not checked: give --export)"))


def _export_entries(path: Path, ledger_key: str | None, document: Any) -> list[Any]:
    """The entries of a verified ledger export whose checkpoint the statement names."""
    from reserve.ledger.checkpoint import VerifierKey
    from reserve.ledger.entry import decode_body
    from reserve.reconcile.verify import _ledger  # the reconciliation's export check

    key = VerifierKey.parse(ledger_key) if ledger_key else None
    rows, _key, _notes = _ledger(path, key, document["report"])
    return [decode_body(body, entry_hash) for _seq, body, entry_hash in rows]
