"""The sign-in pages: password, TOTP, enrolment, lockout, sign-out, own password, toggles."""

from __future__ import annotations

import re

import pyotp
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from ra.store.models import Account, AuditRecord
from ra.store.vault import Vault
from tests.ra.conftest import Database
from tests.ra.web.helpers import (
    Clock,
    add_staff,
    assert_no_mojibake,
    post_code,
    post_password,
    sign_in,
    token,
)


def test_staff_sign_in_with_totp_reaches_the_dashboard(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    staff = add_staff(database, vault, clock.now)
    home = sign_in(client, staff, clock.now).get_data(as_text=True)
    assert_no_mojibake(home)
    assert "状況別の申請件数" in home and "1 発行依頼待ち" in home and "10 却下" in home
    assert "失効リストはまだ登録されていません" in home
    assert staff.user_id in home


def test_wrong_password_is_one_message_and_401(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    staff = add_staff(database, vault, clock.now)
    wrong = post_password(client, staff.user_id, "Not-it-123")
    unknown = post_password(client, "nobody", "Not-it-123")
    assert wrong.status_code == unknown.status_code == 401
    for page in (wrong, unknown):
        assert "ユーザーIDまたはパスワードが正しくありません" in page.get_data(as_text=True)
    assert client.get("/console/").status_code == 302  # not signed in


def test_lockout_after_five_failures_shows_until_when(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    staff = add_staff(database, vault, clock.now)
    for _ in range(5):
        assert post_password(client, staff.user_id, "Not-it-123").status_code == 401
    locked = post_password(client, staff.user_id, staff.password)
    assert locked.status_code == 423
    text = locked.get_data(as_text=True)
    assert "一時的にロックされています" in text
    assert "2026/11/02 10:32 以降に再度サインインできます" in text  # 01:02 UTC + 30 min, JST
    clock.advance(minutes=31)
    sign_in(client, staff, clock.now)


def test_first_sign_in_enrols_totp_with_a_local_qr_code(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    staff = add_staff(database, vault, clock.now, enrolled=False)
    first = post_password(client, staff.user_id, staff.password)
    assert first.headers["Location"].endswith("/auth/enrol")
    page = client.get("/auth/enrol").get_data(as_text=True)
    grouped = " ".join(staff.secret[i : i + 4] for i in range(0, 32, 4))
    assert grouped in page and 'src="/auth/enrol/qr.svg"' in page
    qr = client.get("/auth/enrol/qr.svg")
    assert qr.mimetype == "image/svg+xml" and qr.headers["Cache-Control"] == "no-store"
    assert qr.get_data(as_text=True).lstrip().startswith("<svg")
    assert client.get("/auth/totp").status_code == 200  # but a code there does not count:
    refused = post_code(client, "/auth/totp", pyotp.TOTP(staff.secret).at(clock.now))
    assert refused.status_code == 401
    done = post_code(client, "/auth/enrol", pyotp.TOTP(staff.secret).at(clock.now))
    assert done.status_code == 302 and done.headers["Location"].endswith("/console/")
    assert "認証アプリの設定が完了しました" in client.get("/console/").get_data(as_text=True)
    with database.factory() as s:
        assert s.get(Account, staff.id).totp_enrolled_at == clock.now  # type: ignore[union-attr]


def test_a_replayed_totp_code_is_refused(
    app: Flask, database: Database, vault: Vault, clock: Clock
) -> None:
    staff = add_staff(database, vault, clock.now)
    first, second = app.test_client(), app.test_client()
    sign_in(first, staff, clock.now)
    assert post_password(second, staff.user_id, staff.password).status_code == 302
    replay = post_code(second, "/auth/totp", pyotp.TOTP(staff.secret).at(clock.now))
    assert replay.status_code == 401
    assert "使用済みのコードは使えません" in replay.get_data(as_text=True)


def test_sign_out_is_a_post_and_ends_the_session(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    staff = add_staff(database, vault, clock.now)
    sign_in(client, staff, clock.now)
    assert client.get("/auth/sign-out").status_code == 405
    out = client.post("/auth/sign-out", data={"csrf_token": token(client, "/console/")})
    assert out.status_code == 302
    assert "サインアウトしました" in client.get("/auth/sign-in").get_data(as_text=True)
    assert client.get("/console/").status_code == 302


def test_change_password_ends_the_other_sessions(
    app: Flask, database: Database, vault: Vault, clock: Clock
) -> None:
    staff = add_staff(database, vault, clock.now)
    mine, other = app.test_client(), app.test_client()
    sign_in(mine, staff, clock.now)
    clock.advance(seconds=30)
    sign_in(other, staff, clock.now)
    form = {"current": staff.password, "csrf_token": token(mine, "/auth/password")}
    bad = mine.post("/auth/password", data={**form, "new": "abc", "confirm": "abc"})
    assert bad.status_code == 400
    text = bad.get_data(as_text=True)
    for rule in ("8文字以上20文字以内", "数字を1文字以上", "記号"):
        assert rule in text
    ok = mine.post("/auth/password", data={**form, "new": "Sakura-2027", "confirm": "Sakura-2027"})
    assert ok.status_code == 302
    assert mine.get("/console/").status_code == 200  # this session goes on
    assert other.get("/console/").status_code == 302  # the other one is over
    with database.factory() as s:
        acts = s.execute(select(AuditRecord.action).where(AuditRecord.object_id == staff.user_id))
        assert "password_changed" in acts.scalars().all()


def test_idle_timeout_signs_out(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    staff = add_staff(database, vault, clock.now)
    sign_in(client, staff, clock.now)
    clock.advance(minutes=29)
    assert client.get("/console/").status_code == 200
    clock.advance(minutes=31)
    gone = client.get("/console/")
    assert gone.status_code == 302 and "/auth/sign-in" in gone.headers["Location"]
    assert "一定時間操作がなかったため" in client.get("/auth/sign-in").get_data(as_text=True)


def test_sign_in_starts_a_new_session(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    staff = add_staff(database, vault, clock.now)
    with client.session_transaction() as sess:
        sess["planted"] = "by someone else"
    sign_in(client, staff, clock.now)
    with client.session_transaction() as sess:
        assert "planted" not in sess


def test_language_toggle_is_remembered(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    staff = add_staff(database, vault, clock.now)
    answer = client.post(
        "/auth/language",
        data={"value": "en", "next": "/auth/sign-in", "csrf_token": token(client)},
    )
    assert answer.status_code == 302 and answer.headers["Location"] == "/auth/sign-in"
    page = client.get("/auth/sign-in").get_data(as_text=True)
    assert '<html lang="en">' in page and "Sign in to the console" in page
    home = sign_in(client, staff, clock.now).get_data(as_text=True)
    assert "Applications by status" in home and "3 issue requested" in home
    # Nothing Japanese on an English page but names (the federation's, the staff member's) and
    # the switch back, which names its language in that language (marked lang="ja").
    rest = re.sub(r'<[^>]+lang="ja"[^>]*>[^<]*<', "<", home)
    rest = rest.replace("証明連合会", "").replace("連合 花子", "")
    assert not re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", rest), rest
    evil = client.post(
        "/auth/language",
        data={"value": "ja", "next": "//evil.example/", "csrf_token": token(client, "/console/")},
    )
    assert evil.headers["Location"] == "/auth/sign-in"  # never to another site


def test_date_style_toggle(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    staff = add_staff(database, vault, clock.now)
    sign_in(client, staff, clock.now)
    assert "2026/11/02 10:02" in client.get("/console/").get_data(as_text=True)
    client.post(
        "/auth/date-style",
        data={"value": "wareki", "next": "/console/", "csrf_token": token(client, "/console/")},
    )
    assert "令和8年11月2日 10:02" in client.get("/console/").get_data(as_text=True)


def test_a_password_reset_between_the_two_steps_voids_the_first(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    from ra.party import Party
    from ra.people import accounts

    staff = add_staff(database, vault, clock.now)
    assert post_password(client, staff.user_id, staff.password).status_code == 302
    csrf = token(client, "/auth/totp")
    with database.factory() as s, s.begin():
        accounts.reset_login_password(s, Party.operator(), staff.user_id, now=clock.now)
    code = pyotp.TOTP(staff.secret).at(clock.now)
    answer = client.post("/auth/totp", data={"code": code, "csrf_token": csrf})
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/auth/sign-in")
    assert client.get("/console/").status_code == 302
    with database.factory() as s:  # the code was not even looked at
        account = s.get(Account, staff.id)
        assert account is not None and account.failed_logins == 0
        assert account.totp_last_step is not None
        assert account.totp_last_step < int(clock.now.timestamp()) // 30 - 1  # enrolment's
        acts = s.execute(select(AuditRecord.action).where(AuditRecord.object_id == staff.user_id))
        assert acts.scalars().all()[-1] == "reset_login_password"


def test_the_pending_step_expires(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    staff = add_staff(database, vault, clock.now)
    assert post_password(client, staff.user_id, staff.password).status_code == 302
    clock.advance(minutes=6)
    answer = client.get("/auth/totp")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/auth/sign-in")
