"""`reserve wallet`, `reserve flow` and `reserve statement` against a real regtest node:
register (refusals are one line, exit 2, nothing written), attribute and confirm, build by
heights and by period, verify (with and without the ledger export), a tampered copy refused.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from reserve.cli.main import app
from reserve.ledger import Ledger
from tests.support.bitcoin_fixtures import VaultKit
from tests.support.reconcile_fixtures import PASSPHRASE
from tests.support.statement_fixtures import keyed_wallet, public_descriptors
from tests.support.workflow import BTC_POLICY
from wallets.bitcoin.regtest import RegtestNode
from wallets.bitcoin.rpc import BitcoinRPC, sats_to_btc


def test_statement_from_the_command_line(bitcoind: RegtestNode, miner: BitcoinRPC,  # type: ignore[no-untyped-def]
                                         make_vault, tmp_path: Path, monkeypatch) -> None:
    kit: VaultKit = make_vault(2, 3)
    vault_file = tmp_path / "vault.toml"
    custodians = "".join(
        f'[[custodians]]\nname = "{c.name}"\ninstitution = "{c.institution}"\n'
        f'key_origin = "{c.key_origin}"\nxpub = "{c.xpub}"\n' for c in kit.vault.custodians)
    vault_file.write_text(f'vault_id = "{kit.vault.vault_id}"\nnetwork = "regtest"\n'
                          f"threshold = 2\n{custodians}")
    (tmp_path / "config").mkdir()
    config = tmp_path / "config" / "reserve.toml"
    config.write_text(f'network = "regtest"\n[ledger]\ndatabase_url = '
                      f'"sqlite:///{tmp_path}/cli.sqlite"\norigin = "test.reserve.example/st"\n'
                      f'key_path = "keys/ledger.json"\n[bitcoin]\nrpc_url = "{bitcoind.url}"\n'
                      f'rpc_user = "{bitcoind.user}"\n')
    monkeypatch.setenv("RESERVE_BTC_RPC_PASSWORD", bitcoind.password)
    monkeypatch.setenv("RESERVE_AUDITOR_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("RESERVE_LEDGER_PASSPHRASE", PASSPHRASE)
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, [*args, "--config", str(config)])
        assert result.exit_code == code, result.output
        return result.output

    public = run("reconcile", "auditor-key", "--key-file", "keys/auditor.json").strip()
    run("policy", "load", str(BTC_POLICY), "--by", "lead")
    hot = keyed_wallet(bitcoind, f"cli-hot-{kit.account}")
    node = bitcoind.rpc()
    birth = str(int(node.getblockcount()) + 1)
    descriptors = [arg for d in public_descriptors(hot, "wpkh") for arg in ("--descriptor", d)]
    registered = json.loads(run("wallet", "register", "hot", "--institution", "Treasury",
                                "--role", "operational hot wallet", *descriptors,
                                "--range-end", "20", "--birth-height", birth, "--json"))
    assert (registered["custody"], registered["birth_height"]) == ("watched", int(birth))
    assert all(d.split("#")[0] in " ".join(registered["descriptors"])
               for d in descriptors[1::2])
    assert "reserve-watch-hot" in node.listwallets()
    refused = run("wallet", "register", "hot", "--institution", "T", "--role", "r",
                  "--address", hot.getnewaddress(), code=2)
    assert refused.startswith("error: wallet 'hot' is registered already")
    bad = run("wallet", "register", "bad", "--institution", "T", "--role", "r",
              "--descriptor", "wpkh(nonsense)", code=2)
    assert bad.startswith("error: bad descriptor") and bad.count("\n") == 1
    assert "registered national" in run("wallet", "register", "national", "--institution",
                                        "Ministry of Finance", "--role", "national reserve",
                                        "--vault-config", str(vault_file), "--birth-height",
                                        birth, "--range-end", "20")
    listed = json.loads(run("wallet", "list", "--json"))
    assert [(w["name"], w["custody"]) for w in listed] == [("hot", "watched"),
                                                           ("national", "custody")]

    start = int(node.getblockcount()) + 1
    (block,) = bitcoind.mine(1, address=hot.getnewaddress("", "bech32"))
    coinbase = node.getblock(block)["tx"][0]
    gift = miner.sendtoaddress(hot.getnewaddress("", "bech32"), sats_to_btc(7_000_000))
    deposit = kit.deposit(bitcoind, miner, [3_000_000])[0]
    end = int(node.getblockcount())
    proposed = json.loads(run("flow", "attribute", gift, "--wallet", "hot", "--class",
                              "donation", "--note", "a foreign donation", "--by",
                              "treasury-ops", "--json"))
    assert "not an auditor" in run("flow", "confirm", str(proposed["seq"]), "--by",
                                   "treasury-ops", code=2)
    assert "is donation for hot" in run("flow", "confirm", str(proposed["seq"]), "--by",
                                        "external-auditor")

    built = json.loads(run("statement", "build", "--start-height", str(start), "--end-height",
                           str(end), "--key-file", "keys/auditor.json", "--output-dir", "out",
                           "--json"))
    flows = {f["class"]: f for f in built["consolidated"]["flows"]}
    assert flows["donation"]["sats"] == 7_000_000 and flows["donation"]["txids"] == [gift]
    assert flows["unattributed"]["txids"] == [deposit] and flows["mining"]["txids"] == [coinbase]
    assert built["consolidated"]["closing_sats"] - built["consolidated"]["opening_sats"] == \
        sum(f["sats"] for f in flows.values())
    stem = Path(built["files"])
    for suffix in (".json", ".csv", ".html"):
        assert stem.with_suffix(suffix).is_file()
    statement = stem.with_suffix(".json")

    assert "HOLDS" in run("statement", "verify", str(statement), "--auditor-key", public)
    shown = runner.invoke(app, ["statement", "show", str(statement)]).output
    assert shown.startswith(f"statement of blocks {start}..{end} (") and "  donation" in shown
    assert runner.invoke(app, ["statement", "show", str(statement), "--csv"]).output == \
        stem.with_suffix(".csv").read_text()
    exported = tmp_path / "ledger.jsonl"
    run("ledger", "export", "-o", str(exported))
    checked = json.loads(run("statement", "verify", str(statement), "--auditor-key", public,
                             "--export", str(exported), "--json"))
    assert checked["holds"] is True and checked["ledger_checked"] is True

    tampered = tmp_path / "tampered.json"
    document = json.loads(statement.read_text())
    document["report"]["consolidated"]["flows"][0]["sats"] += 1
    tampered.write_text(json.dumps(document))
    refused = run("statement", "verify", str(tampered), "--auditor-key", public, code=1)
    assert refused.startswith("DOES NOT HOLD (tampered)")

    # By period: the blocks whose median time past falls in it.
    moment = datetime.fromtimestamp(node.getblockheader(node.getblockhash(start))["mediantime"],
                                    UTC)
    later = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    by_time = json.loads(run("statement", "build", "--period-start", moment.isoformat(),
                             "--period-end", later, "--key-file", "keys/auditor.json",
                             "--output-dir", "out", "--json"))
    assert by_time["blocks"]["start_height"] <= start
    assert by_time["blocks"]["end_height"] == int(node.getblockcount())
    assert "give --period-start and --period-end" in run("statement", "build", code=2)
    assert "no block has its median time" in run(
        "statement", "build", "--period-start", later, "--period-end",
        (datetime.now(UTC) + timedelta(hours=4)).isoformat(), code=2)

    # Commitments between statements: `statement check` walks to the tip, signs nothing.
    assert "no commitment is declared" in run("statement", "check", code=2)
    base = config.read_text()
    config.write_text(base + '[[statement.commitments]]\nid = "gifts"\ntext = "No donations"\n'
                      'rule = "no_flow"\nclasses = ["gift"]\n')
    assert "gift is not a flow class" in run("statement", "check", code=2)
    config.write_text(base + '[[statement.commitments]]\nid = "gifts"\ntext = "No donations"\n'
                      'rule = "no_flow"\nclasses = ["donation"]\n')
    assert "no block after" in run("statement", "check", code=2)  # the last one reached the tip
    def statements_published() -> int:
        with Ledger.open(f"sqlite:///{tmp_path}/cli.sqlite") as ledger:
            return len(list(ledger.entries(kinds=("statement.published",))))
    before = statements_published()
    checked = runner.invoke(app, ["statement", "check", "--start-height", str(start),
                                  "--json", "--config", str(config)])
    assert statements_published() == before == 2  # neither signed nor published
    assert checked.exit_code == 1, checked.output
    result = json.loads(checked.output)
    assert result["kept"] is False
    assert result["commitments"][0]["findings"] == ["donation flows of 7000000 sats"]
