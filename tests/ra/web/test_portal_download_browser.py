"""The portal after applying, in a real browser against gunicorn, on both databases.

状況照会, the download with the issuance password (the file saved through Playwright's
download API and opened with ``openssl pkcs12`` and NSS's ``pk12util``), the installation
guides, renewal, and a 失効依頼 that staff then see and register in the console.  Screenshots
``portal_download_*.png`` of every page at 1280 and 390 pixels wide, with the checks of
:func:`tests.ra.web.test_browser.shoot` (mojibake, CSP errors, nothing wider than the screen).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from ra.crypto import keys
from ra.lifecycle import Status
from ra.store.models import Application
from tests.pki import Pki
from tests.ra.web import portal_world as world
from tests.ra.web import test_browser as live_pages
from tests.ra.web.live import BACKENDS, LiveServer, live_server
from tests.ra.web.test_portal_download import open_pkcs12

pytestmark = live_pages.pytestmark
browser = live_pages.browser
page = live_pages.page
shoot = live_pages.shoot
staff_sign_in = live_pages.sign_in


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, pki: Pki
) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("live")
    issuing, root = world.chain_files(pki, folder / "ca")
    extra = f'[ra.link]\nmode = "offline"\nca_certificate = "{issuing}"\nca_chain = ["{root}"]\n'
    with live_server(folder, request.param, extra=extra) as live:
        yield live


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _issued(server: LiveServer, pki: Pki, holder: world.Holder, **kw: object) -> int:
    return world.issued(
        server.database.factory,
        holder,
        _now(),
        pki,
        settings=server.settings,
        profile=server.settings.certificate_profile(),
        **kw,  # type: ignore[arg-type]
    )


def _portal_sign_in(page: object, server: LiveServer, holder: world.Holder) -> None:
    page.goto(server.url + "/portal/sign-in")  # type: ignore[attr-defined]
    page.fill("#user_id", holder.user_id)  # type: ignore[attr-defined]
    page.fill("#password", holder.password)  # type: ignore[attr-defined]
    page.click("#submit")  # type: ignore[attr-defined]
    assert page.url.endswith("/portal/"), page.inner_text("main")  # type: ignore[attr-defined]


def _status(server: LiveServer, app_id: int) -> Status:
    with server.database.factory() as s:
        app = s.get(Application, app_id)
        assert app is not None
        return Status(app.status)


def test_status_and_download_with_the_issuance_password(
    page: object, server: LiveServer, pki: Pki, tmp_path: Path
) -> None:
    office = world.add_holder(server.database.factory, _now(), name="証明ケアサービス 中央事業所")
    app_id = _issued(server, pki, office)
    _portal_sign_in(page, server, office)
    page.click("nav.main >> text=状況照会")  # type: ignore[attr-defined]
    assert page.inner_text("h1") == "状況照会"  # type: ignore[attr-defined]
    assert "5 発行済み" in page.inner_text("table.portal-applications")  # type: ignore[attr-defined]
    shoot(page, "portal_download_status-list")
    page.click(f"#application-{app_id} >> text=開く")  # type: ignore[attr-defined]
    body = page.inner_text("main")  # type: ignore[attr-defined]
    assert "次にすること" in body and "証明書が発行されました" in body
    history = page.inner_text("table.history")  # type: ignore[attr-defined]
    assert "連合会" in history and "証明書登録" in history
    shoot(page, "portal_download_status")

    page.click("#go-download")  # type: ignore[attr-defined]
    assert page.inner_text("h1").startswith("証明書のダウンロード")  # type: ignore[attr-defined]
    shoot(page, "portal_download_form")
    page.fill("#issuance_password", "WRONG-PASS-WORD")  # type: ignore[attr-defined]
    page.click("#download-submit")  # type: ignore[attr-defined]
    alert = page.inner_text("#problem")  # type: ignore[attr-defined]
    assert "証明書発行用パスワードが正しくありません" in alert
    shoot(page, "portal_download_wrong-password")

    for encryption, legacy in (("aes", False), ("legacy", True)):
        page.fill("#issuance_password", office.issuance_password.lower())  # type: ignore[attr-defined]
        page.check(f"input[name=encryption][value={encryption}]")  # type: ignore[attr-defined]
        with page.expect_download() as info:  # type: ignore[attr-defined]
            page.click("#download-submit")  # type: ignore[attr-defined]
        download = info.value
        # Chromium takes the RFC 5987 name: the office's own, in Japanese.
        assert download.suggested_filename == (
            f"証明ケアサービス 中央事業所_{office.number}_{app_id}.p12"
        )
        saved = tmp_path / f"{encryption}.p12"
        download.save_as(saved)
        report = open_pkcs12(saved, office.issuance_password, legacy=legacy)
        assert ("3DES" in report or "TripleDES" in report) if legacy else "AES-256" in report

    for platform, words in (
        ("windows", "証明書のインポート ウィザード"),
        ("macos", "キーチェーンアクセス"),
        ("firefox", "あなたの証明書"),
    ):
        page.goto(f"{server.url}/portal/applications/{app_id}/download")  # type: ignore[attr-defined]
        page.click(f"#guide-{platform}")  # type: ignore[attr-defined]
        assert words in page.inner_text("main")  # type: ignore[attr-defined]
        shoot(page, f"portal_download_install-{platform}")
    page.goto(f"{server.url}/portal/applications/{app_id}")  # type: ignore[attr-defined]
    assert "PKCS#12 のダウンロード" in page.inner_text("table.history")  # type: ignore[attr-defined]


def test_own_csr_downloads_pem_and_p7b(page: object, server: LiveServer, pki: Pki) -> None:
    office = world.add_holder(server.database.factory, _now())
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    csr = keys.make_csr(key, office_number=office.number, office_name=office.name)
    app_id = _issued(server, pki, office, csr=csr)
    _portal_sign_in(page, server, office)
    page.goto(f"{server.url}/portal/applications/{app_id}/download")  # type: ignore[attr-defined]
    shoot(page, "portal_download_own-csr")
    for button, suffix in (("#download-pem", "pem"), ("#download-p7b", "p7b")):
        with page.expect_download() as info:  # type: ignore[attr-defined]
            page.click(button)  # type: ignore[attr-defined]
        assert info.value.suggested_filename.endswith(f"_{office.number}_{app_id}.{suffix}")


def test_renewal_then_the_new_application(page: object, server: LiveServer, pki: Pki) -> None:
    office = world.add_holder(server.database.factory, _now())
    current = _issued(server, pki, office, days=40)
    _portal_sign_in(page, server, office)
    page.goto(f"{server.url}/portal/applications/{current}")  # type: ignore[attr-defined]
    assert "いまのうちに次の証明書をお申し込みください" in page.inner_text("#next")  # type: ignore[attr-defined]
    shoot(page, "portal_download_status-renewal")
    page.click("#go-renew")  # type: ignore[attr-defined]
    shoot(page, "portal_download_renew")
    page.fill("#issuance_password", office.issuance_password)  # type: ignore[attr-defined]
    page.check("#consent_fee_offset")  # type: ignore[attr-defined]
    page.click("#renew-submit")  # type: ignore[attr-defined]
    assert "次の証明書のお申し込みを受け付けました" in page.inner_text(".notice")  # type: ignore[attr-defined]
    assert "1 発行依頼待ち" in page.inner_text("#next")  # type: ignore[attr-defined]
    shoot(page, "portal_download_status-new")
    assert _status(server, current) is Status.ISSUED  # the current one stays valid


def test_revocation_request_then_seen_and_registered_in_the_console(
    page: object, browser: object, server: LiveServer, pki: Pki
) -> None:
    office = world.add_holder(server.database.factory, _now(), name="さくら訪問介護 西事業所")
    app_id = _issued(server, pki, office)
    _portal_sign_in(page, server, office)
    page.goto(f"{server.url}/portal/applications/{app_id}")  # type: ignore[attr-defined]
    page.click("#go-revoke")  # type: ignore[attr-defined]
    shoot(page, "portal_download_revocation-request")
    page.check("input[name=reason][value=cessationOfOperation]")  # type: ignore[attr-defined]
    page.fill("#note", "2026年12月末で事業所を閉鎖します。")  # type: ignore[attr-defined]
    page.check("#understood")  # type: ignore[attr-defined]
    page.click("#revoke-submit")  # type: ignore[attr-defined]
    assert "失効依頼を受け付けました" in page.inner_text(".notice")  # type: ignore[attr-defined]
    assert "事業所を閉鎖します" in page.inner_text("#revocation-request")  # type: ignore[attr-defined]
    assert "失効を依頼済みです" in page.inner_text("#next")  # type: ignore[attr-defined]
    assert _status(server, app_id) is Status.ISSUED
    shoot(page, "portal_download_status-requested")

    context = browser.new_context(locale="ja-JP", viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    console = context.new_page()
    try:
        staff_sign_in(console, server, server.staff())
        console.goto(f"{server.url}/console/list/?search=1&uid={office.user_id}&match=exact")
        assert "失効依頼あり" in console.inner_text("table.list")
        shoot(console, "portal_download_console-list")
        console.click("nav.main >> text=失効依頼")
        assert office.user_id in console.inner_text("table.revocation-requests")
        shoot(console, "portal_download_console-requests")
        console.click(f'table.revocation-requests a[href^="/console/applications/{app_id}#"]')
        assert "事業所・代理人からの失効依頼" in console.inner_text("#holder-request")
        assert console.input_value("#revoke-reason") == "cessationOfOperation"
        shoot(console, "portal_download_console-detail")
        console.click("#revoke-submit")
        assert "失効申請を登録しました。" in console.inner_text(".notice")
        assert _status(server, app_id) is Status.REVOCATION_REQUESTED
    finally:
        context.close()

    page.goto(f"{server.url}/portal/applications/{app_id}/download")  # type: ignore[attr-defined]
    assert "失効の手続き中のため、ダウンロードできません" in page.inner_text("#refused")  # type: ignore[attr-defined]
    shoot(page, "portal_download_revoked")
    page.goto(f"{server.url}/portal/applications/{app_id}")  # type: ignore[attr-defined]
    assert "6 失効依頼中" in page.inner_text("#next")  # type: ignore[attr-defined]
    shoot(page, "portal_download_status-revoking")
