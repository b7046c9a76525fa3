"""The console home: counts by status, the CRL and what waits for the CA, from the database."""

from __future__ import annotations

import datetime as dt
import hashlib

from flask.testing import FlaskClient

from ra.lifecycle import Applicant, Status
from ra.store.models import CaBatch, CrlRecord
from ra.store.vault import Vault
from tests.ra import factories
from tests.ra.conftest import Database
from tests.ra.web.helpers import Clock, add_staff, sign_in, token


def _row(text: str, label: str) -> str:
    start = text.index(label)
    return text[start : text.index("</tr>", start)]


def test_dashboard_shows_the_database(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    now = clock.now
    with database.factory() as s, s.begin():
        for status, n in ((Status.AWAITING_PAYMENT, 3), (Status.ISSUE_REQUESTED, 2)):
            for _ in range(n):
                factories.application(s, applicant=Applicant.OFFICE, status=status, now=now)
        factories.application(s, applicant=Applicant.AGENT, status=Status.REVOKED, now=now)
        s.add(
            CaBatch(
                batch_id="b-1",
                kind="issue",
                request_der=b"x",
                request_sha256=hashlib.sha256(b"x").hexdigest(),
                created_at=now,
            )
        )
        s.add(
            CrlRecord(
                issuer_sha256="0" * 64,
                number="1234",
                this_update=now - dt.timedelta(days=8),
                next_update=now - dt.timedelta(days=1),
                der=b"crl",
                sha256="1" * 64,
                entries=1,
                registered_at=now,
            )
        )
    staff = add_staff(database, vault, now)
    page = sign_in(client, staff, now).get_data(as_text=True)
    assert ">3<" in _row(page, "2 入金待ち")
    assert ">2<" in _row(page, "送信待ち: 3 発行依頼中")
    assert ">1<" in _row(page, "8 失効済み")
    assert ">6<" in _row(page, "合計")
    assert ">1<" in _row(page, "結果未受領の依頼バッチ")
    assert "1234" in page and "2026/11/01 10:02" in page  # nextUpdate, in Japan time
    assert "次回更新予定を過ぎています" in page
    client.post(
        "/auth/date-style",
        data={"value": "wareki", "next": "/console/", "csrf_token": token(client, "/console/")},
    )
    assert "令和8年11月1日 10:02" in client.get("/console/").get_data(as_text=True)


def test_a_current_crl_has_no_warning(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    with database.factory() as s, s.begin():
        s.add(
            CrlRecord(
                issuer_sha256="0" * 64,
                number="7",
                this_update=clock.now,
                next_update=clock.now + dt.timedelta(days=7),
                der=b"crl",
                sha256="2" * 64,
                entries=0,
                registered_at=clock.now,
            )
        )
    page = sign_in(client, add_staff(database, vault, clock.now), clock.now).get_data(as_text=True)
    assert "2026/11/09 10:02" in page and "次回更新予定を過ぎています" not in page
