"""Where a config's relative paths point, and the one clock a regtest config may move.

`root` (relative to the config file's folder) decides where relative paths resolve; without
it the folder above the config file's, the project's own `config/reserve.toml` layout. A
demo's working folder writes `root = "."`. `[clock] offset_seconds` moves the service's
clock ahead, on regtest only: the ledger (entries given no time), the CLI's workflow clock
and the served app all take it, so entries made after a demo stay in time order.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reserve import config
from reserve.cli.workflow import _clock
from reserve.errors import ConfigError
from reserve.ledger.configured import open_ledger

LEDGER = '[ledger]\ndatabase_url = "sqlite:///ledger.sqlite"\norigin = "test/ledger"\n' \
         'key_path = "keys/ledger.json"\n'


def write(folder: Path, head: str, tail: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "reserve.toml"
    path.write_text(f'network = "regtest"\n{head}\n{LEDGER}{tail}')
    return path


def test_without_root_paths_resolve_against_the_folder_above_the_config(tmp_path: Path) -> None:
    settings = config.load(write(tmp_path / "project" / "config", ""))
    assert settings.root == (tmp_path / "project").resolve()
    assert settings.ledger.database_url == f"sqlite:///{settings.root / 'ledger.sqlite'}"
    assert settings.resolve("config/evm/vaults.toml") == settings.root / "config/evm/vaults.toml"


def test_the_projects_own_config_keeps_its_root() -> None:
    assert config.load(config.DEFAULT_CONFIG).root == config.PROJECT_ROOT


def test_root_dot_is_the_config_files_own_folder(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    settings = config.load(write(folder, 'root = "."'))
    assert settings.root == folder.resolve()
    assert settings.ledger.database_url == f"sqlite:///{folder.resolve() / 'ledger.sqlite'}"
    assert settings.resolve(settings.ledger.key_path) == folder.resolve() / "keys/ledger.json"
    assert settings.resolve("/abs/file") == Path("/abs/file")


def test_root_is_relative_to_the_config_files_folder(tmp_path: Path) -> None:
    settings = config.load(write(tmp_path / "a" / "etc", 'root = "../data"'))
    assert settings.root == (tmp_path / "a" / "data").resolve()


@pytest.mark.parametrize("value", ['""', "1", "[]"])
def test_a_root_that_is_not_a_folder_path_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match=r"config\.root"):
        config.load(write(tmp_path, f"root = {value}"))


def test_no_clock_table_is_the_wall_clock(tmp_path: Path) -> None:
    settings = config.load(write(tmp_path, ""))
    assert settings.clock_offset_seconds == 0
    assert abs(settings.clock()() - datetime.now(UTC)) < timedelta(seconds=5)


def test_a_regtest_offset_moves_the_clock_ahead(tmp_path: Path) -> None:
    settings = config.load(write(tmp_path, "", "[clock]\noffset_seconds = 86460\n"))
    assert settings.clock_offset_seconds == 86460
    ahead = settings.clock()() - datetime.now(UTC)
    assert timedelta(seconds=86455) < ahead < timedelta(seconds=86465)


def test_an_offset_off_regtest_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "", "[clock]\noffset_seconds = 60\n")
    path.write_text(path.read_text().replace('"regtest"', '"signet"'))
    with pytest.raises(ConfigError, match="regtest only"):
        config.load(path)


@pytest.mark.parametrize("tail", ["[clock]\noffset_seconds = -1\n",
                                  "[clock]\noffset_seconds = 99999999999\n",
                                  '[clock]\noffset_seconds = "1d"\n',
                                  "[clock]\noffset_seconds = true\n",
                                  "[clock]\noffset = 5\n", "clock = 5\n"])
def test_a_bad_clock_table_is_refused(tmp_path: Path, tail: str) -> None:
    with pytest.raises(ConfigError, match="clock"):
        config.load(write(tmp_path, tail if tail.startswith("clock =") else "",
                          "" if tail.startswith("clock =") else tail))


def test_the_configured_ledger_dates_entries_on_the_configured_clock(tmp_path: Path) -> None:
    settings = config.load(write(tmp_path, 'root = "."', "[clock]\noffset_seconds = 90000\n"))
    with open_ledger(settings) as ledger:
        entry = ledger.append("ledger.note", "test", {"text": "after the story"})
        stated = ledger.append("ledger.note", "test", {"text": "given"},
                               now=datetime(2026, 1, 5, tzinfo=UTC))
    moment = datetime.strptime(entry.time, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert timedelta(seconds=89990) < moment - datetime.now(UTC) <= timedelta(seconds=90000)
    assert stated.time == "2026-01-05T00:00:00.000000Z"  # an explicit time still wins


def test_the_cli_workflow_clock_takes_the_offset_and_reserve_now_still_wins(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = config.load(write(tmp_path, "", "[clock]\noffset_seconds = 3600\n"))
    monkeypatch.delenv("RESERVE_NOW", raising=False)
    assert _clock(settings)() - datetime.now(UTC) > timedelta(seconds=3590)
    assert abs(_clock("regtest")() - datetime.now(UTC)) < timedelta(seconds=5)
    monkeypatch.setenv("RESERVE_NOW", "2026-01-05T09:00:00Z")
    assert _clock(settings)() == datetime(2026, 1, 5, 9, tzinfo=UTC)
    with pytest.raises(ConfigError, match="only honoured on regtest"):
        _clock("signet")


def test_the_served_app_takes_the_configured_clock(tmp_path: Path) -> None:
    from reserve.api.app import create_app

    settings = config.load(write(tmp_path, 'root = "."', "[clock]\noffset_seconds = 7200\n"))
    app = create_app(settings)
    service = app.state.service
    try:
        assert service.clock() - datetime.now(UTC) > timedelta(seconds=7190)
        assert service.ledger.clock() - datetime.now(UTC) > timedelta(seconds=7190)
    finally:
        service.accounts.close()
        service.ledger.close()


def test_reconcile_takes_its_key_and_folder_from_the_config_unless_given(tmp_path: Path) -> None:
    import typer

    from reserve.cli.reconcile import DEFAULT_KEY, DEFAULT_OUTPUT, _configured

    folder = tmp_path / "demo"
    plain = config.load(write(folder, 'root = "."'))
    assert _configured(plain, "auditor_key_file", None, DEFAULT_KEY) == folder.resolve() / DEFAULT_KEY
    named = config.load(write(folder, 'root = "."', '[reconcile]\nauditor_key_file = "keys/a.json"'
                                                      '\noutput_dir = "reports"\n'))
    assert _configured(named, "auditor_key_file", None, DEFAULT_KEY) == folder.resolve() / "keys/a.json"
    assert _configured(named, "output_dir", None, DEFAULT_OUTPUT) == folder.resolve() / "reports"
    assert _configured(named, "output_dir", Path("/elsewhere"), DEFAULT_OUTPUT) == Path("/elsewhere")
    broken = config.load(write(folder, 'root = "."', "[reconcile]\noutput_dir = 5\n"))
    with pytest.raises(typer.Exit):
        _configured(broken, "output_dir", None, DEFAULT_OUTPUT)
