"""The portal's 証明書 screen, quote and application in a real browser, against gunicorn.

Three walks, on both databases: an office prints a quote and applies with its consent; an agent
applies for an office and prints the invoice; an office applies with its own CSR.  Every page
is shot at 1280 and 390 pixels wide (``tests/artifacts/screenshots/portal_apply_*.png``) and
checked for mojibake, CSP violations and overflow at phone width; the PDFs the browser
downloads are read back with pdftotext.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from ra.party import Party
from ra.people import accounts
from ra.store.models import AccountKind, Application
from tests.ra.web.helpers import first_sign_in_finished
from tests.ra.web.live import BACKENDS, LiveServer, live_server
from tests.ra.web.test_browser import CHROMIUM, SHOTS, browser, shoot
from tests.ra_profile import FEES

__all__ = ["browser"]  # the module-scoped Chromium of test_browser, used here as a fixture

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Chromium is not installed at /usr/bin/chromium"
)

DOCUMENTS = (
    '[ra.documents]\nissuer_postal_code = "100-0013"\n'
    'issuer_address = "東京都千代田区霞が関1-1-1"\nissuer_phone = "03-0000-0000"\n'
)


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("live"), request.param, extra=DOCUMENTS) as live:
        yield live


@pytest.fixture
def page(browser: object, server: LiveServer) -> Iterator[object]:
    context = browser.new_context(  # type: ignore[attr-defined]
        locale="ja-JP", viewport={"width": 1280, "height": 900}, accept_downloads=True
    )
    page = context.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on(
        "response",
        lambda r: (
            problems.append(f"{r.status} {r.url}")
            if r.status >= 400 and r.request.resource_type != "document"
            else None
        ),
    )
    yield page
    context.close()
    assert not problems, f"browser errors (CSP violations?): {problems}"


@dataclass
class Who:
    user_id: str
    login: str
    issuance: str
    number: str
    name: str


_serial = iter(range(1, 1000))


def add(server: LiveServer, kind: AccountKind) -> Who:
    n = next(_serial)
    office = kind is AccountKind.OFFICE
    with server.database.factory() as s, s.begin():
        made = accounts.add_portal_account(
            s,
            Party.operator(),
            accounts.AccountInput(
                kind=kind,
                number=f"{(1320000000 if office else 9020000000) + n:010d}",
                name=f"さくら訪問看護ステーション{n}" if office else f"株式会社ケアソフト{n}",
                address="神奈川県横浜市中区本町1-1",
                postal_code="231-0005",
                phone="045-000-0000",
                email=f"b{n}@example.jp",
            ),
            now=dt.datetime.now(dt.UTC),
        )
        first_sign_in_finished(made.account, dt.datetime.now(dt.UTC))  # the portal opens at once
        assert made.issuance_password is not None
        return Who(
            made.account.user_id,
            made.login_password,
            made.issuance_password,
            made.account.office_number or "",
            made.account.name,
        )


def sign_in(page: object, server: LiveServer, who: Who) -> None:
    page.goto(server.url + "/portal/")  # type: ignore[attr-defined]
    assert "/portal/sign-in" in page.url  # type: ignore[attr-defined]
    page.fill("#user_id", who.user_id)  # type: ignore[attr-defined]
    page.fill("#password", who.login)  # type: ignore[attr-defined]
    page.click("#submit")  # type: ignore[attr-defined]
    assert page.url.endswith("/portal/"), page.inner_text("main")  # type: ignore[attr-defined]


def pdf_text(path: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils missing: apt-get install poppler-utils")
    done = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"], check=True, capture_output=True
    )
    return re.sub(r"\s+", "", done.stdout.decode("utf-8"))


def download(page: object, selector: str, name: str) -> Path:
    with page.expect_download() as info:  # type: ignore[attr-defined]
        page.click(selector)  # type: ignore[attr-defined]
    SHOTS.mkdir(parents=True, exist_ok=True)
    target = SHOTS.parent / "documents" / f"{name}.pdf"
    target.parent.mkdir(parents=True, exist_ok=True)
    info.value.save_as(str(target))
    return target


def test_an_office_quotes_then_applies_with_its_consent(page: object, server: LiveServer) -> None:
    office = add(server, AccountKind.OFFICE)
    sign_in(page, server, office)
    main = page.inner_text("main")  # type: ignore[attr-defined]
    assert "まだ証明書はありません" in main and "見積書表示" in main
    shoot(page, "portal_apply_home-empty")

    page.click("#show-quote")  # type: ignore[attr-defined]
    assert page.input_value("#organization") == office.name  # type: ignore[attr-defined]
    page.fill("#person", "佐藤 花子")  # type: ignore[attr-defined]
    page.check("input[name=honorific][value='様']")  # type: ignore[attr-defined]
    shoot(page, "portal_apply_quote")
    text = pdf_text(download(page, "#make-quote", "portal_apply_quote"))
    assert "神奈川県横浜市中区本町1-1" in text and "佐藤花子様" in text
    assert "東京都千代田区霞が関1-1-1" in text and "5,000円" in text

    page.goto(server.url + "/portal/apply/")  # type: ignore[attr-defined]
    shoot(page, "portal_apply_form-office")
    page.fill("#issuance_password", "WRONG-WRONG-WRONG")  # type: ignore[attr-defined]
    page.click("#next")  # type: ignore[attr-defined]
    assert "証明書発行用パスワードが正しくありません" in page.inner_text("#error")  # type: ignore[attr-defined]
    shoot(page, "portal_apply_wrong-password")
    page.fill("#issuance_password", office.issuance)  # type: ignore[attr-defined]
    page.click("#next")  # type: ignore[attr-defined]
    assert "申請内容の確認" in page.inner_text("h1")  # type: ignore[attr-defined]
    assert FEES.offset_consent in page.inner_text("#consent-text")  # type: ignore[attr-defined]
    shoot(page, "portal_apply_confirm-office")
    page.check("#consent")  # type: ignore[attr-defined]
    page.click("#apply-now")  # type: ignore[attr-defined]
    assert "申請を受け付けました" in page.inner_text("h1")  # type: ignore[attr-defined]
    assert "1 発行依頼待ち" in page.inner_text("#done")  # type: ignore[attr-defined]
    shoot(page, "portal_apply_done-office")

    page.click("#back-home")  # type: ignore[attr-defined]
    main = page.inner_text("main")  # type: ignore[attr-defined]
    assert "1 発行依頼待ち" in main and "を処理中です" in main
    assert page.locator("#apply").count() == 0  # type: ignore[attr-defined]
    shoot(page, "portal_apply_home-pending")

    # Once the CA issued it (set here directly), the row offers 印刷: the details on paper.
    with server.database.factory() as s, s.begin():
        app = s.execute(
            select(Application).where(Application.office_number == office.number)
        ).scalar_one()
        _issue(s, app)
        app_id = app.id
    page.reload()  # type: ignore[attr-defined]
    assert "5 発行済み" in page.inner_text("main")  # type: ignore[attr-defined]
    shoot(page, "portal_apply_home-issued")
    page.click(f"#print-{app_id}")  # type: ignore[attr-defined]
    assert "証明書の内容" in page.inner_text("h1")  # type: ignore[attr-defined]
    shoot(page, "portal_apply_print")


def _issue(session: object, app: Application) -> None:
    from ra.lifecycle import Status
    from ra.store.models import Certificate

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, app.office_name)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Issuing CA")]))
        .public_key(key.public_key())
        .serial_number(0x5EED0000 + app.id)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1095))
        .sign(key, hashes.SHA256())
    )
    app.status = Status.ISSUED
    session.add(  # type: ignore[attr-defined]
        Certificate(
            application_id=app.id,
            serial_hex=f"{cert.serial_number:x}",
            der=cert.public_bytes(serialization.Encoding.DER),
            not_before=now,
            not_after=now + dt.timedelta(days=1095),
            registered_at=now,
        )
    )


def test_an_agent_applies_for_an_office_and_prints_the_invoice(
    page: object, server: LiveServer
) -> None:
    agent = add(server, AccountKind.AGENT)
    office = add(server, AccountKind.OFFICE)
    sign_in(page, server, agent)
    shoot(page, "portal_apply_home-agent")
    page.click("#apply")  # type: ignore[attr-defined]
    page.fill("#for_office", office.number)  # type: ignore[attr-defined]
    page.fill("#issuance_password", agent.issuance)  # type: ignore[attr-defined]
    shoot(page, "portal_apply_form-agent")
    page.click("#next")  # type: ignore[attr-defined]
    assert office.name in page.inner_text("#plan-office")  # type: ignore[attr-defined]
    assert page.locator("#consent").count() == 0  # type: ignore[attr-defined]
    shoot(page, "portal_apply_confirm-agent")
    page.click("#apply-now")  # type: ignore[attr-defined]
    assert "2 入金待ち" in page.inner_text("#done")  # type: ignore[attr-defined]
    assert agent.user_id in page.inner_text("#done")  # type: ignore[attr-defined]
    shoot(page, "portal_apply_done-agent")
    text = pdf_text(download(page, "#invoice", "portal_apply_invoice"))
    bank = FEES.bank_account
    assert "請求書" in text and bank.number in text and bank.holder_kana in text
    assert f"振込人名{agent.user_id}" in text and office.number in text
    page.click("#back-home")  # type: ignore[attr-defined]
    assert "請求書を印刷して" in page.inner_text("main")  # type: ignore[attr-defined]
    shoot(page, "portal_apply_home-agent-awaiting-payment")


def test_an_office_applies_with_its_own_csr(
    page: object, server: LiveServer, tmp_path: Path
) -> None:
    office = add(server, AccountKind.OFFICE)
    key = ec.generate_private_key(ec.SECP256R1())
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, office.name)]))
        .sign(key, hashes.SHA256())
    )
    csr = tmp_path / "office.csr"
    csr.write_bytes(request.public_bytes(serialization.Encoding.PEM))
    garbage = tmp_path / "garbage.csr"
    garbage.write_bytes(b"not a certificate request")
    sign_in(page, server, office)
    page.click("#apply")  # type: ignore[attr-defined]
    page.check("input[name=key_source][value=csr]")  # type: ignore[attr-defined]
    page.set_input_files("#csr_file", str(garbage))  # type: ignore[attr-defined]
    page.fill("#issuance_password", office.issuance)  # type: ignore[attr-defined]
    page.click("#next")  # type: ignore[attr-defined]
    assert "CSR(PKCS#10)として読めません" in page.inner_text("#error")  # type: ignore[attr-defined]
    shoot(page, "portal_apply_bad-csr")
    page.check("input[name=key_source][value=csr]")  # type: ignore[attr-defined]
    page.set_input_files("#csr_file", str(csr))  # type: ignore[attr-defined]
    page.fill("#issuance_password", office.issuance)  # type: ignore[attr-defined]
    shoot(page, "portal_apply_form-csr")
    page.click("#next")  # type: ignore[attr-defined]
    assert "ECDSA P-256" in page.inner_text("#plan-key")  # type: ignore[attr-defined]
    shoot(page, "portal_apply_confirm-csr")
    page.check("#consent")  # type: ignore[attr-defined]
    page.click("#apply-now")  # type: ignore[attr-defined]
    assert "1 発行依頼待ち" in page.inner_text("#done")  # type: ignore[attr-defined]
    with server.database.factory() as s:
        app = s.execute(
            select(Application).where(Application.office_number == office.number)
        ).scalar_one()
        assert app.wrapped_key is None
        assert app.csr_der == request.public_bytes(serialization.Encoding.DER)
