"""`reserve mining ...`: the electricity allocation, its sites and signed energy readings
(docs/mining.md).

`allocation set|show` records and shows the allocation's ceiling; `site register|list`
registers a mining site or an AI data centre (its meter and the meter operator's key);
`meter keygen` creates a meter operator's Ed25519 key (passphrase from
RESERVE_METER_PASSPHRASE or a prompt); `reading sign` signs a reading offline with it and
`reading submit` verifies and records one. Every refusal writes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from reserve.cli.common import emit, fail, guarded, load_settings, open_ledger

mining_app = typer.Typer(no_args_is_help=True, add_completion=False,
                         help="The electricity allocation: sites and signed energy readings.")
allocation_app = typer.Typer(no_args_is_help=True, add_completion=False,
                             help="The allocation's ceiling (kW).")
site_app = typer.Typer(no_args_is_help=True, add_completion=False,
                       help="Mining sites and AI data centres sharing the allocation.")
meter_app = typer.Typer(no_args_is_help=True, add_completion=False,
                        help="A meter operator's signing key.")
reading_app = typer.Typer(no_args_is_help=True, add_completion=False,
                          help="Signed energy readings: sign offline, submit.")
mining_app.add_typer(allocation_app, name="allocation")
mining_app.add_typer(site_app, name="site")
mining_app.add_typer(meter_app, name="meter")
mining_app.add_typer(reading_app, name="reading")

METER_PASSPHRASE_ENV = "RESERVE_METER_PASSPHRASE"  # noqa: S105 (a variable name)
METER_ROLE = "meter-operator"
FILE_BYTES_MAX = 1024 * 1024
Config = Annotated[Path | None, typer.Option("--config", help="Config file.")]
Database = Annotated[str | None, typer.Option("--database-url", help="Ledger database URL.")]
AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
By = Annotated[str, typer.Option("--by", help="Who acts (recorded as the entry's actor).")]


def _ledger(config: Path | None, database_url: str | None, *, write: bool = True) -> Any:
    return open_ledger(load_settings(str(config) if config else None), database_url,
                       with_signer=write)


def _passphrase() -> str:
    from reserve import keystore

    return keystore.passphrase_from_env(METER_PASSPHRASE_ENV,
                                        prompt="meter operator key passphrase: ")


@allocation_app.command("set")
def allocation_set(ceiling_kw: Annotated[int, typer.Option(
                       "--ceiling-kw", help="The ceiling in kW (phase one: 2000000).")],
                   name: Annotated[str, typer.Option(help="The allocation's name.")]
                   = "phase-one",
                   note: Annotated[str, typer.Option(help="Why (recorded).")] = "",
                   by: By = "operator", config: Config = None,
                   database_url: Database = None, as_json: AsJson = False) -> None:
    """Set the allocation's ceiling (recorded as `mining.allocation_set`)."""
    def action() -> Any:
        from reserve.mining.record import set_allocation
        from reserve.mining.sites import Allocation

        allocation = Allocation(name=name, ceiling_kw=ceiling_kw, note=note)
        with _ledger(config, database_url) as ledger:
            return set_allocation(ledger, allocation, actor=by)
    entry = guarded(action)
    emit({"seq": entry.seq, **entry.payload}, as_json,
         f"allocation {entry.payload['name']}: ceiling {entry.payload['ceiling_kw']:,} kW "
         f"(ledger entry {entry.seq})")


@allocation_app.command("show")
def allocation_show(config: Config = None, database_url: Database = None,
                    as_json: AsJson = False) -> None:
    """The allocation in force, what is allocated and what is free."""
    def action() -> Any:
        from reserve.mining.sites import registry

        with _ledger(config, database_url, write=False) as ledger:
            return registry(ledger.entries()).to_json()
    shown = guarded(action)
    allocation = shown["allocation"]
    emit(shown, as_json,
         "no allocation is set" if allocation is None else
         f"allocation {allocation['name']}: ceiling {allocation['ceiling_kw']:,} kW, "
         f"allocated {shown['allocated_kw']:,} kW (mining {shown['by_kind']['mining']:,}, "
         f"ai {shown['by_kind']['ai']:,}) to {shown['sites']} site(s), "
         f"free {shown['free_kw']:,} kW")


@site_app.command("register")
def site_register(
        site: Annotated[str, typer.Argument(help="Site name (a-z 0-9 . _ -).")],
        operator: Annotated[str, typer.Option(help="Who runs the site.")],
        kind: Annotated[str, typer.Option(help="mining or ai.")],
        capacity_kw: Annotated[int, typer.Option("--capacity-kw",
                                                 help="Allocated capacity in kW.")],
        meter: Annotated[str, typer.Option(help="The grid meter's id.")],
        meter_key: Annotated[str, typer.Option(
            "--meter-key", help="The meter operator's public key (name+hash+base64), as "
                                "`reserve mining meter keygen` prints it.")],
        tariff: Annotated[int, typer.Option(
            "--tariff", help="Tariff in minor currency units per kWh.")],
        currency: Annotated[str, typer.Option(help="ISO 4217 code of the tariff.")],
        payout_wallet: Annotated[list[str], typer.Option(
            "--payout-wallet", help="A registered public-sector wallet the site's payouts "
                                    "go to (mining sites); repeatable.")] = [],  # noqa: B006
        by: By = "operator", config: Config = None, database_url: Database = None,
        as_json: AsJson = False) -> None:
    """Register a site (recorded as `mining.site_registered`)."""
    def action() -> Any:
        from reserve.mining.record import register_site
        from reserve.mining.sites import Site

        registered = Site(site=site, operator=operator, kind=kind, capacity_kw=capacity_kw,
                          meter=meter, meter_key=meter_key, tariff_minor_per_kwh=tariff,
                          currency=currency, payout_wallets=tuple(payout_wallet))
        with _ledger(config, database_url) as ledger:
            return register_site(ledger, registered, actor=by)
    entry = guarded(action)
    payload = entry.payload
    emit({"seq": entry.seq, **payload}, as_json,
         f"registered {payload['site']} ({payload['site_kind']}, {payload['operator']}): "
         f"{payload['capacity_kw']:,} kW, meter {payload['meter']}, ledger entry {entry.seq}")


@site_app.command("list")
def site_list(config: Config = None, database_url: Database = None,
              as_json: AsJson = False) -> None:
    """The registered sites, in registration order."""
    def action() -> Any:
        from reserve.mining.sites import registry

        with _ledger(config, database_url, write=False) as ledger:
            return [s.to_json() for s in registry(ledger.entries()).sites]
    shown = guarded(action)
    emit(shown, as_json, "\n".join(
        f"{s['site']:<20} {s['kind']:<7} {s['capacity_kw']:>12,} kW  meter {s['meter']}  "
        f"{s['tariff_minor_per_kwh']} {s['currency']}/100 per kWh  {s['operator']}"
        + (f"\n    payout: {', '.join(s['payout_wallets'])}" if s["payout_wallets"] else "")
        for s in shown) or "no sites registered")


@meter_app.command("keygen")
def meter_keygen(out: Annotated[Path, typer.Option("--out", help="Keystore to create.")],
                 name: Annotated[str, typer.Option("--name", help="Key name, one word.")]
                 = "meter-operator", as_json: AsJson = False) -> None:
    """Create a meter operator's Ed25519 key (a 0600 keystore labelled as a meter
    operator's); prints the public key a site registers as --meter-key."""
    from reserve.supervision.keys import create_key

    key = guarded(lambda: create_key(out, name, _passphrase(), role=METER_ROLE))
    emit({"public_key": key.verifier.encode(), "file": str(out)}, as_json,
         f"meter operator key written to {out}\npublic key: {key.verifier.encode()}")


@reading_app.command("sign")
def reading_sign(key: Annotated[Path, typer.Option("--key", help="The meter operator's "
                                                                  "keystore.")],
                 site: Annotated[str, typer.Option("--site", help="The site.")],
                 meter: Annotated[str, typer.Option("--meter", help="The site's meter id.")],
                 start: Annotated[str, typer.Option("--start", help="Period start, UTC, "
                                                    "e.g. 2026-01-05T00:00:00Z.")],
                 end: Annotated[str, typer.Option("--end", help="Period end, UTC.")],
                 kwh: Annotated[int, typer.Option("--kwh", help="Energy in kWh.")],
                 out: Annotated[Path, typer.Option("--out", help="Signed reading file.")]
                 ) -> None:
    """Sign one energy reading, offline (no ledger is opened)."""
    from reserve.mining.readings import parse_time, sign_reading
    from reserve.supervision.keys import load_key

    def run() -> Any:
        period_start = parse_time(start, "--start")
        period_end = parse_time(end, "--end")
        signing = load_key(key, _passphrase(), role=METER_ROLE)
        return sign_reading(signing.private_key, signing.name, site=site, meter=meter,
                            period_start=period_start, period_end=period_end,
                            energy_kwh=kwh)
    if out.exists():
        fail(f"{out} exists; not overwritten")
    reading = guarded(run)
    out.write_text(json.dumps(reading.document(), indent=1, sort_keys=True) + "\n")
    typer.echo(f"signed reading of {site}: {kwh:,} kWh over {start} .. {end} to {out}")


@reading_app.command("submit")
def reading_submit(path: Annotated[Path, typer.Argument(help="A signed reading file.")],
                   by: By = "operator", config: Config = None,
                   database_url: Database = None, as_json: AsJson = False) -> None:
    """Verify a signed reading against the site's meter key and record it
    (`energy.reading`); a forged, overlapping or impossible reading writes nothing."""
    try:
        if path.stat().st_size > FILE_BYTES_MAX:
            fail(f"{path} is larger than {FILE_BYTES_MAX} bytes")
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        fail(f"cannot read {path}: {error}")

    def action() -> Any:
        from reserve.mining.readings import reading_from_document
        from reserve.mining.record import submit_reading

        reading = reading_from_document(document)
        with _ledger(config, database_url) as ledger:
            return submit_reading(ledger, reading, actor=by)
    entry = guarded(action)
    payload = entry.payload
    emit({"seq": entry.seq, **payload}, as_json,
         f"reading of {payload['site']}: {payload['energy_kwh']:,} kWh over "
         f"{payload['period_start']} .. {payload['period_end']} recorded "
         f"(ledger entry {entry.seq})")


@mining_app.command("report")
def report(period_start: Annotated[str, typer.Option(
               "--period-start", help="UTC, e.g. 2026-01-05T00:00:00Z.")],
           period_end: Annotated[str, typer.Option("--period-end", help="UTC.")],
           statement: Annotated[Path, typer.Option(
               "--statement", help="The exported public-sector statement (JSON) of the "
                                   "same period: mined satoshis are its mining movements "
                                   "into the sites' payout wallets.")],
           config: Config = None, database_url: Database = None,
           as_json: AsJson = False) -> None:
    """The energy report: per site energy, allocated energy, utilisation, mined satoshis
    and satoshis per MWh (integers; see docs/mining.md#the-energy-report)."""
    try:
        if statement.stat().st_size > 64 * FILE_BYTES_MAX:
            fail(f"{statement} is larger than {64 * FILE_BYTES_MAX} bytes")
        document = json.loads(statement.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        fail(f"cannot read {statement}: {error}")

    def action() -> Any:
        from reserve.mining.readings import parse_time, recorded
        from reserve.mining.record import relevant
        from reserve.mining.report import build_report
        from reserve.mining.sites import registry

        start = parse_time(period_start, "--period-start")
        end = parse_time(period_end, "--period-end")
        if not isinstance(document, dict):
            fail(f"{statement} is not a statement")
        with _ledger(config, database_url, write=False) as ledger:
            entries = relevant(ledger)
        return build_report(registry(entries), recorded(entries), document, start, end)
    built = guarded(action)
    lines = [f"energy report {built['period']['start']} .. {built['period']['end']}"]
    for row in built["sites"]:
        mined = "" if row["mined_sats"] is None else \
            f", mined {row['mined_sats']:,} sats ({row['sats_per_mwh'] or 0:,} sats/MWh)"
        lines.append(f"  {row['site']:<20} {row['kind']:<7} {row['energy_mwh']:>16} of "
                     f"{row['allocated_kwh']:,} kWh allocated, {row['utilisation_bp'] // 100}."
                     f"{row['utilisation_bp'] % 100:02d}% used{mined}")
    total = built["total"]
    lines.append(f"  total {total['energy_mwh']}, mined {total['mined_sats']:,} sats")
    emit(built, as_json, "\n".join(lines))
