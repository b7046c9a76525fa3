"""The RA's database settings and failures: relative paths follow the settings file, nothing is
created outside ``init-db``, and every failure is one line that says what to do (exit 2)."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import event, text

from cli.errors import exit_code_of
from cli.main import main
from ra.settings import load_ra_settings
from ra.store.db import make_engine, open_database
from shomei.errors import ConfigError, DatabaseFailure
from tests.ra.conftest import Database
from tests.ra_profile import RA_REQUIRED


def _settings(folder: Path, url: str, **extra: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f'database_url = "{url}"', 'data_dir = "data"', RA_REQUIRED]
    lines += [f'{k} = "{v}"' for k, v in extra.items()]
    path = folder / "ra.toml"
    path.write_text("[ra]\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def _ra(*args: str | Path, cwd: Path | None = None) -> Result:
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return CliRunner().invoke(main, ["ra", *map(str, args)])
    finally:
        os.chdir(old)


def _one_line(result: Result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.exception is not None
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


# -- relative paths follow the settings file --------------------------------------------------


def test_a_relative_sqlite_path_is_relative_to_the_settings_file(tmp_path: Path) -> None:
    conf = _settings(tmp_path / "conf", "sqlite:///ra.sqlite")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert _ra("init-db", "--settings", conf, cwd=elsewhere).exit_code == 0
    assert (tmp_path / "conf" / "ra.sqlite").is_file()
    assert (tmp_path / "conf" / "ra-secrets.key").is_file()
    assert list(elsewhere.iterdir()) == []
    # From a third folder, with a relative path to the settings: the same database.
    shown = _ra("show", "1", "--settings", "conf/ra.toml", cwd=tmp_path)
    assert "no application 1" in _one_line(shown)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conf", "elsewhere"]
    settings = load_ra_settings(conf)
    assert settings.database_url == f"sqlite:///{tmp_path / 'conf' / 'ra.sqlite'}"
    assert settings.data_dir == tmp_path / "conf" / "data"
    assert settings.secrets_key_file == tmp_path / "conf" / "ra-secrets.key"


def test_init_db_creates_the_database_readable_by_its_owner_only(tmp_path: Path) -> None:
    conf = _settings(tmp_path, "sqlite:///ra.sqlite")
    old = os.umask(0o022)  # the usual umask, which left it 0644
    try:
        assert _ra("init-db", "--settings", conf).exit_code == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "ra.sqlite").stat().st_mode) == 0o600


def test_no_command_but_init_db_creates_a_database(tmp_path: Path) -> None:
    conf = _settings(tmp_path / "conf", "sqlite:///ra.sqlite")
    for args in (
        ("show", "1"),
        ("verify-audit",),
        ("load-demo",),
        ("export-list", tmp_path / "list.csv"),
        ("run-job", "send-mail"),
        ("add-staff", "admin1", "--name", "管理者", "--email", "a@f.example", "--admin"),
    ):
        line = _one_line(_ra(*args, "--settings", conf, cwd=tmp_path))
        assert "no RA database at" in line and "init-db" in line, (args, line)
        assert not (tmp_path / "conf" / "ra.sqlite").exists(), args
        assert not (tmp_path / "ra.sqlite").exists(), args


def test_an_engine_never_creates_the_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "nothing.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    with pytest.raises(DatabaseFailure, match="no RA database at"), engine.connect():
        pass
    engine.dispose()
    assert not path.exists()


# -- bad database URLs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("mysql://root:hunter2@db.example/ra", "'mysql' is not supported"),
        ("postgresql+psycopg2://u:hunter2@h/ra", "'postgresql+psycopg2' is not supported"),
        ("garbage", "not a database URL"),
        ("://hunter2", "not a database URL"),
        ("sqlite://", "must name a file"),
        ("sqlite:///:memory:", "must name a file"),
        ("sqlite:///ra.sqlite?timeout=5", "only a file path"),
    ],
)
def test_a_bad_database_url_is_one_line(tmp_path: Path, url: str, fragment: str) -> None:
    conf = _settings(tmp_path, url)
    for command in ("init-db", "show 1", "verify-audit"):
        line = _one_line(_ra(*command.split(), "--settings", conf))
        assert fragment in line and "ra.database_url" in line
        assert "hunter2" not in line  # a password is never repeated
    with pytest.raises(ConfigError):
        load_ra_settings(conf)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ra.toml"]


def test_postgresql_without_a_driver_means_psycopg(tmp_path: Path) -> None:
    conf = _settings(tmp_path, "postgresql://ra:pw@db.example:5433/ra")
    assert load_ra_settings(conf).database_url == "postgresql+psycopg://ra:pw@db.example:5433/ra"


# -- SQLite failures --------------------------------------------------------------------------


def test_init_db_on_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    junk = tmp_path / "notes.sqlite"
    junk.write_text("meeting notes, not a database\n" * 100, encoding="utf-8")
    junk.chmod(0o644)
    before = junk.read_bytes()
    conf = _settings(tmp_path, "sqlite:///notes.sqlite")
    for command in ("init-db", "show 1"):
        line = _one_line(_ra(*command.split(), "--settings", conf))
        assert "is not an SQLite database" in line and "notes.sqlite" in line, line
    assert junk.read_bytes() == before and stat.S_IMODE(junk.stat().st_mode) == 0o644
    assert not (tmp_path / "ra-secrets.key").exists()  # nothing was created either


def test_a_full_sqlite_database_says_so(tmp_path: Path) -> None:
    conf = _settings(tmp_path, "sqlite:///ra.sqlite")
    assert _ra("init-db", "--settings", conf).exit_code == 0
    url = load_ra_settings(conf).database_url
    engine = make_engine(url)

    @event.listens_for(engine, "connect")
    def _small(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    with pytest.raises(DatabaseFailure) as info, engine.begin() as connection:
        connection.execute(text("CREATE TABLE filler (x BLOB)"))
        for _ in range(200):
            connection.execute(text("INSERT INTO filler VALUES (zeroblob(65536))"))
    engine.dispose()
    assert "disk holding the RA database" in info.value.message and "is full" in info.value.message
    assert "free space" in info.value.message and exit_code_of(info.value) == 2


def test_a_read_only_sqlite_database_says_so(tmp_path: Path) -> None:
    conf = _settings(tmp_path, "sqlite:///ra.sqlite")
    assert _ra("init-db", "--settings", conf).exit_code == 0
    engine = make_engine(load_ra_settings(conf).database_url)

    @event.listens_for(engine, "connect")
    def _read_only(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.execute("PRAGMA query_only = 1")

    with pytest.raises(DatabaseFailure, match="is read-only") as info, engine.begin() as c:
        c.execute(text("CREATE TABLE t (x INTEGER)"))
    engine.dispose()
    assert "write access" in info.value.message


# -- PostgreSQL failures ----------------------------------------------------------------------


def _pg(database: Database) -> None:
    if not database.is_postgres:
        pytest.skip("reports a PostgreSQL server failure: runs on the PostgreSQL database only")


def _with(url: str, **parts: object) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(**parts).render_as_string(hide_password=False)  # type: ignore[arg-type]


def test_postgresql_cannot_connect(database: Database, tmp_path: Path) -> None:
    _pg(database)
    url = _with(database.url, port=1, password="hunter2")
    line = _one_line(_ra("show", "1", "--settings", _settings(tmp_path, url)))
    assert line.startswith("shomei: cannot connect to the RA database")
    assert "Connection refused" in line and "host and port" in line and "hunter2" not in line


def test_postgresql_missing_database(database: Database, tmp_path: Path) -> None:
    _pg(database)
    url = _with(database.url, database="shomei_no_such_db")
    for command in ("show 1", "init-db"):
        line = _one_line(_ra(*command.split(), "--settings", _settings(tmp_path, url)))
        assert "does not exist" in line and "createdb" in line, line
    assert not (tmp_path / "ra-secrets.key").exists()


def test_postgresql_login_refused(database: Database, tmp_path: Path) -> None:
    _pg(database)
    url = _with(database.url, username="shomei_nobody", password="hunter2")
    line = _one_line(_ra("verify-audit", "--settings", _settings(tmp_path, url)))
    assert "refused the login" in line and "user and password" in line and "hunter2" not in line


def test_postgresql_read_only_transaction(database: Database) -> None:
    _pg(database)
    from sqlalchemy.engine import make_url

    url = make_url(database.url)
    options = url.query.get("options", "")
    read_only = url.update_query_dict(
        {"options": f"{options} -cdefault_transaction_read_only=on".strip()}
    )
    engine = make_engine(read_only.render_as_string(hide_password=False))
    try:
        with pytest.raises(DatabaseFailure, match="is read-only"), engine.begin() as c:
            c.execute(text("CREATE TABLE t (x INTEGER)"))
    finally:
        engine.dispose()


def test_open_database_reports_the_failure_not_the_class(database: Database) -> None:
    _pg(database)
    with pytest.raises(DatabaseFailure) as info:
        open_database(_with(database.url, port=1))
    assert "OperationalError" not in info.value.message
    assert "cannot connect" in info.value.message


def test_constraint_violations_are_left_to_the_services(database: Database) -> None:
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), database.engine.begin() as c:
        c.execute(text("INSERT INTO audit_head (id, seq, hash) VALUES (2, 0, 'x')"))


def test_a_table_dropped_by_hand_is_one_line(database: Database, tmp_path: Path) -> None:
    with database.engine.begin() as c:
        c.execute(text("DROP TABLE audit_anchors"))
    conf = _settings(tmp_path, database.url)
    line = _one_line(_ra("verify-audit", "--settings", conf))
    assert "lacks a table or column" in line and "restore it from a backup" in line, line
