"""``shomei ra serve``: the settings are checked before gunicorn starts (the server itself is
driven by the live-server browser tests in ``tests/ra/web``)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main
from ra.settings import load_ra_settings
from ra.store.initdb import init_database
from tests.ra_profile import PROFILE_FILES, RA_REQUIRED


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    path = tmp_path / "ra.toml"
    path.write_text(
        f'[ra]\ndatabase_url = "sqlite:///ra.sqlite"\ndata_dir = "data"\n{RA_REQUIRED}\n', "utf-8"
    )
    return path


def _serve(*args: str | Path) -> object:
    return CliRunner().invoke(main, ["ra", "serve", *map(str, args)], catch_exceptions=False)


def test_init_db_makes_the_web_session_key_private(settings_file: Path) -> None:
    init_database(load_ra_settings(settings_file))
    key = settings_file.parent / "ra-web.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().startswith("# Shomei RA web session key")


def test_bad_bind_is_one_line_and_exit_2(settings_file: Path) -> None:
    init_database(load_ra_settings(settings_file))
    result = _serve("--settings", settings_file, "--bind", "8000")
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert "--bind must be HOST:PORT" in result.output  # type: ignore[attr-defined]


def test_missing_secrets_key_stops_the_start(settings_file: Path) -> None:
    result = _serve("--settings", settings_file)  # no init-db: no secrets key
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert "ra-secrets.key" in result.output  # type: ignore[attr-defined]


def test_bad_settings_stop_the_start(tmp_path: Path) -> None:
    path = tmp_path / "ra.toml"
    path.write_text(
        f'[ra]\ndatabase_url = "sqlite:///ra.sqlite"\ndata_dir = "d"\n{RA_REQUIRED}\n'
        "[ra.web]\nbehind_tsl = true\n",
        "utf-8",
    )
    result = _serve("--settings", path)
    assert result.exit_code == 2 and "behind_tsl" in result.output  # type: ignore[attr-defined]


def test_an_ra_without_its_bank_account_does_not_start(tmp_path: Path) -> None:
    path = tmp_path / "ra.toml"
    path.write_text(
        f'[ra]\ndatabase_url = "sqlite:///ra.sqlite"\ndata_dir = "data"\n{PROFILE_FILES}\n'
        '[ra.fees]\noffice_fee_yen = 5000\nagent_fee_yen = 5000\ntax = "exempt"\n',
        "utf-8",
    )
    result = _serve("--settings", path)
    assert result.exit_code == 2  # type: ignore[attr-defined]
    lines = result.output.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1 and "ra.fees.bank_account is required" in lines[0], lines
