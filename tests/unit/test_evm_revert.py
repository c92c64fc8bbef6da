"""Revert payloads decoded from the ABIs into readable errors."""

from __future__ import annotations

from eth_abi import encode
from eth_utils import keccak

from wallets.evm.contracts import known_abis
from wallets.evm.revert import decode_revert, revert_data_of

DEST = "0x" + "de" * 20


def custom(signature: str, types: list[str], values: list[object]) -> bytes:
    return keccak(text=signature)[:4] + encode(types, values)


def test_guard_errors_read_as_sentences() -> None:
    error = decode_revert(custom("DestinationNotAllowlisted(address)", ["address"], [DEST]),
                          known_abis())
    assert error.name == "DestinationNotAllowlisted" and error.contract == "ReserveGuard"
    assert "is not on the vault's on-chain allowlist" in str(error)
    assert error.arguments["destination"].lower() == DEST
    limit = decode_revert(custom("DailyLimitExceeded(address,uint256,uint256,uint256)",
                                 ["address", "uint256", "uint256", "uint256"],
                                 [DEST, 5, 4, 8]), known_abis())
    assert "(5 already spent in the window)" in str(limit)
    frozen = decode_revert(keccak(text="VaultFrozen()")[:4], known_abis())
    assert "frozen" in str(frozen) and "0x" not in str(frozen)


def test_other_errors_show_name_and_arguments() -> None:
    error = decode_revert(custom("IndexOutOfRange(uint256,uint256)", ["uint256", "uint256"],
                                 [3, 2]), known_abis())
    assert str(error) == "ReserveRegistry refused: IndexOutOfRange(index=3, count=2)"


def test_safe_reason_strings_are_explained() -> None:
    data = bytes.fromhex("08c379a0") + encode(["string"], ["GS026"])
    error = decode_revert(data, known_abis())
    assert error.name == "GS026" and "not an owner or signatures are out of order" in str(error)
    plain = decode_revert(bytes.fromhex("08c379a0") + encode(["string"], ["nope"]), [])
    assert str(plain) == "reverted: nope"


def test_panic_and_unknown_payloads() -> None:
    panic = decode_revert(bytes.fromhex("4e487b71") + encode(["uint256"], [0x11]), [])
    assert "0x11" in str(panic)
    assert "unknown data 0xdeadbeef" in str(decode_revert(bytes.fromhex("deadbeef"), []))


def test_revert_data_is_found_on_web3_errors() -> None:
    class Fake(Exception):
        data = "0xdeadbeef"

    assert revert_data_of(Fake()) == bytes.fromhex("deadbeef")

    class NoData(Exception):
        data = None

    assert revert_data_of(NoData()) is None
