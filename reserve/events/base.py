"""The machinery of typed ledger events: one frozen dataclass per kind, exact wire payloads.

An event class declares its kind and its fields with ordinary annotations; this module turns
instances into the payload dict that goes into the ledger (`to_payload`) and back
(`from_payload`), refusing unknown, missing or mistyped fields with an `EventError` that
names the kind and the field. The wire payload of every kind must stay byte for byte what
earlier code wrote (the fixtures under tests/fixtures/ hold such ledgers), so:

- a field's wire key is its attribute name unless `WIRE` maps it to another (the vault is
  `vault` in Python everywhere, but `vault_id` on the wire of some kinds);
- a field with the default `ABSENT` is left out of the payload when absent, while `None`
  is written as JSON null: the two are different bytes, and both occur today;
- the annotation chooses the codec: `int` (never bool), `str`, `bool`, `Wei` (an int that
  travels as a decimal string, for amounts beyond 2^53), `Hex` (a hex digest, hash or
  signature, with or without `0x`, checked to be hex), `Time` and `TimeMicros` (aware UTC datetimes in the two text forms the
  ledger uses), `Json` (a nested JSON value kept as it is: documents, outputs, evidence),
  and `X | None` for a value that may be null; `BigInt` is the decimal-string codec of
  `Wei` for counters that are not amounts (a Safe nonce), `Iso` a datetime in Python's
  `isoformat()` text (one field written that way before the ledger fixed its forms);
- `SAME_AS` names fields that repeat another field on the wire (the workflow adds `vault`
  and `digest` beside a chain layer's `vault_id` and `proposal_digest`): both are kept so
  the bytes stay, and an entry whose copy differs from the original is refused;
- a kind written in several shapes (a vault on Bitcoin or on an EVM chain, an anchor of a
  checkpoint or of a report) is a class without fields whose `VARIANTS` map the value of
  its `BY` field to one class per shape; `from_payload` on it returns the right shape.

Nothing here knows about any particular kind; the kinds live in the sibling modules and are
collected by `reserve.events.registry`.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Protocol, TypeVar, Union

from reserve.errors import EventError

# Field types: plain for the type checker, marked for the codec.
Wei = Annotated[int, "wei"]
Hex = Annotated[str, "hex"]
Time = Annotated[datetime, "time"]
TimeMicros = Annotated[datetime, "time-micros"]
Json = Annotated[Any, "json"]
BigInt = Annotated[int, "wei"]
Iso = Annotated[datetime, "iso"]

_SECONDS = "%Y-%m-%dT%H:%M:%SZ"
_MICROS = "%Y-%m-%dT%H:%M:%S.%fZ"
_HEX = re.compile(r"(0x)?[0-9a-fA-F]*")


class _Absent:
    """The default of an optional field that is left out of the payload."""

    _instance: ClassVar[_Absent | None] = None

    def __new__(cls) -> _Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ABSENT"

    def __bool__(self) -> bool:
        return False


ABSENT: Any = _Absent()

E = TypeVar("E", bound="Event")


class Recorded(Protocol):
    """What `Event.of` reads of a ledger entry (reserve.ledger.entry.Entry has it)."""

    @property
    def seq(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def payload(self) -> Any: ...


@dataclasses.dataclass(frozen=True)
class Event:
    """Base of every ledger event. Subclasses set KIND and declare fields."""

    KIND: ClassVar[str] = ""
    WIRE: ClassVar[dict[str, str]] = {}  # attribute -> wire key, where they differ
    SAME_AS: ClassVar[dict[str, str]] = {}  # copy attribute -> the attribute it repeats
    BY: ClassVar[str] = ""  # the wire key whose value picks one of VARIANTS
    VARIANTS: ClassVar[dict[str, type[Event]]] = {}

    def _check_copies(self) -> None:
        for copy, original in self.SAME_AS.items():
            value = getattr(self, copy)
            if value is not ABSENT and value != getattr(self, original):
                raise EventError(f"{self.KIND}: field {_wire(type(self), copy)!r} must repeat "
                                 f"{_wire(type(self), original)!r}, got {str(value)[:80]!r}")

    def to_payload(self) -> dict[str, Any]:
        if "VARIANTS" in type(self).__dict__:
            raise EventError(f"{self.KIND}: write one of its shapes, "
                             f"{', '.join(sorted(self.VARIANTS))}")
        self._check_copies()
        payload: dict[str, Any] = {}
        for field, codec in _codecs(type(self)):
            value = getattr(self, field.name)
            if value is ABSENT:
                continue
            payload[_wire(type(self), field.name)] = codec.encode(self.KIND, field.name, value)
        return payload

    @classmethod
    def check_payload(cls, payload: Any) -> None:
        """Refuse (EventError) a payload `from_payload` would refuse, without building the
        event: the ledger's append path checks every entry this way. A payload the quick
        plan cannot vouch for (a time to parse, a copy to compare, a shape to choose, or
        anything that looks wrong) goes through `from_payload` itself, which decides."""
        plan = _plan(cls)
        if plan is None or type(payload) is not dict or not plan.fits(payload):
            cls.from_payload(payload)

    @classmethod
    def wire_keys(cls) -> frozenset[str]:
        """The keys a payload of this class may hold."""
        return frozenset(_wire(cls, field.name) for field, _ in _codecs(cls))

    @classmethod
    def of(cls: type[E], entry: Recorded) -> E:
        """The typed event of a ledger entry that must be of this class's kind."""
        if entry.kind != cls.KIND:
            raise EventError(f"entry {entry.seq} is a {entry.kind}, not a {cls.KIND}")
        return cls.from_payload(entry.payload)

    @classmethod
    def from_payload(cls: type[E], payload: Any) -> E:
        if not isinstance(payload, dict):
            raise EventError(f"{cls.KIND}: payload must be an object, "
                             f"not {type(payload).__name__}")
        if "VARIANTS" in cls.__dict__:
            shape = payload.get(cls.BY)
            variant = cls.VARIANTS.get(shape) if isinstance(shape, str) else None
            if variant is None:
                raise EventError(f"{cls.KIND}: field {cls.BY!r} must be one of "
                                 f"{', '.join(map(repr, sorted(cls.VARIANTS)))}, "
                                 f"got {str(shape)[:40]!r}")
            return typing.cast(E, variant.from_payload(payload))
        known = {_wire(cls, f.name): (f, c) for f, c in _codecs(cls)}
        unknown = sorted(set(payload) - set(known))
        if unknown:
            raise EventError(f"{cls.KIND}: unknown field(s) {', '.join(map(repr, unknown))}")
        values: dict[str, Any] = {}
        for key, (field, codec) in known.items():
            if key not in payload:
                if field.default is ABSENT:
                    continue
                raise EventError(f"{cls.KIND}: missing field {key!r}")
            values[field.name] = codec.decode(cls.KIND, key, payload[key])
        event = cls(**values)
        event._check_copies()
        if cls.BY and getattr(event, cls.BY) not in _shape_of(cls):
            raise EventError(f"{cls.KIND}: field {cls.BY!r} does not fit {cls.__name__}")
        return event


def _shape_of(cls: type[Event]) -> tuple[str, ...]:
    """The BY values a variant class stands for (found in its parent's VARIANTS)."""
    return tuple(value for base in cls.__mro__[1:] if "VARIANTS" in base.__dict__
                 for value, variant in base.__dict__["VARIANTS"].items() if variant is cls)


def _wire(cls: type[Event], name: str) -> str:
    return cls.WIRE.get(name, name)


# -- codecs -------------------------------------------------------------------------------
class _Codec:
    def __init__(self, kind: str, nullable: bool) -> None:
        self.kind = kind
        self.nullable = nullable

    def encode(self, event_kind: str, name: str, value: Any) -> Any:
        if value is None:
            if not self.nullable:
                raise EventError(f"{event_kind}: field {name!r} may not be null")
            return None
        return self._check(event_kind, name, value, encoding=True)

    def decode(self, event_kind: str, name: str, value: Any) -> Any:
        if value is None:
            if not self.nullable:
                raise EventError(f"{event_kind}: field {name!r} may not be null")
            return None
        return self._check(event_kind, name, value, encoding=False)

    def _check(self, event_kind: str, name: str, value: Any, *, encoding: bool) -> Any:
        def wrong(expected: str) -> EventError:
            return EventError(f"{event_kind}: field {name!r} must be {expected}, "
                              f"got {type(value).__name__}")

        kind = self.kind
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise wrong("an integer")
            return value
        if kind == "bool":
            if not isinstance(value, bool):
                raise wrong("true or false")
            return value
        if kind == "str":
            if not isinstance(value, str):
                raise wrong("a string")
            return value
        if kind == "hex":
            if not isinstance(value, str) or not _HEX.fullmatch(value):
                raise wrong("a hex string")
            return value
        if kind == "wei":
            if encoding:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise wrong("an integer")
                return str(value)
            if not isinstance(value, str) or not re.fullmatch(r"-?[0-9]+", value):
                raise wrong("a decimal string")
            return int(value)
        if kind in ("time", "time-micros"):
            pattern = _SECONDS if kind == "time" else _MICROS
            if encoding:
                if not isinstance(value, datetime) or value.tzinfo is None:
                    raise wrong("an aware datetime")
                return value.astimezone(UTC).strftime(pattern)
            if not isinstance(value, str):
                raise wrong("a UTC time string")
            try:
                return datetime.strptime(value, pattern).replace(tzinfo=UTC)
            except ValueError:
                raise EventError(f"{event_kind}: field {name!r} is not a time of the form "
                                 f"{pattern.replace('%', '')}: {value[:40]!r}") from None
        if kind == "iso":
            if encoding:
                if not isinstance(value, datetime) or value.tzinfo is None:
                    raise wrong("an aware datetime")
                return value.astimezone(UTC).isoformat()
            if not isinstance(value, str):
                raise wrong("an ISO 8601 time string")
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                raise EventError(f"{event_kind}: field {name!r} is not an ISO 8601 time: "
                                 f"{value[:40]!r}") from None
            if moment.tzinfo is None or moment.astimezone(UTC).isoformat() != value:
                raise EventError(f"{event_kind}: field {name!r} must be a UTC ISO 8601 time "
                                 f"(+00:00): {value[:40]!r}")
            return moment.astimezone(UTC)
        if kind == "json":
            return value
        raise EventError(f"{event_kind}: field {name!r} has no codec for {kind!r}")


_CACHE: dict[type[Event], tuple[tuple[dataclasses.Field[Any], _Codec], ...]] = {}


def _codecs(cls: type[Event]) -> tuple[tuple[dataclasses.Field[Any], _Codec], ...]:
    found = _CACHE.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls, include_extras=True)
        found = tuple((field, _codec_for(cls, field.name, hints[field.name]))
                      for field in dataclasses.fields(cls))
        _CACHE[cls] = found
    return found


def _codec_for(cls: type[Event], name: str, hint: Any) -> _Codec:
    nullable = False
    origin = typing.get_origin(hint)
    if origin is Union or origin is types.UnionType:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        nullable = len(args) < len(typing.get_args(hint))
        if len(args) != 1:
            raise TypeError(f"{cls.__name__}.{name}: one type or one type | None")
        hint = args[0]
    if typing.get_origin(hint) is Annotated:
        marks = [m for m in hint.__metadata__ if isinstance(m, str)]
        if len(marks) == 1 and marks[0] in _MARKS:
            return _Codec(marks[0], nullable)
    plain = {int: "int", bool: "bool", str: "str"}.get(hint)
    if plain is None:
        raise TypeError(f"{cls.__name__}.{name}: unsupported field type {hint!r}")
    return _Codec(plain, nullable)


_MARKS = frozenset({"wei", "hex", "time", "time-micros", "iso", "json"})
_DECIMAL = re.compile(r"-?[0-9]+")


class _Plan:
    """The quick acceptance test of `Event.check_payload`: exact types, no objects built."""

    def __init__(self, fields: tuple[tuple[str, str, bool, bool], ...]) -> None:
        self.fields = fields  # (wire key, codec kind, nullable, required)
        self.known = frozenset(key for key, _, _, _ in fields)

    def fits(self, payload: dict[str, Any]) -> bool:
        if not self.known.issuperset(payload):
            return False
        for key, kind, nullable, required in self.fields:
            if key not in payload:
                if required:
                    return False
                continue
            value = payload[key]
            if value is None:
                if not nullable:
                    return False
            elif kind == "str":
                if type(value) is not str:
                    return False
            elif kind == "int":
                if type(value) is not int:
                    return False
            elif kind == "hex":
                if type(value) is not str or not _HEX.fullmatch(value):
                    return False
            elif kind == "bool":
                if type(value) is not bool:
                    return False
            elif kind == "wei":
                if type(value) is not str or not _DECIMAL.fullmatch(value):
                    return False
            elif kind != "json":
                return False
        return True


_PLANS: dict[type[Event], _Plan | None] = {}


def quick_plan(cls: type[Event]) -> tuple[tuple[str, str, bool, bool], ...] | None:
    """The fields (wire key, codec kind, nullable, required) of the class's quick plan, or
    None where only `from_payload` can decide: what the ledger's native core checks in C
    (reserve.ledger.entry) with exactly `_Plan.fits`'s acceptance, which stays the
    reference (tests/unit/test_native.py compares the two)."""
    plan = _plan(cls)
    return None if plan is None else plan.fields


def _plan(cls: type[Event]) -> _Plan | None:
    """The class's quick plan, or None where only `from_payload` can decide."""
    if cls in _PLANS:
        return _PLANS[cls]
    plan: _Plan | None = None
    simple = {"str", "int", "hex", "bool", "wei", "json"}
    if not cls.SAME_AS and not cls.BY and "VARIANTS" not in cls.__dict__ \
            and cls.from_payload.__func__ is Event.from_payload.__func__:  # type: ignore[attr-defined]
        fields = tuple((_wire(cls, field.name), codec.kind, codec.nullable,
                        field.default is not ABSENT) for field, codec in _codecs(cls))
        if all(kind in simple for _, kind, _, _ in fields):
            plan = _Plan(fields)
    _PLANS[cls] = plan
    return plan
