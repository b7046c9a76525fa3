"""お知らせ (A7 list) and the A7 reissue in the portal, and the opened dates in the console.

Both databases.  The sealed reissue notice is downloaded from the portal and opened with the
real ``shomei notice open`` (a subprocess, the command exactly as the notice's page prints it,
the .p12 password typed at its prompt); the password it shows then works to apply.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from contract.profile import load_profiles
from ra.lifecycle import Applicant, Status
from ra.mailing.notify import notify
from ra.party import Party, PartyKind, party_of
from ra.people import accounts
from ra.people.accounts import AccountInput
from ra.people.passwords import WrongPassword, check_issuance_password
from ra.settings import DocumentSettings, RASettings
from ra.store.models import Account, AccountKind, Application, AuditRecord, Notice, OutboxMail
from ra.store.vault import Vault
from ra.workflow import applications, downloads
from tests.pki import Pki
from tests.ra import factories
from tests.ra.conftest import Database
from tests.ra.web.helpers import (
    Clock,
    add_staff,
    assert_no_mojibake,
    first_sign_in_finished,
    sign_in,
    token,
)
from tests.ra.workflow.test_services import REPO, issue

PHONE = "03-0000-0000"
# An issuance password as the RA makes them (docs/product.md §3): three groups of four.
PASSWORD_SHAPE = re.compile(r"\b[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}\b")
SHOMEI = Path(sys.executable).with_name("shomei")
STAFF = Party(PartyKind.STAFF, "staff-test")


@pytest.fixture
def web_settings(web_settings: RASettings) -> RASettings:
    """The federation's phone number, as the phone path of A7 names it."""
    return dataclasses.replace(web_settings, documents=DocumentSettings(issuer_phone=PHONE))


@dataclass
class Office:
    """An office account the tests sign in with, and its secrets."""

    id: int
    user_id: str
    login_password: str
    issuance_password: str


@dataclass
class Issued:
    office: Office
    application_id: int
    p12: bytes  # the PKCS#12 it downloaded, under its issuance password


def add_office(
    database: Database, now: dt.datetime, number: str, name: str = "中央ケア事業所"
) -> Office:
    with database.factory() as s, s.begin():
        made = accounts.add_portal_account(
            s,
            Party.operator("test"),
            AccountInput(
                kind=AccountKind.OFFICE,
                number=number,
                name=name,
                address="東京都新宿区西新宿2-8-1",
                phone="03-5321-1111",
                email=f"{number}@example.jp",
            ),
            now=now,
        )
        assert made.issuance_password is not None
        first_sign_in_finished(made.account, now)
        return Office(made.account.id, made.user_id, made.login_password, made.issuance_password)


def issued_office(
    database: Database, settings: RASettings, now: dt.datetime, pki: Pki, number: str
) -> Issued:
    """An office that applied (the RA made its RSA key), was issued a certificate by the test
    PKI and downloaded its PKCS#12, all through the services."""
    office = add_office(database, now, number)
    profile = load_profiles(REPO / "conf" / "profiles")["office"]
    with database.factory() as s, s.begin():
        account = s.get(Account, office.id)
        assert account is not None
        app_id = applications.apply(
            s,
            party_of(account),
            settings=settings,
            profile=profile,
            now=now,
            issuance_password=office.issuance_password,
            consent_fee_offset=True,
        ).id
    with database.factory() as s, s.begin():
        applications.register_issue_request(s, STAFF, app_id, now=now)
    with database.factory() as s, s.begin():
        app = s.get(Application, app_id)
        assert app is not None
        issue(s, app, pki, now)
    with database.factory() as s, s.begin():
        account = s.get(Account, office.id)
        assert account is not None
        p12 = downloads.download_pkcs12(
            s,
            party_of(account),
            app_id,
            issuance_password=office.issuance_password,
            chain=[pki.certs["issuing"], pki.certs["root"]],
            now=now,
        )
    return Issued(office, app_id, p12)


def portal_sign_in(client: FlaskClient, user_id: str, password: str) -> None:
    answer = client.post(
        "/portal/sign-in",
        data={
            "csrf_token": token(client, "/portal/sign-in"),
            "user_id": user_id,
            "password": password,
        },
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)


def add_notice(
    database: Database,
    account_id: int,
    now: dt.datetime,
    *,
    kind: str = "certificate_issued",
    title: str = "証明書が発行されました",
    body: str = "お申し込みの証明書が発行されました。",
    application_id: int | None = None,
    sealed: bytes | None = None,
) -> int:
    with database.factory() as s, s.begin():
        account = s.get(Account, account_id)
        assert account is not None
        return notify(
            s,
            account,
            kind=kind,
            title=title,
            body=body,
            now=now,
            message_id_domain="t.example",
            application_id=application_id,
            sealed=sealed,
        ).id


def read_at(database: Database, notice_id: int) -> dt.datetime | None:
    with database.factory() as s:
        notice = s.get(Notice, notice_id)
        assert notice is not None
        return notice.read_at


def openings(database: Database, notice_id: int) -> int:
    with database.factory() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(AuditRecord)
                .where(AuditRecord.action == "open_notice", AuditRecord.object_id == str(notice_id))
            )
            or 0
        )


def opened_on(page: str) -> str:
    """The 開封日 a notice's page shows."""
    found = re.search(r'<dd id="opened">(.*?)</dd>', page, re.S)
    assert found, "no opened date on the page"
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


def text_of(client: FlaskClient, path: str, status: int = 200) -> str:
    answer = client.get(path)
    assert answer.status_code == status, (path, answer.status_code)
    page = answer.get_data(as_text=True)
    assert_no_mojibake(page)
    return page


def test_the_list_marks_unopened_notices_and_opening_records_the_first_date_only(
    app: Flask, database: Database, vault: Vault, clock: Clock
) -> None:
    office = add_office(database, clock.now, "1310000001")
    with database.factory() as s, s.begin():
        account = s.get(Account, office.id)
        assert account is not None
        application = factories.application(
            s, applicant=Applicant.OFFICE, status=Status.ISSUED, now=clock.now, acct=account
        )
        app_id = application.id
    issued = add_notice(database, office.id, clock.now, application_id=app_id)
    clock.advance(days=1)
    rejected = add_notice(
        database,
        office.id,
        clock.now,
        kind="application_rejected",
        title="証明書のお申し込みが却下されました",
        body="理由: 事業所番号が確認できません",
    )
    client = app.test_client()
    portal_sign_in(client, office.user_id, office.login_password)

    page = text_of(client, "/portal/notices/")
    for heading in ("お知らせ", "通知種別", "情報年月日", "開封日", "証明書発行", "申込却下"):
        assert heading in page, heading
    assert page.count("未開封</span>") == 2 and "未開封のお知らせが 2 件あります" in page
    assert page.count('class="unread"') == 2
    assert '<span class="portal-unread">未開封 2 件</span>' in page  # the menu entry
    # Newest first.
    assert page.index("申込却下") < page.index("証明書発行")

    opened_at = clock.now
    shown = text_of(client, f"/portal/notices/{rejected}")
    assert "理由: 事業所番号が確認できません" in shown
    assert opened_on(shown) == "2026/11/03 10:02"  # Japan time
    assert read_at(database, rejected) == opened_at and openings(database, rejected) == 1
    clock.advance(minutes=20)  # within the idle timeout: still signed in
    again = text_of(client, f"/portal/notices/{rejected}")
    assert read_at(database, rejected) == opened_at and openings(database, rejected) == 1
    assert opened_on(again) == "2026/11/03 10:02"  # the first opening, not this one
    page = text_of(client, "/portal/notices/")
    assert page.count("未開封</span>") == 1 and "未開封 1 件" in page
    assert read_at(database, issued) is None

    # The console shows staff the opened date, on the application and on the account.
    staff_client = app.test_client()
    sign_in(staff_client, add_staff(database, vault, clock.now), clock.now)
    detail = text_of(staff_client, f"/console/applications/{app_id}")
    notices_card = detail[detail.index('id="notices"') :]
    assert "証明書発行" in notices_card and "未開封" in notices_card
    account_page = text_of(staff_client, f"/console/accounts/{office.user_id}")
    card = account_page[account_page.index('id="notices"') :]
    assert "申込却下" in card and "2026/11/03" in card  # opened on the day after the first
    assert card.count("未開封") == 1


def test_another_offices_notice_is_not_found_and_not_opened(
    app: Flask, database: Database, clock: Clock
) -> None:
    mine = add_office(database, clock.now, "1310000001")
    other = add_office(database, clock.now, "1310000002", name="西ケア事業所")
    plain = add_notice(database, other.id, clock.now)
    sealed = add_notice(
        database,
        other.id,
        clock.now,
        kind="password_reissue",
        title="証明書発行用パスワードを再発行しました(暗号化されたお知らせ)",
        sealed=b"0\x03\x02\x01\x00",
    )
    client = app.test_client()
    portal_sign_in(client, mine.user_id, mine.login_password)
    for path in (
        f"/portal/notices/{plain}",
        f"/portal/notices/{sealed}",
        f"/portal/notices/{sealed}/download",
        f"/portal/notices/{plain}/download",
        "/portal/notices/999999",
        "/portal/notices/999999/download",
    ):
        page = text_of(client, path, 404)
        assert "お知らせが見つかりません" in page, path
        assert "西ケア事業所" not in page
    assert read_at(database, plain) is None and read_at(database, sealed) is None
    assert openings(database, plain) == openings(database, sealed) == 0
    assert "お知らせはまだありません" in text_of(client, "/portal/notices/")


def test_a_sealed_notice_is_opened_by_downloading_its_file(
    app: Flask, database: Database, clock: Clock
) -> None:
    office = add_office(database, clock.now, "1310000001")
    data = b"0\x80sealed-notice-bytes"
    sealed = add_notice(
        database,
        office.id,
        clock.now,
        kind="password_reissue",
        title="証明書発行用パスワードを再発行しました(暗号化されたお知らせ)",
        sealed=data,
    )
    plain = add_notice(database, office.id, clock.now)
    client = app.test_client()
    portal_sign_in(client, office.user_id, office.login_password)
    page = text_of(client, f"/portal/notices/{sealed}")
    # Its page explains; only the file's download counts as opening it.
    shown = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert f"shomei notice open notice-{sealed}.p7m --p12 office.p12" in shown
    assert "コマンド プロンプト" in page and "ターミナル" in page
    assert read_at(database, sealed) is None
    clock.advance(minutes=10)
    answer = client.get(f"/portal/notices/{sealed}/download")
    assert answer.status_code == 200 and answer.data == data
    assert answer.headers["Content-Type"].startswith("application/pkcs7-mime")
    assert f'filename="notice-{sealed}.p7m"' in answer.headers["Content-Disposition"]
    assert read_at(database, sealed) == clock.now and openings(database, sealed) == 1
    first = clock.now
    clock.advance(minutes=10)
    assert client.get(f"/portal/notices/{sealed}/download").data == data
    assert read_at(database, sealed) == first and openings(database, sealed) == 1
    # A plain notice has no file.
    assert client.get(f"/portal/notices/{plain}/download").status_code == 404
    assert read_at(database, plain) is None


def test_without_a_certificate_the_page_explains_the_phone_path(
    app: Flask, database: Database, clock: Clock
) -> None:
    office = add_office(database, clock.now, "1310000001")
    with database.factory() as s:
        before = s.get(Account, office.id).issuance_password_hash  # type: ignore[union-attr]
    client = app.test_client()
    portal_sign_in(client, office.user_id, office.login_password)
    for path in ("/portal/password-reissue", "/portal/notices/"):
        page = text_of(client, path)
        assert f"連合会(電話 {PHONE})にお電話ください" in page, path
        assert office.user_id in page and "通知書を郵送します" in page
        assert 'id="reissue-submit"' not in page
    answer = client.post(
        "/portal/password-reissue",
        data={"csrf_token": token(client, "/portal/password-reissue")},
    )
    assert answer.status_code == 404
    page = answer.get_data(as_text=True)
    assert "有効な証明書がないため" in page and f"電話 {PHONE}" in page
    with database.factory() as s:
        assert s.get(Account, office.id).issuance_password_hash == before  # type: ignore[union-attr]
        assert s.scalar(select(func.count()).select_from(Notice)) == 0


def test_reissue_with_the_certificate_and_open_it_with_shomei_notice_open(
    app: Flask,
    database: Database,
    web_settings: RASettings,
    clock: Clock,
    pki: Pki,
    tmp_path: Path,
) -> None:
    issued = issued_office(database, web_settings, clock.now, pki, "1310000001")
    office = issued.office
    clock.advance(days=30)
    client = app.test_client()
    portal_sign_in(client, office.user_id, office.login_password)
    page = text_of(client, "/portal/password-reissue")
    assert "新しいパスワードを暗号化して受け取る" in page and "シリアル番号" in page
    answer = client.post(
        "/portal/password-reissue",
        data={"csrf_token": token(client, "/portal/password-reissue")},
    )
    assert answer.status_code == 303
    notice_id = int(answer.headers["Location"].rsplit("/", 1)[1])
    page = text_of(client, answer.headers["Location"])
    assert "暗号化してお届けしました" in page and opened_on(page) == "未開封"
    assert PASSWORD_SHAPE.search(page) is None  # the page never shows a password

    download = client.get(f"/portal/notices/{notice_id}/download")
    assert download.status_code == 200
    folder = tmp_path / "Downloads"
    folder.mkdir()
    filename = f"notice-{notice_id}.p7m"
    (folder / filename).write_bytes(download.data)
    (folder / "office.p12").write_bytes(issued.p12)
    # The macOS steps as the page prints them: cd into the folder, then the command.
    steps = re.findall(r'<div class="portal-command">(.*?)</div>', page, re.S)
    mac = [
        html.unescape(re.sub(r"<[^>]+>", "", line))
        for line in re.findall(r"<code>(.*?)</code>", steps[1])
    ]
    assert mac[0] == "cd ~/Downloads"
    command = mac[1].split()
    assert command[:3] == ["shomei", "notice", "open"] and filename in command
    opened = subprocess.run(
        [str(SHOMEI), *command[1:]],
        cwd=folder,
        input=office.issuance_password + "\n",  # typed at the PKCS#12 password prompt
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "LANG": "ja_JP.UTF-8", "SHOMEI_LANG": "ja"},
        start_new_session=True,  # no terminal: the prompt reads what is typed from stdin
        check=False,
    )
    assert opened.returncode == 0, opened.stderr
    assert "PKCS#12 password" in opened.stderr
    found = re.search(r"新しい証明書発行用パスワード: (\S+)", opened.stdout)
    assert found, opened.stdout
    new_password = found.group(1)
    assert PASSWORD_SHAPE.fullmatch(new_password)

    with database.factory() as s, s.begin():
        account = s.get(Account, office.id)
        assert account is not None
        check_issuance_password(account.issuance_password_hash, new_password)
        with pytest.raises(WrongPassword):
            check_issuance_password(account.issuance_password_hash, office.issuance_password)
        # The new password works to apply again (the issued application is not pending).
        again = applications.apply(
            s,
            party_of(account),
            settings=web_settings,
            profile=load_profiles(REPO / "conf" / "profiles")["office"],
            now=clock.now,
            issuance_password=new_password.lower().replace("-", " "),
            consent_fee_offset=True,
        )
        assert again.status is Status.AWAITING_ISSUE_REQUEST
        notice = s.get(Notice, notice_id)
        assert notice is not None and notice.read_at == clock.now
        # Neither the notice's body, its mail nor the audit log carries the password.
        assert new_password not in notice.body
        for mail in s.execute(select(OutboxMail)).scalars():
            assert new_password not in mail.body and PASSWORD_SHAPE.search(mail.body) is None
        for record in s.execute(select(AuditRecord)).scalars():
            assert new_password not in str(record.details)

    # Staff see on the account page that the sealed notice was opened (downloaded).
    staff_client = app.test_client()
    staff = add_staff(database, app.extensions["shomei"].vault, clock.now)
    sign_in(staff_client, staff, clock.now)
    account_page = text_of(staff_client, f"/console/accounts/{office.user_id}")
    card = account_page[account_page.index('id="notices"') :]
    assert "パスワード再発行" in card and "暗号化" in card and "未開封" not in card


def test_a_sealed_notice_that_is_changed_is_refused_by_shomei(
    app: Flask,
    database: Database,
    web_settings: RASettings,
    clock: Clock,
    pki: Pki,
    tmp_path: Path,
) -> None:
    issued = issued_office(database, web_settings, clock.now, pki, "1310000001")
    client = app.test_client()
    portal_sign_in(client, issued.office.user_id, issued.office.login_password)
    answer = client.post(
        "/portal/password-reissue",
        data={"csrf_token": token(client, "/portal/notices/")},
    )
    assert answer.status_code == 303
    notice_id = int(answer.headers["Location"].rsplit("/", 1)[1])
    data = bytearray(client.get(f"/portal/notices/{notice_id}/download").data)
    data[-5] ^= 0x01
    (tmp_path / "notice.p7m").write_bytes(bytes(data))
    (tmp_path / "office.p12").write_bytes(issued.p12)
    (tmp_path / "pw.txt").write_text(issued.office.issuance_password + "\n", encoding="utf-8")
    opened = subprocess.run(
        [
            str(SHOMEI),
            "notice",
            "open",
            "notice.p7m",
            "--p12",
            "office.p12",
            "--password-file",
            "pw.txt",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SHOMEI_LANG": "ja"},
        check=False,
    )
    assert opened.returncode != 0 and opened.stdout == ""
    assert "改ざんされているか壊れています" in opened.stderr
