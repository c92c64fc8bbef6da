"""Entry point of `reserve-sign`, the custodian's offline signing tool.

Kept small on purpose: each chain registers its commands from its own module (Bitcoin in
wallets/signer/bitcoin.py), so the tool grows without this file growing.
"""

from __future__ import annotations

import typer

from wallets.signer import bitcoin, package_cli
from wallets.signer.approval_cli import approval_app
from wallets.signer.evm_cli import evm_app, evm_sign

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Custodian signing tool: works offline, keys stay on this machine.")

bitcoin.register(app)
package_cli.register(app)
app.add_typer(approval_app, name="approval")
app.add_typer(evm_app, name="evm")
app.command("evm-sign")(evm_sign)

if __name__ == "__main__":
    app()
