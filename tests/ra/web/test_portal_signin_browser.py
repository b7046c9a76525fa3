"""An office's first sign-in and a forgotten password in a real browser, against gunicorn.

The mail codes come through a real SMTP server (aiosmtpd on 127.0.0.1, the recorder of
tests/ra/mailing/test_mail.py): the RA sends each code mail as soon as the page that asked for
it has been answered.  Screenshots of every page at 1280 and 390 pixels wide go to
``tests/artifacts/screenshots/portal_signin_*.png``, with the checks of test_browser.shoot
(no mojibake, nothing wider than the phone).  SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator

import pyotp
import pytest
from aiosmtpd.controller import Controller

from tests.ra.mailing.test_mail import Recorder, _free_port
from tests.ra.web.helpers import PortalUser, add_portal_account
from tests.ra.web.live import BACKENDS, LiveServer, live_server
from tests.ra.web.test_browser import CHROMIUM, browser, page, shoot  # noqa: F401

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Chromium is not installed at /usr/bin/chromium"
)

KANA = "ショウメイ ケアサービス"
NEW_PASSWORD = "Sakura-2027!"


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Recorder, int]]:
    recorder = Recorder()
    port = _free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield recorder, port
    finally:
        controller.stop()


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    smtp: tuple[Recorder, int],
) -> Iterator[LiveServer]:
    extra = (
        f'[ra.mail]\nsmtp_port = {smtp[1]}\nsender = "shomei@federation.example"\n'
        '[ra.documents]\nissuer_phone = "03-1234-5678"\n'
    )
    with live_server(tmp_path_factory.mktemp("live"), request.param, extra=extra) as live:
        yield live


def wait_for_code(recorder: Recorder, to: str, after: int) -> tuple[str, str]:
    """The 6-digit code of the first mail to ``to`` after the first ``after`` mails."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for message in recorder.messages[after:]:
            if str(message["To"]) == to:
                text = message.get_content()  # type: ignore[attr-defined]
                found = re.search(r"確認コード: (\d{6})", text)
                assert found, text
                return found.group(1), str(message["Subject"])
        time.sleep(0.1)
    raise AssertionError(f"no mail to {to} arrived")


def test_an_office_does_its_first_sign_in(
    page: object,  # noqa: F811  (the fixture of test_browser)
    server: LiveServer,
    smtp: tuple[Recorder, int],
) -> None:
    recorder, _port = smtp
    office: PortalUser = add_portal_account(
        server.database,
        dt.datetime.now(dt.UTC),
        first_sign_in_done=False,
        name_kana=KANA,
        email="office@example.jp",
    )
    with server.database.factory() as s:
        from ra.store.models import Account

        number = s.get(Account, office.id).office_number  # type: ignore[union-attr]
    p = page
    p.goto(server.url + "/portal/")  # type: ignore[attr-defined]
    assert "/portal/sign-in" in p.url  # type: ignore[attr-defined]
    shoot(p, "portal_signin_01_sign-in")
    p.fill("#user_id", office.user_id)  # type: ignore[attr-defined]
    p.fill("#password", office.password)  # type: ignore[attr-defined]
    p.click("#submit")  # type: ignore[attr-defined]

    assert p.url.endswith("/portal/first-sign-in/terms")  # type: ignore[attr-defined]
    assert p.inner_text("h1") == "利用規約の確認"  # type: ignore[attr-defined]
    assert "第1条(目的)" in p.inner_text(".fs-terms")  # type: ignore[attr-defined]
    shoot(p, "portal_signin_02_terms")
    p.click("#submit")  # type: ignore[attr-defined]
    assert "利用規約への同意が必要です" in p.inner_text(".alert")  # type: ignore[attr-defined]
    shoot(p, "portal_signin_03_terms-not-ticked")
    p.check("#agree")  # type: ignore[attr-defined]
    p.click("#submit")  # type: ignore[attr-defined]

    assert p.url.endswith("/portal/first-sign-in/identity")  # type: ignore[attr-defined]
    shoot(p, "portal_signin_04_identity")
    p.fill("#number", number or "")  # type: ignore[attr-defined]
    p.fill("#kana", "しょうめい けあせんたー")  # type: ignore[attr-defined]
    p.click("#submit")  # type: ignore[attr-defined]
    assert "あと2回間違えると" in p.inner_text(".alert")  # type: ignore[attr-defined]
    shoot(p, "portal_signin_05_identity-wrong")
    p.fill("#kana", "ｼｮｳﾒｲ ｹｱｻｰﾋﾞｽ")  # type: ignore[attr-defined]  # half-width: the same name
    p.click("#submit")  # type: ignore[attr-defined]

    assert p.url.endswith("/portal/first-sign-in/password")  # type: ignore[attr-defined]
    shoot(p, "portal_signin_06_password")
    p.fill("#new", "sakura")  # type: ignore[attr-defined]
    p.fill("#confirm", "sakura")  # type: ignore[attr-defined]
    p.click("#submit")  # type: ignore[attr-defined]
    lines = p.locator(".alert li").all_inner_texts()  # type: ignore[attr-defined]
    assert lines == [
        "パスワードは8文字以上20文字以内で入力してください",
        "パスワードには数字を1文字以上含めてください",
        "パスワードには記号(! # $ % & - など)を1文字以上含めてください",
    ]
    shoot(p, "portal_signin_07_password-rules")
    p.fill("#new", NEW_PASSWORD)  # type: ignore[attr-defined]
    p.fill("#confirm", NEW_PASSWORD)  # type: ignore[attr-defined]
    p.click("#submit")  # type: ignore[attr-defined]

    assert p.url.endswith("/portal/first-sign-in/email")  # type: ignore[attr-defined]
    assert p.input_value("#email") == "office@example.jp"  # type: ignore[attr-defined]
    shoot(p, "portal_signin_08_email")
    p.fill("#email", "jimusho@example.jp")  # type: ignore[attr-defined]
    before = len(recorder.messages)
    p.click("#submit")  # type: ignore[attr-defined]

    assert p.url.endswith("/portal/first-sign-in/email/code")  # type: ignore[attr-defined]
    assert "jimusho@example.jp あてに" in p.inner_text("main")  # type: ignore[attr-defined]
    shoot(p, "portal_signin_09_code")
    code, subject = wait_for_code(recorder, "jimusho@example.jp", before)
    assert subject == "【証明連合会】メールアドレスの確認コード"
    wrong = f"{(int(code) + 1) % 1000000:06d}"
    p.fill("#code", wrong)  # type: ignore[attr-defined]
    p.click("#submit")  # type: ignore[attr-defined]
    assert "あと4回まで" in p.inner_text(".alert")  # type: ignore[attr-defined]
    shoot(p, "portal_signin_10_code-wrong")
    p.fill("#code", code)  # type: ignore[attr-defined]
    p.click("#submit")  # type: ignore[attr-defined]

    assert p.url.endswith("/portal/first-sign-in/done")  # type: ignore[attr-defined]
    assert p.inner_text("h1") == "初回の設定が完了しました"  # type: ignore[attr-defined]
    shoot(p, "portal_signin_11_done")
    p.click("#to-portal")  # type: ignore[attr-defined]
    assert p.url.endswith("/portal/")  # type: ignore[attr-defined]
    p.click("text=サインアウト")  # type: ignore[attr-defined]
    assert p.url.endswith("/portal/sign-in")  # type: ignore[attr-defined]
    assert "サインアウトしました" in p.inner_text(".notice")  # type: ignore[attr-defined]
    # The chosen password signs in straight to the portal now.
    p.fill("#user_id", office.user_id)  # type: ignore[attr-defined]
    p.fill("#password", NEW_PASSWORD)  # type: ignore[attr-defined]
    p.click("#submit")  # type: ignore[attr-defined]
    assert p.url.endswith("/portal/")  # type: ignore[attr-defined]


def test_an_office_resets_a_forgotten_password(
    page: object,  # noqa: F811  (the fixture of test_browser)
    server: LiveServer,
    smtp: tuple[Recorder, int],
) -> None:
    recorder, _port = smtp
    office = add_portal_account(server.database, dt.datetime.now(dt.UTC), email="reset@example.jp")
    p = page
    p.goto(server.url + "/portal/sign-in")  # type: ignore[attr-defined]
    p.click("#forgot")  # type: ignore[attr-defined]
    assert p.url.endswith("/portal/password/forgot")  # type: ignore[attr-defined]
    assert "03-1234-5678" in p.inner_text(".portal-phone")  # type: ignore[attr-defined]
    shoot(p, "portal_signin_20_forgot")
    p.fill("#user_id", office.user_id)  # type: ignore[attr-defined]
    before = len(recorder.messages)
    p.click("#submit")  # type: ignore[attr-defined]
    assert p.url.endswith("/portal/password/forgot/code")  # type: ignore[attr-defined]
    shoot(p, "portal_signin_21_forgot-code")
    code, subject = wait_for_code(recorder, "reset@example.jp", before)
    assert subject == "【証明連合会】パスワード再設定の確認コード"
    p.fill("#code", code)  # type: ignore[attr-defined]
    p.click("#submit")  # type: ignore[attr-defined]
    assert p.url.endswith("/portal/password/forgot/new")  # type: ignore[attr-defined]
    shoot(p, "portal_signin_22_forgot-new")
    p.fill("#new", NEW_PASSWORD)  # type: ignore[attr-defined]
    p.fill("#confirm", NEW_PASSWORD)  # type: ignore[attr-defined]
    p.click("#submit")  # type: ignore[attr-defined]
    assert p.url.endswith("/portal/sign-in")  # type: ignore[attr-defined]
    assert "新しいパスワードを設定しました" in p.inner_text(".notice")  # type: ignore[attr-defined]
    shoot(p, "portal_signin_23_forgot-done")
    p.fill("#user_id", office.user_id)  # type: ignore[attr-defined]
    p.fill("#password", NEW_PASSWORD)  # type: ignore[attr-defined]
    p.click("#submit")  # type: ignore[attr-defined]
    assert p.url.endswith("/portal/")  # type: ignore[attr-defined]


@pytest.fixture(scope="module", params=BACKENDS)
def totp_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    smtp: tuple[Recorder, int],
) -> Iterator[LiveServer]:
    extra = f"[ra.signin]\nportal_totp = true\n[ra.mail]\nsmtp_port = {smtp[1]}\n"
    with live_server(tmp_path_factory.mktemp("live"), request.param, extra=extra) as live:
        yield live


def test_with_portal_totp_an_office_enrols_its_app_and_uses_it(
    browser: object,  # noqa: F811  (the fixture of test_browser)
    totp_server: LiveServer,
) -> None:
    # The page fixture is bound to the other server; this one makes its own context.
    context = browser.new_context(locale="ja-JP", viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    p = context.new_page()
    office = add_portal_account(totp_server.database, dt.datetime.now(dt.UTC))
    p.goto(totp_server.url + "/portal/sign-in")
    p.fill("#user_id", office.user_id)
    p.fill("#password", office.password)
    p.click("#submit")
    assert p.url.endswith("/portal/first-sign-in/totp")
    p.wait_for_function(
        "() => { const i = document.querySelector('.qr img');"
        " return i.complete && i.naturalWidth > 100; }",
        timeout=10000,
    )
    shoot(p, "portal_signin_12_totp")
    secret = p.inner_text(".secret").replace(" ", "")
    totp = pyotp.TOTP(secret)
    p.fill("#code", totp.now())
    p.click("#submit")
    assert p.url.endswith("/portal/first-sign-in/done")
    assert "認証アプリのコードも入力します" in p.inner_text("main")
    shoot(p, "portal_signin_13_totp-done")
    p.click("text=サインアウト")
    p.fill("#user_id", office.user_id)
    p.fill("#password", office.password)
    p.click("#submit")
    assert p.url.endswith("/portal/totp")
    shoot(p, "portal_signin_14_totp-sign-in")
    time.sleep(max(0.0, 30 - time.time() % 30) + 0.5)  # a code of a step not used yet
    p.fill("#code", totp.now())
    p.click("#submit")
    assert p.url.endswith("/portal/"), p.inner_text("main")
    context.close()
