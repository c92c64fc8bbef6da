"""Pure parts of the API's access control: token format, the failure limiter, custodian
visibility, the panel registry, and the account rules (on an in-memory store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reserve.api import accounts
from reserve.api.auth import (
    FailureLimiter,
    Principal,
    Role,
    hash_token,
    mint_token,
    parse_token,
    token_matches,
)
from reserve.api.panels import (
    Chart,
    Panel,
    PanelContext,
    PanelRegistry,
    PanelView,
    chart_svg_points,
)
from reserve.api.store import AccountStore
from reserve.api.visibility import UNKNOWN_VAULT, vaults_named, visible_to
from reserve.errors import AccountConflict, AccountError, AccountNotFound, AuthError

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


# ------------------------------------------------------------------- tokens
def test_minted_tokens_parse_and_match_only_their_hash() -> None:
    issued = mint_token()
    assert parse_token(issued.token) == issued.token_id
    assert issued.token_hash == hash_token(issued.token) and len(issued.token_hash) == 64
    assert token_matches(issued.token, issued.token_hash)
    assert not token_matches(mint_token().token, issued.token_hash)
    assert mint_token().token != issued.token


@pytest.mark.parametrize("text", ["", "srl_", "srl_0123456789abcdef_short", "Bearer x",
                                  "srl_0123456789ABCDEF_" + "a" * 43, "srl_" + "a" * 200,
                                  "srl_0123456789abcdef_" + "a" * 42 + "!"])
def test_malformed_tokens_are_refused_before_any_lookup(text: str) -> None:
    with pytest.raises(AuthError, match="malformed"):
        parse_token(text)


# ------------------------------------------------------------------ limiter
def test_limiter_blocks_after_the_limit_until_the_window_ends() -> None:
    limiter = FailureLimiter(failures_max=3, window_seconds=60)
    for _ in range(3):
        assert limiter.check("10.0.0.1", 0).allowed
        limiter.fail("10.0.0.1", 0)
    verdict = limiter.check("10.0.0.1", 10)
    assert not verdict.allowed and verdict.retry_after_seconds == 50
    assert limiter.check("10.0.0.2", 10).allowed  # other addresses are unaffected
    assert limiter.check("10.0.0.1", 60).allowed


def test_limiter_memory_is_bounded_and_forgets_the_oldest() -> None:
    limiter = FailureLimiter(failures_max=1, window_seconds=60, clients_max=100)
    for index in range(1000):
        limiter.fail(f"client-{index}", 0)
    assert limiter.tracked() == 100
    assert limiter.check("client-0", 1).allowed  # forgotten
    assert not limiter.check("client-999", 1).allowed


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 200)), max_size=80))
def test_limiter_never_allows_more_than_the_limit_in_a_window(events: list[tuple[int, int]]
                                                              ) -> None:
    """Reference model: an address is blocked iff it has failures_max failures counted in
    its current window, a window starting at its first failure after the last expired."""
    limiter = FailureLimiter(failures_max=3, window_seconds=30, clients_max=1000)
    model: dict[str, tuple[int, int]] = {}
    clock = 0
    for address_number, step in events:
        clock += step
        address = f"a{address_number}"
        start, count = model.get(address, (clock, 0))
        if clock - start >= 30:
            start, count = clock, 0
        expected_allowed = count < 3
        assert limiter.check(address, clock).allowed == expected_allowed
        if expected_allowed:
            limiter.fail(address, clock)
            model[address] = (start, count + 1)


# --------------------------------------------------------------- visibility
def test_vaults_are_found_at_any_depth_and_in_lists() -> None:
    payload = {"vault": "a", "document": {"proposal": {"vault_id": "b"}},
               "items": [{"vaults": ["c", 7]}]}
    assert vaults_named(payload) == {"a", "b", "c"}
    assert visible_to(payload, {"a", "b", "c", "d"})
    assert not visible_to(payload, {"a", "b"})
    assert visible_to({"text": "no vault"}, set())


def test_too_deep_payloads_are_hidden() -> None:
    payload: dict[str, Any] = {"x": 1}
    for _ in range(20):
        payload = {"nested": payload}
    assert vaults_named(payload) == {UNKNOWN_VAULT}
    assert not visible_to(payload, {"a"})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.sampled_from(["a", "b", "x"]),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(["vault", "vault_id", "vaults", "other"]), inner,
                      max_size=4), max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_an_entry_naming_vault_b_is_never_visible_to_a_custodian_of_a_only(payload: Any
                                                                            ) -> None:
    text_names_b = _names(payload, "b")
    if text_names_b:
        assert not visible_to(payload, {"a"})


def _names(value: Any, vault: str) -> bool:
    """Naive reference: does any vault key anywhere hold `vault`?"""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("vault", "vault_id") and item == vault:
                return True
            if key == "vaults" and isinstance(item, list) and vault in item:
                return True
            if _names(item, vault):
                return True
    if isinstance(value, list):
        return any(_names(item, vault) for item in value)
    return False


def test_principal_vault_scope() -> None:
    custodian = Principal("c", Role.CUSTODIAN, "0" * 16, frozenset({"a"}))
    auditor = Principal("d", Role.AUDITOR, "1" * 16, frozenset())
    assert custodian.may_see_vault("a") and not custodian.may_see_vault("b")
    assert auditor.may_see_vault("b")


# ------------------------------------------------------------------- panels
def _context(role: Role = Role.VIEWER) -> PanelContext:
    return PanelContext(ledger=None, principal=Principal("p", role, "0" * 16, frozenset()),
                        now=NOW, service=None)


def test_panels_without_a_provider_say_not_configured() -> None:
    rendered = PanelRegistry().render(_context())
    assert [item.panel.key for item in rendered] == ["holdings", "policies", "proposals",
                                                     "transfers", "reconciliation"]
    assert {item.state for item in rendered} == {"not configured"}


def test_registered_providers_fill_panels_and_failures_stay_contained() -> None:
    registry = PanelRegistry()
    chart = Chart("BTC held", "sat", tuple((f"day {i}", i * 1000) for i in range(3000)))
    registry.register(Panel("holdings", "Reserve holdings", 10,
                            lambda context: PanelView(summary="2 vaults", charts=(chart,))))
    registry.register(Panel("proposals", "Pending proposals", 30,
                            lambda context: 1 / 0))  # type: ignore[arg-type,return-value]
    registry.register(Panel("secret", "Admins only", 60, lambda context: None,
                            roles=frozenset({Role.ADMIN})))
    states = {item.panel.key: item for item in registry.render(_context())}
    assert states["holdings"].state == "ok"
    assert states["holdings"].view is not None
    assert len(states["holdings"].view.charts[0].points) == 1000  # bounded
    assert states["proposals"].state == "error"
    assert "secret" not in states
    assert "secret" in {item.panel.key for item in registry.render(_context(Role.ADMIN))}


def test_chart_points_scale_into_the_box() -> None:
    svg = chart_svg_points(Chart("t", "sat", (("a", 5), ("b", 15), ("c", 10))), 100, 50)
    assert svg["polyline"] == "0.0,50.0 50.0,0.0 100.0,25.0"
    assert (svg["low"], svg["high"]) == (5, 15)


def test_charts_place_points_by_time_and_label_axes_in_asset_units() -> None:
    points = (("2026-01-05T09:00:00.000000Z", 0), ("2026-01-05T10:00:00.000000Z", 150_000_000),
              ("2026-01-05T13:00:00.000000Z", 100_000_000))
    svg = chart_svg_points(Chart("national-btc: BTC held", "sat", points, asset="BTC"), 400, 100)
    assert svg["polyline"] == "0.0,100.0 100.0,0.0 400.0,33.3"  # 1 h of 4 h is a quarter
    assert (svg["low_text"], svg["high_text"]) == ("0.00000000 BTC", "1.50000000 BTC")
    assert [t["text"] for t in svg["y_ticks"]] == ["0.00000000 BTC", "1.50000000 BTC"]
    assert [(t["text"], t["anchor"]) for t in svg["x_ticks"]] == [
        ("2026-01-05 09:00", "start"), ("2026-01-05 13:00", "end")]
    flat = chart_svg_points(Chart("t", "wei", (("not a time", 7),)))
    assert flat["low_text"] == "7 wei" and len(flat["x_ticks"]) == 1


# ----------------------------------------------------------------- accounts
@pytest.fixture()
def store() -> Any:
    opened = AccountStore.open("sqlite:///:memory:")
    yield opened
    opened.close()


def _recorder() -> tuple[list[tuple[str, dict[str, Any]]], accounts.Record]:
    written: list[tuple[str, dict[str, Any]]] = []
    return written, written.extend


def test_issue_authenticate_expire_revoke(store: AccountStore) -> None:
    written, record = _recorder()
    accounts.create_user(store, record, person="ana", name="Ana", institution="CB",
                         roles=["custodian"], vaults=["v1"], now=NOW)
    issued, token = accounts.issue_token(store, record, person="ana", role="custodian",
                                         expires_in_seconds=3600, label="", issued_by="root",
                                         now=NOW)
    principal = accounts.authenticate(store, issued.token, NOW)
    assert principal.role is Role.CUSTODIAN and principal.vaults == {"v1"}
    with pytest.raises(AuthError, match="expired"):
        accounts.authenticate(store, issued.token, NOW + timedelta(hours=1))
    accounts.revoke_token(store, record, token_id=token.token_id, by="root", now=NOW)
    with pytest.raises(AuthError, match="revoked"):
        accounts.authenticate(store, issued.token, NOW)
    kinds = [kind for kind, _ in written]
    assert kinds == ["auth.user_changed", "auth.token_issued", "auth.token_revoked"]
    assert issued.token not in str(written) and issued.token_hash not in str(written)


def test_a_token_found_valid_is_checked_afresh_when_its_row_changes(
        store: AccountStore) -> None:
    """Authentication keeps what it decoded and found valid for an unchanged row; any
    change of the row (vaults narrowed, role withdrawn, user disabled) and any other token
    text is decided from scratch, on the very next request."""
    _, record = _recorder()
    accounts.create_user(store, record, person="ana", name="Ana", institution="CB",
                         roles=["custodian", "auditor"], vaults=["v1", "v2"], now=NOW)
    issued, _ = accounts.issue_token(store, record, person="ana", role="custodian",
                                     expires_in_seconds=3600, label="", issued_by="root",
                                     now=NOW)
    first = accounts.authenticate(store, issued.token, NOW)
    assert accounts.authenticate(store, issued.token, NOW) is first  # kept: same row
    forged = issued.token[:-4] + ("AAAA" if not issued.token.endswith("AAAA") else "BBBB")
    with pytest.raises(AuthError, match="unknown token"):  # same id, other secret
        accounts.authenticate(store, forged, NOW)
    accounts.update_user(store, record, person="ana", name="Ana", institution="CB",
                         roles=["custodian", "auditor"], vaults=["v1"])
    narrowed = accounts.authenticate(store, issued.token, NOW)
    assert narrowed is not first and narrowed.vaults == {"v1"}
    accounts.update_user(store, record, person="ana", name="Ana", institution="CB",
                         roles=["auditor"], vaults=[])
    with pytest.raises(AuthError, match="withdrawn"):
        accounts.authenticate(store, issued.token, NOW)
    accounts.update_user(store, record, person="ana", name="Ana", institution="CB",
                         roles=["custodian"], vaults=["v1"])
    accounts.authenticate(store, issued.token, NOW)
    accounts.disable_user(store, record, person="ana", by="root", now=NOW)
    with pytest.raises(AuthError, match="token revoked"):
        accounts.authenticate(store, issued.token, NOW)


def test_refused_account_changes_write_nothing(store: AccountStore) -> None:
    written, record = _recorder()
    with pytest.raises(AccountError, match="non-empty subset"):
        accounts.create_user(store, record, person="x", name="", institution="",
                             roles=["king"], vaults=[], now=NOW)
    with pytest.raises(AccountNotFound):
        accounts.issue_token(store, record, person="nobody", role="viewer",
                             expires_in_seconds=3600, label="", issued_by="root", now=NOW)
    accounts.create_user(store, record, person="v", name="", institution="",
                         roles=["viewer"], vaults=[], now=NOW)
    written.clear()
    with pytest.raises(AccountConflict):
        accounts.create_user(store, record, person="v", name="", institution="",
                             roles=["viewer"], vaults=[], now=NOW)
    with pytest.raises(AccountConflict):
        accounts.issue_token(store, record, person="v", role="admin",
                             expires_in_seconds=3600, label="", issued_by="root", now=NOW)
    with pytest.raises(AccountError, match="expiry"):
        accounts.issue_token(store, record, person="v", role="viewer",
                             expires_in_seconds=10**9, label="", issued_by="root", now=NOW)
    with pytest.raises(AccountConflict, match="own user"):
        accounts.disable_user(store, record, person="v", by="v", now=NOW)
    assert written == [] and store.tokens() == []
