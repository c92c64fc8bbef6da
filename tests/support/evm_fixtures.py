"""Shared anvil fixtures for the EVM tests: one chain and one demo reserve per session.

Import the fixtures into a test module (`from tests.support.evm_fixtures import ...`).
Each test that changes the chain uses `chain`, which takes an anvil snapshot before the
test and reverts to it afterwards, so tests stay isolated without redeploying.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from reserve.ledger import Ledger
from wallets.evm import anvil as anvil_node
from wallets.evm import contracts, testkeys
from wallets.evm.demo import Deployment, deploy_reserve
from wallets.evm.transfer import ETH
from wallets.evm.vault import AssetLimit

ETHER = 10**18
THRESHOLD = 3
# Allowlisted destinations: TEST addresses standing for the reserve's cold storage and a
# counterparty; NOT_ALLOWLISTED is any other address.
COLD_STORAGE = Web3.to_checksum_address("0x" + "c0" * 20)
COUNTERPARTY = Web3.to_checksum_address("0x" + "cc" * 20)
NOT_ALLOWLISTED = Web3.to_checksum_address("0x" + "bad0" * 10)
ETH_PER_TX = 5 * ETHER
ETH_DAILY = 8 * ETHER
TOKEN_PER_TX = 1_000 * ETHER
TOKEN_DAILY = 1_500 * ETHER
VAULT_ETH = 20 * ETHER
VAULT_TOKENS = 5_000 * ETHER


@dataclass(frozen=True)
class Reserve:
    w3: Web3
    deployment: Deployment
    deployer: LocalAccount
    owner_keys: tuple[bytes, ...]


def rpc(w3: Web3, method: str, *params: object) -> object:
    response = w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    if "error" in response:
        raise RuntimeError(f"{method}: {response['error']}")
    return response["result"]


# pytest makes one copy of a session fixture per test module that imports it, so the node
# and the deployment are cached here: one anvil and one deployment for the whole session.
_SHARED: dict[str, Any] = {}


@pytest.fixture(scope="session")
def anvil() -> Iterator[anvil_node.Anvil]:
    node = _SHARED.get("anvil")
    if node is None or not node.alive():
        node = _SHARED["anvil"] = anvil_node.start()
        _SHARED.pop("deployed", None)
    try:
        yield node
    finally:
        node.stop()  # session teardown; idempotent across the module copies


@pytest.fixture(scope="session")
def w3(anvil: anvil_node.Anvil) -> Web3:
    return Web3(Web3.HTTPProvider(anvil.url, request_kwargs={"timeout": 10}))


def deploy_test_reserve(w3: Web3) -> Reserve:
    """Safe (3 of 5 TEST custodians) + guard + registry + token, vault funded."""
    deployer = testkeys.deployer_account()
    rpc(w3, "anvil_setBalance", deployer.address, hex(1_000 * ETHER))
    owner_keys = tuple(testkeys.custodian_private_key(n) for n in range(1, 6))
    deployment = deploy_reserve(
        w3, deployer, owner_keys=owner_keys, threshold=THRESHOLD,
        destinations=[COLD_STORAGE, COUNTERPARTY],
        limits=[AssetLimit(ETH, ETH_PER_TX, ETH_DAILY),
                AssetLimit("TOKEN", TOKEN_PER_TX, TOKEN_DAILY)],
        token_supply=1_000_000 * ETHER)
    contracts.send_ether(w3, deployer, deployment.safe, VAULT_ETH)
    token = contracts.at(w3, "ReserveToken", deployment.token)
    contracts.transact(w3, deployer, token.functions.transfer(deployment.safe, VAULT_TOKENS))
    return Reserve(w3=w3, deployment=deployment, deployer=deployer, owner_keys=owner_keys)


@pytest.fixture(scope="session")
def deployed(w3: Web3) -> Reserve:
    cached = _SHARED.get("deployed")
    if cached is None or cached.w3.provider.endpoint_uri != w3.provider.endpoint_uri:
        cached = _SHARED["deployed"] = deploy_test_reserve(w3)
    return cached  # type: ignore[no-any-return]


@pytest.fixture
def chain(deployed: Reserve) -> Iterator[Reserve]:
    """The deployed reserve, with every chain change of the test undone afterwards."""
    snapshot = rpc(deployed.w3, "evm_snapshot")
    try:
        yield deployed
    finally:
        assert rpc(deployed.w3, "evm_revert", snapshot) is True


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    opened = Ledger.open("sqlite:///:memory:")
    try:
        yield opened
    finally:
        opened.close()
