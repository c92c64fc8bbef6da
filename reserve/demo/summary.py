"""The demo's closing summary: what the reserve holds, what moved, and how to check it.

Built from the facts `story.tell` returns (plain JSON values, amounts as integers in base
units), so the same facts are printed as tables and written to `summary.json` for scripts
and tests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from reserve import present
from wallets.evm.demo import TOKEN_SYMBOL

TOKENS = {TOKEN_SYMBOL: present.token_unit(TOKEN_SYMBOL)}  # the demo token: 18 decimals


def amount_words(asset: str, amount: int) -> str:
    """BTC, ETH or the demo token in words: '0.75 ETH (750,000,000,000,000,000 wei)'."""
    return present.amount_words(amount, present.unit_of(asset, TOKENS))


def holdings_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Holdings: ledger vs chain", title_justify="left")
    for column in ("vault", "asset", "in the ledger", "on chain", "agree"):
        table.add_column(column, justify="right" if column.startswith(("in", "on")) else "left")
    for row in rows:
        table.add_row(row["vault"], row["asset"],
                      amount_words(row["asset"], int(row["ledger"])),
                      amount_words(row["asset"], int(row["chain"])),
                      "yes" if row["ledger"] == row["chain"] else "[red]NO[/]")
    return table


def transfers_table(transfers: list[dict[str, Any]]) -> Table:
    table = Table(title="Transfers", title_justify="left")
    for column in ("reference", "amount", "to", "state", "transaction"):
        table.add_column(column, overflow="fold", no_wrap=column == "transaction")
    for item in transfers:
        table.add_row(item["reference"],
                      amount_words(item["asset"], int(item["amount"])),
                      item["label"], item["state"], item["txid"])
    return table


def evidence_table(facts: dict[str, Any]) -> Table:
    anchor, reconciliation = facts["anchor"], facts["reconciliation"]
    table = Table(title="Evidence", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", overflow="fold")
    table.add_row("ledger", f"{facts['ledger_size']} entries, verified")
    table.add_row("latest checkpoint", f"{anchor['tree_size']} entries, root "
                                       f"{anchor['root_hash']}")
    table.add_row("anchor", f"tx {anchor['anchor_tx']} in registry {anchor['registry']} "
                            f"(ledger entry #{anchor['anchor_seq']})")
    table.add_row("reconciliation", f"{reconciliation['status']} at Bitcoin block "
                                    f"{reconciliation['block_height']} and EVM block "
                                    f"{reconciliation['evm_block_number']}, "
                                    f"{reconciliation['findings']} finding(s), report "
                                    f"{reconciliation['report_sha256'][:16]}")
    table.add_row("report anchor", f"tx {reconciliation['anchor_tx']} in registry "
                                   f"{anchor['registry']} (ledger entry "
                                   f"#{reconciliation['anchor_seq']})")
    table.add_row("ledger verifier key", anchor["verifier_key"])
    table.add_row("auditor key", reconciliation["auditor_key"])
    public_log = facts.get("public_log")
    if public_log:
        table.add_row("public tile log", f"{public_log['size']} entries in "
                                         f"{public_log['folder']} (served at /public/log/), "
                                         f"cosigned at size {public_log['cosigned_size']}")
        table.add_row("witness key", public_log["witness_key"])
    public_statement = facts.get("statement")
    if public_statement:
        flows = ", ".join(f"{f['class']} {f['sats']}" for f in public_statement["flows"])
        kept = sum(1 for c in public_statement["commitments"] if c["kept"])
        table.add_row("public-sector statement",
                      f"{public_statement['opening_sats']} -> "
                      f"{public_statement['closing_sats']} sat ({flows}); "
                      f"{kept} of {len(public_statement['commitments'])} commitments kept; "
                      f"{public_statement['files']}.html (ledger entry "
                      f"#{public_statement['entry_seq']})")
    if facts.get("energy"):
        _energy_row(table, facts["energy"])
    return table


def _energy_row(table: Table, energy: dict[str, Any]) -> None:
    sites = ", ".join(f"{s['site']} {s['energy_kwh']:,} kWh"
                      + ("" if s["mined_sats"] is None else f" / {s['mined_sats']} sat")
                      for s in energy["sites"])
    anomalies = ", ".join(f"{a['kind']} ({a['site']})" for a in energy["anomalies"]) or "none"
    table.add_row("energy report", f"{energy['period']['start']} .. {energy['period']['end']}:"
                                   f" {sites}; mined {energy['mined_sats']} sat = the "
                                   f"statement's mining flow; anomalies: {anomalies}; "
                                   f"{energy['files']}.html (ledger entry "
                                   f"#{energy['entry_seq']}), /public/energy")


def test_access_table(access: dict[str, str]) -> Table:
    """The nodes' endpoints and the demo's credentials, labelled TEST, and how to use them."""
    table = Table(title="TEST access (local regtest and anvil; public demo secrets, never "
                        "for real funds)", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", overflow="fold")
    table.add_row("nodes", access["nodes"])
    table.add_row("Bitcoin node (regtest) TEST RPC",
                  f"{access['bitcoind_rpc_url']}  user {access['bitcoind_rpc_user']}  "
                  f"password {access['bitcoind_rpc_password']}")
    table.add_row("EVM node (anvil) TEST RPC", f"{access['evm_rpc_url']} (chain 31337; gas "
                                               "paid by anvil's TEST deployer key)")
    table.add_row("TEST keystore passphrase", f"{access['keystore_passphrase']} (custodians' "
                                              "and auditor's keystores under keys/)")
    table.add_row("TEST ledger key passphrase", f"{access['ledger_key_passphrase']} (the "
                                                "default on regtest)")
    return table


def render(console: Console, facts: dict[str, Any]) -> None:
    console.rule("[bold]Summary", align="left")
    console.print(holdings_table(facts["holdings"]))
    console.print(transfers_table(facts["transfers"]))
    console.print(evidence_table(facts))
    if "test_access" in facts:
        access = facts["test_access"]
        console.print(test_access_table(access))
        # Whole lines, never wrapped inside a table cell: they are meant to be copied.
        config = access["config"]
        console.print("Use the leftovers (TEST secrets; the nodes answer while the dashboard "
                      "is served):", soft_wrap=True)
        for line in (f"  export RESERVE_BTC_RPC_PASSWORD={access['bitcoind_rpc_password']} "
                     f"RESERVE_AUDITOR_PASSPHRASE={access['keystore_passphrase']}",
                     f"  reserve proposal list --config {config}",
                     f"  reserve reconcile run --evm-vault reserve-safe --evm-rpc-url "
                     f"{access['evm_rpc_url']} --config {config}"):
            console.print(line, soft_wrap=True, markup=False)


def write_json(path: Path, facts: dict[str, Any]) -> None:
    """summary.json, without the admin token (printed once, stored nowhere) and without the
    TEST access facts (printed in the summary; the RPC password is a running node's)."""
    public = {key: value for key, value in facts.items() if key != "test_access"}
    public["access"] = {k: v for k, v in facts["access"].items() if k != "token"}
    public["holdings"] = [{**row, "ledger": str(row["ledger"]), "chain": str(row["chain"])}
                          for row in facts["holdings"]]
    path.write_text(json.dumps(public, indent=2, sort_keys=True) + "\n")
