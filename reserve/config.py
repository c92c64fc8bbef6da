"""Service configuration: `config/reserve.toml`, with environment overrides.

The default file works with no edits (SQLite under `var/`, regtest). Environment variables
override what a deployment must not keep in a file: `RESERVE_DATABASE_URL` (the service's
database URL), `RESERVE_MIGRATION_DATABASE_URL` (the table owner's, for `reserve db init`),
`RESERVE_LEDGER_PASSPHRASE`, and `RESERVE_CONFIG` (another config file).

Relative paths in the file (the SQLite database, keys, `config/vaults`, `config/evm/...`)
are resolved against the config's root: the optional top-level key `root`, itself relative
to the folder holding the config file (`root = "."`: that folder, as the demo's working
folder writes it). Without `root` it is the folder above the config file's, the project's
own layout (`config/reserve.toml` under the project root).

`[clock] offset_seconds` moves the service's clock that far ahead of the wall clock, on
regtest only (a config for any other network is refused). The demo stores there how far
its story moved time ahead instead of waiting out delays, so the CLI and the served app
that run on its working folder afterwards keep its ledger in time order.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from reserve.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "reserve.toml"
# Labelled test secret: used only for regtest/demo data when no passphrase is set.
DEMO_PASSPHRASE = "demo-only-passphrase-not-secret"  # noqa: S105 - labelled demo secret
CLOCK_OFFSET_SECONDS_MAX = 366 * 86400  # a story moves days ahead, not years


@dataclass(frozen=True)
class LedgerSettings:
    database_url: str
    origin: str
    key_path: Path
    passphrase_env: str
    checkpoint_every: int
    payload_bytes_max: int
    # The owner's URL, for `reserve db init` (migrations and grants); None: the service URL.
    migration_database_url: str | None = None


@dataclass(frozen=True)
class PublicSettings:
    """The `[public]` table: what the anonymous portal at /public shows (off by default).

    Amounts and flow classes are public when `show_amounts`; the names of custodians (the
    people holding a vault's keys) only when `show_custodians`. Each client address may
    make `rate_per_minute` requests a minute on average, `burst` at once; answers may be
    cached for `max_age_seconds`. `statements_dir` is where `reserve statement build`
    exported the signed documents, `energy_reports_dir` where `reserve mining report` did
    (None: only the ledger's figures are shown).
    """

    enabled: bool = False
    show_amounts: bool = True
    show_custodians: bool = False
    rate_per_minute: int = 120
    burst: int = 60
    max_age_seconds: int = 60
    clients_max: int = 10_000
    statements_dir: Path | None = None
    energy_reports_dir: Path | None = None


PUBLIC_LIMITS = {"rate_per_minute": (1, 60_000), "burst": (1, 10_000),
                 "max_age_seconds": (0, 86_400), "clients_max": (1, 1_000_000)}


def public_settings(raw: dict[str, Any], root: Path) -> PublicSettings:
    """The `[public]` table checked: known keys, booleans, integers within bounds.

    Without `statements_dir` the documents are looked for where `reserve statement build`
    writes them: `[statement] output_dir`, else `var/statements`; without
    `energy_reports_dir`, where `reserve mining report` does: `[mining] output_dir`, else
    `var/mining`.
    """
    table = raw.get("public", {})
    if not isinstance(table, dict):
        raise ConfigError("config.public must be a table")
    defaults = PublicSettings()
    known = {"enabled", "show_amounts", "show_custodians", "statements_dir",
             "energy_reports_dir", *PUBLIC_LIMITS}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"config.public: unknown keys {unknown}")
    chosen: dict[str, Any] = {}
    for key in ("enabled", "show_amounts", "show_custodians"):
        if key in table:
            chosen[key] = _require(table, key, bool, "public")
    for key, (low, high) in PUBLIC_LIMITS.items():
        if key in table:
            value = _require(table, key, int, "public")
            if not low <= value <= high:
                raise ConfigError(f"public.{key}: expected {low}..{high}, got {value}")
            chosen[key] = value
    for key, writer, default in (("statements_dir", "statement", "var/statements"),
                                 ("energy_reports_dir", "mining", "var/mining")):
        written = raw.get(writer, {})
        folder = table.get(key) or (
            written.get("output_dir") if isinstance(written, dict) else None) or default
        if not isinstance(folder, str):
            raise ConfigError(f"public.{key}: expected a folder path, got {folder!r}")
        candidate = Path(folder)
        chosen[key] = candidate if candidate.is_absolute() else root / candidate
    return PublicSettings(**{**defaults.__dict__, **chosen})


@dataclass(frozen=True)
class Settings:
    path: Path
    root: Path
    network: str
    mainnet_enabled: bool
    ledger: LedgerSettings
    raw: dict[str, Any] = field(repr=False)
    # [clock] offset_seconds: how far ahead of the wall clock (regtest only; else 0)
    clock_offset_seconds: int = 0
    # [public]: what the anonymous portal at /public shows (docs/public-portal.md)
    public: PublicSettings = field(default_factory=lambda: PublicSettings())

    def resolve(self, value: str | Path) -> Path:
        candidate = Path(value)
        return candidate if candidate.is_absolute() else self.root / candidate

    def clock(self) -> Callable[[], datetime]:
        """The service's clock: UTC wall-clock time plus `[clock] offset_seconds`."""
        offset = timedelta(seconds=self.clock_offset_seconds)
        return lambda: datetime.now(UTC) + offset

    def ledger_passphrase(self) -> str:
        """The ledger key's passphrase from the environment; a labelled demo secret on regtest."""
        value = os.environ.get(self.ledger.passphrase_env)
        if value:
            return value
        if self.network == "regtest":
            return DEMO_PASSPHRASE
        raise ConfigError(f"set {self.ledger.passphrase_env}: the ledger key's passphrase "
                          f"is required on {self.network}")


def _require(table: dict[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in table:
        raise ConfigError(f"{where}: missing required key {key!r}")
    value = table[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where}.{key}: expected {kind.__name__}, got {value!r}")
    return value


def _absolute(database_url: str, base: Path) -> str:
    """A relative `sqlite:///` path resolved against the config's root."""
    if database_url.startswith("sqlite:///") and not database_url.startswith("sqlite:////"):
        relative = database_url[len("sqlite:///"):]
        if relative != ":memory:":
            return "sqlite:///" + str(base / relative)
    return database_url


def load(path: str | Path | None = None, *, root: Path | None = None) -> Settings:
    """Load settings from `path` (or $RESERVE_CONFIG, or the default file)."""
    chosen = Path(path or os.environ.get("RESERVE_CONFIG") or DEFAULT_CONFIG)
    try:
        raw = tomllib.loads(chosen.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {chosen}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{chosen}: invalid TOML: {error}") from None
    base = root or _root(raw, chosen)
    network = _require(raw, "network", str, "config")
    if network not in {"regtest", "signet", "testnet4", "testnet", "mainnet"}:
        raise ConfigError(f"config.network: unknown network {network!r}")
    offset = _clock_offset(raw, network)
    mainnet_enabled = bool(raw.get("mainnet_enabled", False))
    if network == "mainnet" and not mainnet_enabled:
        raise ConfigError("config.network is mainnet but mainnet_enabled is not true")
    table = raw.get("ledger", {})
    database_url = _absolute(os.environ.get("RESERVE_DATABASE_URL") or _require(
        table, "database_url", str, "ledger"), base)
    migration_url = os.environ.get("RESERVE_MIGRATION_DATABASE_URL") or table.get(
        "migration_database_url")
    if migration_url is not None and not isinstance(migration_url, str):
        raise ConfigError(f"ledger.migration_database_url: expected str, got {migration_url!r}")
    ledger = LedgerSettings(
        database_url=database_url,
        origin=_require(table, "origin", str, "ledger"),
        key_path=Path(_require(table, "key_path", str, "ledger")),
        passphrase_env=table.get("passphrase_env", "RESERVE_LEDGER_PASSPHRASE"),
        checkpoint_every=int(table.get("checkpoint_every", 1000)),
        payload_bytes_max=int(table.get("payload_bytes_max", 65536)),
        migration_database_url=_absolute(migration_url, base) if migration_url else None,
    )
    return Settings(path=chosen, root=base, network=network, mainnet_enabled=mainnet_enabled,
                    ledger=ledger, raw=raw, clock_offset_seconds=offset,
                    public=public_settings(raw, base))


def _root(raw: dict[str, Any], chosen: Path) -> Path:
    """`root` relative to the config file's folder; without it, the folder above that."""
    folder = chosen.resolve().parent
    if "root" not in raw:
        return folder.parent
    value = raw["root"]
    if not isinstance(value, str) or not value:
        raise ConfigError(f"config.root: expected a folder path, got {value!r}")
    return (folder / value).resolve()


def _clock_offset(raw: dict[str, Any], network: str) -> int:
    """`[clock] offset_seconds`, checked: 0 <= seconds <= a year, and only on regtest."""
    table = raw.get("clock", {})
    if not isinstance(table, dict):
        raise ConfigError("config.clock must be a table")
    unknown = sorted(set(table) - {"offset_seconds"})
    if unknown:
        raise ConfigError(f"config.clock: unknown keys {unknown}")
    if "offset_seconds" not in table:
        return 0
    seconds = _require(table, "offset_seconds", int, "clock")
    if not 0 <= seconds <= CLOCK_OFFSET_SECONDS_MAX:
        raise ConfigError(f"clock.offset_seconds: expected 0..{CLOCK_OFFSET_SECONDS_MAX}, "
                          f"got {seconds}")
    if seconds and network != "regtest":
        raise ConfigError(f"clock.offset_seconds is honoured on regtest only, not on "
                          f"{network}: a real service keeps real time")
    return int(seconds)
