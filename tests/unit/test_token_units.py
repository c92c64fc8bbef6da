"""A vault's token reads in its own symbol and decimals wherever amounts are shown.

The symbol and decimals are recorded with the EVM vault's registration at deployment;
the dashboard builds its units table from those entries, so a token balance is never
shown as raw base units under a contract address, and totals stay per asset.
"""

from __future__ import annotations

from reserve.api import reserve_views as views
from reserve.api.panels import PanelContext
from reserve.api.panels.holdings import provide
from reserve.events.chain_evm import EvmDeposit
from reserve.events.custody import EvmVaultRegistered
from reserve.ledger import Ledger
from tests.support.workflow import T0

TOKEN = "0x" + "7c" * 20


def _register(ledger: Ledger, **token: object) -> None:
    ledger.append("vault.registered", "lead", EvmVaultRegistered(
        chain="evm", vault="reserve-evm", chain_id=31337, safe="0x" + "5a" * 20,
        guard="0x" + "6b" * 20, registry="0x" + "12" * 20, token=TOKEN,
        owners=["0x" + "1d" * 20], threshold=1, safe_singleton="0x" + "01" * 20,
        safe_proxy_factory="0x" + "02" * 20, safe_fallback_handler="0x" + "03" * 20,
        block_number=3, **token).to_payload(), now=T0)  # type: ignore[arg-type]


def _deposit(ledger: Ledger, asset: str, amount: int, n: int) -> None:
    ledger.append("evm.deposit", "evm-watcher", EvmDeposit(
        key=f"31337:0x{n:064x}:0", chain_id=31337, vault="reserve-evm", safe="0x" + "5a" * 20,
        asset=asset, sender="0x" + "99" * 20, amount_wei=amount, tx_hash=f"0x{n:064x}",
        log_index=0, block_number=10 + n, block_hash="0x" + "ff" * 32).to_payload(), now=T0)


def test_a_registered_token_reads_in_its_own_units() -> None:
    with Ledger.open("sqlite:///:memory:") as ledger:
        _register(ledger, token_symbol="tRGT", token_decimals=6)
        _deposit(ledger, TOKEN, 1_500_000, 1)
        _deposit(ledger, "ETH", 2 * 10**18, 2)
        units = views.token_units(ledger)
        assert units[TOKEN].symbol == units["tRGT"].symbol == "tRGT"
        held = {h.asset: h for h in views.holdings(ledger)}
        assert held[TOKEN].to_json()["balance_text"] == "1.500000 tRGT"
        assert held[TOKEN].to_json()["symbol"] == "tRGT"
        view = provide(PanelContext(ledger=ledger, principal=None, now=T0,  # type: ignore[arg-type]
                                    service=None))
        assert view is not None
        assert view.summary == "Total: 1.500000 tRGT, 2.000000000000000000 ETH"
        assert ("reserve-evm", "1.500000 tRGT", "1") in view.rows


def test_an_older_registration_without_token_units_shows_base_units() -> None:
    with Ledger.open("sqlite:///:memory:") as ledger:
        _register(ledger)
        _deposit(ledger, TOKEN, 1_500_000, 1)
        assert views.token_units(ledger) == {}
        (held,) = views.holdings(ledger)
        assert held.to_json()["balance_text"] == f"1500000 {TOKEN}"
