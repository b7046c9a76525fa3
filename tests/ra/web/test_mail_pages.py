"""メール (/console/mail, admins): the outbox by state, and resending a failed mail (audited).

Resends go to a real SMTP server on 127.0.0.1 (aiosmtpd, the recorder of
tests/ra/mailing/test_mail.py);
a server that does not answer leaves the mail failed with its error.  SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from ra.settings import MailSettings, RASettings
from ra.store.models import AccountKind, AuditRecord, OutboxMail
from ra.store.vault import Vault
from tests.ra.conftest import Database
from tests.ra.mailing.test_mail import Recorder, _free_port, smtp  # noqa: F401
from tests.ra.web.helpers import Clock, add_staff, assert_no_mojibake, sign_in, token

MAIL = "/console/mail/"


@pytest.fixture
def web_settings(
    web_settings: RASettings,
    smtp: tuple[Recorder, int],  # noqa: F811  (the fixture of test_mail)
) -> RASettings:
    return dataclasses.replace(web_settings, mail=MailSettings(smtp_port=smtp[1]))


def _outbox(database: Database, now: dt.datetime) -> dict[str, int]:
    """One queued, one sent and one failed mail; returns their ids by state."""
    ids = {}
    with database.factory() as s, s.begin():
        for state, sent, error in (
            ("queued", None, None),
            ("sent", now, None),
            ("failed", None, "550 no such user"),
        ):
            row = OutboxMail(
                message_id=f"<{state}@ra.test>",
                to_address=f"{state}@example.jp",
                subject=f"証明書のお知らせ({state})",
                body="本文",
                kind="test",
                created_at=now,
                sent_at=sent,
                attempts=1 if error else 0,
                last_error=error,
            )
            s.add(row)
            s.flush()
            ids[state] = row.id
    return ids


def _admin(client: FlaskClient, database: Database, vault: Vault, clock: Clock) -> None:
    sign_in(client, add_staff(database, vault, clock.now, kind=AccountKind.ADMIN), clock.now)


def _resend(client: FlaskClient, mail_id: int) -> TestResponse:
    return client.post(f"{MAIL}{mail_id}/resend", data={"csrf_token": token(client, MAIL)})


def _audits(database: Database) -> int:
    with database.factory() as s:
        found = s.scalar(
            select(func.count()).select_from(AuditRecord).where(AuditRecord.action == "resend_mail")
        )
        return int(found or 0)


def test_the_outbox_by_state(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    _outbox(database, clock.now)
    _admin(client, database, vault, clock)
    page = client.get(MAIL).get_data(as_text=True)
    assert_no_mojibake(page)
    assert "送信待ち (1)" in page and "送信済み (1)" in page and "送信失敗 (1)" in page
    assert "3 通" in page and "550 no such user" in page
    failed = client.get(MAIL + "?state=failed").get_data(as_text=True)
    assert "failed@example.jp" in failed and "queued@example.jp" not in failed
    assert failed.count(">再送</button>") == 1
    assert client.get(MAIL + "?state=nonsense").status_code == 400


def test_a_failed_mail_is_resent_and_audited(
    client: FlaskClient,
    database: Database,
    vault: Vault,
    clock: Clock,
    smtp: tuple[Recorder, int],  # noqa: F811  (the fixture of test_mail)
) -> None:
    recorder, _port = smtp
    ids = _outbox(database, clock.now)
    _admin(client, database, vault, clock)
    answer = _resend(client, ids["failed"])
    assert answer.status_code == 302
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert f"メール {ids['failed']} を failed@example.jp へ再送しました" in page
    assert recorder.ids() == ["<failed@ra.test>"]  # the same Message-ID
    with database.factory() as s:
        row = s.get(OutboxMail, ids["failed"])
        assert row is not None and row.sent_at is not None and row.last_error is None
        assert row.attempts == 2
    assert _audits(database) == 1
    # Sent now, and a queued mail is the job's: neither can be resent.
    for mail_id in (ids["failed"], ids["queued"], ids["sent"]):
        again = _resend(client, mail_id)
        assert again.status_code == 409
        assert "再送できません" in again.get_data(as_text=True)
    assert _resend(client, 999999).status_code == 404
    assert recorder.ids() == ["<failed@ra.test>"] and _audits(database) == 1


def test_a_resend_the_server_refuses_stays_failed(
    app_factory_settings: RASettings, database: Database, clock: Clock, tmp_path: Path
) -> None:
    from ra.web import create_app

    app = create_app(app_factory_settings, session_factory=database.factory, now=clock)
    client = app.test_client()
    ids = _outbox(database, clock.now)
    sign_in(
        client,
        add_staff(database, app.extensions["shomei"].vault, clock.now, kind=AccountKind.ADMIN),
        clock.now,
    )
    answer = _resend(client, ids["failed"])
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert f"メール {ids['failed']} を送信できませんでした" in page
    with database.factory() as s:
        row = s.get(OutboxMail, ids["failed"])
        assert row is not None and row.sent_at is None and row.attempts == 2
        assert row.last_error and row.last_error != "550 no such user"
    assert _audits(database) == 1


@pytest.fixture
def app_factory_settings(web_settings: RASettings) -> RASettings:
    # Nothing listens on this port: the resend cannot reach a server.
    return dataclasses.replace(web_settings, mail=MailSettings(smtp_port=_free_port()))


def test_staff_may_not_use_the_outbox(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    ids = _outbox(database, clock.now)
    home = sign_in(client, add_staff(database, vault, clock.now), clock.now)
    assert 'href="/console/mail/"' not in home.get_data(as_text=True)
    assert client.get(MAIL).status_code == 403
    tok = token(client, "/console/")
    answer = client.post(f"{MAIL}{ids['failed']}/resend", data={"csrf_token": tok})
    assert answer.status_code == 403 and "権限がありません" in answer.get_data(as_text=True)
    assert _audits(database) == 0
