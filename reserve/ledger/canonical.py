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

Speed (the append path and the verifier call these once per entry): a fast validator
(`_plain`) checks scalars inline and recurses only into nested containers; it answers
"certainly plain" or "ask the exact path", never "reject", so every refusal and every
astral-key case still goes through `_check`, and the fast path's bytes come from the
very encoder the exact path uses. The verifier's `parse_plain` decides canonicality with
one parse and one encode, again leaving anything unusual to the exact path; before it,
`loads_canonical` does the same in C (orjson plus one regular expression), about twice as
fast, and says only "certainly canonical" or "ask the other paths".
"""

from __future__ import annotations

import json
import json.encoder
import json.scanner
import re
from typing import Any

import rfc8785

try:  # a C JSON library: the verifier's fast canonicality check (see loads_canonical)
    import orjson
except ImportError:  # pragma: no cover - declared dependency; without it the stdlib path runs
    orjson = None  # type: ignore[assignment]

from reserve.errors import EntryRejected
from reserve.ledger.native import core as _native

INTEGER_ABS_MAX = 2**53 - 1
DEPTH_MAX = 32

_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, sort_keys=True,
                           separators=(",", ":")).encode

# The C encoder `_encode` builds on each call, built once. No cycle markers: `_plain` bounds
# the depth before anything reaches it. Same separators, key order, escapes and refusals.
# (The C accelerators are untyped in typeshed, hence the Any.)
c_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)
make_scanner: Any = json.scanner.make_scanner
_c_encode = (c_make_encoder(None, None, json.encoder.encode_basestring, None, ":", ",", True,
                            False, False) if c_make_encoder is not None else None)
# How the encoder writes a string (ECMAScript escapes, non-ASCII kept): for callers that
# assemble canonical text around values it wrote.
encode_string = json.encoder.encode_basestring


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


def _plain(value: Any, depth: int) -> bool:
    """True when `value` is certainly accepted and has no astral key (the C encoder's output
    is then canonical); False means "decide with the exact path", not "reject".

    `_check` with the scalar cases inlined (no call per scalar): the per-entry hot spot.
    """
    kind = type(value)
    if kind is dict:
        if depth >= DEPTH_MAX and value:
            return False
        for key, item in value.items():
            if type(key) is not str:
                return False
            kind = type(item)
            if kind is str or kind is bool or item is None:
                continue
            if kind is int:
                if -INTEGER_ABS_MAX <= item <= INTEGER_ABS_MAX:
                    continue
                return False
            if (kind is dict or kind is list or kind is tuple) and _plain(item, depth + 1):
                continue
            return False
        keys = "".join(value)
        return keys.isascii() or max(map(ord, keys)) <= 0xFFFF
    if kind is list or kind is tuple:
        if depth >= DEPTH_MAX and value:
            return False
        for item in value:
            kind = type(item)
            if kind is str or kind is bool or item is None:
                continue
            if kind is int:
                if -INTEGER_ABS_MAX <= item <= INTEGER_ABS_MAX:
                    continue
                return False
            if (kind is dict or kind is list or kind is tuple) and _plain(item, depth + 1):
                continue
            return False
        return True
    return kind is str or kind is bool or value is None or (
        kind is int and -INTEGER_ABS_MAX <= value <= INTEGER_ABS_MAX)


def plain_text(value: Any, depth: int = 0) -> str | None:
    """Canonical text of `value` (at nesting `depth`) if `_plain` vouches for it, else None.

    The text may still hold a lone surrogate: encoding it to UTF-8 then fails, as it must.
    """
    if _c_encode is not None and _plain(value, depth):
        return "".join(_c_encode(value, 0))
    return None


def fast_bytes(value: Any, depth: int = 0) -> bytes | None:
    """Canonical bytes of `value` (at nesting `depth`) from the fastest encoder that can
    vouch for them, or None to let the exact path decide (and refuse).

    The native `plain` walk (canonical._plain in C) says the value is in the accepted
    subset with no astral key; on that subset orjson with sorted keys writes RFC 8785
    bytes exactly (property-tested against `rfc8785` in tests/unit/test_canonical.py).
    A lone surrogate makes orjson refuse: None, and the exact path words the refusal.
    """
    if _native is None or orjson is None or not _native.plain(value, depth):
        return None
    try:
        return orjson.dumps(value, option=ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return None


def canonical_bytes(value: Any) -> bytes:
    """RFC 8785 canonical UTF-8 bytes of `value`, or EntryRejected if it is not accepted."""
    fast = fast_bytes(value)
    if fast is not None:
        return fast
    if _c_encode is not None and _plain(value, 0):
        try:
            return "".join(_c_encode(value, 0)).encode("utf-8")
        except UnicodeEncodeError as error:
            raise EntryRejected(f"string is not valid Unicode: {error.reason}") from None
    astral = _check(value, 0)
    if astral:
        return bytes(rfc8785.dumps(value))
    try:
        return _encode(value).encode("utf-8")
    except UnicodeEncodeError as error:
        raise EntryRejected(f"string is not valid Unicode: {error.reason}") from None


def nesting_within_limit(data: bytes) -> bool:
    """False when `data` nests arrays/objects deeper than DEPTH_MAX + 1 (the entry envelope).

    Checked before any parser sees the bytes: the recursive JSON parsers (C and Python)
    would exhaust the C stack on hostile input such as 100,000 '[' when a test harness has
    raised the recursion limit. Brackets inside strings are skipped.
    """
    if data.count(b"[") + data.count(b"{") <= DEPTH_MAX + 1:
        return True
    depth, in_string, escaped = 0, False, False
    for byte in data:  # bounded by len(data); only reached by unusual bodies
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > DEPTH_MAX + 1:
                return False
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return True


def is_canonical(data: bytes) -> bool:
    """True when `data` parses as JSON and re-encodes to exactly the same bytes."""
    if not nesting_within_limit(data):
        return False
    if loads_canonical(data) is not None:
        return True
    parsed = parse_plain(data)
    return _is_canonical_exact(data) if parsed is None else is_canonical_text(*parsed)


class _Undecided(Exception):
    """Raised inside the parser: this text is for the exact path."""


def _refuse(_token: str) -> Any:
    raise _Undecided


def _short_int(token: str) -> int:
    # At most 15 characters: |n| < 10**15 <= 2**53 - 1, inside the accepted range.
    if len(token) <= 15:
        return int(token)
    raise _Undecided


_scan_plain = make_scanner(json.JSONDecoder(parse_float=_refuse, parse_constant=_refuse,
                                            parse_int=_short_int))
_BELOW_F0 = bytes(range(0xF0))  # deleting these leaves the lead bytes of astral characters


def parse_plain(data: bytes) -> tuple[str, Any] | None:
    """(text, json.loads(data)) when `data` is UTF-8 text of exactly one JSON value that
    `_plain` accepts; None leaves the case to the exact path.

    Checked without walking the value: no astral character anywhere (so none in a key), no
    float or NaN and no integer of 16+ characters (parser hooks), at most DEPTH_MAX
    brackets (else `_plain` walks it), nothing around the value (json.loads skips
    whitespace, this does not), valid UTF-8 (json.loads also guesses UTF-16/32).
    """
    if _c_encode is None or (not data.isascii() and data.translate(None, _BELOW_F0)):
        return None
    try:
        text = data.decode("utf-8")
        value, end = _scan_plain(text, 0)
    except (ValueError, StopIteration, RecursionError, _Undecided):  # UnicodeDecodeError too
        return None
    if end != len(text) or (text.count("{") + text.count("[") > DEPTH_MAX
                            and not _plain(value, 0)):
        return None
    return text, value


ORJSON_OPTIONS = (orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER) if orjson is not None else 0
# Canonical JSON text with no backslash and no byte F0-FF (so no astral character), whose
# only tokens outside strings are brackets, `:`, `,`, `-`, digits and the three literals:
# no fraction, no exponent, so no float. Possessive, so it never backtracks.
_PLAIN_TOKENS = re.compile(rb'(?:"[^"\\\xf0-\xff]*+"|[{}\[\]:,0-9\-]++|true|false|null)*+')


def loads_canonical(data: bytes) -> tuple[Any] | None:
    """(json.loads(data),) when `data` is certainly RFC 8785 canonical and accepted (what
    `_is_canonical_exact` says True to); None leaves the case to the other paths.

    orjson parses (strict RFC 8259 and UTF-8: no lone surrogates, NaN, BOM or trailing
    bytes) and re-encodes with sorted keys; on the accepted subset its output is RFC 8785's,
    byte for byte (property-tested against `rfc8785`): the same short escapes and lowercase
    `\\u00xx`, non-ASCII as UTF-8, integers as plain digits, OPT_STRICT_INTEGER refusing
    |n| > 2**53 - 1, and keys in code-point order, which is RFC 8785's UTF-16 order when no
    key holds an astral character. What orjson does not check, `_PLAIN_TOKENS` does on the
    bytes: no astral character (F0-FF), no float (valid JSON writes every float with a
    fraction or an exponent; without backslashes every `"` delimits a string), and the
    bracket count bounds the nesting depth.
    """
    if orjson is None or data.count(b"{") + data.count(b"[") > DEPTH_MAX \
            or _PLAIN_TOKENS.fullmatch(data) is None:
        return None
    try:
        value = orjson.loads(data)
        if orjson.dumps(value, option=ORJSON_OPTIONS) != data:
            return None
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return None
    return (value,)


def is_canonical_text(text: str, value: Any) -> bool:
    """Given (text, value) from parse_plain: is `text` the canonical form of `value`?"""
    return "".join(_c_encode(value, 0)) == text  # type: ignore[misc]


def _is_canonical_exact(data: bytes) -> bool:
    if not nesting_within_limit(data):
        return False
    try:
        value = json.loads(data)
        return canonical_bytes(value) == data
    except (ValueError, RecursionError, EntryRejected):
        return False
