"""A throwaway local EVM chain: start `anvil` on a free port, wait for it, stop it.

Tests and `reserve demo` both need a real chain that exists only for their run. The node is
found on PATH or in the project's node_modules/.bin (npm's @foundry-rs/anvil), started with
`--silent`, and is ready when its JSON-RPC answers `eth_chainId`; every wait is bounded.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from reserve.errors import NodeUnavailable

PROJECT_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 10.0


def find_anvil() -> str:
    """The anvil executable: PATH first, then <project>/node_modules/.bin."""
    found = shutil.which("anvil")
    if found:
        return found
    local = PROJECT_ROOT / "node_modules" / ".bin" / "anvil"
    if local.exists():
        return str(local)
    raise NodeUnavailable("anvil not found on PATH or in node_modules/.bin: run `npm ci`")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rpc_call(url: str, method: str, params: list[object] | None = None,
             timeout: float = 2.0) -> object:
    """One raw JSON-RPC call (no web3 needed); raises NodeUnavailable when it fails."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                       "params": params or []}).encode()
    if not url.startswith(("http://", "https://")):
        raise NodeUnavailable(f"not an HTTP JSON-RPC URL: {url!r}")
    request = urllib.request.Request(url, data=body,  # noqa: S310 (scheme checked above)
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            reply = json.loads(response.read())
    except (OSError, ValueError) as error:
        raise NodeUnavailable(f"EVM node at {url} did not answer {method}: {error}") from None
    if "error" in reply:
        raise NodeUnavailable(f"EVM node at {url} refused {method}: {reply['error']}")
    return reply.get("result")


@dataclass
class Anvil:
    """A running anvil process; use as a context manager or call stop()."""

    port: int
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)

    def __enter__(self) -> Anvil:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()


def start(*, port: int | None = None, chain_id: int = 31337, block_time: int | None = None,
          extra_args: tuple[str, ...] = (), timeout: float = READY_TIMEOUT_SECONDS) -> Anvil:
    """Start anvil and return once its RPC answers (or raise NodeUnavailable and stop it).

    Automine by default (one block per transaction), so tests are deterministic.
    """
    chosen = port or free_port()
    command = [find_anvil(), "--port", str(chosen), "--host", "127.0.0.1", "--silent",
               "--chain-id", str(chain_id), *extra_args]
    if block_time is not None:
        command += ["--block-time", str(block_time)]
    # A file, not a pipe: nobody reads a pipe while the node runs, and a full one would block.
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
    node = Anvil(port=chosen, process=process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            stderr = log.read().decode(errors="replace")
            raise NodeUnavailable(f"anvil exited with {process.returncode}: {stderr.strip()}")
        try:
            rpc_call(node.url, "eth_chainId", timeout=0.5)
            return node
        except NodeUnavailable:
            time.sleep(0.05)
    node.stop()
    raise NodeUnavailable(f"anvil did not answer on port {chosen} within {timeout} s")
