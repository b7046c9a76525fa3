"""監査 (/console/audit, admins): verifying the chain from the console and searching the log.

SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt

from flask.testing import FlaskClient
from sqlalchemy import update

from ra.store import audit
from ra.store.models import AccountKind, AuditRecord
from ra.store.vault import Vault
from tests.ra.conftest import Database
from tests.ra.web.helpers import Clock, add_staff, assert_no_mojibake, sign_in, token

AUDIT = "/console/audit/"


def _records(database: Database, now: dt.datetime) -> None:
    """60 records on application 7 by alice (one a day back), 3 on application 8 by bob."""
    with database.factory() as s, s.begin():
        for i in range(60):
            audit.record(
                s,
                actor="staff",
                actor_id="alice",
                action="edit_note",
                object_type="application",
                object_id="7",
                now=now - dt.timedelta(days=i),
            )
        for _ in range(3):
            audit.record(
                s,
                actor="staff",
                actor_id="bob",
                action="edit_note",
                object_type="application",
                object_id="8",
                now=now,
            )


def _admin(client: FlaskClient, database: Database, vault: Vault, clock: Clock) -> None:
    sign_in(client, add_staff(database, vault, clock.now, kind=AccountKind.ADMIN), clock.now)


def test_verify_from_the_console_finds_tampering(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    _records(database, clock.now)
    _admin(client, database, vault, clock)
    answer = client.post(AUDIT + "verify", data={"csrf_token": token(client, AUDIT)})
    assert answer.status_code == 302
    page = client.get(AUDIT).get_data(as_text=True)
    assert_no_mojibake(page)
    assert "監査ログは改ざんされていません" in page
    with database.factory() as s, s.begin():
        s.execute(update(AuditRecord).where(AuditRecord.seq == 5).values(action="forged"))
    broken = client.post(AUDIT + "verify", data={"csrf_token": token(client, AUDIT)})
    assert broken.status_code == 422
    assert "監査記録 5 が改変されています" in broken.get_data(as_text=True)


def test_search_by_account_application_and_dates_paged(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    _records(database, clock.now)
    _admin(client, database, vault, clock)
    page = client.get(AUDIT + "?account=alice").get_data(as_text=True)
    assert "60 件" in page and "1 / 2 ページ" in page and "bob" not in page
    second = client.get(AUDIT + "?account=alice&page=2").get_data(as_text=True)
    assert "2 / 2 ページ" in second and second.count("<code>edit_note</code></td>") == 10
    assert "3 件" in client.get(AUDIT + "?application=8").get_data(as_text=True)
    today = (clock.now + dt.timedelta(hours=9)).date()  # Japan time
    week = f"from={today - dt.timedelta(days=6)}&to={today}"
    found = client.get(f"{AUDIT}?account=alice&{week}").get_data(as_text=True)
    assert "7 件" in found
    assert "該当する記録はありません" in client.get(AUDIT + "?account=carol").get_data(as_text=True)
    backwards = f"?from={today}&to={today - dt.timedelta(days=1)}"
    for bad, said in (
        ("?from=2026-13-01", "日付 2026-13-01 が正しくありません"),
        ("?application=abc", "番号は半角数字で入力してください"),
        (backwards, "期間の終わりが始まりより前になっています"),
    ):
        answer = client.get(AUDIT + bad)
        assert answer.status_code == 400, bad
        assert said in answer.get_data(as_text=True)


def test_staff_may_not_audit(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    home = sign_in(client, add_staff(database, vault, clock.now), clock.now)
    assert 'href="/console/audit/"' not in home.get_data(as_text=True)
    assert client.get(AUDIT).status_code == 403
    answer = client.post(AUDIT + "verify", data={"csrf_token": token(client, "/console/")})
    assert answer.status_code == 403
