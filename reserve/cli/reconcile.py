"""`reserve reconcile ...`: run, show and verify signed reconciliation reports, and publish
proof-of-reserves statements.

`run` checkpoints the ledger, scans each vault at one pinned block, signs the report with
the auditor's key (encrypted keystore; passphrase from RESERVE_AUDITOR_PASSPHRASE or a
prompt), checks its hash into the ledger and writes JSON, CSV and HTML exports. `verify`
needs only the report, a ledger export, a node and the auditor's public key.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from reserve import present
from reserve.cli.common import emit, fail, load_settings, open_ledger, verdict, working
from reserve.errors import ReportRejected, ReserveError

# The reconciliation itself and the chain stacks (bitcoinlib, web3) load in the commands
# that use them, not for `reserve --help`.
if TYPE_CHECKING:
    from reserve.ledger.checkpoint import VerifierKey
    from wallets.bitcoin.rpc import BitcoinRPC

reconcile_app = typer.Typer(no_args_is_help=True, add_completion=False,
                            help="Reconciliation reports: ledger against chain, signed.")
PASSPHRASE_ENV = "RESERVE_AUDITOR_PASSPHRASE"  # noqa: S105 (a variable name)
DEFAULT_KEY = "var/keys/auditor.json"
DEFAULT_RPC_URL = "http://127.0.0.1:18443"
FILE_BYTES_MAX = 64 * 1024 * 1024
ANVIL_CHAIN_ID = 31337

Config = Annotated[Path | None, typer.Option("--config", help="Service config.")]
RpcUrl = Annotated[str | None, typer.Option(envvar="RESERVE_BTC_RPC_URL")]
RpcUser = Annotated[str | None, typer.Option(envvar="RESERVE_BTC_RPC_USER")]
RpcPassword = Annotated[str | None, typer.Option(envvar="RESERVE_BTC_RPC_PASSWORD")]
AuditorKeys = Annotated[list[str], typer.Option(
    "--auditor-key", help="An auditor's public key (text or file); repeatable.")]
EvmRpcUrl = Annotated[str | None, typer.Option(
    "--evm-rpc-url", envvar="RESERVE_EVM_RPC_URL", help="EVM JSON-RPC URL.")]
AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
KeyFile = Annotated[Path | None, typer.Option("--key-file", help=(
    f"The auditor's keystore (default: [reconcile] auditor_key_file, else {DEFAULT_KEY})."))]
DEFAULT_OUTPUT = "var/reconcile"


def _configured(settings: Any, key: str, given: Path | None, default: str) -> Path:
    """`given`, else the config's `[reconcile] key`, else `default`; against the config's root."""
    table: dict[str, Any] = settings.raw.get("reconcile", {})
    value = given if given is not None else table.get(key, default)
    if not isinstance(value, str | Path):
        fail(f"config.reconcile.{key}: expected a path, got {value!r}")
    return Path(settings.resolve(value))


def _rpc(settings: Any, url: str | None, user: str | None, password: str | None) -> BitcoinRPC:
    from wallets.bitcoin.rpc import BitcoinRPC

    table: dict[str, Any] = settings.raw.get("bitcoin", {})
    return BitcoinRPC(url=url or table.get("rpc_url", DEFAULT_RPC_URL),
                      user=user or table.get("rpc_user", ""),
                      password=password or os.environ.get(
                          table.get("rpc_password_env", "RESERVE_BTC_RPC_PASSWORD"), ""))


def _read_json(path: Path) -> Any:
    if path.stat().st_size > FILE_BYTES_MAX:
        fail(f"{path} is larger than {FILE_BYTES_MAX} bytes")
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        fail(f"cannot read {path}: {error}")


def _auditor_passphrase() -> str:
    """The auditor key's passphrase, from RESERVE_AUDITOR_PASSPHRASE or a prompt."""
    from reserve import keystore

    return keystore.passphrase_from_env(PASSPHRASE_ENV, prompt="auditor passphrase: ")


def _keys(texts: list[str]) -> tuple[VerifierKey, ...]:
    from reserve.reconcile.report import parse_auditor_keys

    lines = [(Path(t).read_text() if Path(t).is_file() else t).strip().splitlines()[0]
             for t in texts]
    return parse_auditor_keys(lines)


def _guard(action: Any) -> Any:
    try:
        return action()
    except ReserveError as error:
        fail(str(error))


@reconcile_app.command("auditor-key")
def auditor_key(name: str = typer.Option("auditor-general", "--name"),
                key_path: KeyFile = None,
                config: Config = None) -> None:
    """Create the auditor's Ed25519 key in the encrypted keystore; print its public key."""
    from reserve.reconcile.report import create_auditor_key

    settings = load_settings(str(config) if config else None)
    passphrase = _auditor_passphrase()
    path = _configured(settings, "auditor_key_file", key_path, DEFAULT_KEY)
    signer = _guard(lambda: create_auditor_key(path, name, passphrase))
    typer.echo(signer.verifier.encode())


@reconcile_app.command("run")
def run(vault: Annotated[list[Path], typer.Option("--vault", help="Vault config; repeatable.")
                         ] = [],  # noqa: B006 (typer reads the default)
        evm_vault: Annotated[list[str], typer.Option(
            "--evm-vault", help="EVM vault id (registered by `reserve evm deploy`); "
                                "repeatable.")] = [],  # noqa: B006
        evm_rpc_url: Annotated[str | None, typer.Option(
            "--evm-rpc-url", envvar="RESERVE_EVM_RPC_URL", help="EVM JSON-RPC URL.")] = None,
        registry: str = typer.Option(None, "--registry", help=(
            "ReserveRegistry to anchor the report hash in (default: the EVM vaults' own, "
            "when --evm-rpc-url is given).")),
        anchor: bool = typer.Option(True, "--anchor/--no-anchor",
                                    help="Anchor the report hash when a registry is known."),
        evm_key_file: Path = typer.Option(None, "--evm-key-file", help=(
            "Anchoring key keystore (RESERVE_EVM_KEY_PASSPHRASE); anvil: TEST deployer.")),
        output: Path = typer.Option(None, "--output-dir", help=(
            "Where the exports go (default: [reconcile] output_dir, else var/reconcile).")),
        key_path: KeyFile = None,
        range_end: int = typer.Option(None, "--range-end", help="Highest derivation index."),
        mainnet: bool = typer.Option(False, "--mainnet"), config: Config = None,
        rpc_url: RpcUrl = None, rpc_user: RpcUser = None, rpc_password: RpcPassword = None,
        as_json: AsJson = False) -> None:
    """Reconcile vaults at the chain tip; sign, check into the ledger, export, anchor."""
    if not vault and not evm_vault:
        fail("give at least one --vault (Bitcoin) or --evm-vault")
    if evm_vault and not evm_rpc_url:
        fail("EVM vaults need --evm-rpc-url (or RESERVE_EVM_RPC_URL)")

    def action() -> tuple[dict[str, Any], int, Path, Any, dict[str, Any]]:
        from reserve.reconcile import export
        from reserve.reconcile.bitcoin import wallet_range_end
        from reserve.reconcile.evm import token_units
        from reserve.reconcile.report import load_auditor_key
        from reserve.reconcile.run import run_report
        from wallets.bitcoin.networks import require_network_allowed
        from wallets.bitcoin.vault import load_vault

        settings = load_settings(str(config) if config else None)
        vaults = [load_vault(path) for path in vault]
        for model in vaults:
            require_network_allowed(model.network, mainnet_enabled=settings.mainnet_enabled,
                                    mainnet_flag=mainnet)
        node = _rpc(settings, rpc_url, rpc_user, rpc_password) if vaults else None
        scopes = [(m, range_end if range_end is not None else
                   wallet_range_end(node.for_wallet(f"reserve-{m.vault_id}")))
                  for m in vaults] if node else []
        w3 = _evm_connect(settings, evm_rpc_url, mainnet) if evm_rpc_url else None
        passphrase = _auditor_passphrase()
        signer = load_auditor_key(
            _configured(settings, "auditor_key_file", key_path, DEFAULT_KEY), passphrase)
        with open_ledger(settings) as ledger:
            evm = (w3, [_evm_target(ledger, w3, v) for v in evm_vault]) if evm_vault else None
            with working("scanning vaults at a pinned block and reconciling"):
                document, entry = run_report(ledger, node, scopes, signer, evm=evm,
                                             actor=f"auditor:{signer.verifier.name}")
            anchored = _anchor(ledger, w3, registry, evm_key_file, document) \
                if anchor and w3 is not None else None
        folder = _configured(settings, "output_dir", output, DEFAULT_OUTPUT)
        tokens = token_units(w3, [t for target in evm[1] for t in target.tokens]) \
            if evm and w3 is not None else {}
        return (document, entry.seq, export.write_exports(document, folder, tokens), anchored,
                tokens)
    document, seq, stem, anchored, tokens = _guard(action)
    _report_run(document, seq, stem, anchored, as_json, tokens)


def _evm_connect(settings: Any, rpc_url: str, mainnet: bool) -> Any:
    from reserve.cli.anchor import _connect

    return _connect(settings, rpc_url, mainnet)


def _evm_target(ledger: Any, w3: Any, vault_id: str) -> Any:
    """The EVM vault as `reserve evm deploy` registered it on this chain."""
    from reserve.cli.evm import registration
    from reserve.reconcile.evm import EVMTarget

    chain_id = int(w3.eth.chain_id)
    found = registration(ledger, vault_id, chain_id)
    # On anvil the vault's funding precedes the recorded deployment block (as `evm sync`).
    start = 0 if chain_id == ANVIL_CHAIN_ID else found.block_number
    return EVMTarget(vault_id, found.safe, (found.token,), start)


def _anchor(ledger: Any, w3: Any, registry: str | None, key_file: Path | None,
            document: dict[str, Any]) -> Any:
    """Anchor the report's hash when a registry is given or known on the chain; else None."""
    from reserve.cli.anchor import registry_address
    from reserve.errors import EVMError
    from reserve.reconcile.evm import anchor_report
    from wallets.evm import node

    try:
        address = registry_address(ledger, int(w3.eth.chain_id), registry)
    except EVMError:
        return None  # no registry configured or given: nothing to anchor in
    return anchor_report(ledger, w3, address, node.service_account(w3, key_file), document)


def _row_amounts(row: dict[str, Any], tokens: dict[str, Any]) -> str:
    """'ledger 1.50000000 BTC, chain 1.50000000 BTC, difference 0.00000000 BTC' (a token in
    its own symbol and decimals when known, else base units under its address)."""
    asset = str(row["asset"])
    return ", ".join(f"{name} {present.format_amount(int(row[name]), asset, tokens)}"
                     for name in ("ledger", "chain", "difference"))


def _report_run(document: dict[str, Any], seq: int, stem: Path, anchored: Any,
                as_json: bool, tokens: dict[str, Any]) -> None:
    body = document["report"]
    rows = [f"{r['vault_id']}: {_row_amounts(r, tokens)}: {r['status']}"
            for r in [*body["summary"], *body.get("evm", {}).get("summary", [])]]
    count = len(body["findings"]) + len(body.get("evm", {}).get("findings", []))
    lines = [*rows, f"{count} finding(s); report checked in as ledger entry {seq}; files "
                    f"{stem}.json/.csv/.html"]
    if anchored is not None:
        from reserve.events.records import ReportAnchored

        anchor = ReportAnchored.of(anchored)
        lines.append(f"report hash anchored in registry {anchor.registry} (index "
                     f"{anchor.index}, tx {anchor.tx_hash}); ledger entry {anchored.seq}")
    emit({"report_sha256": document["signature"]["report_sha256"], "entry_seq": seq,
          "files": str(stem), "summary": body["summary"],
          "evm_summary": body.get("evm", {}).get("summary", []),
          "anchor": anchored.payload if anchored is not None else None,
          "anchor_seq": anchored.seq if anchored is not None else None}, as_json,
         "\n".join(lines))


@reconcile_app.command("show")
def show(report: Path, csv: bool = typer.Option(False, "--csv"),
         html: bool = typer.Option(False, "--html"), evm_rpc_url: Annotated[
             str | None, typer.Option("--evm-rpc-url", help=(
                 "Read each token's symbol and decimals from this node "
                 "(without it, tokens show in base units under their address)."))] = None,
         mainnet: bool = typer.Option(False, "--mainnet"), config: Config = None,
         as_json: AsJson = False) -> None:
    """Show a report: summary and findings (or its CSV / HTML export)."""
    from reserve.reconcile import export

    document = _read_json(report)
    if csv:
        typer.echo(export.findings_csv(document), nl=False)
        return
    if html:
        typer.echo(export.to_html(document, _report_tokens(document, evm_rpc_url, mainnet,
                                                           config)), nl=False)
        return
    body = document["report"]
    lines = [f"status {export.overall_status(body)} at block {body['block']['height']} "
             f"{body['block']['blockhash']}",
             f"ledger checkpoint {body['ledger']['tree_size']} entries, root "
             f"{body['ledger']['root_hash']}"]
    tokens = _report_tokens(document, evm_rpc_url, mainnet, config)
    lines += [f"  {r['vault_id']}: {_row_amounts(r, tokens)} ({r['status']})"
              for r in body["summary"]]
    lines += [f"  [{f['severity']}] {f['kind']}: {f['detail']}" for f in body["findings"]]
    evm = body.get("evm", {})
    lines += [f"  {r['vault_id']}: {_row_amounts(r, tokens)} ({r['status']})"
              for r in evm.get("summary", [])]
    lines += [f"  [{f['severity']}] {f['kind']}: {f['detail']}" for f in evm.get("findings", [])]
    emit(document, as_json, "\n".join(lines))


def _report_tokens(document: dict[str, Any], evm_rpc_url: str | None, mainnet: bool,
                   config: Path | None) -> dict[str, Any]:
    """The report's tokens named from the node, or none without --evm-rpc-url."""
    evm = document.get("report", {}).get("evm") or {}
    if not evm_rpc_url or not evm:
        return {}
    from reserve.reconcile.evm import token_units

    settings = load_settings(str(config) if config else None)
    w3 = _guard(lambda: _evm_connect(settings, evm_rpc_url, mainnet))
    assets = {str(row["asset"]) for row in evm.get("summary", [])}
    return dict(_guard(lambda: token_units(w3, sorted(assets - {"ETH"}))))


@reconcile_app.command("verify")
def verify(report: Path, ledger_export: Path = typer.Option(..., "--export"),
           auditor_keys: AuditorKeys = [],  # noqa: B006 (typer reads the default)
           ledger_key: str = typer.Option(None, "--ledger-key"), config: Config = None,
           rpc_url: RpcUrl = None, rpc_user: RpcUser = None, rpc_password: RpcPassword = None,
           evm_rpc_url: EvmRpcUrl = None, mainnet: bool = typer.Option(False, "--mainnet"),
           as_json: AsJson = False) -> None:
    """Re-derive REPORT from a ledger export plus the chain(s); exit 1 if it does not hold,
    2 if it cannot be checked here (wrong or unreachable node, no historical state).

    Bitcoin vaults need the Bitcoin node; an `evm` section needs --evm-rpc-url, a node that
    serves state at the report's pinned block (anvil; off anvil an archive node)."""
    if not auditor_keys:
        fail("give the auditor's public key with --auditor-key")
    document = _read_json(report)
    settings = load_settings(str(config) if config else None)
    body = document.get("report") if isinstance(document, dict) else None
    body = body if isinstance(body, dict) else {}
    node = _rpc(settings, rpc_url, rpc_user, rpc_password) if body.get("vaults") else None
    if "evm" in body and not evm_rpc_url:
        fail("this report has EVM vaults: give --evm-rpc-url (or RESERVE_EVM_RPC_URL)")
    from reserve.ledger.checkpoint import VerifierKey
    from reserve.reconcile.verify import verify_report

    key = VerifierKey.parse(ledger_key) if ledger_key else None

    def check() -> Any:
        w3 = _evm_connect(settings, evm_rpc_url, mainnet) if evm_rpc_url else None
        return verify_report(document, ledger_export, node, _keys(auditor_keys),
                             ledger_key=key, evm=w3)
    found = verdict(check, as_json, (ReportRejected,))
    emit({"holds": True, "report_sha256": found.report_sha256, "entry_seq": found.entry_seq,
          "vaults": list(found.vaults), "notes": list(found.notes)}, as_json,
         "\n".join([f"HOLDS: report {found.report_sha256} (ledger entry "
                    f"{found.entry_seq}) re-derived for {', '.join(found.vaults)}",
                    *(f"  note: {n}" for n in found.notes)]))


@reconcile_app.command("proof-of-reserves")
def proof_of_reserves(report: Path, check: bool = typer.Option(
        False, "--check", help="REPORT is a statement: check it against the node."),
        auditor_keys: AuditorKeys = [],  # noqa: B006
        key_path: KeyFile = None, config: Config = None,
        rpc_url: RpcUrl = None, rpc_user: RpcUser = None, rpc_password: RpcPassword = None,
        evm_rpc_url: EvmRpcUrl = None, mainnet: bool = typer.Option(False, "--mainnet"),
        as_json: AsJson = False) -> None:
    """Publish signed per-vault statements from a report, or --check one against a node
    (a Safe's statement against --evm-rpc-url, which must serve past state)."""
    from reserve.reconcile import proof
    from reserve.reconcile.report import load_auditor_key

    settings = load_settings(str(config) if config else None)
    document = _read_json(report)
    if check and isinstance(document, dict) and isinstance(document.get("report"), dict) \
            and document["report"].get("format") == proof.EVM_FORMAT:
        if not evm_rpc_url:
            fail("a Safe's statement needs --evm-rpc-url (or RESERVE_EVM_RPC_URL)")
        w3 = _guard(lambda: _evm_connect(settings, str(evm_rpc_url), mainnet))
        keys = list(_guard(lambda: _keys(auditor_keys))) if auditor_keys else None
        held = _guard(lambda: proof.check_evm_statement(document, w3, keys))
        emit({"holds": True, "balances": {a: str(v) for a, v in held.items()}}, as_json,
             f"HOLDS: {document['report']['vault_id']} held "
             + ", ".join(f"{v} wei of {a}" for a, v in held.items())
             + f" at block {document['report']['block']['number']}")
        return
    if check:
        node = _rpc(settings, rpc_url, rpc_user, rpc_password)
        keys = list(_guard(lambda: _keys(auditor_keys))) if auditor_keys else None
        total = _guard(lambda: proof.check_statement(document, node, keys))
        emit({"holds": True, "balance_sats": total}, as_json,
             f"HOLDS: {document['report']['vault_id']} held {total} sats at block "
             f"{document['report']['block']['height']}")
        return
    passphrase = _auditor_passphrase()
    signer = _guard(lambda: load_auditor_key(
            _configured(settings, "auditor_key_file", key_path, DEFAULT_KEY), passphrase))
    emit(proof.statements(document, signer), True)
