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

from reserve.cli.common import emit, fail, guarded, load_settings, open_ledger, verdict
from reserve.cli.reconcile import (
    DEFAULT_KEY,
    AuditorKeys,
    KeyFile,
    _auditor_passphrase,
    _configured,
    _keys,
)

mining_app = typer.Typer(no_args_is_help=True, add_completion=False,
                         help="The electricity allocation: sites, signed energy readings, "
                              "the energy report.")
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
    from reserve.events.mining import AllocationSet

    allocation_set = AllocationSet.of(entry)
    emit({"seq": entry.seq, **allocation_set.to_payload()}, as_json,
         f"allocation {allocation_set.name}: ceiling {allocation_set.ceiling_kw:,} kW "
         f"(ledger entry {entry.seq})")


@allocation_app.command("show")
def allocation_show(config: Config = None, database_url: Database = None,
                    as_json: AsJson = False) -> None:
    """The allocation in force, what is allocated and what is free."""
    def action() -> Any:
        from reserve.mining.record import relevant
        from reserve.mining.sites import registry

        with _ledger(config, database_url, write=False) as ledger:
            return registry(relevant(ledger)).to_json()
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
        pool_payer: Annotated[list[str], typer.Option(
            "--pool-payer", help="An address the site's mining pool pays from: payouts "
                                 "from it count as mined coins; repeatable.")] = [],  # noqa: B006
        efficiency: Annotated[str | None, typer.Option(
            "--efficiency", help="The fleet's declared efficiency in J/TH (e.g. 17.5), for "
                                 "the yield check.")] = None,
        by: By = "operator", config: Config = None, database_url: Database = None,
        as_json: AsJson = False) -> None:
    """Register a site (recorded as `mining.site_registered`)."""
    def action() -> Any:
        from reserve.mining.record import register_site
        from reserve.mining.sites import Site, parse_efficiency

        registered = Site(site=site, operator=operator, kind=kind, capacity_kw=capacity_kw,
                          meter=meter, meter_key=meter_key, tariff_minor_per_kwh=tariff,
                          currency=currency, payout_wallets=tuple(payout_wallet),
                          pool_payers=tuple(pool_payer),
                          efficiency_mj_per_th=parse_efficiency(efficiency))
        with _ledger(config, database_url) as ledger:
            return register_site(ledger, registered, actor=by)
    entry = guarded(action)
    payload = entry.payload
    emit({"seq": entry.seq, **payload}, as_json,
         f"registered {payload['site']} ({payload['site_kind']}, {payload['operator']}): "
         f"{payload['capacity_kw']:,} kW, meter {payload['meter']}, ledger entry {entry.seq}")


Note = Annotated[str, typer.Option("--note", help="Why (recorded).")]


@site_app.command("change")
def site_change(
        site: Annotated[str, typer.Argument(help="The registered site.")], note: Note,
        operator: Annotated[str | None, typer.Option(help="Who runs it now.")] = None,
        capacity_kw: Annotated[int | None, typer.Option(
            "--capacity-kw", help="Its new capacity in kW.")] = None,
        meter_key: Annotated[str | None, typer.Option(
            "--meter-key", help="The meter operator's new public key (a key rotation): "
                                "readings from then on must verify with it.")] = None,
        tariff: Annotated[int | None, typer.Option(
            "--tariff", help="New tariff in minor currency units per kWh.")] = None,
        efficiency: Annotated[str | None, typer.Option(
            "--efficiency", help="The fleet's new declared efficiency, J/TH.")] = None,
        payout_wallet: Annotated[list[str], typer.Option(
            "--payout-wallet", help="Replace the payout wallets (repeatable).")
        ] = [],  # noqa: B006
        pool_payer: Annotated[list[str], typer.Option(
            "--pool-payer", help="Replace the pool payer addresses (repeatable).")
        ] = [],  # noqa: B006
        no_pool: Annotated[bool, typer.Option(
            "--no-pool", help="Remove every pool payer address.")] = False,
        by: By = "operator", config: Config = None, database_url: Database = None,
        as_json: AsJson = False) -> None:
    """Change a site (recorded as `mining.site_changed`): capacity, meter key, tariff,
    operator, fleet efficiency, payout wallets or pool payers; every check a new site
    passes must still hold."""
    def action() -> Any:
        from reserve.mining.record import change_site
        from reserve.mining.sites import parse_efficiency

        if no_pool and pool_payer:
            fail("give --pool-payer or --no-pool, not both")
        changes: dict[str, Any] = {k: v for k, v in (
            ("operator", operator), ("capacity_kw", capacity_kw), ("meter_key", meter_key),
            ("tariff_minor_per_kwh", tariff)) if v is not None}
        if efficiency is not None:
            changes["efficiency_mj_per_th"] = parse_efficiency(efficiency)
        if payout_wallet:
            changes["payout_wallets"] = list(payout_wallet)
        if pool_payer or no_pool:
            changes["pool_payers"] = list(pool_payer)
        with _ledger(config, database_url) as ledger:
            return change_site(ledger, site, changes, note=note, actor=by)
    entry = guarded(action)
    from reserve.events.mining import SiteChanged

    change = SiteChanged.of(entry)
    emit({"seq": entry.seq, **change.to_payload()}, as_json,
         f"site {site} changed ({', '.join(change.changes)}), ledger entry {entry.seq}")


@site_app.command("retire")
def site_retire(site: Annotated[str, typer.Argument(help="The registered site.")],
                note: Note, by: By = "operator", config: Config = None,
                database_url: Database = None, as_json: AsJson = False) -> None:
    """Retire a site: it takes no more readings and its capacity is free again (its
    readings and payouts stay in the ledger and in reports of past periods)."""
    def action() -> Any:
        from reserve.mining.record import change_site

        with _ledger(config, database_url) as ledger:
            return change_site(ledger, site, {}, retire=True, note=note, actor=by)
    entry = guarded(action)
    emit({"seq": entry.seq, **entry.payload}, as_json,
         f"site {site} retired, ledger entry {entry.seq}")


@site_app.command("list")
def site_list(config: Config = None, database_url: Database = None,
              as_json: AsJson = False) -> None:
    """The registered sites, in registration order."""
    def action() -> Any:
        from reserve.mining.record import relevant
        from reserve.mining.sites import registry

        with _ledger(config, database_url, write=False) as ledger:
            return [s.to_json() for s in registry(relevant(ledger)).sites]
    shown = guarded(action)
    emit(shown, as_json, "\n".join(_site_lines(s) for s in shown) or "no sites registered")


def _site_lines(site: dict[str, Any]) -> str:
    from reserve.mining.export import money

    lines = [f"{site['site']:<20} {site['kind']:<7} {site['capacity_kw']:>12,} kW  meter "
             f"{site['meter']}  tariff {money(site['tariff_minor_per_kwh'], site['currency'])}"
             f"/kWh  {site['operator']}" + ("  RETIRED" if site["retired"] else "")]
    if site["payout_wallets"]:
        lines.append(f"    payout wallets: {', '.join(site['payout_wallets'])}")
    if site["pool_payers"]:
        lines.append(f"    pool pays from: {', '.join(site['pool_payers'])}")
    if site["efficiency_mj_per_th"]:
        whole, part = divmod(site["efficiency_mj_per_th"], 1000)
        lines.append(f"    fleet efficiency: {whole}.{part:03d} J/TH")
    lines.append(f"    meter key: {site['meter_key']}")
    return "\n".join(lines)


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


def _read_document(path: Path, what: str) -> Any:
    try:
        if path.stat().st_size > 64 * FILE_BYTES_MAX:
            fail(f"{path} is larger than {64 * FILE_BYTES_MAX} bytes")
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        fail(f"cannot read {path}: {error}")
    if not isinstance(document, dict) or not isinstance(document.get("report"), dict):
        fail(f"{path} is not a signed {what}")
    return document


def _stated(btc_price: str | None, price_currency: str | None, price_source: str | None,
            difficulty: str | None, block_reward_sats: int | None,
            difficulty_source: str | None) -> tuple[Any, Any]:
    from reserve.mining.basis import Difficulty, Price

    price = None
    if btc_price is not None or price_currency is not None or price_source is not None:
        if btc_price is None or price_currency is None or price_source is None:
            fail("a BTC price needs --btc-price, --price-currency and --price-source")
        price = Price.parse(btc_price, price_currency, price_source)
    basis = None
    if difficulty is not None or block_reward_sats is not None \
            or difficulty_source is not None:
        if difficulty is None or block_reward_sats is None or difficulty_source is None:
            fail("the yield check needs --difficulty, --block-reward-sats and "
                 "--difficulty-source")
        basis = Difficulty.parse(difficulty, block_reward_sats, difficulty_source)
    return price, basis


DEFAULT_OUTPUT = "var/mining"
Statement = Annotated[Path, typer.Option(
    "--statement", help="The signed public-sector statement (its JSON export) of the same "
                        "period, published in the ledger: mined satoshis are its mining "
                        "movements into the sites' payout wallets.")]


@mining_app.command("report")
def report(period_start: Annotated[str, typer.Option(
               "--period-start", help="UTC, e.g. 2026-01-05T00:00:00Z.")],
           period_end: Annotated[str, typer.Option("--period-end", help="UTC.")],
           statement: Statement,
           btc_price: Annotated[str | None, typer.Option(
               "--btc-price", help="The BTC price for revenue figures, in currency units "
                                   "(e.g. 97250.00).")] = None,
           price_currency: Annotated[str | None, typer.Option(
               "--price-currency", help="The price's ISO 4217 currency.")] = None,
           price_source: Annotated[str | None, typer.Option(
               "--price-source", help="Where the price comes from (recorded).")] = None,
           difficulty: Annotated[str | None, typer.Option(
               "--difficulty", help="The network difficulty for the yield check (a "
                                    "decimal number).")] = None,
           block_reward_sats: Annotated[int | None, typer.Option(
               "--block-reward-sats", help="Subsidy plus typical fees of a block.")] = None,
           difficulty_source: Annotated[str | None, typer.Option(
               "--difficulty-source", help="Where the difficulty comes from (recorded).")
           ] = None,
           unsigned: Annotated[bool, typer.Option(
               "--unsigned", help="Compute and show only: neither sign nor check in.")
           ] = False,
           output: Annotated[Path | None, typer.Option("--output-dir", help=(
               f"Where the exports go (default: [mining] output_dir, else "
               f"{DEFAULT_OUTPUT}).")) ] = None,
           key_path: KeyFile = None, config: Config = None, database_url: Database = None,
           as_json: AsJson = False) -> None:
    """The energy report of a period: per site energy, allocated energy, utilisation,
    mined satoshis, satoshis and revenue per MWh, expected yield, and the anomalies
    (integers; docs/mining.md#the-energy-report). Signed by the auditor (key passphrase
    from RESERVE_AUDITOR_PASSPHRASE or a prompt), checked into the ledger and exported as
    JSON, CSV and HTML, unless --unsigned."""
    document = _read_document(statement, "public-sector statement")

    def action() -> Any:
        from reserve.mining import publish
        from reserve.mining.export import write_exports
        from reserve.mining.readings import parse_time

        start = parse_time(period_start, "--period-start")
        end = parse_time(period_end, "--period-end")
        price, basis = _stated(btc_price, price_currency, price_source, difficulty,
                               block_reward_sats, difficulty_source)
        settings = load_settings(str(config) if config else None)
        if unsigned:
            with open_ledger(settings, database_url) as ledger:
                return publish.build(ledger, document, start, end, price=price,
                                     difficulty=basis), None, None
        from reserve.reconcile.report import load_auditor_key

        signer = load_auditor_key(
            _configured(settings, "auditor_key_file", key_path, DEFAULT_KEY),
            _auditor_passphrase())
        with open_ledger(settings, database_url) as ledger:
            signed, entry = publish.publish(ledger, signer, document, start, end,
                                            price=price, difficulty=basis)
        table: dict[str, Any] = settings.raw.get("mining", {})
        folder = Path(settings.resolve(output if output is not None
                                       else table.get("output_dir", DEFAULT_OUTPUT)))
        return signed["report"], (signed, entry.seq), write_exports(signed, folder)
    body, signed, stem = guarded(action)
    shown = {**body, "entry_seq": signed[1] if signed else None,
             "report_sha256": signed[0]["signature"]["report_sha256"] if signed else None,
             "files": str(stem) if stem else None}
    emit(shown, as_json, _human(body) + (
        f"\nsigned, ledger entry {signed[1]}; {stem}.json/.csv/.html" if signed
        else "\n(unsigned: not checked in)"))


def _human(body: dict[str, Any]) -> str:
    from reserve.mining.export import money, percent
    from reserve.present import BTC, amount_words

    lines = [f"energy report {body['period']['start']} .. {body['period']['end']}"]
    price = body.get("price")
    for row in body["sites"]:
        mined = "" if row["mined_sats"] is None else \
            f", mined {amount_words(row['mined_sats'], BTC)}, " \
            f"{row['sats_per_mwh'] or 0:,} sats/MWh"
        lines.append(f"  {row['site']:<20} {row['kind']:<7} {row['energy_mwh']:>16} of "
                     f"{row['allocated_kwh']:,} kWh allocated, "
                     f"{percent(row['utilisation_bp'])} used{mined}")
        if price and row["revenue_per_mwh_minor"] is not None:
            lines.append(f"    revenue {money(row['revenue_per_mwh_minor'], price['currency'])}"
                         f"/MWh against a tariff of "
                         f"{money(row['tariff_per_mwh_minor'], row['currency'])}/MWh")
        if row.get("expected_sats") is not None:
            lines.append(f"    expected {amount_words(row['expected_sats'], BTC)} from the "
                         f"fleet and the "
                         f"stated difficulty: yield {percent(row['yield_bp'])}")
    total = body["total"]
    lines.append(f"  total {total['energy_mwh']}, mined {amount_words(total['mined_sats'], BTC)}"
                 f" ({'equal to' if total['matches_statement'] else 'NOT equal to'} the "
                 f"statement's mining flow of "
                 f"{amount_words(total['statement_mining_sats'], BTC)})")
    lines += [f"  anomaly {a['kind']}: {a['detail']}" for a in body["anomalies"]] \
        or ["  no anomalies"]
    return "\n".join(lines)


@mining_app.command("show")
def show(report_file: Annotated[Path, typer.Argument(help="An energy report's JSON export.")],
         csv: Annotated[bool, typer.Option("--csv", help="Its CSV export.")] = False,
         html: Annotated[bool, typer.Option("--html", help="Its HTML page.")] = False,
         as_json: AsJson = False) -> None:
    """Show a signed energy report (or its CSV / HTML export)."""
    from reserve.mining import export

    document = _read_document(report_file, "energy report")
    if document["report"].get("format") != "reserve-energy-report/1":
        fail(f"{report_file} is not a signed energy report")
    try:
        if csv or html:
            typer.echo(export.to_csv(document) if csv else export.to_html(document), nl=False)
            return
        emit(document, as_json, _human(document["report"]))
    except (KeyError, TypeError, AttributeError, ValueError):
        fail(f"{report_file} is not a well-formed energy report")


@mining_app.command("verify")
def verify(report_file: Annotated[Path, typer.Argument(help="An energy report's JSON export.")],
           statement: Statement,
           ledger_export: Annotated[Path, typer.Option(
               "--export", help="A ledger export (`reserve ledger export`) holding the "
                                "report's checkpoint.")],
           auditor_keys: AuditorKeys = [],  # noqa: B006 (typer reads the default)
           ledger_key: Annotated[str | None, typer.Option("--ledger-key")] = None,
           as_json: AsJson = False) -> None:
    """Re-derive REPORT from a ledger export and the statement it names: exit 1 if it does
    not hold, 2 if it cannot be checked here."""
    from reserve.cli.statement import _export_entries
    from reserve.errors import ReportRejected

    if not auditor_keys:
        fail("give the auditor's public key with --auditor-key")
    document = _read_document(report_file, "energy report")
    statement_document = _read_document(statement, "public-sector statement")
    def check() -> Any:
        from reserve.mining.publish import verify as verify_report

        entries = _export_entries(ledger_export, ledger_key, document)
        return verify_report(document, _keys(auditor_keys), statement_document, entries)
    body = verdict(check, as_json, (ReportRejected,))
    sha = document["signature"]["report_sha256"]
    emit({"holds": True, "report_sha256": sha, "statement_sha256": body["statement_sha256"]},
         as_json, f"HOLDS: energy report {sha} re-derived from the ledger at entry "
                  f"{body['ledger']['tree_size']} and statement {body['statement_sha256']}")
