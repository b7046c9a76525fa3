"""Opening the RA database: a missing, older or unreachable database is a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main
from ra.store.db import head_revision, open_database, upgrade
from shomei.errors import ConfigError, DatabaseFailure
from tests.ra_profile import RA_REQUIRED


def _settings(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "ra.toml"
    path.write_text(
        f'[ra]\ndatabase_url = "{url}"\ndata_dir = "data"\n{RA_REQUIRED}\n', encoding="utf-8"
    )
    return path


def test_current_schema_opens(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ra.sqlite'}"
    upgrade(url)
    engine = open_database(url)
    engine.dispose()


def test_missing_database_says_init_db_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "missing.sqlite"
    with pytest.raises(ConfigError, match=r"no RA database at .*missing.sqlite.*init-db"):
        open_database(f"sqlite:///{path}")
    assert not path.exists()


def test_empty_database_says_init_db(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite"
    path.touch()
    with pytest.raises(ConfigError, match=r"no RA schema.*init-db"):
        open_database(f"sqlite:///{path}")


def test_older_schema_says_init_db_and_upgrading_fixes_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    upgrade(url, "0004")
    settings = _settings(tmp_path, url)
    result = CliRunner().invoke(main, ["ra", "show", "1", "--settings", str(settings)])
    assert result.exit_code == 2
    assert "0004" in result.output and head_revision() in result.output
    assert "init-db" in result.output and "Traceback" not in result.output
    assert CliRunner().invoke(main, ["ra", "init-db", "--settings", str(settings)]).exit_code == 0
    open_database(url).dispose()


def test_unreachable_server_is_a_clear_message() -> None:
    url = "postgresql+psycopg://nobody:secret@127.0.0.1:1/none?connect_timeout=2"
    with pytest.raises(DatabaseFailure, match="cannot connect to the RA database") as info:
        open_database(url)
    assert "secret" not in info.value.message  # the password is never shown
    assert "host and port" in info.value.message
