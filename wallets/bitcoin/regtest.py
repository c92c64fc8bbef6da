"""A throwaway regtest bitcoind: started by tests and by `reserve demo`, always stopped.

Starts `bitcoind -regtest` on free ports with a temporary data folder, waits (bounded) until
its RPC answers, can mine coinbase maturity for a funding wallet, and stops with the `stop`
RPC, waiting for the process to exit. It looks for bitcoind on PATH first (a user's own
Bitcoin Core) and then in the project's `.cache/bin` (what scripts/fetch-bitcoind.sh installs).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from reserve.errors import NodeRPCError, NodeUnavailable, WalletError
from wallets.bitcoin.rpc import BitcoinRPC

PROJECT_ROOT = Path(__file__).resolve().parents[2]
START_SECONDS_MAX = 60.0
STOP_SECONDS_MAX = 60.0
COINBASE_MATURITY = 100
MINER_WALLET = "miner"


def find_bitcoind() -> Path:
    """bitcoind from PATH, else from <project>/.cache/bin; raises WalletError when absent."""
    found = shutil.which("bitcoind")
    if found:
        return Path(found)
    cached = PROJECT_ROOT / ".cache" / "bin" / "bitcoind"
    if cached.is_file() and os.access(cached, os.X_OK):
        return cached
    raise WalletError("bitcoind not found on PATH nor in .cache/bin: run scripts/fetch-bitcoind.sh")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(predicate: Any, timeout_seconds: float, what: str,
               interval_seconds: float = 0.1) -> Any:
    """Poll `predicate` until it returns a truthy value; bounded by `timeout_seconds`."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise WalletError(f"timed out after {timeout_seconds}s waiting for {what}")
        time.sleep(interval_seconds)


class RegtestNode:
    """One regtest bitcoind. Use as a context manager, or call start() and stop()."""

    def __init__(self, datadir: Path | None = None, keep_datadir: bool = False,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.binary = find_bitcoind()
        self._own_datadir = datadir is None
        self.datadir = Path(datadir or tempfile.mkdtemp(prefix="reserve-regtest-"))
        self.datadir.mkdir(parents=True, exist_ok=True)
        self.keep_datadir = keep_datadir
        self.rpc_port = free_port()
        self.p2p_port = free_port()
        self.user = "reserve"
        self.password = secrets.token_hex(16)
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.rpc_port}"

    def rpc(self, wallet: str | None = None, retries: int = 0) -> BitcoinRPC:
        return BitcoinRPC(url=self.url, user=self.user, password=self.password,
                          wallet=wallet, retries=retries, retry_delay_seconds=0.2)

    def args(self) -> list[str]:
        return [str(self.binary), "-regtest", f"-datadir={self.datadir}",
                f"-rpcport={self.rpc_port}", f"-port={self.p2p_port}", "-listen=0",
                "-server=1", "-fallbackfee=0.0001", f"-rpcuser={self.user}",
                f"-rpcpassword={self.password}", "-rpcbind=127.0.0.1",
                "-rpcallowip=127.0.0.1", "-printtoconsole=0", "-discover=0", "-dnsseed=0",
                "-txindex=1", *self.extra_args]

    def start(self) -> RegtestNode:
        if self.process is not None and self.process.poll() is None:
            return self
        self.process = subprocess.Popen(self.args(), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        rpc = self.rpc()

        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                stderr = self.process.stderr.read().decode() if self.process.stderr else ""
                raise WalletError(f"bitcoind exited early ({self.process.returncode}): "
                                  f"{stderr.strip()[:500]}")
            try:
                rpc.getblockchaininfo()
                return True
            except NodeUnavailable:
                return False

        wait_until(ready, START_SECONDS_MAX, "bitcoind RPC to answer")
        return self

    def stop(self) -> None:
        """Stop with the `stop` RPC and wait for exit; kill only after the bounded wait."""
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                self.rpc().stop()
            except (NodeUnavailable, NodeRPCError):
                self.process.terminate()
            try:
                self.process.wait(timeout=STOP_SECONDS_MAX)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        if self._own_datadir and not self.keep_datadir:
            shutil.rmtree(self.datadir, ignore_errors=True)

    def __enter__(self) -> RegtestNode:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.cleanup()

    # --- funding helpers for tests and demos -----------------------------------------------

    def _ensure_miner_wallet(self) -> None:
        rpc = self.rpc()
        if MINER_WALLET in rpc.listwallets():
            return
        try:
            rpc.loadwallet(MINER_WALLET)
        except NodeRPCError:
            rpc.createwallet(MINER_WALLET)

    def miner(self) -> BitcoinRPC:
        """A hot wallet holding mined coins (created on first use, with maturity mined)."""
        self._ensure_miner_wallet()
        if self.rpc().getblockcount() < COINBASE_MATURITY + 1:
            self.mine(COINBASE_MATURITY + 1)
        return self.rpc(MINER_WALLET)

    def mine(self, blocks: int = 1, address: str | None = None) -> list[str]:
        """Mine `blocks` blocks (to the miner wallet unless `address` is given)."""
        if address is None:
            self._ensure_miner_wallet()
            address = self.rpc(MINER_WALLET).getnewaddress("", "bech32")
        hashes: list[str] = self.rpc().generatetoaddress(blocks, address)
        # Wallets take new blocks from a notification queue, after generatetoaddress has
        # returned; wait until every wallet has seen them (as Bitcoin Core's own functional
        # tests do), or a caller may read a wallet one block behind the chain.
        self.rpc().syncwithvalidationinterfacequeue()
        return hashes
