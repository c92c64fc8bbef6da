"""The `[transparency]` table of the configuration: where the tile log is written and
what of it is published.

    [transparency]
    directory = "var/public-log"   # what `reserve publish` writes, `reserve serve` serves
    publish_entries = true         # false: hash tiles and checkpoint only, no entry bundles
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reserve.errors import ConfigError

DIRECTORY_DEFAULT = "var/public-log"


@dataclass(frozen=True)
class TransparencySettings:
    directory: Path
    publish_entries: bool = True


def from_config(raw: dict[str, Any], root: Path) -> TransparencySettings:
    """The table checked: known keys only, each of its type."""
    table = raw.get("transparency", {})
    if not isinstance(table, dict):
        raise ConfigError("config.transparency must be a table")
    unknown = sorted(set(table) - {"directory", "publish_entries"})
    if unknown:
        raise ConfigError(f"config.transparency: unknown keys {unknown}")
    directory = table.get("directory", DIRECTORY_DEFAULT)
    if not isinstance(directory, str) or not directory:
        raise ConfigError(f"transparency.directory: expected a folder path, got {directory!r}")
    publish_entries = table.get("publish_entries", True)
    if not isinstance(publish_entries, bool):
        raise ConfigError(f"transparency.publish_entries: expected true or false, got "
                          f"{publish_entries!r}")
    chosen = Path(directory)
    return TransparencySettings(directory=chosen if chosen.is_absolute() else root / chosen,
                                publish_entries=publish_entries)
