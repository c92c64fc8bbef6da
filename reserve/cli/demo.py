"""`reserve demo`: tell the reserve's whole story on local nodes, then serve the dashboard.

The story itself is reserve/demo/story.py; this command only chooses the working folder,
measures the run, prints the summary, and (unless --no-serve) serves the dashboard on the
story's ledger until Ctrl-C. The nodes stop when the story fails or the server stops.
"""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from reserve.config import PROJECT_ROOT
from reserve.errors import ConfigError

if TYPE_CHECKING:
    from reserve.demo.stage import Stage

DEFAULT_WORKDIR = PROJECT_ROOT / "var" / "demo"
DURATION_TARGET_SECONDS = 120


def _require_free_port(host: str, port: int) -> None:
    """Fail before the story, not after it, when the dashboard's port is taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            raise ConfigError(f"cannot serve on {host}:{port} ({error.strerror}); "
                              "choose another --port or use --no-serve") from None


def _stop_on_terminate(signum: int, frame: FrameType | None) -> None:
    """SIGTERM unwinds like Ctrl-C, so the nodes are stopped instead of orphaned."""
    raise KeyboardInterrupt(f"signal {signum}")


def demo(workdir: Path = typer.Option(DEFAULT_WORKDIR, "--workdir", help=(
             "Working folder (ledger, keystores, reports, node data); wiped and recreated "
             "on each run.")),
         serve: bool = typer.Option(True, "--serve/--no-serve", help=(
             "After the story, serve the dashboard until Ctrl-C (--no-serve: exit).")),
         host: str = typer.Option("127.0.0.1", "--host", help="Dashboard host."),
         port: int = typer.Option(8000, "--port", min=1, max=65535, help="Dashboard port.")
         ) -> None:
    """Run the whole story on a local regtest bitcoind and anvil (TEST keys only)."""
    console = Console(highlight=False)
    if not console.is_terminal:
        # Logs and CI keep whole lines (txids, addresses) instead of wrapping at 80 columns.
        console = Console(highlight=False, width=160)
    if serve:
        _require_free_port(host, port)
    console.print("[bold]Sovereign Reserve Ledger: the demo[/] on local testnet nodes "
                  "(regtest bitcoind, anvil). TEST keys from public seeds; nothing here is "
                  f"real money. Working folder: {workdir.resolve()}")
    started = time.monotonic()
    signal.signal(signal.SIGTERM, _stop_on_terminate)
    try:
        _tell_and_serve(workdir, serve, host, port, console, started)
    except KeyboardInterrupt:
        console.print("Interrupted: nodes stopped, working folder left as it was.")
        raise typer.Exit(130) from None


def _tell_and_serve(workdir: Path, serve: bool, host: str, port: int, console: Console,
                    started: float) -> None:
    # The story loads both chain stacks: only `reserve demo` pays for them.
    from reserve.demo import summary
    from reserve.demo.stage import open_stage, write_config
    from reserve.demo.story import tell

    with open_stage(workdir, console) as stage:
        facts = tell(stage)
        facts["duration_seconds"] = round(time.monotonic() - started, 1)
        # One clock: commands and `reserve serve` on the folder go on from the story's time.
        write_config(stage.workdir, stage.bitcoind, stage.evm_node,
                     facts["story_time_offset_seconds"])
        facts["test_access"] = _test_access(stage, serve)
        summary.write_json(stage.path("summary.json"), facts)
        summary.render(console, facts)
        verdict = "within" if facts["duration_seconds"] < DURATION_TARGET_SECONDS else "OVER"
        console.print(f"The story took {facts['duration_seconds']} s, nodes included "
                      f"({verdict} the {DURATION_TARGET_SECONDS} s target).")
        console.print(f"Check it yourself: .venv/bin/reserve ledger verify --config "
                      f"{stage.config_path}  (reports in {stage.path('reports')}, facts in "
                      f"{stage.path('summary.json')})")
        token = facts["access"]["token"]
        if not serve:
            console.print(f"Admin token for `reserve serve --config {stage.config_path}`: "
                          f"{token}")
            console.print(f"Public portal (no login) once served: http://{host}:{port}/public "
                          "(the config's \\[public] table turns it on)")
            return
        _serve(stage, host, port, token, console)
    console.print("Dashboard stopped; nodes stopped.")


def _test_access(stage: Stage, serve: bool) -> dict[str, str]:
    """What reaches the demo's nodes and opens its keystores: all TEST, printed once."""
    from reserve.config import DEMO_PASSPHRASE
    from reserve.demo.custody import PASSPHRASE

    return {"bitcoind_rpc_url": stage.bitcoind.url, "bitcoind_rpc_user": stage.bitcoind.user,
            "bitcoind_rpc_password": stage.bitcoind.password,
            "evm_rpc_url": stage.evm_node.url, "keystore_passphrase": PASSPHRASE,
            "ledger_key_passphrase": DEMO_PASSPHRASE, "config": str(stage.config_path),
            "nodes": "running while the dashboard is served (Ctrl-C stops them)" if serve
                     else "stopped when the demo exits (--no-serve)"}


def _serve(stage: Stage, host: str, port: int, token: str, console: Console) -> None:
    import uvicorn

    from reserve.api.app import create_app
    from reserve.api.deps import ApiOptions
    from reserve.config import PublicSettings

    # The demo serves plain http on this machine only: the one place a session cookie
    # without the Secure flag is acceptable (some browsers drop a Secure one on http).
    local = host in ("127.0.0.1", "localhost", "::1")
    app = create_app(stage.ledger, clock=stage.clock,
                     options=ApiOptions(cookie_secure=not local),
                     public_log_dir=stage.path("public-log"),
                     public=PublicSettings(enabled=True, statements_dir=stage.path("statements")))
    console.rule("[bold]Dashboard", align="left")
    console.print(f"Dashboard: [bold]http://{host}:{port}/dashboard[/]  (API schema at "
                  f"http://{host}:{port}/openapi.json)")
    console.print(f"Public portal (no login): [bold]http://{host}:{port}/public[/]  (tile log "
                  f"at http://{host}:{port}/public/log/checkpoint)")
    console.print(f"Log in with this admin token (shown once): [bold]{token}[/]")
    console.print("The nodes keep running while the dashboard is served; Ctrl-C stops all.")
    uvicorn.run(app, host=host, port=port, log_level="warning")
