"""The public portal on a real uvicorn server: anonymous, cacheable, rate limited, and
nothing private in any answer (docs/public-portal.md)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reserve.config import PublicSettings
from tests.support.api_server import PEOPLE, RunningServer, running_server
from tests.support.public_portal import (
    AUDITOR_KEY,
    CUSTODIAN_NAMES,
    ENERGY,
    FIRST,
    SECOND,
    seed,
)

PAGES = ("/public", "/public/flows", "/public/statements", f"/public/statements/{FIRST}",
         f"/public/statements/{SECOND}", "/public/checkpoint", "/public/wallets",
         "/public/verify", "/public/energy")
API = ("/public/api/holdings", "/public/api/statements", f"/public/api/statements/{FIRST}",
       f"/public/api/statements/{SECOND}", f"/public/api/statements/{SECOND}/document",
       "/public/api/wallets", "/public/api/checkpoint", "/public/api/checkpoint/note",
       "/public/api/energy", f"/public/api/energy/{ENERGY}/document")
ROUTES = PAGES + API
BAD = ("/public/statements/zz", f"/public/statements/{'ab' * 32}",
       f"/public/statements/{FIRST.upper()}", "/public/statements/%00",
       "/public/statements/" + "a" * 5000, f"/public/api/statements/{'ab' * 32}",
       f"/public/api/statements/{FIRST}/document", "/public/api/statements/..%2f..%2fetc",
       "/public/api/nothing", "/public/nothing", "/public/api/holdings/extra",
       "/public/statements/%ff", "/public/statements/%c0%ae",
       "/public/api/statements/%ff/document", "/public/api/",
       f"/public/api/energy/{'ab' * 32}/document", "/public/api/energy/zz/document",
       f"/public/api/energy/{SECOND}/document", "/public/energy/extra")


def _settings(tmp_path: Path, **chosen: object) -> PublicSettings:
    values: dict[str, object] = {"enabled": True, "statements_dir": tmp_path / "statements",
                                 "energy_reports_dir": tmp_path / "mining",
                                 "burst": 10_000, "rate_per_minute": 60_000, **chosen}
    return PublicSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def portal(tmp_path: Path):  # type: ignore[no-untyped-def]
    with running_server(f"sqlite:///{tmp_path}/ledger.sqlite",
                        public=_settings(tmp_path)) as server:
        seed(server, tmp_path / "statements")
        yield server


def test_every_public_route_answers_anonymously(portal: RunningServer) -> None:
    with portal.client() as client:
        for path in ROUTES:
            answer = client.get(path)
            assert answer.status_code == 200, (path, answer.text[:300])
            kind = answer.headers["content-type"]
            assert kind.startswith("text/html" if path in PAGES else
                                   ("text/plain" if path.endswith("/note")
                                    else "application/json")), path
        holdings = client.get("/public/api/holdings").json()
    national = next(w for w in holdings["statement"]["wallets"] if w["wallet"] == "national")
    assert national["base_units"] == str(1_312_498_000 + 625_000_000 - 3_500)
    assert holdings["statement"]["consolidated"] == [{
        "asset": "BTC", "base_units": "1977494500", "units": "19.77494500", "symbol": "BTC",
        "decimals": 8}]
    assert {(v["vault"], v["symbol"], v["base_units"]) for v in holdings["vaults"]} == {
        ("national-btc", "BTC", "1250000000"), ("reserve-evm", "ETH", str(50 * 10**18)),
        ("reserve-evm", "tRGT", str(1_500 * 10**18))}


def test_nothing_else_became_anonymous(portal: RunningServer) -> None:
    with portal.client() as client:
        for path in ("/api/vaults", "/api/ledger/entries", "/api/ledger/checkpoints/latest"):
            assert client.get(path).status_code == 401, path
        answer = client.get("/dashboard", follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/login"


def test_pages_show_what_the_statement_and_registry_say(portal: RunningServer) -> None:
    with portal.client() as client:
        home = client.get("/public").text
        flows = client.get("/public/flows").text
        one = client.get(f"/public/statements/{SECOND}").text
        wallets = client.get("/public/api/wallets").json()
        verify = client.get("/public/verify").text
        checkpoint = client.get("/public/api/checkpoint").json()
    assert "19.77494500 BTC" in home and "1500.000000000000000000 tRGT" in home
    assert flows.count("<svg") == 4  # closing stock, fee, mining, seizure
    assert "seizure: 0.40000000 BTC" in flows
    assert AUDITOR_KEY in one and "c2lnbmF0dXJl" in one
    assert f"statement-{SECOND[:16]}.json" in one
    assert "<strong>kept</strong>: No purchases" in one
    assert "<strong>BROKEN</strong>: No outflow above 0.1 BTC (" in one and "over 10000000" in one
    assert [w["wallet"] for w in wallets["wallets"]] == ["national", "state-miner", "seized"]
    assert wallets["wallets"][2]["addresses"] == ["bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"]
    assert "vault_custodians" not in wallets
    assert f'reserve statement verify statement.json --auditor-key "{AUDITOR_KEY}"' in verify
    assert "reserve ledger verify --export ledger.jsonl --key" in verify
    assert checkpoint["checkpoint"]["anchor_matches"] is True
    assert checkpoint["checkpoint"]["note"].startswith("test.reserve.example/api-ledger\n")


def test_the_energy_page_shows_the_published_report(portal: RunningServer) -> None:
    with portal.client() as client:
        page = client.get("/public/energy").text
        listed = client.get("/public/api/energy").json()
        document = client.get(f"/public/api/energy/{ENERGY}/document").json()
    assert "1,100.000 MWh" in page and "6.25000000 BTC" in page
    # 6.25 BTC at 97,250.00 USD over 1,100 MWh: 552.55 USD per MWh, against 60.00 (6 cents/kWh).
    assert "552.55 USD" in page and "60.00 USD" in page
    assert "payout without reading</strong> at north-mine" in page
    assert f"/public/api/energy/{ENERGY}/document" in page
    assert f"/public/statements/{SECOND}" in page
    [report] = listed["reports"]
    assert report["report_sha256"] == ENERGY and report["total"]["matches_statement"] is True
    gpu = report["sites"][1]
    assert gpu["kind"] == "ai" and gpu["mined"] is None and gpu["energy_kwh"] == 500_000
    assert document["signature"]["report_sha256"] == ENERGY


def test_etag_and_not_modified(portal: RunningServer) -> None:
    with portal.client() as client:
        for path in ROUTES:
            first = client.get(path)
            etag = first.headers["etag"]
            assert re.fullmatch(r'"[0-9a-f]{64}"', etag), path
            assert first.headers["cache-control"] == "public, max-age=60"
            assert client.get(path).headers["etag"] == etag  # same body, same tag
            again = client.get(path, headers={"If-None-Match": f'"x", {etag}'})
            assert again.status_code == 304 and again.content == b"", path
            assert again.headers["etag"] == etag
            other = client.get(path, headers={"If-None-Match": '"' + "0" * 64 + '"'})
            assert other.status_code == 200 and other.content == first.content
        before = client.get("/public/api/checkpoint").headers["etag"]
        portal.ledger.checkpoint(now=portal.clock.wall())  # the ledger grew: new answer
        assert client.get("/public/api/checkpoint").headers["etag"] != before


def test_bad_paths_are_404_never_500(portal: RunningServer) -> None:
    with portal.client() as client:
        for path in BAD:
            answer = client.get(path)
            assert answer.status_code == 404, (path, answer.status_code, answer.text[:200])
        assert client.post("/public/api/holdings").status_code == 405


def test_private_fields_appear_nowhere(portal: RunningServer) -> None:
    token_ids = [token.split("_")[1] for token in portal.tokens.values()]
    people = [person for person, _, _ in PEOPLE.values()]
    actors = {entry.actor for entry in portal.ledger.entries()}
    forbidden = [*token_ids, *people, *actors, *CUSTODIAN_NAMES, "actor", "request_id",
                 "token_id", "Central Bank", "@"]
    with portal.client() as client:
        for path in ROUTES:
            answer = client.get(path)
            body = answer.text
            for word in forbidden:
                assert word not in body, f"{word!r} is in {path}"
            assert answer.headers["x-request-id"] not in body, path


def test_custodians_appear_only_when_configured(tmp_path: Path) -> None:
    with running_server(f"sqlite:///{tmp_path}/ledger.sqlite", public=_settings(
            tmp_path, show_custodians=True, show_amounts=False)) as server:
        seed(server, tmp_path / "statements")
        with server.client() as client:
            wallets = client.get("/public/api/wallets").json()
            holdings = client.get("/public/api/holdings").json()
            flows = client.get("/public/flows").text
            listed = client.get("/public/api/statements").json()
            energy = client.get("/public/api/energy").json()["reports"][0]
    assert energy["total"]["mined"]["base_units"] is None and energy["price"] is None
    assert [a["detail"] for a in energy["anomalies"]] == [None]  # details name amounts
    assert energy["sites"][0]["energy_kwh"] == 1_100_000  # energy is always public
    names = [c["name"] for v in wallets["vault_custodians"] for c in v["custodians"]]
    assert names == list(CUSTODIAN_NAMES)
    assert holdings["show_amounts"] is False
    assert {v["base_units"] for v in holdings["vaults"]} == {None}
    assert holdings["statement"]["consolidated"][0]["base_units"] is None
    assert "<svg" not in flows and "19.77" not in flows
    promised = [c for item in listed["statements"] for c in item["commitments"]]
    assert promised and all(c["findings"] == [] for c in promised)  # findings name amounts
    assert {c["kept"] for c in promised} == {True, False}


def test_rate_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    with running_server(f"sqlite:///{tmp_path}/ledger.sqlite", public=_settings(
            tmp_path, burst=3, rate_per_minute=6)) as server:
        with server.client() as client:
            assert [client.get("/public/api/holdings").status_code for _ in range(3)] == \
                [200, 200, 200]
            refused = client.get("/public")
            assert refused.status_code == 429
            assert refused.headers["retry-after"] == "10"  # one token every 10 s
            assert client.get("/api/health").status_code == 200  # the rest is not limited
            server.clock.advance(10)
            assert client.get("/public/api/wallets").status_code == 200
            assert client.get("/public/api/wallets").status_code == 429


def test_the_portal_is_off_unless_enabled(tmp_path: Path) -> None:
    with running_server(f"sqlite:///{tmp_path}/ledger.sqlite") as server:
        with server.client() as client:
            for path in ROUTES:
                assert client.get(path).status_code == 404, path
