"""RFC 8785 (JSON Canonicalization Scheme) bytes for ledger payloads, fast.

Pure-Python RFC 8785 (the `rfc8785` package) manages about 27,000 small objects a second,
too slow for the append path. The ledger only accepts a subset of JSON where the
standard library's C encoder already produces RFC 8785 output:

- integers with |n| <= 2**53 - 1 (exactly representable as IEEE doubles, so RFC 8785's
  number serialisation prints them as plain decimal digits); no floats at all, since
  amounts are integers and anything else does not belong in a ledger;
- strings that are valid Unicode (no lone surrogates), escaped as ECMAScript does:
  `json.dumps(ensure_ascii=False)` uses the same short escapes and lowercase `\\u00xx`;
- object keys sorted by UTF-16 code units: equal to Python's code-point order unless a key
  holds a character outside the Basic Multilingual Plane, in which case we hand the value
  to the reference implementation.

`canonical_bytes` validates, then encodes; property tests check it against `rfc8785`.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

from reserve.errors import EntryRejected

INTEGER_ABS_MAX = 2**53 - 1
DEPTH_MAX = 32

_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, sort_keys=True,
                           separators=(",", ":")).encode


def _check(value: Any, depth: int) -> bool:
    """Raise EntryRejected if `value` is outside the accepted subset.

    Returns True when some object key lies outside the BMP (needs the reference encoder).
    """
    if depth > DEPTH_MAX:
        raise EntryRejected(f"payload nested deeper than {DEPTH_MAX} levels")
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return False
    if kind is int:
        if -INTEGER_ABS_MAX <= value <= INTEGER_ABS_MAX:
            return False
        raise EntryRejected(f"integer {value} exceeds 2**53-1; encode large amounts "
                            "(wei) as decimal strings")
    if kind is float:
        raise EntryRejected(f"floats are not accepted ({value!r}); use integer base units")
    if kind is list or kind is tuple:
        astral = False
        for item in value:
            astral |= _check(item, depth + 1)
        return astral
    if kind is dict:
        astral = False
        for key, item in value.items():
            if type(key) is not str:
                raise EntryRejected(f"object key {key!r} is not a string")
            if not key.isascii() and max(map(ord, key)) > 0xFFFF:
                astral = True
            astral |= _check(item, depth + 1)
        return astral
    raise EntryRejected(f"value of type {kind.__name__} is not JSON")


def canonical_bytes(value: Any) -> bytes:
    """RFC 8785 canonical UTF-8 bytes of `value`, or EntryRejected if it is not accepted."""
    astral = _check(value, 0)
    if astral:
        return bytes(rfc8785.dumps(value))
    try:
        return _encode(value).encode("utf-8")
    except UnicodeEncodeError as error:
        raise EntryRejected(f"string is not valid Unicode: {error.reason}") from None


def is_canonical(data: bytes) -> bool:
    """True when `data` parses as JSON and re-encodes to exactly the same bytes."""
    try:
        value = json.loads(data)
        return canonical_bytes(value) == data
    except (ValueError, EntryRejected):
        return False
