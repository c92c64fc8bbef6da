"""The stage the demo story plays on: a working folder, two local chains, one ledger.

`open_stage` wipes and recreates the working folder (only one the demo made itself), starts
a regtest `bitcoind` and an `anvil`, and opens the folder's own SQLite ledger with its
encrypted checkpoint key. Whatever happens afterwards (an error, Ctrl-C, the dashboard
server stopping) both nodes are stopped and the ledger is closed on the way out.

Time in the story is the wall clock plus an offset: the demo never sleeps for a policy's
time delay, it moves the offset forward ("24 h later") and every ledger entry, checkpoint
and workflow decision after that carries the moved time.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from web3 import Web3

from reserve.config import DEMO_PASSPHRASE
from reserve.errors import ConfigError
from reserve.ledger.keys import load_or_create_signer
from reserve.ledger.store import Ledger
from reserve.transfers.service import WorkflowService
from wallets.bitcoin.regtest import RegtestNode
from wallets.evm import anvil

MARKER = ".reserve-demo"  # written into every working folder the demo creates
LEDGER_ORIGIN = "reserve.example/demo-national-reserve-ledger"
LEDGER_KEY = "keys/ledger-checkpoint.json"
RPC_TIMEOUT_SECONDS = 15


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


class StoryLedger(Ledger):
    """A Ledger whose entries and checkpoints default to the story's clock.

    Every writer in the story (workflow, Bitcoin service, watchers, anchoring, reconciliation)
    appends through this one object, so the ledger's timeline stays monotonic even after
    the clock has been moved 24 hours ahead.
    """

    clock: StoryClock | None = None

    def _story_now(self, now: datetime | None) -> datetime | None:
        return now if now is not None or self.clock is None else self.clock()

    def append_many(self, items: Sequence[tuple[str, str, dict[str, Any]]],
                    now: datetime | None = None,
                    expected_size: int | None = None) -> Any:
        return super().append_many(items, now=self._story_now(now), expected_size=expected_size)

    def checkpoint(self, signer: Any = None, *, now: datetime | None = None) -> str:
        return super().checkpoint(signer, now=self._story_now(now))


@dataclass
class Stage:
    """The running pieces of one demo; closed by `open_stage`."""

    workdir: Path
    console: Console
    clock: StoryClock
    ledger: StoryLedger
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


def write_config(workdir: Path) -> Path:
    """A config file for the working folder, so every `reserve` command works on it later."""
    path = workdir / "reserve.toml"
    path.write_text(
        "# Written by `reserve demo`: the demo's own ledger (regtest, TEST keys only).\n"
        'network = "regtest"\nmainnet_enabled = false\n\n[ledger]\n'
        f'database_url = "sqlite:///{workdir / "ledger.sqlite"}"\n'
        f'origin = "{LEDGER_ORIGIN}"\nkey_path = "{workdir / LEDGER_KEY}"\n'
        'passphrase_env = "RESERVE_LEDGER_PASSPHRASE"\ncheckpoint_every = 1000\n')
    return path


def open_ledger(workdir: Path, clock: StoryClock) -> StoryLedger:
    """The working folder's ledger, with its checkpoint key (regtest: labelled demo secret)."""
    signer = load_or_create_signer(workdir / LEDGER_KEY, LEDGER_ORIGIN, DEMO_PASSPHRASE)
    ledger = StoryLedger.open(f"sqlite:///{workdir / 'ledger.sqlite'}", signer=signer,
                              checkpoint_every=1000)
    if not isinstance(ledger, StoryLedger):  # Ledger.open builds `cls`; checked, not assumed
        raise TypeError("Ledger.open did not return a StoryLedger")
    ledger.clock = clock
    return ledger


@contextmanager
def open_stage(workdir: Path, console: Console) -> Iterator[Stage]:
    """Fresh working folder, both nodes started, ledger open; all stopped on the way out."""
    folder = reset_workdir(workdir)
    config_path = write_config(folder)
    clock = StoryClock()
    with ExitStack() as stack:
        bitcoind = RegtestNode(datadir=folder / "bitcoind")
        stack.callback(bitcoind.stop)  # registered before start: a failed start is cleaned up
        bitcoind.start()
        evm_node = anvil.start()
        stack.callback(evm_node.stop)
        ledger = open_ledger(folder, clock)
        stack.callback(ledger.close)
        w3 = Web3(Web3.HTTPProvider(evm_node.url,
                                    request_kwargs={"timeout": RPC_TIMEOUT_SECONDS}))
        yield Stage(workdir=folder, console=console, clock=clock, ledger=ledger,
                    workflow=WorkflowService(ledger, clock=clock), bitcoind=bitcoind,
                    evm_node=evm_node, w3=w3, config_path=config_path)
