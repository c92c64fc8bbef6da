"""The demo's custodians: five institutions, each with its own encrypted keys.

In production every custodian creates their keys on their own device. The demo stands in
for them with the project's TEST keys (public, fixed seeds; regtest and anvil only), but it
still keeps each key in that custodian's own encrypted keystore file and signs only after
loading it from there, exactly as `reserve-sign` does: an approval key (Ed25519, votes on
proposals), a Bitcoin key (BIP 32, signs PSBTs) and an EVM key (signs Safe transactions).

`custody_problems` is the pure check that the Bitcoin vault's multisig and the custody
policy describe the same people: same vault id and network, same custodian ids, each at the
same institution, five distinct institutions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from embit import bip32
from eth_account.signers.local import LocalAccount

from reserve import keystore
from reserve.errors import ConfigError
from reserve.policy.model import Policy
from reserve.policy.testkeys import private_key_of
from reserve.proposals.approval import Approval, sign
from reserve.proposals.proposal import Proposal
from wallets.bitcoin import testkeys as btc_testkeys
from wallets.bitcoin.vault import Vault
from wallets.evm import testkeys as evm_testkeys
from wallets.evm.config import EVMVaultConfig
from wallets.evm.keys import load_account
from wallets.signer import approval as approval_signer
from wallets.signer import bitcoin as btc_signer
from wallets.signer import evm as evm_signer

# Labelled demo secret protecting the TEST keys' keystores in the demo's working folder.
PASSPHRASE = "demo-only-custodian-passphrase"  # noqa: S105 - labelled demo secret
SCRYPT_N_DEMO = 2**12  # the keys are public TEST keys anyway; keep the demo fast
INSTITUTIONS_REQUIRED = 5


@dataclass(frozen=True)
class CustodianKeys:
    """Where one custodian's three keystores are (never the keys themselves)."""

    id: str
    institution: str
    approval_key: Path
    bitcoin_key: Path
    evm_key: Path
    evm_address: str


def custody_problems(vault: Vault, policy: Policy) -> list[str]:
    """Every way in which the multisig vault and its policy disagree (empty: consistent)."""
    problems = []
    if vault.vault_id != policy.vault:
        problems.append(f"vault id {vault.vault_id!r} differs from the policy's {policy.vault!r}")
    if vault.network != policy.network:
        problems.append(f"vault network {vault.network!r} differs from the policy's "
                        f"{policy.network!r}")
    in_vault = {c.name: c.institution for c in vault.custodians}
    in_policy = {c.id: c.institution for c in policy.custodians}
    if in_vault != in_policy:
        problems.append(f"vault custodians {sorted(in_vault.items())} differ from the "
                        f"policy's {sorted(in_policy.items())}")
    if len(set(in_policy.values())) != INSTITUTIONS_REQUIRED:
        problems.append(f"the policy names {len(set(in_policy.values()))} institutions, "
                        f"not {INSTITUTIONS_REQUIRED}")
    if not 1 < vault.threshold <= len(vault.custodians):
        problems.append(f"threshold {vault.threshold} of {len(vault.custodians)} is no quorum")
    return problems


def require_consistent(vault: Vault, policy: Policy) -> None:
    problems = custody_problems(vault, policy)
    if problems:
        raise ConfigError("the Bitcoin vault and its policy disagree: " + "; ".join(problems))


def _test_number(custodian_id: str) -> int:
    names = [name for name, _institution in btc_testkeys.TEST_CUSTODIANS]
    if custodian_id not in names:
        raise ConfigError(f"{custodian_id!r} has no TEST Bitcoin key (known: {names})")
    return names.index(custodian_id) + 1


def _evm_number(evm_vault: EVMVaultConfig, custodian_id: str) -> int:
    for owner in evm_vault.owners:
        if owner.custodian == custodian_id and owner.test_key is not None:
            return owner.test_key
    raise ConfigError(f"{custodian_id!r} is not a TEST owner of EVM vault {evm_vault.id}")


def create_keystores(folder: Path, policy: Policy, vault: Vault,
                     evm_vault: EVMVaultConfig) -> dict[str, CustodianKeys]:
    """Each custodian's TEST keys sealed into their own keystores under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    result = {}
    for member in policy.custodians:
        base = folder / member.id
        approval_path = base.with_name(f"{member.id}-approval.json")
        keystore.write(approval_path, approval_signer.seal_key(
            private_key_of(member.id), custodian=member.id, passphrase=PASSPHRASE,
            scrypt_n=SCRYPT_N_DEMO))
        demo = btc_testkeys.demo_custodian_key(_test_number(member.id), vault.network)
        bitcoin_path = base.with_name(f"{member.id}-bitcoin.json")
        keystore.write(bitcoin_path, keystore.seal(
            demo.root.to_base58().encode(), kind="bip32-xprv", label=member.id,
            public=f"{demo.custodian.key_origin}{demo.custodian.xpub}", passphrase=PASSPHRASE,
            scrypt_n=SCRYPT_N_DEMO))
        evm_path = base.with_name(f"{member.id}-evm.json")
        address = evm_signer.create_key(
            evm_path, label=f"{member.id} (TEST)", passphrase=PASSPHRASE,
            secret=evm_testkeys.custodian_private_key(_evm_number(evm_vault, member.id)),
            scrypt_n=SCRYPT_N_DEMO)
        result[member.id] = CustodianKeys(member.id, member.institution, approval_path,
                                          bitcoin_path, evm_path, address)
    return result


def approve(keys: CustodianKeys, proposal: Proposal) -> Approval:
    """The custodian's vote: key loaded from their keystore, signed over the digest they
    recomputed from the proposal document (never over a bare hash)."""
    private_key: Ed25519PrivateKey
    private_key, custodian = approval_signer.load_key(keys.approval_key, PASSPHRASE)
    return sign(private_key, proposal.digest, "approve", custodian)


def bitcoin_root(keys: CustodianKeys) -> bip32.HDKey:
    return btc_signer.load_root(keys.bitcoin_key, PASSPHRASE)


def evm_account(keys: CustodianKeys) -> LocalAccount:
    return load_account(keys.evm_key, PASSPHRASE)
