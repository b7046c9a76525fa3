"""The whole product as people live it, in one story, in real browsers against gunicorn.

One federation (its own RA server on SQLite or PostgreSQL, the CA inline from
tests/ra/ca_fixture.py, mails to an aiosmtpd server) and four people, each in a browser of
their own: a member of staff, an administrator, an office and an agent.

a. staff create the office and the agent on 事業所管理 and print their notification letters;
   the user IDs and passwords are read back from the letters' PDF (pdftotext), as the office
   reads them on paper, and the letter's address opens the portal;
b. the office signs in for the first time (terms, number and kana, its own password, the mail
   code from the SMTP server);
c. it prints a quote (the address and 様 as typed, the font embedded) and applies with its
   consent to the fee offset;
d. staff register the issue request (発行依頼), the administrator sends the requests now (the
   inline CA signs them) and runs the mail job: the Japanese 証明書が発行されました mail arrives;
e. the office downloads its PKCS#12 with the issuance password; openssl and NSS open it, and
   ``shomei sign`` signs a claim with it that ``shomei verify`` finds valid against the CRL the
   RA publishes;
f. the agent signs in for the first time, applies for the office and prints its invoice (the
   bank account, its user ID as payer name); staff find it from the passbook's payer name and
   register the payment (入金登録); the administrator sends it to the CA: issued;
g. the office's notices list the issued notice; opening it records the date, which staff see;
h. the office asks for a new issuance password, sealed to its certificate, and opens the
   sealed notice with ``shomei notice open`` and its .p12;
i. the agent forgets its login password and sets a new one with a mailed code;
j. the office asks for the revocation of its first certificate, now replaced: staff see it.

Every page is shot at 1280 and 390 pixels wide (``tests/artifacts/screenshots/journey_*``)
with the checks of :func:`tests.ra.web.test_browser.shoot`; the PDFs are kept beside them
(``tests/artifacts/documents/journey_*``) with a PNG of their first page.  docs/office-guide.md
shows some of these screenshots (docs/images/).
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import Browser, Page
from sqlalchemy import select

from ra.lifecycle import Status
from ra.store.models import AccountKind, Application
from tests.ra.ca_fixture import CaHome, ca_home_fixture, inline_link_toml
from tests.ra.mailing.test_mail import Recorder, _free_port
from tests.ra.web.live import BACKENDS, LOCALE, TIMEZONE, LiveServer, free_port, live_server
from tests.ra.web.test_browser import CHROMIUM, SHOTS, browser, shoot
from tests.ra.web.test_browser import sign_in as console_sign_in
from tests.ra.web.test_portal_download import open_pkcs12
from tests.ra_profile import FEES

__all__ = ["browser", "ca_home_fixture"]  # fixtures used by this module

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Chromium is not installed at /usr/bin/chromium"
)

SHOMEI = str(Path(sys.executable).with_name("shomei"))
DOCUMENTS = SHOTS.parent / "documents"
FEDERATION = "証明連合会"


@dataclass(frozen=True)
class Holder:
    """An office or agent as staff enter it on 事業所管理."""

    kind: str
    number: str
    name: str
    kana: str
    typed_kana: str  # as the clerk types it at the first sign-in
    postal_code: str
    address: str
    phone: str
    email: str
    own_password: str


OFFICE = Holder(
    kind="office",
    number="1312345678",
    name="さくら訪問看護ステーション",
    kana="サクラホウモンカンゴステーション",
    typed_kana="さくらほうもんかんごすてーしょん",
    postal_code="160-0023",
    address="東京都新宿区西新宿1-2-3",
    phone="03-1234-5678",
    email="sakura@example.jp",
    own_password="Sakura-2027!",
)
AGENT = Holder(
    kind="agent",
    number="9012345678",
    name="株式会社ケアソフト",
    kana="カブシキガイシャケアソフト",
    typed_kana="ｶﾌﾞｼｷｶﾞｲｼｬ ｹｱｿﾌﾄ",  # half-width, with a space: the same name
    postal_code="530-0001",
    address="大阪府大阪市北区梅田1-2-3",
    phone="06-1234-5678",
    email="support@caresoft.example.jp",
    own_password="Caresoft-2027#",
)


@dataclass(frozen=True)
class Letter:
    """What the notification letter says, read from its PDF."""

    user_id: str
    login_password: str
    issuance_password: str
    page_url: str


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[tuple[Recorder, int]]:
    recorder = Recorder()
    port = _free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield recorder, port
    finally:
        controller.stop()


@pytest.fixture
def smtp(smtp_server: tuple[Recorder, int]) -> Recorder:
    return smtp_server[0]


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    smtp_server: tuple[Recorder, int],
    ca_home: CaHome,
) -> Iterator[LiveServer]:
    port = free_port()
    extra = (
        # (the [ra.web] table is open: its base_url, where letters and mails send people)
        f'base_url = "http://127.0.0.1:{port}"\n'
        '[ra.documents]\nissuer_postal_code = "100-0013"\n'
        'issuer_address = "東京都千代田区霞が関1-1-1"\nissuer_phone = "03-0000-0000"\n'
        f'[ra.mail]\nsmtp_port = {smtp_server[1]}\nsender = "shomei@federation.example"\n'
        + inline_link_toml(ca_home)
    )
    folder = tmp_path_factory.mktemp("journey")
    with live_server(folder, request.param, extra=extra, port=port) as live:
        yield live


@contextmanager
def person(browser: Browser) -> Iterator[Page]:
    """A browser of one person's own (its own cookies), with the checks of every page."""
    context = browser.new_context(
        locale=LOCALE,
        timezone_id=TIMEZONE,
        viewport={"width": 1280, "height": 900},
        accept_downloads=True,
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


class Shots:
    """Numbered screenshots of the story: journey_01_..., journey_02_..."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, page: Page, name: str) -> None:
        self.count += 1
        shoot(page, f"journey_{self.count:02d}_{name}")


def run(*command: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(command),
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "SHOMEI_LANG": "ja"},
    )


def pdf_text(path: Path, *, layout: bool = False) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils missing: apt-get install poppler-utils")
    done = run("pdftotext", *(["-layout"] if layout else []), "-enc", "UTF-8", str(path), "-")
    assert done.returncode == 0, done.stderr
    return done.stdout


def assert_fonts_embedded(path: Path) -> None:
    """pdffonts lists the fonts: IPAex (Japanese) among them, and every one embedded."""
    fonts = run("pdffonts", str(path))
    assert fonts.returncode == 0, fonts.stderr
    rows = fonts.stdout.splitlines()[2:]
    assert any("IPAex" in row for row in rows), fonts.stdout
    # Columns: name type encoding emb sub uni object ID
    assert all(row.split()[-5] == "yes" for row in rows), fonts.stdout


def save_download(page: Page, selector: str, name: str, suffix: str = "pdf") -> Path:
    """Press ``selector``, keep the file the browser downloads as ``journey_<name>``."""
    with page.expect_download() as info:
        page.click(selector)
    DOCUMENTS.mkdir(parents=True, exist_ok=True)
    target = DOCUMENTS / f"journey_{name}.{suffix}"
    info.value.save_as(str(target))
    if suffix == "pdf" and shutil.which("pdftoppm"):
        # The first page as a PNG, to look at (and for the office guide).
        run(
            "pdftoppm",
            "-png",
            "-r",
            "60",
            "-f",
            "1",
            "-l",
            "1",
            "-singlefile",
            str(target),
            str(target.with_suffix("")),
        )
    return target


def read_letter(path: Path) -> Letter:
    text = pdf_text(path, layout=True)

    def value(label: str) -> str:
        found = re.search(rf"^{label}\s+(\S+)\s*$", text, re.MULTILINE)
        assert found, (label, text)
        return found.group(1)

    return Letter(
        user_id=value("ユーザーID"),
        login_password=value("初回ログイン用パスワード"),
        issuance_password=value("証明書発行用パスワード"),
        page_url=value("ログインするページ"),
    )


def mail_to(recorder: Recorder, to: str, after: int, subject: str) -> str:
    """The body of the first mail to ``to`` with ``subject``, among those after ``after``."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for message in recorder.messages[after:]:
            if str(message["To"]) == to and str(message["Subject"]) == subject:
                return str(message.get_content())  # type: ignore[attr-defined]
        time.sleep(0.1)
    seen = [(str(m["To"]), str(m["Subject"])) for m in recorder.messages[after:]]
    raise AssertionError(f"no mail {subject!r} to {to}; mails: {seen}")


def code_in(body: str) -> str:
    found = re.search(r"確認コード: (\d{6})", body)
    assert found, body
    return found.group(1)


def status_of(server: LiveServer, app_id: int) -> Status:
    with server.database.factory() as s:
        app = s.get(Application, app_id)
        assert app is not None
        return Status(app.status)


def create_account(staff: Page, server: LiveServer, who: Holder, shot: Shots) -> Letter:
    """a. 事業所管理 → 新規登録 → the letters page → the letter's PDF, read back."""
    staff.goto(server.url + "/console/accounts/")
    assert staff.inner_text("h1") == "事業所管理"
    shot(staff, f"staff-accounts-{who.kind}")
    staff.click("a[href='/console/accounts/new']")
    staff.select_option("#kind", who.kind)
    for field in ("number", "name", "postal_code", "address", "phone", "email"):
        staff.fill(f"#{field}", getattr(who, field))
    staff.fill("#name_kana", who.kana)
    shot(staff, f"staff-new-{who.kind}")
    staff.click("#submit")
    assert "/console/accounts/letters/" in staff.url, staff.inner_text("main")
    assert who.name in staff.inner_text("main")
    shot(staff, f"staff-letters-{who.kind}")
    path = save_download(staff, "#letters-pdf", f"letter-{who.kind}")
    assert_fonts_embedded(path)
    letter = read_letter(path)
    assert re.fullmatch(r"[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}", letter.issuance_password)
    text = re.sub(r"\s+", "", pdf_text(path))
    assert who.address in text and who.number in text and "確認コード" in text
    return letter


def first_sign_in(
    page: Page,
    server: LiveServer,
    smtp: Recorder,
    who: Holder,
    letter: Letter,
    shot: Shots,
    *,
    every_page: bool,
) -> None:
    """b. The letter's address, its user ID and password, then the first sign-in's steps."""
    page.goto(letter.page_url)
    assert "/portal/sign-in" in page.url, page.url
    assert "通知書に記載されたユーザーIDとパスワード" in page.inner_text("main")  # as on the letter
    if every_page:
        shot(page, "portal-sign-in")
    page.fill("#user_id", letter.user_id)
    page.fill("#password", letter.login_password)
    page.click("#submit")
    assert page.url.endswith("/portal/first-sign-in/terms"), page.url
    if every_page:
        shot(page, "first-terms")
    page.check("#agree")
    page.click("#submit")
    assert page.url.endswith("/portal/first-sign-in/identity")
    page.fill("#number", who.number)
    page.fill("#kana", who.typed_kana)
    shot(page, f"first-identity-{who.kind}")
    page.click("#submit")
    assert page.url.endswith("/portal/first-sign-in/password"), page.inner_text("main")
    page.fill("#new", who.own_password)
    page.fill("#confirm", who.own_password)
    if every_page:
        shot(page, "first-password")
    page.click("#submit")
    assert page.url.endswith("/portal/first-sign-in/email")
    assert page.input_value("#email") == who.email  # as staff registered it
    if every_page:
        shot(page, "first-email")
    before = len(smtp.messages)
    page.click("#submit")
    assert page.url.endswith("/portal/first-sign-in/email/code")
    if every_page:
        shot(page, "first-code")
    body = mail_to(smtp, who.email, before, f"【{FEDERATION}】メールアドレスの確認コード")
    page.fill("#code", code_in(body))
    page.click("#submit")
    assert page.url.endswith("/portal/first-sign-in/done")
    if every_page:
        shot(page, "first-done")
    page.click("#to-portal")
    assert page.url.endswith("/portal/")


def run_job(admin: Page, server: LiveServer, job: str, shot: Shots | None = None) -> str:
    """連携 → a job's 今すぐ実行 (the dispatch job: 今すぐ依頼を送る); the flash message."""
    admin.goto(server.url + "/console/link/")
    if shot is not None:
        shot(admin, "admin-link")
    if job == "dispatch":
        admin.click("text=今すぐ依頼を送る")
    else:
        admin.click(f"form[action='/console/link/jobs/{job}'] button")
    said = admin.inner_text(".notice")
    assert f"ジョブ {job} を実行しました" in said, said
    return said


def test_the_journey_of_an_office_and_an_agent(
    browser: Browser,
    server: LiveServer,
    smtp: Recorder,
    ca_home: CaHome,
    tmp_path: Path,
) -> None:
    shot = Shots()
    start = len(smtp.messages)  # the mails of this run (the SMTP server serves both databases)
    staff_member = server.staff()
    administrator = server.staff(kind=AccountKind.ADMIN)
    with (
        person(browser) as staff,
        person(browser) as admin,
        person(browser) as office,
        person(browser) as agent,
    ):
        # a. Staff create the office and the agent and print their letters.
        console_sign_in(staff, server, staff_member)
        office_letter = create_account(staff, server, OFFICE, shot)
        agent_letter = create_account(staff, server, AGENT, shot)
        assert office_letter.page_url == f"{server.url}/portal/"

        # b. The office's first sign-in.
        first_sign_in(office, server, smtp, OFFICE, office_letter, shot, every_page=True)
        main = office.inner_text("main")
        assert "まだ証明書はありません" in main
        shot(office, "office-home-empty")

        # c. A quote, then the application with the consent to the fee offset.
        office.click("#show-quote")
        assert office.input_value("#organization") == OFFICE.name
        assert office.input_value("#address") == OFFICE.address
        office.fill("#person", "佐藤 花子")
        office.check("input[name=honorific][value='様']")
        shot(office, "office-quote")
        quote = save_download(office, "#make-quote", "quote")
        text = re.sub(r"\s+", "", pdf_text(quote))
        assert OFFICE.address in text and "佐藤花子様" in text and "5,000円" in text
        assert "東京都千代田区霞が関1-1-1" in text
        assert_fonts_embedded(quote)

        office.goto(server.url + "/portal/")
        office.click("#apply")
        assert "やめる" in office.inner_text(
            "#apply-form"
        )  # (the console's confirmations: キャンセル)
        shot(office, "office-apply")
        # Typed as a clerk might: lower case, spaces for the hyphens.
        office.fill("#issuance_password", office_letter.issuance_password.lower().replace("-", " "))
        office.click("#next")
        assert "申請内容の確認" in office.inner_text("h1")
        assert FEES.offset_consent in office.inner_text("#consent-text")
        office.check("#consent")
        shot(office, "office-apply-confirm")
        office.click("#apply-now")
        done = office.inner_text("#done")
        assert "1 発行依頼待ち" in done, done
        shot(office, "office-apply-done")
        office.click("#back-home")
        with server.database.factory() as s:
            first = s.execute(
                select(Application.id).where(Application.office_number == OFFICE.number)
            ).scalar_one()
        assert "1 発行依頼待ち" in office.inner_text(f"#app-{first}")
        shot(office, "office-home-applied")

        # d. Staff register the issue request; the administrator sends it to the CA (inline)
        # and runs the mail job: the issued mail reaches the office's confirmed address.
        staff.goto(f"{server.url}/console/applications/{first}")
        shot(staff, "staff-application")
        staff.click("#issue-submit")
        assert "3 発行依頼中" in staff.inner_text("main")
        shot(staff, "staff-issue-requested")
        console_sign_in(admin, server, administrator)
        run_job(admin, server, "dispatch", shot)
        assert status_of(server, first) is Status.ISSUED
        shot(admin, "admin-dispatched")
        run_job(admin, server, "send-mail")
        issued_mail = mail_to(smtp, OFFICE.email, start, "証明書が発行されました")
        assert f"{OFFICE.name} 様" in issued_mail and f"申込番号 {first}" in issued_mail
        assert "証明書発行用パスワードを入力して" in issued_mail
        assert f"{server.url}/portal/" in issued_mail  # the footer: where the portal is
        assert office_letter.issuance_password not in issued_mail

        # e. The office downloads its PKCS#12 and signs a claim with it.
        office.goto(server.url + "/portal/")
        assert "5 発行済み" in office.inner_text(f"#app-{first}")
        shot(office, "office-home-issued")
        office.click("nav.main >> text=状況照会")
        assert "申請年月日" in office.inner_text("main")
        shot(office, "office-status-list")
        office.click(f"#application-{first} >> text=開く")
        assert "証明書が発行されました" in office.inner_text("main")
        shot(office, "office-status")
        office.click("#go-download")
        shot(office, "office-download")
        office.fill("#issuance_password", office_letter.issuance_password)
        with office.expect_download() as info:
            office.click("#download-submit")
        assert info.value.suggested_filename == f"{OFFICE.name}_{OFFICE.number}_{first}.p12"
        p12 = tmp_path / "office.p12"
        info.value.save_as(str(p12))
        # openssl pkcs12 -info -noout -passin pass:... and pk12util -l ... -W ...
        report = open_pkcs12(p12, office_letter.issuance_password, legacy=False)
        assert "AES-256" in report
        for platform, words in (
            ("windows", "証明書のインポート ウィザード"),
            ("macos", "キーチェーンアクセス"),
            ("firefox", "あなたの証明書"),
        ):
            office.goto(f"{server.url}/portal/applications/{first}/download")
            office.click(f"#guide-{platform}")
            assert words in office.inner_text("main")
            shot(office, f"office-install-{platform}")
        claim = tmp_path / "請求202610.csv"
        claim.write_text("事業所番号,サービス提供年月,請求額\n1312345678,202610,123456\n")
        password_file = tmp_path / "p12-password.txt"
        # shomei takes the issuance password in any form, as the portal does.
        password_file.write_text(office_letter.issuance_password.lower().replace("-", "") + "\n")
        signed = run(
            SHOMEI, "sign", str(claim), "--p12", str(p12), "--password-file", str(password_file)
        )
        assert signed.returncode == 0, signed.stderr
        crl = tmp_path / "issuing.crl"
        with urllib.request.urlopen(server.url + "/crl/issuing.crl", timeout=10) as answer:  # noqa: S310
            crl.write_bytes(answer.read())
        verified = run(
            SHOMEI, "verify", str(claim), "--trust", str(ca_home.root_pem), "--crl", str(crl)
        )
        assert verified.returncode == 0, verified.stdout + verified.stderr

        # f. The agent: first sign-in, an application for the office, the invoice; staff
        # register the payment from the passbook; the administrator sends it to the CA.
        first_sign_in(agent, server, smtp, AGENT, agent_letter, shot, every_page=False)
        shot(agent, "agent-home-empty")
        agent.click("#apply")
        agent.fill("#for_office", OFFICE.number)
        agent.fill("#issuance_password", agent_letter.issuance_password)
        shot(agent, "agent-apply")
        agent.click("#next")
        assert OFFICE.name in agent.inner_text("#plan-office")
        assert agent.locator("#consent").count() == 0  # an agent pays by transfer
        shot(agent, "agent-apply-confirm")
        agent.click("#apply-now")
        done = agent.inner_text("#done")
        assert "2 入金待ち" in done and agent_letter.user_id in done, done
        shot(agent, "agent-apply-done")
        invoice = save_download(agent, "#invoice", "invoice")
        text = re.sub(r"\s+", "", pdf_text(invoice))
        bank = FEES.bank_account
        assert bank.bank in text and bank.number in text and bank.holder_kana in text
        assert f"振込人名{agent_letter.user_id}" in text and OFFICE.number in text
        assert_fonts_embedded(invoice)
        with server.database.factory() as s:
            second = s.execute(
                select(Application.id).where(
                    Application.office_number == OFFICE.number, Application.id != first
                )
            ).scalar_one()
        agent.click("#back-home")
        shot(agent, "agent-home-awaiting-payment")

        staff.goto(server.url + "/console/payments/")
        # The passbook prints the payer name in half-width capitals, with a space.
        passbook = agent_letter.user_id.upper()
        staff.fill("#payer", f"{passbook[:3]} {passbook[3:]}")
        staff.click("#find")
        assert agent_letter.user_id in staff.inner_text("main")
        staff.fill("#amount_yen", str(FEES.agent_fee_yen))
        shot(staff, "staff-payments")
        staff.click("#register")
        shot(staff, "staff-payment-registered")
        assert status_of(server, second) is Status.ISSUE_REQUESTED
        agent.goto(f"{server.url}/portal/applications/{second}")
        assert "3 発行依頼中" in agent.inner_text("#next")
        shot(agent, "agent-status-paid")
        run_job(admin, server, "dispatch")
        assert status_of(server, second) is Status.ISSUED

        # g. The office's notices: the issued notice, opened; staff see the date.
        office.goto(server.url + "/portal/")
        unread = office.inner_text("nav.main")
        assert "未開封 1 件" in unread, unread
        office.click("nav.main >> text=お知らせ")
        row = office.inner_text("table.portal-notices tbody tr")
        assert "証明書が発行されました" in row and "未開封" in row, row
        shot(office, "office-notices")
        office.click("table.portal-notices >> text=証明書が発行されました")
        today = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=9)))
        assert today.strftime("%Y/%m/%d") in office.inner_text("#opened")
        shot(office, "office-notice")
        office.click("text=お知らせ一覧に戻る")
        row = office.inner_text("table.portal-notices tbody tr")
        assert today.strftime("%Y/%m/%d") in row and "未開封" not in row, row
        shot(office, "office-notices-opened")
        staff.goto(f"{server.url}/console/accounts/{office_letter.user_id}")
        notices = staff.inner_text("#notices")
        assert "証明書が発行されました" in notices
        assert today.strftime("%Y/%m/%d") in notices.split("証明書が発行されました")[1], notices
        staff.locator("#notices").scroll_into_view_if_needed()
        shot(staff, "staff-account-notices")

        # h. A forgotten issuance password: a new one, sealed to the certificate.
        office.click("#reissue-submit")
        assert "/portal/notices/" in office.url
        # The steps to open it are numbered (not the apply pages' step pills).
        numbered = office.eval_on_selector(
            ".portal-sealed ol.portal-steps", "e => getComputedStyle(e).listStyleType"
        )
        assert numbered == "decimal", numbered
        shot(office, "office-reissue-sealed")
        with office.expect_download() as info:
            office.click("#download")
        sealed = tmp_path / info.value.suggested_filename
        info.value.save_as(str(sealed))
        assert re.fullmatch(r"notice-\d+\.p7m", sealed.name), sealed.name
        opened = run(
            SHOMEI,
            "notice",
            "open",
            str(sealed),
            "--p12",
            str(p12),
            "--password-file",
            str(password_file),
        )
        assert opened.returncode == 0, opened.stderr
        new_password = re.search(r"[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}", opened.stdout)
        assert new_password and new_password.group(0) != office_letter.issuance_password, opened

        # i. The agent forgets its login password: a code by mail, a new password.
        agent.click("text=サインアウト")
        agent.click("#forgot")
        shot(agent, "forgot")
        agent.fill("#user_id", agent_letter.user_id)
        before = len(smtp.messages)
        agent.click("#submit")
        shot(agent, "forgot-code")
        body = mail_to(smtp, AGENT.email, before, f"【{FEDERATION}】パスワード再設定の確認コード")
        agent.fill("#code", code_in(body))
        agent.click("#submit")
        agent.fill("#new", "Caresoft-2028$")
        agent.fill("#confirm", "Caresoft-2028$")
        shot(agent, "forgot-new")
        agent.click("#submit")
        assert "新しいパスワードを設定しました" in agent.inner_text(".notice")
        agent.fill("#user_id", agent_letter.user_id)
        agent.fill("#password", "Caresoft-2028$")
        agent.click("#submit")
        assert agent.url.endswith("/portal/")
        assert "5 発行済み" in agent.inner_text(f"#app-{second}")

        # j. The office asks for the revocation of the certificate the new one replaces.
        office.goto(f"{server.url}/portal/applications/{first}")
        # The agent's application is named, not linked: it is not the office's to open.
        assert "別のユーザーIDで申し込んだもの" in office.inner_text("#next-application")
        assert office.locator("#next-application a").count() == 0
        office.click("#go-revoke")
        office.check("input[name=reason][value=superseded]")
        office.check("#understood")
        shot(office, "office-revocation-request")
        office.click("#revoke-submit")
        assert "連合会が内容を確認して失効を登録します" in office.inner_text(".notice")
        shot(office, "office-revocation-requested")
        assert status_of(server, first) is Status.ISSUED  # staff register it; then it changes
        staff.goto(server.url + "/console/revocation-requests/")
        requests = staff.inner_text("table.revocation-requests")
        assert office_letter.user_id in requests and "(superseded)" in requests
        shot(staff, "staff-revocation-requests")
