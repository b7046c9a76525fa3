"""お知らせ and the A7 reissue in a real browser (Debian's Chromium through Playwright).

An office signs in to the portal, finds its unopened notices from the menu, opens one, asks
for a new issuance password sealed to its certificate and downloads the sealed notice, which
opens with its PKCS#12; an office without a certificate is shown the phone path; staff see
the opened dates.  Screenshots ``portal_notices_*.png`` at 1280 and 390 pixels wide, with the
checks of :func:`tests.ra.web.test_browser.shoot` (mojibake, CSP errors, nothing wider than
the screen).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ra.people.passwords import check_issuance_password
from ra.store.models import Account
from signer.credentials import load_pkcs12
from signer.notices import open_notice
from tests.pki import Pki
from tests.ra.web import test_browser as live_pages
from tests.ra.web.live import LiveServer
from tests.ra.web.test_notices_pages import PASSWORD_SHAPE, add_notice, add_office, issued_office

pytestmark = live_pages.pytestmark
server = live_pages.server
browser = live_pages.browser
page = live_pages.page
shoot = live_pages.shoot
sign_in = live_pages.sign_in


def _portal_sign_in(page: object, server: LiveServer, user_id: str, password: str) -> None:
    page.goto(server.url + "/portal/sign-in")  # type: ignore[attr-defined]
    page.fill("#user_id", user_id)  # type: ignore[attr-defined]
    page.fill("#password", password)  # type: ignore[attr-defined]
    page.click("#submit")  # type: ignore[attr-defined]
    assert page.url.endswith("/portal/"), page.inner_text("main")  # type: ignore[attr-defined]


def _number(server: LiveServer, base: int) -> str:
    # Each backend's server is its own database, but keep the numbers apart anyway.
    return f"{base + (0 if server.settings.database_url.startswith('sqlite') else 50):010d}"


def test_notices_reissue_and_download(
    page: object, server: LiveServer, pki: Pki, tmp_path: Path
) -> None:
    now = dt.datetime.now(dt.UTC)
    issued = issued_office(server.database, server.settings, now, pki, _number(server, 1310000101))
    office = issued.office
    add_notice(
        server.database,
        office.id,
        now - dt.timedelta(days=40),
        application_id=issued.application_id,
        body="中央ケア事業所 様\n\nお申し込みの証明書が発行されました(申込番号 1)。\n"
        "ポータルにログインし、証明書発行用パスワードを入力してダウンロードしてください。",
    )
    add_notice(
        server.database,
        office.id,
        now - dt.timedelta(days=3),
        kind="certificate_expiring",
        title="証明書の有効期限が近づいています(残り 30 日以内)",
        body="中央ケア事業所 様\n\n期限までに新しい証明書をお申し込みください。",
    )
    _portal_sign_in(page, server, office.user_id, office.login_password)
    menu = page.inner_text("nav.main")  # type: ignore[attr-defined]
    assert "お知らせ 未開封 2 件" in menu
    page.click("nav.main a:has-text('お知らせ')")  # type: ignore[attr-defined]
    assert page.inner_text("h1") == "お知らせ"  # type: ignore[attr-defined]
    body = page.inner_text("main")  # type: ignore[attr-defined]
    assert "未開封のお知らせが 2 件あります" in body and "通知種別" in body
    assert "新しいパスワードを暗号化して受け取る" in body
    shoot(page, "portal_notices_list")

    page.click("text=証明書の有効期限が近づいています")  # type: ignore[attr-defined]
    assert page.inner_text("#opened") != "未開封"  # type: ignore[attr-defined]
    assert "期限までに新しい証明書をお申し込みください" in page.inner_text("main")  # type: ignore[attr-defined]
    shoot(page, "portal_notices_show")
    page.click("text=お知らせ一覧に戻る")  # type: ignore[attr-defined]
    assert "未開封 1 件" in page.inner_text("nav.main")  # type: ignore[attr-defined]

    page.click("#reissue-submit")  # type: ignore[attr-defined]
    assert "暗号化してお届けしました" in page.inner_text(".notice")  # type: ignore[attr-defined]
    assert page.inner_text("#opened") == "未開封"  # type: ignore[attr-defined]
    main = page.inner_text("main")  # type: ignore[attr-defined]
    assert "コマンド プロンプト" in main and "ターミナル" in main and "shomei notice open" in main
    assert PASSWORD_SHAPE.search(main) is None
    shoot(page, "portal_notices_sealed")
    with page.expect_download() as info:  # type: ignore[attr-defined]
        page.click("#download")  # type: ignore[attr-defined]
    download = info.value
    assert download.suggested_filename.startswith("notice-")
    assert download.suggested_filename.endswith(".p7m")
    saved = tmp_path / download.suggested_filename
    download.save_as(str(saved))
    document = open_notice(
        saved.read_bytes(), credentials=load_pkcs12(issued.p12, office.issuance_password)
    ).decode()
    new_password = document.split("新しい証明書発行用パスワード: ")[1].split()[0]
    with server.database.factory() as s:
        account = s.get(Account, office.id)
        assert account is not None
        check_issuance_password(account.issuance_password_hash, new_password)
    page.reload()  # type: ignore[attr-defined]
    assert page.inner_text("#opened") != "未開封"  # type: ignore[attr-defined]
    page.goto(server.url + "/portal/password-reissue")  # type: ignore[attr-defined]
    assert page.inner_text("h1") == "証明書発行用パスワードの再発行"  # type: ignore[attr-defined]
    shoot(page, "portal_notices_reissue")

    # Staff see on the account page which notices were opened, and when.
    page.click("text=サインアウト")  # type: ignore[attr-defined]
    sign_in(page, server, server.staff())
    page.goto(f"{server.url}/console/accounts/{office.user_id}")  # type: ignore[attr-defined]
    card = page.inner_text("#notices")  # type: ignore[attr-defined]
    assert "パスワード再発行" in card and "有効期限の事前通知" in card
    assert card.count("未開封") == 1  # the issued notice was never opened
    shoot(page, "portal_notices_console_account")
    page.goto(f"{server.url}/console/applications/{issued.application_id}")  # type: ignore[attr-defined]
    card = page.inner_text("#notices")  # type: ignore[attr-defined]
    assert "証明書発行" in card and "未開封" in card and "パスワード再発行" not in card
    shoot(page, "portal_notices_console_detail")


def test_without_a_certificate_the_phone_path(page: object, server: LiveServer) -> None:
    office = add_office(
        server.database, dt.datetime.now(dt.UTC), _number(server, 1310000201), "西ケア事業所"
    )
    _portal_sign_in(page, server, office.user_id, office.login_password)
    page.goto(server.url + "/portal/password-reissue")  # type: ignore[attr-defined]
    main = page.inner_text("main")  # type: ignore[attr-defined]
    assert "電話で再発行してください" in main and office.user_id in main
    assert page.query_selector("#reissue-submit") is None  # type: ignore[attr-defined]
    shoot(page, "portal_notices_phone")
    page.goto(server.url + "/portal/notices/")  # type: ignore[attr-defined]
    assert "お知らせはまだありません" in page.inner_text("main")  # type: ignore[attr-defined]
    shoot(page, "portal_notices_empty")
