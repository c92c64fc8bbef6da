"""Is this address and amount possible on this vault's chain? Checked when a proposal is made.

A policy names its chain by CAIP-2 id (`bip122:<genesis>` or `eip155:<chain id>`) and its
network. A destination proposed for a Bitcoin vault must decode, with a valid checksum, as
an address of that network (a mainnet `bc1q...` on a regtest vault is refused, and so is
`zzz`); one for an EVM vault must be 20 bytes of hex with a valid EIP-55 checksum if it is
mixed-case, and not the zero address. Amounts and fee caps are bounded by what the chain
can carry: 21 million BTC in satoshis on Bitcoin, a uint256 on EVM chains.

Pure: no node is asked. The shells (API routes, CLI) call `check_destination` and
`check_transfer` before the workflow records anything, so a refusal writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from reserve.errors import EVMError, NetworkSafetyError, PolicyError

BITCOIN_ASSETS = frozenset({"BTC"})
SATS_MAX = 21_000_000 * 100_000_000  # Bitcoin Core's MAX_MONEY
UINT256_MAX = 2**256 - 1


def chain_family(chain: str) -> str:
    """'bitcoin' or 'evm' for a CAIP-2 chain id; PolicyError for any other namespace."""
    namespace = chain.partition(":")[0]
    if namespace == "bip122":
        return "bitcoin"
    if namespace == "eip155":
        return "evm"
    raise PolicyError(f"chain {chain!r}: only bip122 (Bitcoin) and eip155 (EVM) are known")


def amount_max(chain: str) -> int:
    """The largest amount (or fee cap) in base units a transaction on `chain` can carry."""
    return SATS_MAX if chain_family(chain) == "bitcoin" else UINT256_MAX


def check_destination(chain: str, network: str, asset: str, address: str) -> None:
    """Refuse (PolicyError, saying why) an address the vault on `chain` could not pay."""
    if chain_family(chain) == "bitcoin":
        from wallets.bitcoin.networks import require_address

        if asset not in BITCOIN_ASSETS:
            raise PolicyError(f"a Bitcoin vault holds BTC only, not {asset!r}")
        try:
            require_address(address, network)
        except NetworkSafetyError as error:
            raise PolicyError(f"destination refused: {error}") from None
        return
    from wallets.evm.safe_tx import ZERO_ADDRESS, checksum

    try:
        spelled = checksum(address, "destination")
    except EVMError as error:
        raise PolicyError(f"destination refused: {error}") from None
    if spelled == ZERO_ADDRESS:
        raise PolicyError("destination refused: the zero address burns what it receives")


def check_transfer(chain: str, amounts: Sequence[int], fee_max: int) -> None:
    """Refuse a total or fee cap larger than the chain can carry (PolicyError)."""
    limit = amount_max(chain)
    total = sum(amounts)
    if total > limit:
        raise PolicyError(f"the outputs total {total}, more than {limit}, the most a "
                          f"{chain_family(chain)} transaction can carry")
    if not 0 <= fee_max <= limit:
        raise PolicyError(f"fee_max {fee_max} is outside 0..{limit}, the most a "
                          f"{chain_family(chain)} transaction can carry")


def typed_amount(text: str, asset: str, what: str = "amount") -> int:
    """An amount as a person typed it ('0.2', '0.2 BTC', '20000000'), in exact base units."""
    from reserve import present

    try:
        return present.parse_units(text, asset, what=what)
    except ValueError as error:
        raise PolicyError(str(error)) from None


def fee_cap(chain: str, asset: str, text: str | None) -> int:
    """The fee cap of a transfer: Bitcoin names one; a Safe transfer pays none from the vault
    (the service's own key pays the gas), so it is 0 and may be left out."""
    if chain_family(chain) == "bitcoin":
        if text is None:
            raise PolicyError("a Bitcoin transfer needs a fee cap (fee_max / --fee-max, e.g. "
                              "20000sat or 0.0002)")
        return typed_amount(text, asset, "fee cap")
    if text is not None and typed_amount(text, asset, "fee cap") != 0:
        raise PolicyError("an EVM (Safe) transfer pays no fee from the vault (the service's "
                          "own key pays the gas): leave out the fee cap")
    return 0
