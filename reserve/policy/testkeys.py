"""TEST-ONLY approval keys derived from fixed, public seeds.

The policies in config/policies/ name approval public keys so that tests and the regtest
demo can sign approvals without a key ceremony. Their private keys are derivable by anyone
from the seeds below: they are test keys, never to guard real value. A production policy
uses keys generated on each custodian's own device (`reserve-sign approval keygen`).
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

# Named *_of, not test_*, so pytest never mistakes them for tests when imported.
SEED_DOMAIN = b"reserve/TEST-ONLY-approval-key/v1\x00"
# The custodians of the sample policies; any other id derives a key the same way.
TEST_MEMBERS = ("finance-ministry", "central-bank", "vasp-regulator", "auditor-general",
                "crypto-council")


def seed_of(member_id: str) -> bytes:
    """The fixed, PUBLIC 32-byte seed of a test approval key."""
    return hashlib.sha256(SEED_DOMAIN + member_id.encode("utf-8")).digest()


def private_key_of(member_id: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(seed_of(member_id))


def public_key_of(member_id: str) -> bytes:
    return private_key_of(member_id).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_key_hex_of(member_id: str) -> str:
    return public_key_of(member_id).hex()
