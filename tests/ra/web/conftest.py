"""Fixtures of the web tests: the app and a test client on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ra.settings import RASettings, WebSettings
from ra.store.vault import Vault, create_key_file
from ra.web import create_app
from tests.ra.conftest import Database
from tests.ra.web.helpers import Clock
from tests.ra_profile import FEES


@pytest.fixture
def clock(now: dt.datetime) -> Clock:
    return Clock(now)


@pytest.fixture
def web_settings(tmp_path: Path, database: Database) -> RASettings:
    create_key_file(tmp_path / "ra-secrets.key")
    return RASettings(
        fees=FEES,
        database_url=database.url,
        data_dir=tmp_path / "data",
        secrets_key_file=tmp_path / "ra-secrets.key",
        web=WebSettings(secret_key_file=tmp_path / "ra-web.key"),
    )


@pytest.fixture
def app(web_settings: RASettings, database: Database, clock: Clock) -> Flask:
    return create_app(web_settings, session_factory=database.factory, now=clock)


@pytest.fixture
def vault(app: Flask) -> Vault:
    found: Vault = app.extensions["shomei"].vault
    return found


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
