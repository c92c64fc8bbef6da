"""Meter operators' signed energy readings: the document, its signature, and the checks a
reading must pass before it is recorded as `energy.reading`.

A reading says that `site`, metered by `meter`, consumed `energy_kwh` (an integer) over
[period_start, period_end) (UTC, whole seconds). The meter operator signs the RFC 8785
canonical JSON of the reading (format reserve-energy-reading/1, without the signature)
behind a domain prefix with its Ed25519 key, offline; the shape is the regulator's licence
changes' (reserve.policy.licences). Pure: no clock, no I/O.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from reserve.errors import MiningError, MiningNotFound
from reserve.events.mining import EnergyReading
from reserve.ledger.canonical import canonical_bytes
from reserve.ledger.checkpoint import VerifierKey
from reserve.mining.sites import Registry, Site

FORMAT = "reserve-energy-reading/1"
DOMAIN = b"reserve/energy-reading/v1\x00"
ENERGY_KWH_MAX = 10**15
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def parse_time(text: Any, what: str) -> datetime:
    """A UTC time written YYYY-MM-DDTHH:MM:SSZ (one spelling per instant)."""
    if not isinstance(text, str) or not _TIME.match(text):
        raise MiningError(f"{what} must be a UTC time like 2026-01-05T00:00:00Z, "
                          f"got {text!r}")
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise MiningError(f"{what} {text!r} is not a valid time") from None


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def seconds_between(start: datetime, end: datetime) -> int:
    delta = end - start
    return delta.days * 86_400 + delta.seconds  # whole seconds: times carry no fractions


def within_capacity(energy_kwh: int, capacity_kw: int, seconds: int) -> bool:
    """Whether `energy_kwh` fits `capacity_kw` running flat out for `seconds`:
    kWh x 3600 <= kW x s, in integers (no rounding anywhere)."""
    return energy_kwh * 3600 <= capacity_kw * seconds


@dataclass(frozen=True)
class Reading:
    site: str
    meter: str
    period_start: datetime
    period_end: datetime
    energy_kwh: int
    meter_key: str  # the signer's note verifier key, name+hash+base64
    signature: str  # base64 Ed25519 over signed_bytes()

    def statement(self) -> dict[str, Any]:
        return {"format": FORMAT, "site": self.site, "meter": self.meter,
                "period_start": format_time(self.period_start),
                "period_end": format_time(self.period_end), "energy_kwh": self.energy_kwh,
                "meter_key": self.meter_key}

    def signed_bytes(self) -> bytes:
        return DOMAIN + canonical_bytes(self.statement())

    def document(self) -> dict[str, Any]:
        """The file the meter operator hands over: the reading and its signature."""
        return {**self.statement(), "signature": self.signature}

    @property
    def seconds(self) -> int:
        return seconds_between(self.period_start, self.period_end)

    def event(self) -> EnergyReading:
        return EnergyReading(site=self.site, meter=self.meter,
                             period_start=format_time(self.period_start),
                             period_end=format_time(self.period_end),
                             energy_kwh=self.energy_kwh, meter_key=self.meter_key,
                             signature=self.signature)

    @classmethod
    def of(cls, event: EnergyReading) -> Reading:
        return cls(event.site, event.meter, parse_time(event.period_start, "period_start"),
                   parse_time(event.period_end, "period_end"), event.energy_kwh,
                   event.meter_key, event.signature)


def _check_fields(site: str, meter: str, start: datetime, end: datetime,
                  energy_kwh: Any) -> None:
    if not isinstance(site, str) or not site or not isinstance(meter, str) or not meter:
        raise MiningError("a reading names its site and its meter")
    if isinstance(energy_kwh, bool) or not isinstance(energy_kwh, int) \
            or not 0 <= energy_kwh <= ENERGY_KWH_MAX:
        raise MiningError(f"energy_kwh must be an integer in 0..{ENERGY_KWH_MAX}, "
                          f"got {energy_kwh!r}")
    if end <= start:
        raise MiningError(f"reading of {site}: the period ends ({format_time(end)}) at or "
                          f"before it starts ({format_time(start)})")


def sign_reading(private_key: Ed25519PrivateKey, name: str, *, site: str, meter: str,
                 period_start: datetime, period_end: datetime,
                 energy_kwh: int) -> Reading:
    """The meter operator's signed reading (run offline, on the operator's machine)."""
    start = period_start.astimezone(UTC).replace(microsecond=0)
    end = period_end.astimezone(UTC).replace(microsecond=0)
    _check_fields(site, meter, start, end, energy_kwh)
    public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key = VerifierKey(name=name, public_key=public).encode()
    unsigned = Reading(site, meter, start, end, energy_kwh, key, "")
    signature = base64.b64encode(private_key.sign(unsigned.signed_bytes())).decode()
    return Reading(site, meter, start, end, energy_kwh, key, signature)


def reading_from_document(document: Any) -> Reading:
    """Parse a reading file (not yet verified: `admit` verifies it)."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise MiningError(f"not an energy reading (expected format {FORMAT})")
    extra = set(document) - {"format", "site", "meter", "period_start", "period_end",
                             "energy_kwh", "meter_key", "signature"}
    if extra:
        raise MiningError(f"energy reading: unknown field {sorted(extra)[0]!r}")
    try:
        reading = Reading(site=document["site"], meter=document["meter"],
                          period_start=parse_time(document["period_start"], "period_start"),
                          period_end=parse_time(document["period_end"], "period_end"),
                          energy_kwh=document["energy_kwh"],
                          meter_key=document["meter_key"],
                          signature=document.get("signature") or "")
    except KeyError as error:
        raise MiningError(f"energy reading: missing field {error}") from None
    for what in ("site", "meter", "meter_key", "signature"):
        if not isinstance(getattr(reading, what), str):
            raise MiningError(f"energy reading: {what} must be a string")
    _check_fields(reading.site, reading.meter, reading.period_start, reading.period_end,
                  reading.energy_kwh)
    return reading


def verify_reading(reading: Reading, site: Site) -> None:
    """MiningError unless `reading` is signed by `site`'s registered meter key."""
    registered = site.verifier()
    if not reading.signature:
        raise MiningError(f"reading of {site.site} carries no meter signature")
    if reading.meter_key != site.meter_key:
        raise MiningError(f"reading of {site.site} is signed with key {reading.meter_key!r}, "
                          f"not the site's registered meter key ({registered.name})")
    try:
        raw = base64.b64decode(reading.signature, validate=True)
    except (binascii.Error, ValueError):
        raise MiningError(f"reading of {site.site}: the signature is not base64") from None
    try:
        Ed25519PublicKey.from_public_bytes(registered.public_key).verify(
            raw, reading.signed_bytes())
    except (InvalidSignature, ValueError):
        raise MiningError(f"reading of {site.site}: the meter signature does not verify with "
                          f"{registered.name}'s key (forged or edited after signing)") from None


def recorded(entries: Iterable[Any]) -> list[Reading]:
    """The recorded readings, in ledger order."""
    return [Reading.of(EnergyReading.of(e)) for e in entries if e.kind == EnergyReading.KIND]


def admit(registry: Registry, existing: Iterable[Reading], reading: Reading) -> Site:
    """The site `reading` is for, once every check passes; MiningError (MiningNotFound for
    an unknown site) and nothing to record otherwise."""
    site = registry.site(reading.site)
    if site is None:
        raise MiningNotFound(f"no site {reading.site!r} is registered")
    if site.retired:
        raise MiningError(f"site {site.site} is retired: it takes no more readings")
    if reading.meter != site.meter:
        raise MiningError(f"reading of {site.site} names meter {reading.meter}, the site's "
                          f"is {site.meter}")
    _check_fields(reading.site, reading.meter, reading.period_start, reading.period_end,
                  reading.energy_kwh)
    verify_reading(reading, site)
    for other in existing:
        if other.site != site.site:
            continue
        if (other.period_start, other.period_end) == (reading.period_start,
                                                      reading.period_end):
            raise MiningError(f"reading of {site.site} for {format_time(reading.period_start)}"
                              f" .. {format_time(reading.period_end)} is recorded already "
                              "(duplicate period)")
        if reading.period_start < other.period_end and other.period_start < reading.period_end:
            raise MiningError(f"reading of {site.site} for {format_time(reading.period_start)}"
                              f" .. {format_time(reading.period_end)} overlaps the recorded "
                              f"{format_time(other.period_start)} .. "
                              f"{format_time(other.period_end)}")
    if not within_capacity(reading.energy_kwh, site.capacity_kw, reading.seconds):
        raise MiningError(f"reading of {site.site}: {reading.energy_kwh:,} kWh in "
                          f"{reading.seconds:,} s is more than its {site.capacity_kw:,} kW "
                          "could draw (physically impossible)")
    return site
