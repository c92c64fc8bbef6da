"""The allocation, its sites and signed energy readings through the real `reserve`
command (subprocesses on a SQLite ledger) and over HTTP against a real uvicorn server.

Every refusal exits 2 (CLI) or answers 400/403/404 (API), never a traceback or a 500, and
leaves the ledger as it was.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from reserve.config import DEMO_PASSPHRASE
from reserve.events.transparency import WalletRegistered
from reserve.ledger import Ledger
from reserve.ledger.keys import create_signer_file
from reserve.mining import readings
from reserve.mining.sites import Allocation, Site
from reserve.statement.statement import check_in as check_in_statement
from tests.support.api_server import RunningServer, reserve_command, running_server
from tests.support.reconcile_fixtures import PASSPHRASE as AUDITOR_PASSPHRASE
from tests.support.reconcile_fixtures import auditor
from tests.unit.test_mining import verifier

PASS = "meter-operator-pass"


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, Any]:
    config = tmp_path / "config" / "reserve.toml"
    config.parent.mkdir()
    config.write_text('network = "regtest"\n[ledger]\ndatabase_url = "sqlite:///var/l.sqlite"\n'
                      'origin = "test/ledger"\nkey_path = "var/key.json"\n')
    create_signer_file(tmp_path / "var" / "key.json", "test/ledger", DEMO_PASSPHRASE,
                       scrypt_n=2**12)
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("RESERVE_LEDGER_PASSPHRASE", "RESERVE_DATABASE_URL")}
    environment.update(RESERVE_CONFIG=str(config), RESERVE_NOW="2026-01-05T09:00:00Z",
                       RESERVE_METER_PASSPHRASE=PASS,
                       RESERVE_AUDITOR_PASSPHRASE=AUDITOR_PASSPHRASE)
    return {"folder": tmp_path, "env": environment}


def reserve(env: dict[str, Any], *args: str, code: int = 0) -> str:
    done = subprocess.run([*reserve_command(), *args], cwd=env["folder"], env=env["env"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == code, done.stdout + done.stderr
    if code:
        assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
        return done.stderr
    return done.stdout


def size(env: dict[str, Any]) -> int:
    with Ledger.open(f"sqlite:///{env['folder']}/var/l.sqlite") as ledger:
        return ledger.size()


def refused(env: dict[str, Any], *args: str) -> str:
    before = size(env)
    message = reserve(env, *args, code=2)
    assert size(env) == before
    return message


def test_the_allocation_sites_and_readings_from_the_command_line(env: dict[str, Any]) -> None:
    folder: Path = env["folder"]
    key = folder / "meter.json"
    public = json.loads(reserve(env, "mining", "meter", "keygen", "--out", str(key),
                                "--name", "grid-meters", "--json"))["public_key"]
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert json.loads(key.read_text())["label"] == "meter-operator grid-meters"
    assert not (folder / "var" / "l.sqlite").exists()  # keygen opened no ledger

    reserve(env, "mining", "allocation", "set", "--ceiling-kw", "2000000")
    with Ledger.open(f"sqlite:///{folder}/var/l.sqlite") as ledger:
        event = WalletRegistered(name="north-payout", institution="Treasury",
                                 role="mining payout", custody="watched", chain="bitcoin",
                                 network="regtest", descriptors=["addr(bcrt1qnorth)"],
                                 range_end=0, birth_height=0)
        ledger.append(event.KIND, "operator", event.to_payload())
    common = ("--operator", "North Mining Ltd", "--meter-key", public, "--tariff", "7",
              "--currency", "USD")
    reserve(env, "mining", "site", "register", "north-mine", "--kind", "mining",
            "--capacity-kw", "1200000", "--meter", "MTR-001", "--payout-wallet",
            "north-payout", *common)
    assert "above the allocation's ceiling" in refused(
        env, "mining", "site", "register", "gpu-park", "--kind", "ai", "--capacity-kw",
        "800001", "--meter", "MTR-002", *common)
    assert "no meter key" in refused(
        env, "mining", "site", "register", "gpu-park", "--kind", "ai", "--capacity-kw",
        "800000", "--meter", "MTR-002", "--operator", "GPU Park", "--meter-key", "",
        "--tariff", "9", "--currency", "USD")
    assert "is registered already" in refused(
        env, "mining", "site", "register", "north-mine", "--kind", "ai", "--capacity-kw",
        "1", "--meter", "MTR-003", *common)
    assert "'nowhere' is not a registered public-sector wallet" in refused(
        env, "mining", "site", "register", "south-mine", "--kind", "mining",
        "--capacity-kw", "1", "--meter", "MTR-004", "--payout-wallet", "nowhere", *common)
    reserve(env, "mining", "site", "register", "gpu-park", "--kind", "ai", "--capacity-kw",
            "800000", "--meter", "MTR-002", *common)
    shown = json.loads(reserve(env, "mining", "allocation", "show", "--json"))
    assert shown["allocated_kw"] == 2_000_000 and shown["free_kw"] == 0
    listed = json.loads(reserve(env, "mining", "site", "list", "--json"))
    assert [s["site"] for s in listed] == ["north-mine", "gpu-park"]
    assert "north-payout" in reserve(env, "mining", "site", "list")

    def sign(name: str, start: str, end: str, kwh: int, site: str = "north-mine") -> Path:
        out = folder / name
        reserve(env, "mining", "reading", "sign", "--key", str(key), "--site", site,
                "--meter", "MTR-001", "--start", start, "--end", end, "--kwh", str(kwh),
                "--out", str(out))
        return out

    first = sign("r1.json", "2026-01-05T00:00:00Z", "2026-01-05T01:00:00Z", 1_100_000)
    recorded = json.loads(reserve(env, "mining", "reading", "submit", str(first), "--json"))
    assert recorded["energy_kwh"] == 1_100_000 and recorded["site"] == "north-mine"
    assert "duplicate period" in refused(env, "mining", "reading", "submit", str(first))
    overlapping = sign("r2.json", "2026-01-05T00:30:00Z", "2026-01-05T01:30:00Z", 1)
    assert "overlaps" in refused(env, "mining", "reading", "submit", str(overlapping))
    over = sign("r3.json", "2026-01-05T01:00:00Z", "2026-01-05T02:00:00Z", 1_200_001)
    assert "physically impossible" in refused(env, "mining", "reading", "submit", str(over))
    unknown = sign("r4.json", "2026-01-05T01:00:00Z", "2026-01-05T02:00:00Z", 1, "atlantis")
    assert "no site 'atlantis'" in refused(env, "mining", "reading", "submit", str(unknown))
    forged = folder / "forged.json"
    forged.write_text(json.dumps({**json.loads(first.read_text()),
                                  "period_start": "2026-01-05T05:00:00Z",
                                  "period_end": "2026-01-05T06:00:00Z"}))
    assert "does not verify" in refused(env, "mining", "reading", "submit", str(forged))
    other = folder / "other.json"
    other.write_text(json.dumps(readings.sign_reading(
        Ed25519PrivateKey.generate(), "intruder", site="north-mine", meter="MTR-001",
        period_start=datetime(2026, 1, 5, 7, tzinfo=UTC),
        period_end=datetime(2026, 1, 5, 8, tzinfo=UTC), energy_kwh=1).document()))
    assert "not the site's registered meter key" in refused(
        env, "mining", "reading", "submit", str(other))
    assert "at or before it starts" in reserve(
        env, "mining", "reading", "sign", "--key", str(key), "--site", "north-mine",
        "--meter", "MTR-001", "--start", "2026-01-05T02:00:00Z", "--end",
        "2026-01-05T02:00:00Z", "--kwh", "1", "--out", str(folder / "r5.json"), code=2)
    assert "exists; not overwritten" in reserve(
        env, "mining", "reading", "sign", "--key", str(key), "--site", "north-mine",
        "--meter", "MTR-001", "--start", "2026-01-05T02:00:00Z", "--end",
        "2026-01-05T03:00:00Z", "--kwh", "1", "--out", str(first), code=2)

    # The energy report: mined satoshis from a signed statement the ledger published.
    auditor_key = auditor(folder)
    exported = folder / "statement.json"
    unpublished = folder / "unpublished.json"
    statement_body = {
        "format": "reserve-public-statement/1",
        "period": {"start": "2026-01-05T00:00:00+00:00", "end": "2026-01-06T00:00:00+00:00"},
        "blocks": {"start_height": 101, "end_height": 200},
        "consolidated": {"opening_sats": 0, "closing_sats": 5_000_000_000, "flows": [
            {"class": "mining", "sats": 5_000_000_000, "txids": ["ab" * 32]}]},
        "wallets": [], "commitments": [],
        "movements": [{"txid": "ab" * 32, "height": 101, "time": "2026-01-05T00:30:00Z",
                       "wallet": "north-payout", "class": "mining", "sats": 5_000_000_000,
                       "evidence": "coinbase", "site": "north-mine"}]}
    signed = auditor_key.sign(statement_body)
    exported.write_text(json.dumps(signed))
    unpublished.write_text(json.dumps(auditor_key.sign({**statement_body, "wallets": [1]})))
    period = ("--period-start", "2026-01-05T00:00:00Z", "--period-end", "2026-01-06T00:00:00Z")
    signing = ("--key-file", str(folder / "auditor-general.key.json"))
    stated = ("--btc-price", "97250.00", "--price-currency", "USD", "--price-source",
              "a stated test price")
    before = size(env)
    assert "is not published in the ledger" in reserve(
        env, "mining", "report", *period, "--statement", str(exported), *signing, code=2)
    with Ledger.open(f"sqlite:///{folder}/var/l.sqlite") as ledger:
        check_in_statement(ledger, signed, "auditor:auditor-general")
    before = size(env)
    for args, message in (
            (("--statement", str(unpublished)), "is not published in the ledger"),
            (("--statement", str(first)), "is not a signed public-sector statement"),
            (("--statement", str(folder / "missing.json")), "cannot read"),
            (("--statement", str(exported), "--btc-price", "97250.00"),
             "needs --btc-price, --price-currency and --price-source"),
            (("--statement", str(exported), *stated[:4], "--price-source", ""),
             "name its source"),
            (("--statement", str(exported), "--btc-price", "1.001", *stated[2:]),
             "more decimals than USD's 2"),
            (("--statement", str(exported), "--difficulty", "1e14"),
             "needs --difficulty, --block-reward-sats and --difficulty-source")):
        assert message in reserve(env, "mining", "report", *period, *args, *signing, code=2)
    assert "the statement covers" in reserve(
        env, "mining", "report", "--period-start", "2026-01-05T00:00:00Z", "--period-end",
        "2026-01-07T00:00:00Z", "--statement", str(exported), *signing, code=2)
    assert size(env) == before  # nothing written by any refusal

    preview = json.loads(reserve(env, "mining", "report", *period, "--statement",
                                 str(exported), "--unsigned", "--json"))
    assert preview["entry_seq"] is None and size(env) == before
    built = json.loads(reserve(env, "mining", "report", *period, "--statement",
                               str(exported), *stated, *signing, "--json"))
    assert size(env) == before + 1 and built["entry_seq"] == before
    north = next(row for row in built["sites"] if row["site"] == "north-mine")
    assert (north["energy_kwh"], north["energy_mwh"]) == (1_100_000, "1,100.000 MWh")
    assert north["allocated_kwh"] == 28_800_000 and north["utilisation_bp"] == 381
    assert north["mined_sats"] == 5_000_000_000 and north["sats_per_mwh"] == 4_545_454
    # 50 BTC at 97,250.00 USD over 1,100 MWh: 4,420.45 USD per MWh, against 7 cents/kWh.
    assert north["revenue_per_mwh_minor"] == 442_045 and north["tariff_per_mwh_minor"] == 7_000
    assert built["total"]["matches_statement"] is True and built["anomalies"] == []
    files = Path(built["files"])
    assert files.parent == folder / "var" / "mining"
    document = files.with_suffix(".json")
    shown = reserve(env, "mining", "show", str(document))
    assert "3.81% used" in shown and "4,420.45 USD/MWh" in shown and "no anomalies" in shown
    assert reserve(env, "mining", "show", str(document), "--csv").splitlines()[0].startswith(
        "site,kind,operator,capacity_kw,energy_kwh")
    assert "Energy report" in reserve(env, "mining", "show", str(document), "--html")
    assert "not a signed energy report" in reserve(env, "mining", "show", str(exported), code=2)

    ledger_export = folder / "ledger.jsonl"
    reserve(env, "ledger", "export", "-o", str(ledger_export))
    auditor_public = auditor_key.verifier.encode()
    holds = json.loads(reserve(env, "mining", "verify", str(document), "--statement",
                               str(exported), "--export", str(ledger_export),
                               "--auditor-key", auditor_public, "--json"))
    assert holds["holds"] is True
    tampered = json.loads(document.read_text())
    tampered["report"]["total"]["mined_sats"] += 1
    (folder / "tampered.json").write_text(json.dumps(tampered))
    refused_verify = subprocess.run(
        [*reserve_command(), "mining", "verify", str(folder / "tampered.json"),
         "--statement", str(exported), "--export", str(ledger_export), "--auditor-key",
         auditor_public], cwd=folder, env=env["env"], capture_output=True, text=True,
        timeout=120, check=False)
    assert refused_verify.returncode == 1 and "DOES NOT HOLD (tampered)" in \
        refused_verify.stdout

    # Changing and retiring a site; every refusal writes nothing.
    for args, message in (
            (("north-mine", "--capacity-kw", "1200001", "--note", "upgrade"),
             "above the allocation's ceiling"),
            (("north-mine", "--meter-key", "nonsense", "--note", "rotate"),
             "not an Ed25519 verifier key"),
            (("north-mine", "--efficiency", "fast", "--note", "x"), "J/TH"),
            (("north-mine", "--note", "nothing"), "nothing to change"),
            (("atlantis", "--tariff", "1", "--note", "x"), "no site 'atlantis'"),
            (("gpu-park", "--pool-payer", "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080",
              "--note", "x"), "no pool and no mining fleet"),
            (("north-mine", "--pool-payer", "x", "--no-pool", "--note", "x"), "not both")):
        assert message in refused(env, "mining", "site", "change", *args)
    rotated = verifier(Ed25519PrivateKey.generate(), "grid-meters")
    changed = json.loads(reserve(env, "mining", "site", "change", "north-mine", "--meter-key",
                                 rotated, "--efficiency", "17.5", "--note",
                                 "meter operator rotated its key", "--json"))
    assert changed["changes"] == {"meter_key": rotated, "efficiency_mj_per_th": 17_500}
    assert "not the site's registered meter key" in refused(
        env, "mining", "reading", "submit",
        str(sign("r9.json", "2026-01-05T05:00:00Z", "2026-01-05T06:00:00Z", 1)))
    reserve(env, "mining", "site", "retire", "gpu-park", "--note", "decommissioned")
    assert "RETIRED" in reserve(env, "mining", "site", "list")
    assert "fleet efficiency: 17.500 J/TH" in reserve(env, "mining", "site", "list")
    assert json.loads(reserve(env, "mining", "allocation", "show", "--json"))[
        "free_kw"] == 800_000
    assert "is retired" in refused(env, "mining", "site", "retire", "gpu-park", "--note", "x")


# -- over HTTP ---------------------------------------------------------------------------
METER = Ed25519PrivateKey.generate()
T0 = datetime(2026, 1, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    folder = tmp_path_factory.mktemp("api-mining")
    with running_server(f"sqlite:///{folder}/ledger.sqlite") as running:
        ledger = running.ledger
        for event in (Allocation("phase-one", 2_000_000).event(),
                      Site(site="gpu-park", operator="GPU Park", kind="ai",
                           capacity_kw=800_000, meter="MTR-002",
                           meter_key=verifier(METER, "grid-meters"),
                           tariff_minor_per_kwh=9, currency="USD").event()):
            ledger.append(event.KIND, "operator", event.to_payload(), now=running.clock.wall())
        yield running


def document(hour: float, kwh: int = 700_000, key: Ed25519PrivateKey = METER,
             site: str = "gpu-park") -> dict[str, Any]:
    start = T0 + timedelta(hours=hour)
    return readings.sign_reading(key, "grid-meters", site=site, meter="MTR-002",
                                 period_start=start, period_end=start + timedelta(hours=1),
                                 energy_kwh=kwh).document()


def post(server: RunningServer, body: Any, role: str = "operator") -> Any:
    with server.client(role) as client:
        return client.post("/api/mining/readings", json=body)


def test_an_operator_records_a_signed_reading(server: RunningServer) -> None:
    before = server.ledger.size()
    response = post(server, document(0))
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["by"] == "olga-operator" and answer["energy_kwh"] == 700_000
    written = list(server.ledger.entries(before))
    assert [e.kind for e in written] == ["api.request", "energy.reading"]
    assert written[1].payload["signature"] == document(0)["signature"]


@pytest.mark.parametrize(("body", "code", "detail"), [
    (document(0), 400, "duplicate period"),
    ({**document(0), "period_start": "2026-01-05T00:30:00Z",
      "period_end": "2026-01-05T01:30:00Z"}, 400, "does not verify"),  # edited: forged
    (document(0, kwh=1, key=Ed25519PrivateKey.generate()), 400, "not the site's registered"),
    ({**document(5), "meter_key": verifier(Ed25519PrivateKey.generate(), "grid-meters")},
     400, "not the site's registered"),
    (document(0.5, kwh=1), 400, "overlaps"),
    (document(1, kwh=800_001), 400, "physically impossible"),
    (document(2) | {"period_end": "2026-01-05T02:00:00Z"}, 400, "at or before it starts"),
    (document(3) | {"period_start": "yesterday"}, 400, "must be a UTC time"),
    (document(3) | {"format": "something/1"}, 400, "not an energy reading"),
    (document(3, site="atlantis"), 404, "no site 'atlantis'"),
], ids=["duplicate", "forged", "wrong-key", "wrong-key-claimed", "overlapping",
        "over-capacity", "empty-period", "bad-time", "bad-format", "unknown-site"])
def test_each_refusal_is_a_clear_error_and_writes_nothing(
        server: RunningServer, body: dict[str, Any], code: int, detail: str) -> None:
    post(server, document(0))  # the first reading is there whatever order tests run in
    before = server.ledger.size()
    response = post(server, body)
    assert response.status_code == code, response.text
    assert detail in response.json()["detail"]
    assert server.ledger.size() == before


@pytest.mark.parametrize("role", ["viewer", "custodian", "auditor", "admin", "supervisor"])
def test_only_operators_submit_readings(server: RunningServer, role: str) -> None:
    before = server.ledger.size()
    response = post(server, document(20), role)
    assert response.status_code == 403 and "may not" in response.json()["detail"]
    assert server.ledger.size() == before


def test_a_malformed_body_is_422_not_500(server: RunningServer) -> None:
    bodies: list[Any] = [{"format": 1}, {**document(21), "energy_kwh": "many"},
                         {**document(21), "energy_kwh": -5}, {**document(21), "extra": 1}, []]
    for body in bodies:
        assert post(server, body).status_code == 422
