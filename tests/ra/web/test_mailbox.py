"""The demo mailbox (/console/mailbox): only with ``[ra.web] demo_mailbox``, admins only."""

from __future__ import annotations

import dataclasses
import datetime as dt
from email.message import EmailMessage
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ra.settings import RASettings
from ra.store.models import AccountKind
from ra.store.vault import Vault
from ra.web import create_app
from tests.ra.conftest import Database
from tests.ra.web.helpers import Clock, add_staff, assert_no_mojibake, sign_in

NAME = "20261202T010203000000Z-0a1b2c3d.eml"


def _mail(folder: Path, name: str, subject: str, body: str) -> None:
    message = EmailMessage()
    message["From"] = "shomei@federation.example"
    message["To"] = "office1@office.example"
    message["Subject"] = subject
    message.set_content(body)
    folder.mkdir(exist_ok=True)
    (folder / name).write_bytes(message.as_bytes())


@pytest.fixture
def mailbox(tmp_path: Path) -> Path:
    folder = tmp_path / "mailbox"
    _mail(folder, NAME, "証明書を発行しました", "中央事業所 様\n\n証明書を発行しました。")
    _mail(folder, "20261202T020000000000Z-ffffffff.eml", "申請を受け付けました", "受付")
    (folder / "notes.txt").write_text("not a mail of the sink")
    return folder


@pytest.fixture
def demo_app(web_settings: RASettings, database: Database, clock: Clock, mailbox: Path) -> Flask:
    web = dataclasses.replace(web_settings.web, demo_mailbox=mailbox)
    return create_app(
        dataclasses.replace(web_settings, web=web), session_factory=database.factory, now=clock
    )


def _signed_in(app: Flask, database: Database, now: dt.datetime, kind: AccountKind) -> FlaskClient:
    vault: Vault = app.extensions["shomei"].vault
    client = app.test_client()
    sign_in(client, add_staff(database, vault, now, kind=kind), now)
    return client


def test_admin_reads_the_mails_newest_first(
    demo_app: Flask, database: Database, now: dt.datetime
) -> None:
    client = _signed_in(demo_app, database, now, AccountKind.ADMIN)
    page = client.get("/console/mailbox/").get_data(as_text=True)
    assert_no_mojibake(page)
    assert 'href="/console/mailbox/"' in client.get("/console/").get_data(as_text=True)  # menu
    assert page.index("申請を受け付けました") < page.index("証明書を発行しました")
    assert "notes.txt" not in page
    mail = client.get(f"/console/mailbox/{NAME}")
    text = mail.get_data(as_text=True)
    assert mail.status_code == 200
    assert "中央事業所 様" in text and "office1@office.example" in text and "宛先" in text
    assert client.get("/console/mailbox/notes.txt").status_code == 404
    assert client.get("/console/mailbox/20261202T010203000000Z-00000000.eml").status_code == 404


def test_staff_may_not(demo_app: Flask, database: Database, now: dt.datetime) -> None:
    client = _signed_in(demo_app, database, now, AccountKind.STAFF)
    assert client.get("/console/mailbox/").status_code == 403
    assert 'href="/console/mailbox/"' not in client.get("/console/").get_data(as_text=True)


def test_absent_without_the_setting(app: Flask, database: Database, now: dt.datetime) -> None:
    client = _signed_in(app, database, now, AccountKind.ADMIN)
    assert client.get("/console/mailbox/").status_code == 404
    assert client.get(f"/console/mailbox/{NAME}").status_code == 404
    assert 'href="/console/mailbox/"' not in client.get("/console/").get_data(as_text=True)
