"""The portal's 証明書 screen, 見積書 (A2), 発行申請 (A1), 請求書 (A3) and 印刷, page by page.

Client tests on both databases: every page, every refusal (a wrong issuance password, an
application while one is in progress, a CSR the CA would refuse: garbage, a broken signature,
a key the profile does not allow), and the PDFs read back with poppler-utils (the address and
敬称 typed, the bank account of the settings, the font embedded).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from ra.lifecycle import Applicant, Status
from ra.party import Party
from ra.people import accounts
from ra.settings import DocumentSettings, RASettings, load_certificate_profiles
from ra.store.models import AccountKind, Application, AuditRecord, Certificate, FeeEntry
from tests.ra.conftest import Database
from tests.ra.documents.conftest import POPPLER, Pdf, assert_readable
from tests.ra.web.helpers import Clock, assert_no_mojibake, first_sign_in_finished, token
from tests.ra_profile import FEES, OFFICE_PROFILE

ADDRESS = "東京都千代田区霞が関1-1-1"


@pytest.fixture
def web_settings(web_settings: RASettings) -> RASettings:
    # The federation's address (quotes and invoices print it) and the certificate profile.
    return dataclasses.replace(
        web_settings,
        profile_files=[OFFICE_PROFILE],
        profiles=load_certificate_profiles([OFFICE_PROFILE], default="office"),
        documents=DocumentSettings(
            issuer_address=ADDRESS, issuer_postal_code="100-0013", issuer_phone="03-0000-0000"
        ),
    )


@dataclass
class Portal:
    user_id: str
    login: str
    issuance: str
    office_number: str | None
    name: str


_numbers = iter(range(1, 10_000))


def add(database: Database, now: dt.datetime, kind: AccountKind) -> Portal:
    n = next(_numbers)
    office = kind is AccountKind.OFFICE
    with database.factory() as s, s.begin():
        made = accounts.add_portal_account(
            s,
            Party.operator(),
            accounts.AccountInput(
                kind=kind,
                number=f"{(1310000000 if office else 9010000000) + n:010d}",
                name=f"ひかり訪問介護{n}" if office else f"株式会社請求代行{n}",
                address="大阪府大阪市北区梅田1-2-3",
                postal_code="530-0001",
                phone="06-0000-0000",
                email=f"p{n}@example.jp",
            ),
            now=now,
        )
        first_sign_in_finished(made.account, now)  # the portal opens at once
        assert made.issuance_password is not None
        return Portal(
            made.account.user_id,
            made.login_password,
            made.issuance_password,
            made.account.office_number if office else None,
            made.account.name,
        )


def signed_in(client: FlaskClient, who: Portal) -> FlaskClient:
    answer = client.post(
        "/portal/sign-in",
        data={
            "csrf_token": token(client, "/portal/sign-in"),
            "user_id": who.user_id,
            "password": who.login,
        },
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return client


def page(client: FlaskClient, path: str) -> str:
    answer = client.get(path)
    assert answer.status_code == 200, (path, answer.status_code)
    body = answer.get_data(as_text=True)
    assert_no_mojibake(body)
    return body


def step1(client: FlaskClient, **fields: object) -> tuple[int, str]:
    data: dict[str, object] = {
        "csrf_token": token(client, "/portal/apply/"),
        "key_source": "ra",
        **fields,
    }
    answer = client.post("/portal/apply/", data=data, content_type="multipart/form-data")
    body = answer.get_data(as_text=True)
    assert_no_mojibake(body)
    return answer.status_code, body


def step2(client: FlaskClient, body: str, *, consent: bool) -> tuple[int, str, str]:
    csr = re.search(r'name="csr" type="hidden" value="([^"]*)"', body)
    assert csr is not None, body
    data = {"csrf_token": token(client, "/portal/"), "csr": csr.group(1)}
    if consent:
        data["consent"] = "y"
    answer = client.post("/portal/apply/confirm", data=data)
    return answer.status_code, answer.headers.get("Location", ""), answer.get_data(as_text=True)


def count(database: Database, what: object) -> int:
    with database.factory() as s:
        return int(s.scalar(select(func.count()).select_from(what)) or 0)  # type: ignore[arg-type]


def alert(body: str) -> str:
    found = re.search(r'<p class="alert" role="alert" id="error">(.*?)</p>', body, re.S)
    assert found, body
    return found.group(1)


# --- CSRs ---------------------------------------------------------------------------------------


def csr_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ひかり訪問介護")])
    request = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return request.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def good_csr() -> bytes:
    return csr_pem(ec.generate_private_key(ec.SECP256R1()))


def broken_signature(pem: bytes) -> bytes:
    der = bytearray(x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # the last byte of the signature
    return bytes(der)


# --- the 証明書 screen ----------------------------------------------------------------------------


def test_an_office_without_a_certificate_is_told_what_to_do(
    app: Flask, database: Database, clock: Clock
) -> None:
    office = add(database, clock.now, AccountKind.OFFICE)
    client = signed_in(app.test_client(), office)
    body = page(client, "/portal/")
    assert "まだ証明書はありません" in body and "見積書表示" in body
    assert 'href="/portal/apply/" id="apply"' in body and 'id="show-quote"' in body
    assert "発行手数料残高(合計): 0円" in body
    # The menu has the portal's screens.
    assert ">発行申請</a>" in body and ">見積書</a>" in body


def test_the_screen_shows_only_what_each_status_allows(
    app: Flask, web_settings: RASettings, database: Database, clock: Clock
) -> None:
    office = add(database, clock.now, AccountKind.OFFICE)
    client = signed_in(app.test_client(), office)
    status, body = step1(client, issuance_password=office.issuance)
    assert status == 200, body
    assert step2(client, body, consent=True)[0] == 302
    body = page(client, "/portal/")
    assert "1 発行依頼待ち" in body and "連合会が申請内容を確認しています" in body
    assert "5,000円" in body  # the row's 発行手数料残高 and the total
    assert 'id="apply"' not in body  # one application at a time (the menu keeps its entry)
    assert re.search(r"申請番号 \d+ を処理中です", body)
    assert "/portal/print/" not in body and "/portal/invoice/" not in body
    with database.factory() as s, s.begin():
        app_row = s.execute(select(Application)).scalar_one()
        app_row.status = Status.ISSUED  # as the CA would have it (the test sets it directly)
        s.add(_certificate(app_row, clock.now))
        app_id = app_row.id
    body = page(client, "/portal/")
    assert "5 発行済み" in body and f'href="/portal/print/{app_id}"' in body
    assert "2026/11/02" in body and "2029/11/01" in body  # 有効開始年月日, 有効終了年月日
    # The row links the application's 状況照会 and, once issued, its ダウンロード.
    assert f'href="/portal/applications/{app_id}">状況照会' in body
    assert f'href="/portal/applications/{app_id}/download">ダウンロード' in body


def _certificate(app: Application, now: dt.datetime) -> Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, app.office_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Issuing CA")]))
        .public_key(key.public_key())
        .serial_number(0x1234ABCD)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1095))
        .sign(key, hashes.SHA256())
    )
    return Certificate(
        application_id=app.id,
        serial_hex="1234abcd",
        der=cert.public_bytes(serialization.Encoding.DER),
        not_before=now,
        not_after=now + dt.timedelta(days=1095),
        registered_at=now,
    )


def test_the_print_page_shows_the_certificate_and_refuses_others(
    app: Flask, database: Database, clock: Clock
) -> None:
    office, other = (
        add(database, clock.now, AccountKind.OFFICE),
        add(database, clock.now, AccountKind.OFFICE),
    )
    client = signed_in(app.test_client(), office)
    step2(client, step1(client, issuance_password=office.issuance)[1], consent=True)
    with database.factory() as s, s.begin():
        row = s.execute(select(Application)).scalar_one()
        app_id = row.id
    assert client.get(f"/portal/print/{app_id}").status_code == 409  # not issued yet
    with database.factory() as s, s.begin():
        row = s.get_one(Application, app_id)
        row.status = Status.ISSUED
        s.add(_certificate(row, clock.now))
    body = page(client, f"/portal/print/{app_id}")
    assert "証明書の内容" in body and "1234abcd" in body and office.name in body
    assert "SHA-256 フィンガープリント" in body and "Ctrl+P" in body
    stranger = signed_in(app.test_client(), other)
    assert stranger.get(f"/portal/print/{app_id}").status_code == 404


# --- 見積書 (A2) --------------------------------------------------------------------------------


@pytest.fixture
def read_pdf(tmp_path: Path) -> Callable[[bytes, str], Pdf]:
    missing = [tool for tool in POPPLER if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"poppler-utils missing ({', '.join(missing)}): apt-get install poppler-utils")

    def read(data: bytes, name: str) -> Pdf:
        assert data.startswith(b"%PDF-"), data[:200]
        path = tmp_path / f"{name}.pdf"
        path.write_bytes(data)
        return Pdf(path, name)

    return read


def test_an_office_prints_a_quote_addressed_as_typed(
    app: Flask, database: Database, clock: Clock, read_pdf: Callable[[bytes, str], Pdf]
) -> None:
    office = add(database, clock.now, AccountKind.OFFICE)
    client = signed_in(app.test_client(), office)
    form = page(client, "/portal/quote/")
    audited = count(database, AuditRecord)
    # The form starts with the account as registered.
    assert office.name in form and "大阪府大阪市北区梅田1-2-3" in form and "530-0001" in form
    assert "5,000円" in form and "非課税" in form
    answer = client.post(
        "/portal/quote/",
        data={
            "csrf_token": token(client, "/portal/quote/"),
            "postal_code": "150-0002",
            "address": "東京都渋谷区渋谷2-24-12 渋谷スクランブルスクエア 30階",
            "organization": "医療法人 ひかり会",
            "person": "山田 太郎",
            "honorific": "様",
        },
    )
    assert answer.status_code == 200 and answer.mimetype == "application/pdf"
    assert "attachment" in answer.headers["Content-Disposition"]
    pdf = read_pdf(answer.data, "portal_quote_office")
    assert_readable(
        pdf,
        "御見積書",
        "〒150-0002",
        "東京都渋谷区渋谷2-24-12 渋谷スクランブルスクエア 30階",
        "医療法人 ひかり会",
        "山田 太郎\u3000様",
        "証明連合会",  # the federation's name and address from the settings
        ADDRESS,
        "電話 03-0000-0000",
        "見積日\u30002026/11/02",
        "5,000円",
        "非課税",
        "相殺",
    )
    assert count(database, AuditRecord) == audited  # printing changes nothing


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"organization": "", "honorific": "御中"},
            "事業所名(代理人の方は法人名)を入力してください",
        ),
        ({"organization": "ひかり", "honorific": "殿"}, "敬称は「様」か「御中」"),
        ({"organization": "ひかり", "honorific": "御中", "address": "あ" * 301}, "住所は 300 文字"),
    ],
)
def test_a_bad_quote_form_is_shown_again_with_one_line(
    app: Flask, database: Database, clock: Clock, fields: dict[str, str], message: str
) -> None:
    office = add(database, clock.now, AccountKind.OFFICE)
    client = signed_in(app.test_client(), office)
    answer = client.post(
        "/portal/quote/", data={"csrf_token": token(client, "/portal/quote/"), **fields}
    )
    assert answer.status_code == 400 and answer.mimetype == "text/html"
    assert message in alert(answer.get_data(as_text=True))


def test_an_agent_quotes_with_its_corporation_name(
    app: Flask, database: Database, clock: Clock, read_pdf: Callable[[bytes, str], Pdf]
) -> None:
    agent = add(database, clock.now, AccountKind.AGENT)
    client = signed_in(app.test_client(), agent)
    form = page(client, "/portal/quote/")
    assert "法人名" in form and agent.name in form
    answer = client.post(
        "/portal/quote/",
        data={
            "csrf_token": token(client, "/portal/quote/"),
            "address": "大阪府大阪市北区梅田1-2-3",
            "organization": agent.name,
            "person": "",
            "honorific": "御中",
        },
    )
    pdf = read_pdf(answer.data, "portal_quote_agent")
    assert_readable(pdf, f"{agent.name}\u3000御中", "銀行振込")


def test_without_the_federations_address_no_quote_is_offered(
    app: Flask, database: Database, clock: Clock
) -> None:
    app.extensions["shomei"] = dataclasses.replace(
        app.extensions["shomei"],
        settings=dataclasses.replace(
            app.extensions["shomei"].settings, documents=DocumentSettings()
        ),
    )
    office = add(database, clock.now, AccountKind.OFFICE)
    client = signed_in(app.test_client(), office)
    body = page(client, "/portal/quote/")
    assert "連合会の設定が済んでいないため" in body and "make-quote" not in body
    home = page(client, "/portal/")
    assert 'id="show-quote"' not in home and "連合会の設定が済むまで印刷できません" in home


# --- 発行申請 (A1) ------------------------------------------------------------------------------


def test_an_office_applies_with_its_password_and_consent(
    app: Flask, database: Database, clock: Clock
) -> None:
    office = add(database, clock.now, AccountKind.OFFICE)
    client = signed_in(app.test_client(), office)
    form = page(client, "/portal/apply/")
    assert (
        "1. パスワードの入力" in form and "確認画面へ" in form and "事業所番号(10 桁)" not in form
    )
    # The password is forgiving of case, spaces and missing hyphens.
    status, body = step1(client, issuance_password=office.issuance.lower().replace("-", " "))
    assert status == 200, body
    assert "申請内容の確認" in body and "まだ申請は完了していません" in body
    assert "証明書発行に関わる手数料の相殺に関する同意文" in body
    assert FEES.offset_consent in body and "連合会のシステムで作成(RSA 2048 ビット)" in body
    assert office.issuance not in body  # the password is never put into the page
    assert count(database, Application) == 0  # nothing is applied for yet
    # Without the consent: refused, nothing written, the confirmation shown again.
    status, _, again = step2(client, body, consent=False)
    assert status == 400 and "手数料相殺への同意が必要です" in alert(again)
    assert count(database, Application) == 0
    status, location, _ = step2(client, again, consent=True)
    assert status == 302 and re.fullmatch(r"/portal/apply/done/\d+", location)
    done = page(client, location)
    assert "申請を受け付けました" in done and "1 発行依頼待ち" in done
    with database.factory() as s:
        made = s.execute(select(Application)).scalar_one()
        assert made.status is Status.AWAITING_ISSUE_REQUEST and made.applicant is Applicant.OFFICE
        assert made.wrapped_key is not None and made.fee_offset_consent_at is not None
        fee = s.execute(select(FeeEntry.amount_yen)).scalar_one()
        assert fee == FEES.office_fee_yen
        record = s.execute(select(AuditRecord).where(AuditRecord.action == "apply")).scalar_one()
        assert record.details["fee_offset_consent_text"] == FEES.offset_consent
        assert record.details["own_csr"] is False and record.details["key_type"] == "rsa2048"
    # The kept password is gone: sending the confirmation again does not apply twice.
    status, location, _ = step2(client, again, consent=True)
    assert status == 302 and location == "/portal/apply/"
    assert count(database, Application) == 1


def test_a_wrong_issuance_password_is_refused_and_nothing_changes(
    app: Flask, database: Database, clock: Clock
) -> None:
    office = add(database, clock.now, AccountKind.OFFICE)
    client = signed_in(app.test_client(), office)
    status, body = step1(client, issuance_password="AAAA-BBBB-CCCC")
    assert status == 422 and "証明書発行用パスワードが正しくありません" in alert(body)
    status, body = step1(client, issuance_password="")
    assert status == 400 and "証明書発行用パスワードを入力してください" in alert(body)
    assert count(database, Application) == 0
    # No password kept: the confirmation cannot be sent on its own.
    answer = client.post("/portal/apply/confirm", data={"csrf_token": token(client, "/portal/")})
    assert answer.status_code == 302 and answer.headers["Location"] == "/portal/apply/"
    assert count(database, Application) == 0


def test_no_second_application_while_one_is_in_progress(
    app: Flask, database: Database, clock: Clock
) -> None:
    office = add(database, clock.now, AccountKind.OFFICE)
    client = signed_in(app.test_client(), office)
    status, body = step1(client, issuance_password=office.issuance)
    step2(client, body, consent=True)
    form = page(client, "/portal/apply/")
    assert "を処理中です" in form and "apply-form" not in form
    status, body = step1(client, issuance_password=office.issuance)  # sent all the same
    assert status == 409 and re.search(r"申請番号 \d+ を処理中です", body)
    assert count(database, Application) == 1


def test_an_agent_applies_for_a_registered_office_and_prints_the_invoice(
    app: Flask, database: Database, clock: Clock, read_pdf: Callable[[bytes, str], Pdf]
) -> None:
    agent = add(database, clock.now, AccountKind.AGENT)
    office = add(database, clock.now, AccountKind.OFFICE)
    client = signed_in(app.test_client(), agent)
    form = page(client, "/portal/apply/")
    assert "申請する事業所の事業所番号(10 桁)" in form
    status, body = step1(client, issuance_password=agent.issuance, for_office="1399999999")
    assert status == 404 and "有効な事業所が登録されていません" in alert(body)
    status, body = step1(client, issuance_password=agent.issuance, for_office=office.office_number)
    assert status == 200, body
    assert f"{office.office_number} {office.name}" in body
    assert "同意文" not in body and "銀行振込" in body
    status, location, _ = step2(client, body, consent=False)  # agents consent to nothing
    assert status == 302, location
    done = page(client, location)
    assert "2 入金待ち" in done and agent.user_id in done and "請求書(PDF)" in done
    app_id = int(location.rsplit("/", 1)[1])
    answer = client.get(f"/portal/invoice/{app_id}")
    assert answer.status_code == 200 and answer.mimetype == "application/pdf"
    pdf = read_pdf(answer.data, "portal_invoice_agent")
    bank = FEES.bank_account
    assert_readable(
        pdf,
        "請求書",
        agent.name,
        "大阪府大阪市北区梅田1-2-3",
        ADDRESS,
        f"{bank.bank}\u3000{bank.branch}",
        f"{bank.account_type}\u3000{bank.number}",
        bank.holder_kana,
        f"振込人名\u3000{agent.user_id}",
        "5,000円",
        office.office_number or "",
    )
    home = page(client, "/portal/")
    assert f'href="/portal/invoice/{app_id}"' in home and "振込人名にはユーザーID" in home
    assert "発行手数料残高" not in home  # the column is the offices'
    # The agent may apply for another office at once; the office's own apply is refused.
    assert 'id="apply"' in home
    office_client = signed_in(app.test_client(), office)
    assert "代理人によるこの事業所の申請を処理中です" in page(office_client, "/portal/")
    # Another account never sees the invoice; an office's application has none.
    assert office_client.get(f"/portal/invoice/{app_id}").status_code == 404


def test_an_office_applies_with_its_own_csr(
    app: Flask, database: Database, clock: Clock, good_csr: bytes
) -> None:
    office = add(database, clock.now, AccountKind.OFFICE)
    client = signed_in(app.test_client(), office)
    status, body = step1(
        client,
        key_source="csr",
        csr_file=(_file(good_csr), "office.csr"),
        issuance_password=office.issuance,
    )
    assert status == 200, body
    assert "お手元で作成した CSR(ECDSA P-256)" in body
    status, location, _ = step2(client, body, consent=True)
    assert status == 302, location
    with database.factory() as s:
        made = s.execute(select(Application)).scalar_one()
        # The CSR is stored as given (DER), and no key: it never left the office.
        assert made.wrapped_key is None
        assert made.csr_der == x509.load_pem_x509_csr(good_csr).public_bytes(
            serialization.Encoding.DER
        )


def test_a_pasted_csr_and_a_der_file_are_read_too(
    app: Flask, database: Database, clock: Clock, good_csr: bytes
) -> None:
    office = add(database, clock.now, AccountKind.OFFICE)
    client = signed_in(app.test_client(), office)
    status, body = step1(
        client, key_source="csr", csr_text=good_csr.decode(), issuance_password=office.issuance
    )
    assert status == 200 and "ECDSA P-256" in body
    der = x509.load_pem_x509_csr(good_csr).public_bytes(serialization.Encoding.DER)
    status, body = step1(
        client,
        key_source="csr",
        csr_file=(_file(der), "office.der"),
        issuance_password=office.issuance,
    )
    assert status == 200 and "ECDSA P-256" in body


def _file(data: bytes) -> object:
    import io

    return io.BytesIO(data)


def _rsa1024_csr() -> bytes:
    return csr_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))  # noqa: S505


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda good: b"this is not a CSR \x00\xff", "CSR(PKCS#10)として読めません"),
        (broken_signature, "CSR の自己署名を検証できません"),
        (lambda good: _rsa1024_csr(), "CSR の鍵(rsa1024)は使えません"),
        (lambda good: b"", "CSR のファイルを選ぶか、CSR の内容を貼り付けてください"),
    ],
    ids=["garbage", "wrong-signature", "rsa-1024", "missing"],
)
def test_a_csr_the_ca_would_refuse_is_refused_at_once(
    app: Flask,
    database: Database,
    clock: Clock,
    good_csr: bytes,
    make: Callable[[bytes], bytes],
    message: str,
) -> None:
    office = add(database, clock.now, AccountKind.OFFICE)
    client = signed_in(app.test_client(), office)
    data = make(good_csr)
    fields: dict[str, object] = {"key_source": "csr", "issuance_password": office.issuance}
    if data:
        fields["csr_file"] = (_file(data), "office.csr")
    status, body = step1(client, **fields)
    assert status == 400 and message in alert(body)
    assert count(database, Application) == 0


def test_a_csr_changed_between_the_pages_is_refused(
    app: Flask, database: Database, clock: Clock, good_csr: bytes
) -> None:
    office = add(database, clock.now, AccountKind.OFFICE)
    client = signed_in(app.test_client(), office)
    status, body = step1(
        client,
        key_source="csr",
        csr_file=(_file(good_csr), "a.csr"),
        issuance_password=office.issuance,
    )
    other = csr_pem(ec.generate_private_key(ec.SECP256R1()))
    import base64

    forged = re.sub(
        r'(name="csr" type="hidden" value=")[^"]*',
        lambda m: m.group(1) + base64.b64encode(other).decode(),
        body,
    )
    status, location, _ = step2(client, forged, consent=True)
    assert status == 302 and location == "/portal/apply/"
    assert count(database, Application) == 0


def test_the_kept_password_expires(app: Flask, database: Database, clock: Clock) -> None:
    office = add(database, clock.now, AccountKind.OFFICE)
    client = signed_in(app.test_client(), office)
    status, body = step1(client, issuance_password=office.issuance)
    for _ in range(2):  # requests within the idle timeout keep the session alive
        clock.advance(minutes=16)
        page(client, "/portal/")
    status, location, _ = step2(client, body, consent=True)
    assert status == 302 and location == "/portal/apply/"
    assert "時間がたちすぎました" in page(client, "/portal/apply/")
    assert count(database, Application) == 0


def test_the_done_page_and_invoices_are_the_owners_only(
    app: Flask, database: Database, clock: Clock
) -> None:
    office, other = (
        add(database, clock.now, AccountKind.OFFICE),
        add(database, clock.now, AccountKind.AGENT),
    )
    client = signed_in(app.test_client(), office)
    _, location, _ = step2(
        client, step1(client, issuance_password=office.issuance)[1], consent=True
    )
    app_id = int(location.rsplit("/", 1)[1])
    # An office's application has no invoice.
    assert client.get(f"/portal/invoice/{app_id}").status_code == 409
    stranger = signed_in(app.test_client(), other)
    assert stranger.get(location).status_code == 404
    assert stranger.get(f"/portal/invoice/{app_id}").status_code == 404
