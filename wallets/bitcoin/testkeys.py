"""TEST KEYS ONLY: the fixed custodian keys of the regtest vaults in config/vaults/.

Tests and `reserve demo` must be able to sign for the demo vaults, so the custodians' keys
come from fixed, public seeds: entropy N = sha256(b"sovereign-reserve test custodian N"),
turned into a BIP 39 mnemonic with bitcoinlib and into a seed with BIP 39's PBKDF2. Anyone
can derive these keys: never use them for anything but regtest/signet demonstrations.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from bitcoinlib.mnemonic import Mnemonic
from embit import bip32, bip39

from wallets.bitcoin.networks import params
from wallets.bitcoin.vault import Custodian, FeeSettings, Vault

TEST_CUSTODIANS = (
    ("finance-ministry", "Ministry of Finance"),
    ("central-bank", "Central Bank"),
    ("vasp-regulator", "Virtual Assets Regulatory Authority"),
    ("auditor-general", "Office of the Auditor-General"),
    ("crypto-council", "National Crypto Council"),
)


@dataclass(frozen=True)
class DemoCustodianKey:
    number: int
    custodian: Custodian
    mnemonic: str
    root: bip32.HDKey  # the private root key: TEST ONLY


def demo_mnemonic(number: int) -> str:
    """The public, fixed BIP 39 mnemonic of test custodian `number` (1-based)."""
    entropy = hashlib.sha256(f"sovereign-reserve test custodian {number}".encode()).digest()
    words: str = Mnemonic().to_mnemonic(entropy)
    return words


def account_path(network: str, account: int = 0) -> str:
    """BIP 48 P2WSH account path: m/48'/coin'/account'/2'."""
    return f"m/48h/{params(network).coin_type}h/{account}h/2h"


def custodian_from_root(root: bip32.HDKey, name: str, institution: str,
                        network: str, account: int = 0) -> Custodian:
    """The public custodian record (key origin + account xpub) for a private root key."""
    chain = params(network)
    path = account_path(network, account)
    account_key: bip32.HDKey = root.derive(path).to_public()
    origin = f"[{root.my_fingerprint.hex()}/{path[2:]}]"
    return Custodian(name=name, institution=institution, key_origin=origin,
                     xpub=account_key.to_base58(version=chain.embit["xpub"]))


def demo_custodian_key(number: int, network: str = "regtest",
                      account: int = 0) -> DemoCustodianKey:
    """Requires 1 <= number <= 5 and 0 <= account < 2**31."""
    if not 1 <= number <= len(TEST_CUSTODIANS):
        raise ValueError(f"test custodians are numbered 1..{len(TEST_CUSTODIANS)}")
    mnemonic = demo_mnemonic(number)
    chain = params(network)
    root = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(mnemonic), version=chain.embit["xprv"])
    name, institution = TEST_CUSTODIANS[number - 1]
    return DemoCustodianKey(number=number, mnemonic=mnemonic, root=root,
                            custodian=custodian_from_root(root, name, institution, network,
                                                          account))


def demo_custodian_keys(count: int, network: str = "regtest",
                       account: int = 0) -> tuple[DemoCustodianKey, ...]:
    return tuple(demo_custodian_key(n, network, account) for n in range(1, count + 1))


def demo_vault(threshold: int, count: int, *, network: str = "regtest", account: int = 0,
               vault_id: str | None = None, fees: FeeSettings | None = None,
               confirmations_min: int = 1) -> Vault:
    """A vault of the first `count` test custodians (TEST KEYS), e.g. for isolated tests."""
    keys = demo_custodian_keys(count, network, account)
    return Vault(vault_id=vault_id or f"test-{threshold}of{count}-a{account}", network=network,
                 threshold=threshold, custodians=tuple(k.custodian for k in keys),
                 confirmations_min=confirmations_min, fees=fees or FeeSettings())
