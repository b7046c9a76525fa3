"""A live server: ``shomei ra serve`` (gunicorn) in its own process, on a free port.

On SQLite (a file beside its settings) or on PostgreSQL (``SHOMEI_TEST_DATABASE_URL``; a
schema of its own, dropped afterwards, as :func:`tests.ra.conftest.database` makes one).  A
browser test module parametrises its server fixture with :data:`BACKENDS` and passes
``request.param`` on, so it runs on both databases like the ``database`` fixture.  Browser
contexts are made with :data:`LOCALE` ``ja-JP`` and :data:`TIMEZONE` ``Asia/Tokyo``.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine

from ra.settings import RASettings, load_ra_settings
from ra.store.db import make_engine, session_factory
from ra.store.initdb import init_database
from ra.store.models import AccountKind
from ra.store.vault import load_vault
from tests.ra.conftest import Database, _pg_base
from tests.ra.web.helpers import Staff, add_staff
from tests.ra_profile import FEES_LINE, PROFILE_FILES

BACKENDS = ("sqlite", "postgresql")
# Every browser context of the tests: a Japanese browser in Japan, as the federation's staff
# and the offices use it (dates, times and the Accept-Language the pages answer).
LOCALE = "ja-JP"
TIMEZONE = "Asia/Tokyo"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    settings: RASettings
    database: Database
    log: Path
    settings_file: Path

    def staff(
        self,
        *,
        enrolled: bool = True,
        user_id: str | None = None,
        kind: AccountKind = AccountKind.STAFF,
    ) -> Staff:
        now = dt.datetime.now(dt.UTC)
        return add_staff(
            self.database,
            load_vault(self.settings.secrets_key_file),
            now,
            kind=kind,
            enrolled=enrolled,
            user_id=user_id,
        )


def _wait(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server stopped: {log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(url + "/auth/sign-in", timeout=2) as answer:  # noqa: S310
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise AssertionError(f"the server did not answer: {log.read_text(errors='replace')}")


@contextmanager
def _database_url(backend: str) -> Iterator[str]:
    """The server's database URL: a SQLite file, or a fresh PostgreSQL schema of its own."""
    if backend == "sqlite":
        yield "sqlite:///ra.sqlite"
        return
    base = _pg_base()  # skips the test when PostgreSQL is not configured or not reachable
    schema = f"live_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@contextmanager
def live_server(
    folder: Path,
    backend: str = "sqlite",
    *,
    extra: str = "",
    port: int | None = None,
    profile_files: str = PROFILE_FILES,
) -> Iterator[LiveServer]:
    """``shomei ra serve`` on ``port`` (a free one by default), on ``backend`` ("sqlite" or
    "postgresql"); ``extra`` is appended to its settings file (TOML), ``profile_files`` is its
    ``profile_files = [...]`` line."""
    with _database_url(backend) as url:
        with _serve(folder, url, extra, port or free_port(), profile_files) as live:
            yield live


@contextmanager
def _serve(
    folder: Path, database_url: str, extra: str, port: int, profile_files: str
) -> Iterator[LiveServer]:
    settings_file = folder / "ra.toml"
    settings_file.write_text(
        f'[ra]\ndatabase_url = "{database_url}"\ndata_dir = "data"\n{profile_files}\n{FEES_LINE}\n'
        'federation_name = "証明連合会"\n'
        '[ra.web]\nsecret_key_file = "ra-web.key"\n' + extra,
        encoding="utf-8",
    )
    settings = load_ra_settings(settings_file)
    init_database(settings)
    engine = make_engine(settings.database_url)
    database = Database(settings.database_url, engine, session_factory(engine))
    log = folder / "server.log"
    shomei = Path(sys.executable).with_name("shomei")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(shomei),
                "ra",
                "serve",
                "--settings",
                str(settings_file),
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "LANG": "C.UTF-8"},
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url, process, log)
        yield LiveServer(url, settings, database, log, settings_file)
    finally:
        process.send_signal(signal.SIGTERM)  # gunicorn stops its workers gracefully
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        engine.dispose()
