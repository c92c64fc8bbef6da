"""The stage the demo story plays on: a working folder, two local chains, one ledger.

`open_stage` wipes and recreates the working folder (only one the demo made itself), starts
a regtest `bitcoind` and an `anvil`, and opens the folder's own SQLite ledger with its
encrypted checkpoint key. Whatever happens afterwards (an error, Ctrl-C, the dashboard
server stopping) both nodes are stopped and the ledger is closed on the way out. The
folder's `reserve.toml` (`write_config`) names its ledger, nodes and keys with paths
relative to the folder, so every `reserve` command works on what the demo leaves.

Time in the story is the wall clock plus an offset: the demo never sleeps for a policy's
time delay, it moves the offset forward ("24 h later") and every ledger entry, checkpoint
and workflow decision after that carries the moved time. The offset is then stored in
`reserve.toml` (`[clock] offset_seconds`), so later commands keep the same time.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from web3 import Web3

from reserve.config import DEMO_PASSPHRASE, PROJECT_ROOT
from reserve.errors import ConfigError
from reserve.ledger.keys import load_or_create_signer
from reserve.ledger.store import Ledger
from reserve.transfers import readmodel
from reserve.transfers.service import WorkflowService
from wallets.bitcoin.regtest import RegtestNode
from wallets.evm import anvil

MARKER = ".reserve-demo"  # written into every working folder the demo creates
LEDGER_ORIGIN = "reserve.example/demo-national-reserve-ledger"
LEDGER_KEY = "keys/ledger-checkpoint.json"
AUDITOR_KEY = "keys/auditor-general-auditor.json"  # the story's auditor writes it there
# The project's configs the story reads, copied into the working folder's config/.
PROJECT_CONFIGS = ("vaults/reserve-btc-3of5.toml", "policies/national-btc.toml",
                   "policies/reserve-evm.toml", "evm/vaults.toml")
RPC_TIMEOUT_SECONDS = 15
ANVIL_CHAIN_ID = 31337  # anvil.start()'s default, which the story uses


class StoryClock:
    """Wall-clock time plus an offset that the story moves forward instead of sleeping."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: int) -> datetime:
        """Requires seconds > 0 (story time never runs backwards)."""
        if seconds <= 0:
            raise ValueError("the story clock only moves forward")
        self.offset += timedelta(seconds=seconds)
        return self()


@dataclass
class Stage:
    """The running pieces of one demo; closed by `open_stage`."""

    workdir: Path
    console: Console
    clock: StoryClock
    ledger: Ledger
    workflow: WorkflowService
    bitcoind: RegtestNode
    evm_node: anvil.Anvil
    w3: Web3
    config_path: Path
    facts: dict[str, Any] = field(default_factory=dict)

    def path(self, *parts: str) -> Path:
        return self.workdir.joinpath(*parts)

    def say(self, text: str) -> None:
        """One narrated step: one line, in plain words."""
        self.console.print(f"  {text}", highlight=False)


def reset_workdir(workdir: Path) -> Path:
    """Empty `workdir` for a new run; refuses a non-empty folder the demo did not make."""
    folder = workdir.resolve()
    if folder.exists():
        if not folder.is_dir():
            raise ConfigError(f"demo working folder {folder} is a file")
        if any(folder.iterdir()) and not (folder / MARKER).exists():
            raise ConfigError(f"refusing to wipe {folder}: it is not empty and was not made "
                              f"by `reserve demo` (no {MARKER} file); choose another --workdir")
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / MARKER).write_text("made by `reserve demo`; wiped and recreated on each run\n")
    return folder


def write_config(workdir: Path, bitcoind: RegtestNode, evm_node: anvil.Anvil,
                 clock_offset_seconds: int = 0) -> Path:
    """`reserve.toml` for the working folder, so every `reserve` command works on it later.

    Paths in it are relative to the folder itself (`root = "."`), which holds copies of the
    vault, policy and EVM configs the story used (`config/...`, the anvil network at the
    demo's own port). Rewritten after the story with how far its clock moved ahead.
    """
    config = workdir / "config"
    for name in PROJECT_CONFIGS:
        target = config / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PROJECT_ROOT / "config" / name, target)
    (config / "evm" / "networks.toml").write_text(
        "# Written by `reserve demo`: its own anvil (TEST chain; stops with the demo).\n"
        f"[networks.anvil]\nchain_id = {ANVIL_CHAIN_ID}\nrpc_url = \"{evm_node.url}\"\n"
        "confirmations = 1\n")
    path = workdir / "reserve.toml"
    path.write_text(f"""\
# Written by `reserve demo`: the demo's own ledger and nodes (regtest, TEST keys only).
network = "regtest"
mainnet_enabled = false
# Relative paths below are relative to this file's folder.
root = "."

[ledger]
database_url = "sqlite:///ledger.sqlite"
origin = "{LEDGER_ORIGIN}"
key_path = "{LEDGER_KEY}"
passphrase_env = "RESERVE_LEDGER_PASSPHRASE"
checkpoint_every = 1000

[bitcoin]
# The demo's regtest bitcoind, running while the demo serves its dashboard. Its TEST RPC
# password is in the demo's summary: export RESERVE_BTC_RPC_PASSWORD=<it> to reach it.
rpc_url = "{bitcoind.url}"
rpc_user = "{bitcoind.user}"
rpc_password_env = "RESERVE_BTC_RPC_PASSWORD"
vaults_dir = "config/vaults"

[reconcile]
# The auditor's keystore (TEST passphrase in the summary: RESERVE_AUDITOR_PASSPHRASE).
auditor_key_file = "{AUDITOR_KEY}"
output_dir = "reports"

[transparency]
# The ledger as a C2SP tile log (`reserve publish` writes it, `reserve serve` serves it at
# /public/log/); every entry's bundle is published in the demo.
directory = "public-log"
publish_entries = true

[statement]
# The public-sector statements (`reserve statement build`) and their exports.
output_dir = "statements"

[mining]
# The energy reports (`reserve mining report`) and their exports.
output_dir = "mining"

[public]
# The anonymous public portal at /public (docs/public-portal.md): amounts and classes are
# public, the names of the custodians are not.
enabled = true
show_amounts = true
show_custodians = false
statements_dir = "statements"
energy_reports_dir = "mining"

[clock]
# The story moved its clock this far ahead instead of waiting out time delays; commands
# and `reserve serve` on this folder keep the same time, so its ledger stays in order.
offset_seconds = {clock_offset_seconds}
""")
    return path


def open_ledger(workdir: Path, clock: StoryClock) -> Ledger:
    """The working folder's ledger, with its checkpoint key (regtest: labelled demo secret);
    every entry and checkpoint given no time takes the story's clock."""
    signer = load_or_create_signer(workdir / LEDGER_KEY, LEDGER_ORIGIN, DEMO_PASSPHRASE)
    ledger = Ledger.open(f"sqlite:///{workdir / 'ledger.sqlite'}", signer=signer,
                         checkpoint_every=1000)
    ledger.clock = clock
    readmodel.attach(ledger)
    return ledger


@contextmanager
def open_stage(workdir: Path, console: Console) -> Iterator[Stage]:
    """Fresh working folder, both nodes started, ledger open; all stopped on the way out."""
    folder = reset_workdir(workdir)
    clock = StoryClock()
    with ExitStack() as stack:
        bitcoind = RegtestNode(datadir=folder / "bitcoind")
        stack.callback(bitcoind.stop)  # registered before start: a failed start is cleaned up
        bitcoind.start()
        evm_node = anvil.start()
        stack.callback(evm_node.stop)
        config_path = write_config(folder, bitcoind, evm_node)
        ledger = open_ledger(folder, clock)
        stack.callback(ledger.close)
        w3 = Web3(Web3.HTTPProvider(evm_node.url,
                                    request_kwargs={"timeout": RPC_TIMEOUT_SECONDS}))
        yield Stage(workdir=folder, console=console, clock=clock, ledger=ledger,
                    workflow=WorkflowService(ledger, clock=clock), bitcoind=bitcoind,
                    evm_node=evm_node, w3=w3, config_path=config_path)
