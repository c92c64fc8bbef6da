"""An EVM key in the project's encrypted keystore: kind "secp256k1", public part = address.

Both the service (its gas-paying key, `node.service_account`) and the custodian's offline
signer (`wallets.signer.evm`) unlock such a key, so reading one lives here, below both.
"""

from __future__ import annotations

from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from reserve import keystore
from reserve.errors import KeystoreError

KIND = "secp256k1"


def load_account(path: Path, passphrase: str) -> LocalAccount:
    """The account from its keystore; the stored address must match the key."""
    document = keystore.read(Path(path))
    if document["kind"] != KIND:
        raise KeystoreError(f"{path} holds a {document['kind']} key, not an EVM ({KIND}) key")
    account: LocalAccount = Account.from_key(keystore.unseal(document, passphrase))
    if account.address != document["public"]:
        raise KeystoreError(f"{path}: key does not match its recorded address")
    return account
