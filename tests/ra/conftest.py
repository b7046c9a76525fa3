"""Database fixtures for the RA: every test runs on SQLite and, when configured, PostgreSQL.

PostgreSQL is chosen with one environment variable, ``SHOMEI_TEST_DATABASE_URL`` (for example
``postgresql+psycopg://postgres@127.0.0.1:5432/test``; ``.ci/run`` sets it when a server
answers).  Without it, or when the server does not answer, the PostgreSQL runs are skipped
with that reason.  Each test gets an empty database of its own, built by the Alembic
migrations: a fresh SQLite file, or a fresh schema on PostgreSQL (so parallel runs do not
meet), dropped afterwards.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from ra.store.db import make_engine, session_factory, upgrade
from ra.store.vault import Vault

PG_ENV = "SHOMEI_TEST_DATABASE_URL"
# The secrets key of the tests' databases (ra.store.vault); a fixed value, like the clock.
VAULT = Vault(bytes(range(32)), source="the tests' secrets key")


@dataclass
class Database:
    url: str
    engine: Engine
    factory: sessionmaker[Session]

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith("postgresql")


def _pg_base() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(
            f"PostgreSQL not configured: set {PG_ENV} "
            "(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)"
        )
    try:
        probe = create_engine(url)
        with probe.connect():
            pass
        probe.dispose()
    except Exception as exc:
        pytest.skip(f"PostgreSQL at {PG_ENV} is not reachable: {exc.__class__.__name__}")
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty, migrated RA database (SQLite file or a PostgreSQL schema of its own)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ra.sqlite'}"
        upgrade(url)
        engine = make_engine(url)
        yield Database(url, engine, session_factory(engine))
        engine.dispose()
        return
    base = _pg_base()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base else "?"
    url = f"{base}{sep}options=-csearch_path%3D{schema}"
    try:
        upgrade(url)
        engine = make_engine(url, pool_size=10, max_overflow=10)
        yield Database(url, engine, session_factory(engine))
        engine.dispose()
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture
def now() -> dt.datetime:
    return dt.datetime(2026, 11, 2, 1, 2, 3, tzinfo=dt.UTC)
