"""Read a policy from TOML (config/policies/*.toml) or from its ledger document, and validate.

Both forms share one schema, so the document recorded in the ledger (`to_document`) reloads
through the same checks as the file. Every problem found is reported at once, each with
the path of the offending key, so an operator fixes a file in one pass. Amounts may be
TOML integers or decimal strings (wei exceed TOML's 64-bit integers); in ledger documents
they are always decimal strings.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import tomllib
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from reserve.errors import PolicyError, ReserveError
from reserve.ledger.canonical import fast_bytes
from reserve.ledger.checkpoint import VerifierKey
from reserve.policy.model import (
    ApprovalRule,
    AssetRules,
    ConflictException,
    Custodian,
    Destination,
    Governance,
    Operator,
    Policy,
    Supervision,
    Tier,
    VelocityLimit,
)

FORMAT = "reserve-policy/1"
NETWORKS = frozenset({"regtest", "signet", "testnet4", "testnet", "mainnet",
                      "anvil", "sepolia", "holesky", "ethereum"})
AMOUNT_MAX = 2**256 - 1
SECONDS_MAX = 10 * 365 * 86400
TEXT_LENGTH_MAX = 200
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_DECIMAL = re.compile(r"^(0|[1-9][0-9]{0,77})$")
_TOP_KEYS = {"format", "vault", "version", "network", "chain", "description", "custodians",
             "operators", "roles", "assets", "destinations", "governance",
             "proposal_lifetime_max_seconds", "destination_cooling_seconds",
             "supervision"}
_SUPERVISION_KEYS = {"supervisors", "institutions", "may_freeze", "regulator_key",
                     "licensed_kinds", "exceptions"}
REASON_LENGTH_MIN = 20


class _Reader:
    """Collects problems instead of stopping at the first one."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def keys(self, table: dict[str, Any], allowed: set[str], where: str) -> None:
        for key in sorted(set(table) - allowed):
            self.problem(where, f"unknown key {key!r}")

    def table(self, parent: dict[str, Any], key: str, where: str) -> dict[str, Any]:
        value = parent.get(key, {})
        if not isinstance(value, dict):
            self.problem(f"{where}.{key}", "expected a table")
            return {}
        return value

    def tables(self, parent: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
        value = parent.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            self.problem(f"{where}.{key}", "expected an array of tables")
            return []
        return value

    def text(self, table: dict[str, Any], key: str, where: str, *, identifier: bool = False,
             default: str | None = None) -> str:
        value = table.get(key, default)
        if value is None:
            self.problem(where, f"missing required key {key!r}")
            return ""
        if not isinstance(value, str) or (not value and default is None):
            self.problem(f"{where}.{key}", f"expected a non-empty string, got {value!r}")
            return ""
        if identifier and not _ID.match(value):
            self.problem(f"{where}.{key}", f"{value!r} is not an identifier "
                         "(lowercase letters, digits, '.', '_', '-'; at most 64)")
        elif len(value) > TEXT_LENGTH_MAX:
            self.problem(f"{where}.{key}", f"longer than {TEXT_LENGTH_MAX} characters")
        return value

    def integer(self, table: dict[str, Any], key: str, where: str, *, minimum: int,
                maximum: int, default: int | None = None) -> int:
        value = table.get(key, default)
        if value is None:
            self.problem(where, f"missing required key {key!r}")
            return minimum
        if not isinstance(value, int) or isinstance(value, bool):
            self.problem(f"{where}.{key}", f"expected an integer, got {value!r}")
            return minimum
        if not minimum <= value <= maximum:
            self.problem(f"{where}.{key}", f"{value} is out of range [{minimum}, {maximum}]")
            return minimum
        return value

    def amount(self, table: dict[str, Any], key: str, where: str, *,
               optional: bool = False) -> int | None:
        """A non-negative amount in base units: an integer or a decimal string."""
        value = table.get(key)
        if value is None:
            if not optional:
                self.problem(where, f"missing required key {key!r}")
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            parsed = value
        elif isinstance(value, str) and _DECIMAL.match(value):
            parsed = int(value)
        elif isinstance(value, str) and value.startswith("-"):
            parsed = -1
        else:
            self.problem(f"{where}.{key}", f"expected an amount in base units, got {value!r}")
            return None
        if parsed < 0:
            self.problem(f"{where}.{key}", f"negative amount {value} (limits are >= 0)")
            return None
        if parsed > AMOUNT_MAX:
            self.problem(f"{where}.{key}", "amount larger than 2**256-1")
            return None
        return parsed


def _rule(reader: _Reader, table: dict[str, Any], where: str, custodians: int,
          institutions: int) -> ApprovalRule:
    approvals = reader.integer(table, "approvals_min", where, minimum=1, maximum=1000)
    distinct = reader.integer(table, "institutions_min", where, minimum=1, maximum=1000,
                              default=1)
    delay = reader.integer(table, "delay_seconds", where, minimum=0, maximum=SECONDS_MAX,
                           default=0)
    if approvals > custodians:
        reader.problem(where, f"threshold {approvals} is larger than the custodian set "
                       f"({custodians} custodians)")
    if distinct > institutions:
        reader.problem(where, f"institutions_min {distinct} is larger than the number of "
                       f"institutions ({institutions})")
    if distinct > approvals:
        reader.problem(where, f"institutions_min {distinct} exceeds approvals_min {approvals}")
    return ApprovalRule(approvals_min=approvals, institutions_min=distinct,
                        delay_seconds=delay)


def _custodians(reader: _Reader, raw: dict[str, Any]) -> tuple[Custodian, ...]:
    found: list[Custodian] = []
    keys_seen: set[bytes] = set()
    for index, table in enumerate(reader.tables(raw, "custodians", "policy")):
        where = f"custodians[{index}]"
        reader.keys(table, {"id", "name", "institution", "approval_public_key"}, where)
        key_hex = reader.text(table, "approval_public_key", where)
        key = b""
        try:
            key = bytes.fromhex(key_hex)
            if len(key) != 32:
                raise ValueError("not 32 bytes")
            Ed25519PublicKey.from_public_bytes(key)
        except ValueError as error:
            if key_hex:
                reader.problem(f"{where}.approval_public_key",
                               f"not a hex Ed25519 public key ({error})")
        if key and key in keys_seen:
            reader.problem(f"{where}.approval_public_key", "key used by another custodian")
        keys_seen.add(key)
        found.append(Custodian(id=reader.text(table, "id", where, identifier=True),
                               name=reader.text(table, "name", where),
                               institution=reader.text(table, "institution", where),
                               approval_public_key=key))
    if not found:
        reader.problem("policy", "at least one custodian is required")
    return tuple(found)


def _operators(reader: _Reader, raw: dict[str, Any]) -> tuple[Operator, ...]:
    found = []
    for index, table in enumerate(reader.tables(raw, "operators", "policy")):
        where = f"operators[{index}]"
        reader.keys(table, {"id", "name", "institution"}, where)
        found.append(Operator(id=reader.text(table, "id", where, identifier=True),
                              name=reader.text(table, "name", where),
                              institution=reader.text(table, "institution", where)))
    return tuple(found)


def _roles(reader: _Reader, raw: dict[str, Any],
           members: set[str]) -> tuple[frozenset[str], frozenset[str]]:
    roles = reader.table(raw, "roles", "policy")
    reader.keys(roles, {"proposers", "auditors"}, "roles")
    result = []
    for role in ("proposers", "auditors"):
        names = roles.get(role, [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            reader.problem(f"roles.{role}", "expected an array of member ids")
            names = []
        for name in names:
            if name not in members:
                reader.problem(f"roles.{role}", f"unknown custodian or operator {name!r}")
        result.append(frozenset(names))
    if not result[0]:
        reader.problem("roles.proposers", "at least one proposer is required")
    return result[0], result[1]


def _tiers(reader: _Reader, table: dict[str, Any], where: str, custodians: int,
           institutions: int) -> tuple[Tier, ...]:
    tiers: list[Tier] = []
    names: set[str] = set()
    for index, raw in enumerate(reader.tables(table, "tiers", where)):
        at = f"{where}.tiers[{index}]"
        reader.keys(raw, {"name", "amount_min", "amount_max", "approvals_min",
                          "institutions_min", "delay_seconds"}, at)
        name = reader.text(raw, "name", at, identifier=True)
        if name in names:
            reader.problem(at, f"duplicate tier name {name!r}")
        names.add(name)
        low = reader.amount(raw, "amount_min", at)
        high = reader.amount(raw, "amount_max", at, optional=True)
        if low is not None and high is not None and high < low:
            reader.problem(at, f"amount_max {high} is below amount_min {low}")
        tiers.append(Tier(name=name, amount_min=low or 0, amount_max=high,
                          rule=_rule(reader, raw, at, custodians, institutions)))
    if not tiers:
        reader.problem(where, "at least one tier is required")
        return ()
    tiers.sort(key=lambda tier: tier.amount_min)
    if tiers[0].amount_min > 1:
        reader.problem(where, f"no tier covers amounts from 1 to {tiers[0].amount_min - 1}")
    for lower, upper in itertools.pairwise(tiers):
        if lower.amount_max is None or upper.amount_min <= lower.amount_max:
            reader.problem(where, f"tiers {lower.name!r} and {upper.name!r} overlap")
        elif upper.amount_min > lower.amount_max + 1:
            reader.problem(where, f"gap between tiers {lower.name!r} and {upper.name!r}: "
                           f"{lower.amount_max + 1}..{upper.amount_min - 1} has no tier")
        if upper.rule.approvals_min < lower.rule.approvals_min or \
                upper.rule.institutions_min < lower.rule.institutions_min:
            reader.problem(where, f"tier {upper.name!r} asks for fewer approvals or "
                           f"institutions than the smaller tier {lower.name!r}")
    return tuple(tiers)


def _assets(reader: _Reader, raw: dict[str, Any], custodians: int,
            institutions: int) -> tuple[AssetRules, ...]:
    found: list[AssetRules] = []
    for index, table in enumerate(reader.tables(raw, "assets", "policy")):
        where = f"assets[{index}]"
        reader.keys(table, {"asset", "unit", "tiers", "velocity"}, where)
        asset = reader.text(table, "asset", where)
        if any(rules.asset == asset for rules in found):
            reader.problem(where, f"asset {asset!r} listed twice")
        limits: list[VelocityLimit] = []
        for number, limit in enumerate(reader.tables(table, "velocity", where)):
            at = f"{where}.velocity[{number}]"
            reader.keys(limit, {"window_seconds", "amount_max"}, at)
            window = reader.integer(limit, "window_seconds", at, minimum=1,
                                    maximum=SECONDS_MAX)
            amount = reader.amount(limit, "amount_max", at)
            limits.append(VelocityLimit(window_seconds=window, amount_max=amount or 0))
        found.append(AssetRules(asset=asset, unit=reader.text(table, "unit", where),
                                tiers=_tiers(reader, table, where, custodians, institutions),
                                velocity=tuple(sorted(limits,
                                                      key=lambda v: v.window_seconds))))
    if not found:
        reader.problem("policy", "at least one [[assets]] table is required")
    return tuple(found)


def _destinations(reader: _Reader, raw: dict[str, Any],
                  assets: set[str]) -> tuple[Destination, ...]:
    found: list[Destination] = []
    for index, table in enumerate(reader.tables(raw, "destinations", "policy")):
        where = f"destinations[{index}]"
        reader.keys(table, {"asset", "address", "label", "kind", "licence"}, where)
        destination = Destination(asset=reader.text(table, "asset", where),
                                  address=reader.text(table, "address", where),
                                  label=reader.text(table, "label", where),
                                  kind=reader.text(table, "kind", where, identifier=True,
                                                   default="") if "kind" in table else "",
                                  licence=reader.text(table, "licence", where,
                                                      default="") if "licence" in table
                                  else "")
        if destination.asset and destination.asset not in assets:
            reader.problem(where, f"asset {destination.asset!r} has no [[assets]] rules")
        if destination in found or any(d.asset == destination.asset and
                                       d.address == destination.address for d in found):
            reader.problem(where, f"destination {destination.address!r} listed twice")
        found.append(destination)
    return tuple(found)


def _governance(reader: _Reader, raw: dict[str, Any], custodians: int,
                institutions: int) -> Governance:
    table = reader.table(raw, "governance", "policy")
    reader.keys(table, {"policy_change", "destination_add", "unfreeze"}, "governance")
    rules = {}
    for name in ("policy_change", "destination_add", "unfreeze"):
        where = f"governance.{name}"
        section = reader.table(table, name, "governance")
        if name not in table:
            reader.problem("governance", f"missing required table [{where}]")
        reader.keys(section, {"approvals_min", "institutions_min", "delay_seconds"}, where)
        rules[name] = _rule(reader, section, where, custodians, institutions)
    return Governance(**rules)


def _names(reader: _Reader, table: dict[str, Any], key: str, where: str) -> frozenset[str]:
    names = table.get(key, [])
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        reader.problem(f"{where}.{key}", "expected an array of non-empty strings")
        return frozenset()
    return frozenset(names)


def _supervision(reader: _Reader, raw: dict[str, Any]) -> Supervision | None:
    """The optional [supervision] table: who supervises, and the regulator's key."""
    if "supervision" not in raw:
        return None
    table = reader.table(raw, "supervision", "policy")
    reader.keys(table, _SUPERVISION_KEYS, "supervision")
    may_freeze = table.get("may_freeze", False)
    if not isinstance(may_freeze, bool):
        reader.problem("supervision.may_freeze", f"expected true or false, got {may_freeze!r}")
        may_freeze = False
    key = reader.text(table, "regulator_key", "supervision", default="") \
        if "regulator_key" in table else ""
    if key:
        try:
            VerifierKey.parse(key)
        except ReserveError as error:
            reader.problem("supervision.regulator_key", f"not a verifier key ({error})")
    exceptions = []
    for index, item in enumerate(reader.tables(table, "exceptions", "supervision")):
        where = f"supervision.exceptions[{index}]"
        reader.keys(item, {"member", "reason"}, where)
        reason = reader.text(item, "reason", where)
        if reason and len(reason.strip()) < REASON_LENGTH_MIN:
            reader.problem(f"{where}.reason", f"a reason of at least {REASON_LENGTH_MIN} "
                           "characters is required: say why the conflict is accepted")
        exceptions.append(ConflictException(member=reader.text(item, "member", where),
                                            reason=reason))
    supervision = Supervision(
        supervisors=_names(reader, table, "supervisors", "supervision"),
        institutions=_names(reader, table, "institutions", "supervision"),
        may_freeze=may_freeze, regulator_key=key,
        licensed_kinds=_names(reader, table, "licensed_kinds", "supervision"),
        exceptions=tuple(exceptions))
    if not supervision.supervisors and not supervision.institutions:
        reader.problem("supervision", "names no supervisors and no institutions")
    return supervision


def conflicts(policy: Policy) -> list[tuple[str, str]]:
    """Separation of duties between supervising the vault and holding power over it:
    (member id, sentence) for each custodian of a supervising institution or supervisor
    who holds a key, and each supervisor or operator of a supervising institution who may
    propose transfers."""
    supervision = policy.supervision
    if supervision is None:
        return []
    found = []
    for custodian in policy.custodians:
        if custodian.id in supervision.supervisors or \
                custodian.institution in supervision.institutions:
            who = custodian.id if custodian.id in supervision.supervisors else \
                f"{custodian.id} of {custodian.institution}"
            found.append((custodian.id, f"{who} supervises {policy.vault} and holds one "
                          "of its approval keys"))
    supervising = {o.id for o in policy.operators if o.institution in supervision.institutions}
    for member in sorted((supervision.supervisors | supervising) & policy.proposers):
        found.append((member, f"{member} supervises {policy.vault} and may propose its "
                      "transfers"))
    return found


def _check_supervision(reader: _Reader, policy: Policy) -> None:
    """Conflicts are errors unless excepted with a reason; licensed kinds name licences."""
    supervision = policy.supervision
    if supervision is None:
        return
    excepted = {item.member for item in supervision.exceptions}
    conflicting = set()
    for member, sentence in conflicts(policy):
        conflicting.add(member)
        if member not in excepted:
            reader.problem("supervision", f"separation of duties: {sentence}; remove the "
                           f"key or record [[supervision.exceptions]] member = {member!r} "
                           "with its reason")
    for item in supervision.exceptions:
        if item.member and item.member not in conflicting:
            reader.problem("supervision.exceptions", f"{item.member!r} has no conflict to "
                           "except")
    for index, destination in enumerate(policy.destinations):
        if destination.kind in supervision.licensed_kinds and not destination.licence:
            reader.problem(f"destinations[{index}]", f"a {destination.kind} destination "
                           "must name its counterparty's licence (licence = \"L-...\")")
    if any(d.licence for d in policy.destinations) and not supervision.regulator_key:
        reader.problem("supervision.regulator_key", "destinations name licences, so the "
                       "regulator's key that signs them is required")


def _check_eligible(reader: _Reader, policy: Policy) -> None:
    """A custodian who proposes cannot approve: the quorum must be reachable without them."""
    eligible = len(policy.custodians) - 1
    # Any custodian may propose a governance change (allowlist, policy, unfreeze).
    rules = [(f"governance.{name}", getattr(policy.governance, name))
             for name in ("policy_change", "destination_add", "unfreeze")]
    if any(policy.custodian(member) for member in policy.proposers):
        rules += [(f"{asset.asset} tier {tier.name!r}", tier.rule) for asset in policy.assets
                  for tier in asset.tiers]
    for where, rule in rules:
        if rule.approvals_min > eligible:
            reader.problem(where, f"needs {rule.approvals_min} approvals but a custodian who "
                           f"proposes leaves only {eligible} who may approve")


def from_mapping(raw: dict[str, Any], *, source: str = "policy") -> Policy:
    """Validate a parsed policy (TOML or ledger document); raises PolicyError listing all."""
    if not isinstance(raw, dict):
        raise PolicyError(f"{source}: a policy must be a table/object")
    reader = _Reader(source)
    reader.keys(raw, _TOP_KEYS, "policy")
    if raw.get("format") != FORMAT:
        reader.problem("policy.format", f"expected {FORMAT!r}, got {raw.get('format')!r}")
    network = reader.text(raw, "network", "policy")
    if network and network not in NETWORKS:
        reader.problem("policy.network", f"unknown network {network!r}")
    custodians = _custodians(reader, raw)
    operators = _operators(reader, raw)
    ids = [c.id for c in custodians] + [o.id for o in operators]
    for duplicate in sorted({i for i in ids if ids.count(i) > 1}):
        reader.problem("policy", f"member id {duplicate!r} is used more than once")
    proposers, auditors = _roles(reader, raw, set(ids))
    count = len(custodians)
    institutions = len({custodian.institution for custodian in custodians})
    assets = _assets(reader, raw, count, institutions)
    policy = Policy(
        vault=reader.text(raw, "vault", "policy", identifier=True),
        version=reader.integer(raw, "version", "policy", minimum=1, maximum=2**31),
        network=network,
        chain=reader.text(raw, "chain", "policy"),
        description=reader.text(raw, "description", "policy", default=""),
        custodians=custodians, operators=operators, proposers=proposers, auditors=auditors,
        assets=assets,
        destinations=_destinations(reader, raw, {rules.asset for rules in assets}),
        governance=_governance(reader, raw, count, institutions),
        proposal_lifetime_max_seconds=reader.integer(
            raw, "proposal_lifetime_max_seconds", "policy", minimum=60, maximum=SECONDS_MAX),
        destination_cooling_seconds=reader.integer(
            raw, "destination_cooling_seconds", "policy", minimum=0, maximum=SECONDS_MAX),
        supervision=_supervision(reader, raw),
    )
    _check_eligible(reader, policy)
    _check_supervision(reader, policy)
    if reader.problems:
        listed = "; ".join(reader.problems)
        raise PolicyError(f"{source}: invalid policy ({len(reader.problems)} problem"
                          f"{'s' if len(reader.problems) > 1 else ''}): {listed}")
    return policy


def from_toml_text(text: str, *, source: str = "policy") -> Policy:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(f"{source}: invalid TOML: {error}") from None
    return from_mapping(raw, source=source)


def load_file(path: str | Path) -> Policy:
    """Read and validate a policy file; the only I/O in this package."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"policy file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyError(f"cannot read policy file {path}: {error}") from None
    return from_toml_text(text, source=str(path))


def _rule_document(rule: ApprovalRule) -> dict[str, Any]:
    return {"approvals_min": rule.approvals_min, "institutions_min": rule.institutions_min,
            "delay_seconds": rule.delay_seconds}


def _tier_document(tier: Tier) -> dict[str, Any]:
    document = {"name": tier.name, "amount_min": str(tier.amount_min),
                **_rule_document(tier.rule)}
    if tier.amount_max is not None:
        document["amount_max"] = str(tier.amount_max)
    return document


def to_document(policy: Policy) -> dict[str, Any]:
    """The ledger form: JSON-ready, amounts as decimal strings, keys as hex."""
    return {
        "format": FORMAT, "vault": policy.vault, "version": policy.version,
        "network": policy.network, "chain": policy.chain, "description": policy.description,
        "custodians": [{"id": c.id, "name": c.name, "institution": c.institution,
                        "approval_public_key": c.approval_public_key.hex()}
                       for c in policy.custodians],
        "operators": [{"id": o.id, "name": o.name, "institution": o.institution}
                      for o in policy.operators],
        "roles": {"proposers": sorted(policy.proposers), "auditors": sorted(policy.auditors)},
        "assets": [{"asset": a.asset, "unit": a.unit,
                    "tiers": [_tier_document(t) for t in a.tiers],
                    "velocity": [{"window_seconds": v.window_seconds,
                                  "amount_max": str(v.amount_max)} for v in a.velocity]}
                   for a in policy.assets],
        "destinations": [_destination_document(d) for d in policy.destinations],
        "governance": {name: _rule_document(getattr(policy.governance, name))
                       for name in ("policy_change", "destination_add", "unfreeze")},
        "proposal_lifetime_max_seconds": policy.proposal_lifetime_max_seconds,
        "destination_cooling_seconds": policy.destination_cooling_seconds,
        # Written only when present, so policies without them keep their hashes.
        **({"supervision": _supervision_document(policy.supervision)}
           if policy.supervision is not None else {}),
    }


def _destination_document(destination: Destination) -> dict[str, Any]:
    document = {"asset": destination.asset, "address": destination.address,
                "label": destination.label}
    if destination.kind:
        document["kind"] = destination.kind
    if destination.licence:
        document["licence"] = destination.licence
    return document


def _supervision_document(supervision: Supervision) -> dict[str, Any]:
    document: dict[str, Any] = {
        "supervisors": sorted(supervision.supervisors),
        "institutions": sorted(supervision.institutions),
        "may_freeze": supervision.may_freeze,
        "licensed_kinds": sorted(supervision.licensed_kinds),
        "exceptions": [{"member": e.member, "reason": e.reason}
                       for e in supervision.exceptions]}
    if supervision.regulator_key:
        document["regulator_key"] = supervision.regulator_key
    return document


def policy_sha256(policy: Policy) -> str:
    """Content identity of a policy version: SHA-256 of its RFC 8785 canonical document."""
    document = to_document(policy)
    fast = fast_bytes(document)  # the same bytes as rfc8785's where it vouches for them
    return hashlib.sha256(b"reserve/policy/v1\x00" + (
        fast if fast is not None else bytes(rfc8785.dumps(document)))).hexdigest()
