"""The public portal's pure parts: the `[public]` table, ETags and the token bucket."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reserve.api.public_cache import RequestLimiter, matches, strong_etag
from reserve.config import PublicSettings, public_settings
from reserve.errors import ConfigError

ROOT = Path("/srv/reserve")


def test_the_table_is_off_by_default_and_read_with_its_keys() -> None:
    assert public_settings({}, ROOT) == PublicSettings(
        statements_dir=ROOT / "var/statements", energy_reports_dir=ROOT / "var/mining")
    chosen = public_settings({"public": {"enabled": True, "show_amounts": False,
                                         "show_custodians": True, "rate_per_minute": 30,
                                         "burst": 5, "max_age_seconds": 0},
                              "statement": {"output_dir": "out/st"},
                              "mining": {"output_dir": "out/mining"}}, ROOT)
    assert (chosen.enabled, chosen.show_amounts, chosen.show_custodians) == (True, False, True)
    assert (chosen.rate_per_minute, chosen.burst, chosen.max_age_seconds) == (30, 5, 0)
    assert chosen.statements_dir == ROOT / "out/st"
    assert chosen.energy_reports_dir == ROOT / "out/mining"
    assert public_settings({"public": {"statements_dir": "/abs"}}, ROOT).statements_dir == \
        Path("/abs")


@pytest.mark.parametrize(("table", "words"), [
    ({"enabled": "yes"}, "public.enabled: expected bool"),
    ({"show_names": True}, "unknown keys ['show_names']"),
    ({"rate_per_minute": 0}, "public.rate_per_minute: expected 1..60000"),
    ({"burst": True}, "public.burst: expected int"),
    ({"max_age_seconds": 86_401}, "expected 0..86400"),
    ({"statements_dir": 3}, "public.statements_dir: expected a folder path"),
    ({"energy_reports_dir": 3}, "public.energy_reports_dir: expected a folder path"),
])
def test_a_bad_table_is_refused(table: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(words)):
        public_settings({"public": table}, ROOT)
    with pytest.raises(ConfigError, match=re.escape("config.public must be a table")):
        public_settings({"public": 1}, ROOT)


def test_etags_are_strong_and_if_none_match_is_read_as_a_list() -> None:
    tag = strong_etag(b"body")
    assert tag == '"230d8358dc8e8890b4c58deeb62912ee2f20357ae92a5cc861b98e68fe31acb5"'
    assert matches(tag, tag) and matches(f'"a", W/{tag}', tag) and matches("*", tag)
    assert not matches(None, tag) and not matches('"other"', tag) and not matches("", tag)


def test_the_bucket_spends_a_burst_then_refills_at_the_rate() -> None:
    limiter = RequestLimiter(rate_per_minute=60, burst=2)
    assert [limiter.take("a", 0.0).allowed for _ in range(3)] == [True, True, False]
    assert limiter.take("a", 0.0).retry_after_seconds == 1
    assert limiter.take("b", 0.0).allowed  # each address has its own bucket
    assert limiter.take("a", 1.0).allowed and not limiter.take("a", 1.0).allowed
    assert limiter.take("a", 100.0).allowed and limiter.take("a", 100.0).allowed
    assert not limiter.take("a", 100.0).allowed  # refilled to the burst, not beyond


def test_the_bucket_forgets_the_oldest_address_past_its_bound() -> None:
    limiter = RequestLimiter(rate_per_minute=1, burst=1, clients_max=2)
    for address in ("a", "b", "c"):
        assert limiter.take(address, 0.0).allowed
    assert limiter.tracked() == 2
    assert limiter.take("a", 0.0).allowed  # forgotten, so a full bucket again
    assert not limiter.take("c", 0.0).allowed
    with pytest.raises(ValueError):
        RequestLimiter(rate_per_minute=0, burst=1)
