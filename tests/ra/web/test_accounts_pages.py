"""事業所管理 and staff management: the console pages against the database (both databases)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import re
import subprocess
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from ra.party import Party
from ra.people import accounts
from ra.people.passwords import WrongPassword, check_issuance_password, check_password
from ra.settings import DocumentSettings, RASettings
from ra.store import audit
from ra.store.models import Account, AccountKind, AuditRecord, OutboxMail
from ra.store.vault import Vault, totp_context
from tests.ra.conftest import Database
from tests.ra.web.helpers import Clock, Staff, add_staff, assert_no_mojibake, sign_in, token

HEADER = "種別,番号,名称,郵便番号,住所,電話番号,代表者番号,メールアドレス\r\n"
GOOD_ROWS = [
    "事業所,1310000001,ひかり訪問介護,100-0001,東京都千代田区1-1,03-1234-5678,,a@example.jp",
    "事業所,1310000002,あおぞらデイサービス,,東京都港区2-2,03-2345-6789,,b@example.jp",
    "代理人,9000000003,請求代行さくら,,大阪府大阪市3-3,06-3456-7890,,c@example.jp",
]
LETTERS = re.compile(r"/console/accounts/letters/([A-Za-z0-9_-]{32})$")


@pytest.fixture
def web_settings(web_settings: RASettings) -> RASettings:
    # Letters print the federation's address: the console refuses to print without it.
    return dataclasses.replace(
        web_settings,
        documents=DocumentSettings(
            issuer_address="東京都千代田区霞が関1-1-1",
            issuer_postal_code="100-0013",
            issuer_phone="03-0000-0000",
        ),
    )


def _signed_in(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock, kind: AccountKind
) -> Staff:
    staff = add_staff(database, vault, clock.now, kind=kind)
    sign_in(client, staff, clock.now)
    return staff


def verify_password(stored: str, password: str, *, issuance: bool = False) -> bool:
    try:
        if issuance:
            check_issuance_password(stored, password)
        else:
            check_password(stored, password, what="password", what_ja="パスワード")
    except WrongPassword:
        return False
    return True


def _office(database: Database, number: str, name: str, now: dt.datetime) -> accounts.NewAccount:
    with database.factory() as s, s.begin():
        created = accounts.add_portal_account(
            s,
            Party.operator(),
            accounts.AccountInput(
                kind=AccountKind.OFFICE,
                number=number,
                name=name,
                address="東京都新宿区1-1",
                phone="03-1111-2222",
                email=f"{number}@example.jp",
            ),
            now=now,
        )
        s.expunge(created.account)
        return created


def _count(database: Database) -> int:
    with database.factory() as s:
        return int(s.scalar(select(func.count()).select_from(Account)) or 0)


def _post(client: FlaskClient, path: str, page: str, **data: object) -> TestResponse:
    return client.post(path, data={**data, "csrf_token": token(client, page)})


def _pdf_text(pdf: bytes, tmp_path: Path) -> tuple[str, str]:
    path = tmp_path / "letters.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True, text=True
    ).stdout
    fonts = subprocess.run(
        ["pdffonts", str(path)], capture_output=True, check=True, text=True
    ).stdout
    return text, fonts


def _assert_embedded(fonts: str) -> None:
    rows = [line for line in fonts.splitlines() if "IPAex" in line]
    assert rows, fonts
    # pdffonts columns: name type encoding emb sub uni object ID
    assert all(line.split()[-5] == "yes" for line in rows), fonts


def _letters(client: FlaskClient, answer: TestResponse) -> tuple[str, bytes]:
    assert answer.status_code == 302, answer.get_data(as_text=True)
    found = LETTERS.search(answer.headers["Location"])
    assert found, answer.headers["Location"]
    page = client.get(answer.headers["Location"])
    assert page.status_code == 200
    pdf = client.get(f"/console/accounts/letters/{found.group(1)}.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF")
    return page.get_data(as_text=True), pdf.data


def test_search_by_user_id_number_and_name(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    a = _office(database, "1310000011", "ひかり訪問介護", clock.now)
    b = _office(database, "2710000022", "あおぞらデイサービス", clock.now)
    _signed_in(client, database, vault, clock, AccountKind.STAFF)
    # The user ID typed full-width and in upper case, as people copy it from a letter.
    wide = a.user_id.upper().translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})
    page = client.get("/console/accounts/", query_string={"q": wide}).get_data(as_text=True)
    assert a.user_id in page and b.user_id not in page
    page = client.get("/console/accounts/", query_string={"q": "2710"}).get_data(as_text=True)
    assert b.user_id in page and a.user_id not in page
    page = client.get("/console/accounts/", query_string={"q": "デイ"}).get_data(as_text=True)
    assert b.user_id in page and a.user_id not in page
    page = client.get("/console/accounts/", query_string={"q": "%"}).get_data(as_text=True)
    assert "該当するアカウントはありません" in page  # LIKE wildcards are searched as text
    everything = client.get("/console/accounts/").get_data(as_text=True)
    assert a.user_id in everything and b.user_id in everything
    assert_no_mojibake(everything)


def test_create_one_account_and_its_letter(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock, tmp_path: Path
) -> None:
    _signed_in(client, database, vault, clock, AccountKind.STAFF)
    answer = _post(
        client,
        "/console/accounts/new",
        "/console/accounts/new",
        kind="office",
        number="1310000099",
        name="みどり介護センター",
        postal_code="160-0022",
        address="東京都新宿区新宿1-2-3",
        phone="03-5555-6666",
        representative_number="",
        email="midori@example.jp",
    )
    page, pdf = _letters(client, answer)
    with database.factory() as s:
        account = s.execute(
            select(Account).where(Account.office_number == "1310000099")
        ).scalar_one()
        user_id = account.user_id
    assert user_id in page and "みどり介護センター" in page
    text, fonts = _pdf_text(pdf, tmp_path)
    assert "ユーザーID・パスワード通知書" in text and user_id in text
    assert "はじめてログインするとき" in text and "みどり介護センター" in text
    # The page to sign in at is the portal's (the site's root answers nothing).
    assert re.search(r"ログインするページ\s+http://127\.0\.0\.1:8080/portal/\s", text), text
    _assert_embedded(fonts)
    # The issuance password on the letter is the one stored (as a hash).
    issuance = re.search(r"証明書発行用パスワード\s+(\S+)", text)
    assert issuance and verify_password(
        account.issuance_password_hash or "", issuance.group(1), issuance=True
    )


def test_create_with_a_bad_number_shows_the_problem(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    _signed_in(client, database, vault, clock, AccountKind.STAFF)
    before = _count(database)
    answer = _post(
        client,
        "/console/accounts/new",
        "/console/accounts/new",
        kind="office",
        number="12345",
        name="みどり",
        address="東京都",
        phone="03-5555-6666",
        email="midori@example.jp",
    )
    assert answer.status_code == 400
    assert "事業所番号は半角数字 10 桁です" in answer.get_data(as_text=True)
    assert _count(database) == before


def test_letters_are_only_for_the_user_who_made_them_and_expire(
    client: FlaskClient, app: object, database: Database, vault: Vault, clock: Clock
) -> None:
    _signed_in(client, database, vault, clock, AccountKind.STAFF)
    answer = _post(
        client,
        "/console/accounts/new",
        "/console/accounts/new",
        kind="agent",
        number="9000000077",
        name="請求代行みなみ",
        address="福岡県福岡市1-1",
        phone="092-111-2222",
        email="minami@example.jp",
    )
    location = answer.headers["Location"]
    other = app.test_client()  # type: ignore[attr-defined]
    _signed_in(other, database, vault, clock, AccountKind.STAFF)
    assert other.get(location).status_code == 404
    assert other.get(location + ".pdf").status_code == 404
    clock.advance(minutes=16)
    assert client.get(location + ".pdf").status_code == 404


def _upload(client: FlaskClient, data: bytes) -> TestResponse:
    return client.post(
        "/console/accounts/import",
        data={
            "file": (io.BytesIO(data), "accounts.csv"),
            "csrf_token": token(client, "/console/accounts/import"),
        },
        content_type="multipart/form-data",
    )


def test_csv_with_a_bad_row_shows_every_problem_and_creates_nothing(
    client: FlaskClient, app: object, database: Database, vault: Vault, clock: Clock
) -> None:
    _signed_in(client, database, vault, clock, AccountKind.STAFF)
    rows = [*GOOD_ROWS[:2], "事業所,13100,ほし介護,,東京都,03-1234-5678,,not-a-mail", GOOD_ROWS[2]]
    data = (HEADER + "\r\n".join(rows) + "\r\n").encode("cp932")
    before = _count(database)
    answer = _upload(client, data)
    assert answer.status_code == 302
    preview = client.get(answer.headers["Location"])
    html = preview.get_data(as_text=True)
    assert preview.status_code == 422
    for name in ("ひかり訪問介護", "あおぞらデイサービス", "ほし介護", "請求代行さくら"):
        assert name in html  # every row, decoded from CP932
    assert (
        "事業所番号は半角数字 10 桁です" in html
        and "メールアドレスの形式が正しくありません" in html
    )
    assert "2 件の誤りがあります" in html and 'id="create"' not in html
    assert_no_mojibake(html)
    # Posting the import anyway refuses and creates nothing.
    refused = client.post(
        answer.headers["Location"], data={"csrf_token": token(client, "/console/accounts/")}
    )
    assert refused.status_code == 400
    assert _count(database) == before
    # Another session cannot see or import the upload.
    other = app.test_client()  # type: ignore[attr-defined]
    _signed_in(other, database, vault, clock, AccountKind.STAFF)
    assert other.get(answer.headers["Location"]).status_code == 404


def test_a_file_that_is_not_text_is_refused_on_the_preview(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    _signed_in(client, database, vault, clock, AccountKind.STAFF)
    answer = _upload(client, b"\x81\xff\x00\xfe" * 50)
    preview = client.get(answer.headers["Location"])
    html = preview.get_data(as_text=True)
    assert preview.status_code == 422
    assert "UTF-8 でも Shift_JIS(CP932)でもありません" in html and 'id="create"' not in html


def test_a_good_csv_creates_every_account_with_letters(
    client: FlaskClient,
    database: Database,
    vault: Vault,
    clock: Clock,
    tmp_path: Path,
    web_settings: RASettings,
) -> None:
    _signed_in(client, database, vault, clock, AccountKind.STAFF)
    data = ("\ufeff" + HEADER + "\r\n".join(GOOD_ROWS) + "\r\n").encode("utf-8")
    answer = _upload(client, data)
    preview = client.get(answer.headers["Location"])
    assert preview.status_code == 200
    html = preview.get_data(as_text=True)
    assert "誤りはありません。3 件のアカウントを作成します" in html and 'id="create"' in html
    before = _count(database)
    created = client.post(
        answer.headers["Location"],
        data={"csrf_token": token(client, answer.headers["Location"])},
    )
    page, pdf = _letters(client, created)
    assert _count(database) == before + 3
    with database.factory() as s:
        user_ids = list(
            s.scalars(
                select(Account.user_id).where(
                    Account.office_number.in_(["1310000001", "1310000002", "9000000003"])
                )
            )
        )
    assert len(user_ids) == 3
    text, fonts = _pdf_text(pdf, tmp_path)
    assert text.count("ユーザーID・パスワード通知書") == 3  # one page per account
    for user_id in user_ids:
        assert user_id in page and user_id in text
    _assert_embedded(fonts)
    # The upload is gone: importing it again is not possible.
    assert client.get(answer.headers["Location"]).status_code == 404
    assert not list((web_settings.data_dir / "uploads").glob("*.csv"))


def test_reset_passwords_unlock_and_disable(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock, tmp_path: Path
) -> None:
    office = _office(database, "1310000055", "やまびこ介護", clock.now)
    _signed_in(client, database, vault, clock, AccountKind.STAFF)
    page = f"/console/accounts/{office.user_id}"
    assert "やまびこ介護" in client.get(page).get_data(as_text=True)

    # Each of these asks first: a page saying what will happen, and nothing done yet.
    for action, question in (
        ("/issuance-password", "の証明書発行用パスワードを再発行しますか?"),
        ("/login-password", "のログイン用パスワードを再発行しますか?"),
        ("/disable", "のアカウントを無効にしますか?"),
    ):
        asked = _post(client, page + action, page)
        html = asked.get_data(as_text=True)
        assert asked.status_code == 200 and f"やまびこ介護({office.user_id}){question}" in html
        assert 'name="confirm" value="yes"' in html and f'action="{page}{action}"' in html
        assert ">実行</button>" in html and f'id="confirm-cancel" href="{page}"' in html
        assert ">キャンセル</a>" in html and "<script" not in html
        assert_no_mojibake(html)
    with database.factory() as s:
        account = s.execute(select(Account).where(Account.user_id == office.user_id)).scalar_one()
        assert account.active and verify_password(
            account.issuance_password_hash or "", office.issuance_password or "", issuance=True
        )
        assert verify_password(account.password_hash or "", office.login_password)
    assert "disable_account" not in client.get(page).get_data(as_text=True)

    _text, pdf = _letters(client, _post(client, page + "/issuance-password", page, confirm="yes"))
    text, fonts = _pdf_text(pdf, tmp_path)
    assert "証明書発行用パスワード再発行のお知らせ" in text and office.user_id in text
    _assert_embedded(fonts)
    with database.factory() as s:
        account = s.execute(select(Account).where(Account.user_id == office.user_id)).scalar_one()
        assert not verify_password(
            account.issuance_password_hash or "", office.issuance_password or "", issuance=True
        )

    with database.factory() as s, s.begin():
        account = s.execute(select(Account).where(Account.user_id == office.user_id)).scalar_one()
        account.failed_logins = 5
        account.locked_until = clock.now + dt.timedelta(minutes=30)
    assert "ロック中" in client.get(page).get_data(as_text=True)
    unlocked = _post(client, page + "/unlock", page)
    assert unlocked.status_code == 302
    assert "ロックを解除しました" in client.get(page).get_data(as_text=True)

    _text, pdf = _letters(client, _post(client, page + "/login-password", page, confirm="yes"))
    text, _fonts = _pdf_text(pdf, tmp_path)
    assert "ログイン用パスワード再発行のお知らせ" in text and office.user_id in text
    new_login = re.search(r"新しいログイン用パスワード\s+(\S+)", text)
    with database.factory() as s:
        account = s.execute(select(Account).where(Account.user_id == office.user_id)).scalar_one()
        assert new_login and verify_password(account.password_hash or "", new_login.group(1))

    assert _post(client, page + "/disable", page, confirm="yes").status_code == 302
    with database.factory() as s:
        account = s.execute(select(Account).where(Account.user_id == office.user_id)).scalar_one()
        assert account.active is False
        actions = set(
            s.scalars(select(AuditRecord.action).where(AuditRecord.object_id == office.user_id))
        )
    assert {"reset_issuance_password", "unlock", "reset_login_password", "disable_account"} <= (
        actions
    )
    again = _post(client, page + "/disable", page, confirm="yes")
    assert again.status_code == 409 and "既に無効です" in again.get_data(as_text=True)


def test_accounts_not_signed_in_are_highlighted_and_reminded(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    old = _office(database, "1310000066", "こだま介護", clock.now - dt.timedelta(days=4))
    signed = _office(database, "1310000067", "やまと介護", clock.now - dt.timedelta(days=4))
    fresh = _office(database, "1310000068", "あさひ介護", clock.now - dt.timedelta(days=1))
    with database.factory() as s, s.begin():
        audit.record(
            s,
            actor="office",
            actor_id=signed.user_id,
            action="sign_in",
            object_type="account",
            object_id=signed.user_id,
            now=clock.now - dt.timedelta(days=3),
        )
    _signed_in(client, database, vault, clock, AccountKind.STAFF)
    listed = client.get("/console/accounts/", query_string={"overdue": "1"})
    html = listed.get_data(as_text=True)
    assert old.user_id in html and signed.user_id not in html and fresh.user_id not in html
    assert 'class="overdue"' in html
    answer = _post(client, f"/console/accounts/{old.user_id}/remind", "/console/accounts/")
    assert answer.status_code == 302
    with database.factory() as s:
        mails = list(
            s.scalars(select(OutboxMail).where(OutboxMail.to_address == old.account.email))
        )
        reminded = s.scalar(
            select(func.count())
            .select_from(AuditRecord)
            .where(AuditRecord.action == "signin_reminder", AuditRecord.object_id == old.user_id)
        )
    assert len(mails) == 1 and old.user_id in mails[0].body and "ログイン" in mails[0].subject
    assert "  http://127.0.0.1:8080/portal/\n" in mails[0].body  # where to sign in
    assert old.issuance_password not in mails[0].body and old.login_password not in mails[0].body
    assert reminded == 1
    refused = _post(client, f"/console/accounts/{signed.user_id}/remind", "/console/accounts/")
    assert refused.status_code == 409 and "既にログインしています" in refused.get_data(as_text=True)


def test_staff_pages_are_for_admins_only(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    _signed_in(client, database, vault, clock, AccountKind.STAFF)
    assert client.get("/console/staff/").status_code == 403
    before = _count(database)
    answer = _post(
        client,
        "/console/staff/",
        "/console/accounts/",
        kind="staff",
        name="職員 次郎",
        email="jiro@example.jp",
        user_id="",
    )
    assert answer.status_code == 403 and _count(database) == before
    assert "職員管理" not in client.get("/console/accounts/").get_data(as_text=True)


def test_admin_adds_resets_and_disables_staff(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    admin = _signed_in(client, database, vault, clock, AccountKind.ADMIN)
    listing = client.get("/console/staff/")
    assert listing.status_code == 200 and admin.user_id in listing.get_data(as_text=True)
    answer = _post(
        client,
        "/console/staff/",
        "/console/staff/",
        kind="staff",
        name="職員 次郎",
        email="jiro@example.jp",
        user_id="jiro",
    )
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "<svg" in html and "otpauth://totp/" in html
    assert "この画面は 1 回だけ表示されます" in html
    secret = re.search(r'id="new-secret">([A-Z2-7 ]+)<', html)
    assert secret
    with database.factory() as s:
        jiro = s.execute(select(Account).where(Account.user_id == "jiro")).scalar_one()
        assert jiro.kind is AccountKind.STAFF and jiro.totp_secret_sealed
        assert vault.open(jiro.totp_secret_sealed, context=totp_context("jiro")).replace(
            " ", ""
        ) == secret.group(1).replace(" ", "")
    assert secret.group(1) not in client.get("/console/staff/").get_data(as_text=True)
    taken = _post(
        client,
        "/console/staff/",
        "/console/staff/",
        kind="admin",
        name="同名",
        email="x@example.jp",
        user_id="jiro",
    )
    assert taken.status_code == 409 and "既に使われています" in taken.get_data(as_text=True)

    for action, question in (
        ("totp", "の認証アプリをリセットしますか?"),
        ("disable", "のアカウントを無効にしますか?"),
    ):
        asked = _post(client, f"/console/staff/jiro/{action}", "/console/staff/")
        html = asked.get_data(as_text=True)
        assert asked.status_code == 200 and f"職員 次郎(jiro){question}" in html
        assert 'id="confirm-cancel" href="/console/staff/"' in html
    with database.factory() as s:
        jiro = s.execute(select(Account).where(Account.user_id == "jiro")).scalar_one()
        assert jiro.active and jiro.totp_secret_sealed  # nothing done before 実行
    confirmed = _post(client, "/console/staff/jiro/totp", "/console/staff/", confirm="yes")
    assert confirmed.status_code == 302
    with database.factory() as s:
        jiro = s.execute(select(Account).where(Account.user_id == "jiro")).scalar_one()
        assert jiro.totp_secret_sealed is None and jiro.totp_enrolled_at is None
    gone = _post(client, "/console/staff/jiro/disable", "/console/staff/", confirm="yes")
    assert gone.status_code == 302
    own = _post(client, f"/console/staff/{admin.user_id}/disable", "/console/staff/", confirm="yes")
    assert own.status_code == 422 and "自分のアカウントは無効にできません" in own.get_data(
        as_text=True
    )
    with database.factory() as s:
        assert (
            s.execute(select(Account.active).where(Account.user_id == "jiro")).scalar_one() is False
        )


def test_a_large_csv_is_imported_in_the_background(
    client: FlaskClient,
    app: object,
    database: Database,
    vault: Vault,
    clock: Clock,
    tmp_path: Path,
    web_settings: RASettings,
) -> None:
    """More rows than the request runs at once: queued, carried out by the scheduler's worker,
    progress on a page that reloads itself, then the letters for the one who started it."""
    from ra.people.import_runs import SMALL
    from ra.store.models import ImportRun, ImportStatus
    from ra.tasks.scheduler import ImportWorker

    staff = _signed_in(client, database, vault, clock, AccountKind.STAFF)
    count = SMALL + 1
    rows = [
        f"事業所,{1500000000 + n:010d},さくら介護{n},,東京都{n},03-1234-5678,,s{n}@example.jp"
        for n in range(count)
    ]
    answer = _upload(client, (HEADER + "\r\n".join(rows) + "\r\n").encode("utf-8"))
    before = _count(database)
    queued = client.post(
        answer.headers["Location"], data={"csrf_token": token(client, answer.headers["Location"])}
    )
    assert queued.status_code == 302 and "/console/accounts/imports/" in queued.headers["Location"]
    run_page = queued.headers["Location"]
    page = client.get(run_page).get_data(as_text=True)
    assert "処理待ち" in page and f"0 / {count} 件" in page
    assert '<meta http-equiv="refresh" content="3">' in page and "<script" not in page
    assert_no_mojibake(page)
    assert _count(database) == before  # nothing created in the request
    listed = client.get("/console/accounts/import").get_data(as_text=True)
    assert "最近の一括登録" in listed and run_page in listed and staff.user_id in listed

    ImportWorker(database.factory, web_settings, holder="sched-1", clock=clock)()
    assert _count(database) == before + count
    page = client.get(run_page).get_data(as_text=True)
    assert "完了" in page and f"{count} / {count} 件" in page and "http-equiv" not in page
    found = re.search(r'id="import-letters" href="(/console/accounts/letters/[0-9a-f]{32})"', page)
    assert found, page
    letters = client.get(found.group(1)).get_data(as_text=True)
    assert "さくら介護0" in letters
    pdf = client.get(found.group(1) + ".pdf")
    assert pdf.status_code == 200
    text, fonts = _pdf_text(pdf.data, tmp_path)
    assert text.count("ユーザーID・パスワード通知書") == count
    _assert_embedded(fonts)

    # Another member of staff sees the run, not its letters.
    other = app.test_client()  # type: ignore[attr-defined]
    _signed_in(other, database, vault, clock, AccountKind.STAFF)
    theirs = other.get(run_page).get_data(as_text=True)
    assert "完了" in theirs and "import-letters" not in theirs
    assert other.get(found.group(1)).status_code == 404
    # After 15 minutes the letters are gone, and the page says so.
    clock.advance(minutes=16)
    late = client.get(run_page).get_data(as_text=True)
    assert "通知書の保管期間" in late and "import-letters" not in late
    with database.factory() as s:
        run = s.execute(select(ImportRun)).scalar_one()
        assert run.status is ImportStatus.DONE and run.rows is None


def test_a_failed_background_import_says_why(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock, web_settings: RASettings
) -> None:
    from ra.people.import_runs import SMALL
    from ra.tasks.scheduler import ImportWorker

    _signed_in(client, database, vault, clock, AccountKind.STAFF)
    rows = [
        f"事業所,{1600000000 + n:010d},もみじ介護{n},,東京都{n},03-1234-5678,,m{n}@example.jp"
        for n in range(SMALL + 1)
    ]
    answer = _upload(client, (HEADER + "\r\n".join(rows) + "\r\n").encode("utf-8"))
    run_page = client.post(
        answer.headers["Location"], data={"csrf_token": token(client, answer.headers["Location"])}
    ).headers["Location"]
    _office(database, "1600000005", "先に登録された事業所", clock.now)
    before = _count(database)
    ImportWorker(database.factory, web_settings, holder="sched-1", clock=clock)()
    assert _count(database) == before
    page = client.get(run_page).get_data(as_text=True)
    assert "失敗(1 件も作成していません)" in page
    assert "番号 1600000005 のアカウントは既に登録されています" in page
