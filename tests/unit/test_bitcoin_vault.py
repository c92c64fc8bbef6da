"""The vault model: config files, descriptors and derivation (golden values from bitcoind)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reserve.errors import ConfigError
from wallets.bitcoin.testkeys import demo_custodian_keys, demo_mnemonic, demo_vault
from wallets.bitcoin.vault import CHANGE, RECEIVE, load_vault, vault_from_dict

NATIONAL = "config/vaults/national-btc-2of3.toml"


def test_config_vaults_are_the_test_custodians() -> None:
    for path, m, n in [(NATIONAL, 2, 3), ("config/vaults/reserve-btc-3of5.toml", 3, 5)]:
        vault = load_vault(path)
        assert (vault.threshold, len(vault.custodians)) == (m, n)
        assert [c.xpub for c in vault.custodians] == \
            [k.custodian.xpub for k in demo_custodian_keys(n)]
        assert "TEST KEYS" in Path(path).read_text()


def test_descriptor_and_golden_addresses() -> None:
    vault = load_vault(NATIONAL)
    # Checksum and addresses as bitcoind's getdescriptorinfo / deriveaddresses gave them.
    assert vault.descriptor().endswith("#k8zgndhh")
    assert vault.descriptor().startswith("wsh(sortedmulti(2,[4b9a9dfd/48h/1h/0h/2h]tpub")
    assert "/<0;1>/*" in vault.descriptor()
    assert vault.address(RECEIVE, 0) == \
        "bcrt1qtux6rzqme7283q8y5kyfv3p2t4w90408s4qxatan9d6sn29d3u3sxnjjmv"
    assert vault.address(CHANGE, 0) == \
        "bcrt1q26dux4unw8rfyv0j8c3uwak2crsj2m0eljcccvkmyyusggclc2jshughdk"


def test_test_seeds_are_fixed_bip39_mnemonics() -> None:
    words = demo_mnemonic(1).split()
    assert len(words) == 24 and demo_mnemonic(1) == demo_mnemonic(1) != demo_mnemonic(2)


def _raw(**changes: object) -> dict:  # type: ignore[type-arg]
    vault = demo_vault(2, 3)
    raw = {"vault_id": "v", "network": "regtest", "threshold": 2,
           "custodians": [{"name": c.name, "institution": c.institution,
                           "key_origin": c.key_origin, "xpub": c.xpub}
                          for c in vault.custodians]}
    raw.update(changes)
    return raw


def test_bad_vault_configs_are_refused() -> None:
    good = _raw()
    assert vault_from_dict(good).threshold == 2
    with pytest.raises(ConfigError, match="M <= N"):
        vault_from_dict(_raw(threshold=4))
    with pytest.raises(ConfigError, match="M <= N"):
        vault_from_dict(_raw(threshold=0))
    with pytest.raises(ConfigError, match="distinct"):
        vault_from_dict(_raw(custodians=[good["custodians"][0]] * 3))
    with pytest.raises(ConfigError, match="BIP 48"):
        vault_from_dict(_raw(network="mainnet"))  # coin type 1 keys in a mainnet vault
    bad_path = dict(good["custodians"][0], key_origin=good["custodians"][0]["key_origin"]
                    .replace("/2h]", "/1h]"))
    with pytest.raises(ConfigError, match="BIP 48"):
        vault_from_dict(_raw(custodians=[bad_path, *good["custodians"][1:]]))
    with pytest.raises(ConfigError, match="missing"):
        vault_from_dict(_raw(custodians=[{"name": "x"}]))
    with pytest.raises(ConfigError, match="not found"):
        load_vault("config/vaults/nope.toml")
