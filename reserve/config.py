"""Service configuration: `config/reserve.toml`, with environment overrides.

The default file works with no edits (SQLite under `var/`, regtest). Environment variables
override what a deployment must not keep in a file: `RESERVE_DATABASE_URL` (the service's
database URL), `RESERVE_MIGRATION_DATABASE_URL` (the table owner's, for `reserve db init`),
`RESERVE_LEDGER_PASSPHRASE`, and `RESERVE_CONFIG` (another config file). Relative paths
in the file are resolved against the project root (the folder holding `config/`).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reserve.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "reserve.toml"
# Labelled test secret: used only for regtest/demo data when no passphrase is set.
DEMO_PASSPHRASE = "demo-only-passphrase-not-secret"  # noqa: S105 - labelled demo secret


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
class Settings:
    path: Path
    root: Path
    network: str
    mainnet_enabled: bool
    ledger: LedgerSettings
    raw: dict[str, Any] = field(repr=False)

    def resolve(self, value: str | Path) -> Path:
        candidate = Path(value)
        return candidate if candidate.is_absolute() else self.root / candidate

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
    """A relative `sqlite:///` path resolved against the project root."""
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
    base = root or (chosen.resolve().parent.parent)
    network = _require(raw, "network", str, "config")
    if network not in {"regtest", "signet", "testnet4", "testnet", "mainnet"}:
        raise ConfigError(f"config.network: unknown network {network!r}")
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
                    ledger=ledger, raw=raw)
