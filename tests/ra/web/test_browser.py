"""The console in a real browser (Debian's Chromium through Playwright) against gunicorn.

Screenshots of every page at 1280 and 390 pixels wide go to ``tests/artifacts/screenshots``.
Each page is also checked for mojibake, for CSP violations reported by the browser and, on
the phone width, for content wider than the screen.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest

from tests.ra.web.helpers import Staff, assert_no_mojibake
from tests.ra.web.live import BACKENDS, LOCALE, TIMEZONE, LiveServer, live_server

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
WIDTHS = (1280, 390)

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Chromium is not installed at /usr/bin/chromium"
)


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("live"), request.param) as live:
        yield live


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser: object, server: LiveServer) -> Iterator[object]:
    context = browser.new_context(  # type: ignore[attr-defined]
        locale=LOCALE, timezone_id=TIMEZONE, viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    problems: list[str] = []
    # CSP violations and script errors; a page answered 401 or 423 is a page, but an asset
    # (style sheet, image, icon) that does not load is a problem.
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


def shoot(page: object, name: str) -> None:
    """Screenshots at both widths, and the checks every page must pass."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})  # type: ignore[attr-defined]
        assert_no_mojibake(page.content())  # type: ignore[attr-defined]
        assert_no_mojibake(page.inner_text("body"))  # type: ignore[attr-defined]
        overflow = page.evaluate(  # type: ignore[attr-defined]
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} is {overflow}px wider than {width}px"
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)  # type: ignore[attr-defined]
    page.set_viewport_size({"width": 1280, "height": 900})  # type: ignore[attr-defined]


def fresh_code(secret: str) -> str:
    """A code of a time step no earlier sign-in of this account used (the replay guard)."""
    return pyotp.TOTP(secret).now()


def password_step(page: object, server: LiveServer, user_id: str, password: str) -> None:
    page.goto(server.url + "/auth/sign-in")  # type: ignore[attr-defined]
    page.fill("#user_id", user_id)  # type: ignore[attr-defined]
    page.fill("#password", password)  # type: ignore[attr-defined]
    page.click("#submit")  # type: ignore[attr-defined]


def sign_in(page: object, server: LiveServer, staff: Staff, *, shots: bool = False) -> None:
    page.goto(server.url + "/console/")  # type: ignore[attr-defined]
    assert "/auth/sign-in" in page.url  # type: ignore[attr-defined]
    if shots:
        shoot(page, "sign-in")
    page.fill("#user_id", staff.user_id)  # type: ignore[attr-defined]
    page.fill("#password", staff.password)  # type: ignore[attr-defined]
    page.click("#submit")  # type: ignore[attr-defined]
    assert page.url.endswith("/auth/totp")  # type: ignore[attr-defined]
    if shots:
        shoot(page, "totp")
    page.fill("#code", fresh_code(staff.secret))  # type: ignore[attr-defined]
    page.click("#submit")  # type: ignore[attr-defined]
    assert page.url.endswith("/console/"), page.inner_text("main")  # type: ignore[attr-defined]


def test_staff_sign_in_with_totp(page: object, server: LiveServer) -> None:
    staff = server.staff()
    sign_in(page, server, staff, shots=True)
    assert page.inner_text("h1") == "管理画面 ホーム"  # type: ignore[attr-defined]
    body = page.inner_text("main")  # type: ignore[attr-defined]
    assert "1 発行依頼待ち" in body and "失効リストはまだ登録されていません" in body
    shoot(page, "console-home")


def test_wrong_password(page: object, server: LiveServer) -> None:
    staff = server.staff()
    password_step(page, server, staff.user_id, "Wrong-pass-1")
    assert "ユーザーIDまたはパスワードが正しくありません" in page.inner_text(".alert")  # type: ignore[attr-defined]
    shoot(page, "wrong-password")


def test_lockout_after_five_failures(page: object, server: LiveServer) -> None:
    staff = server.staff()
    for _ in range(5):
        password_step(page, server, staff.user_id, "Wrong-pass-1")
    password_step(page, server, staff.user_id, staff.password)
    text = page.inner_text(".alert")  # type: ignore[attr-defined]
    assert "一時的にロックされています" in text and "以降に再度サインインできます" in text
    shoot(page, "locked-out")


def test_enrolment_with_qr_code(page: object, server: LiveServer) -> None:
    staff = server.staff(enrolled=False)
    password_step(page, server, staff.user_id, staff.password)
    assert page.url.endswith("/auth/enrol")  # type: ignore[attr-defined]
    # The QR code is an SVG from the app itself; wait until the browser has drawn it.
    page.wait_for_function(  # type: ignore[attr-defined]
        "() => { const i = document.querySelector('.qr img');"
        " return i.complete && i.naturalWidth > 100; }",
        timeout=10000,
    )
    shoot(page, "enrol")
    shown = page.inner_text(".secret").replace(" ", "")  # type: ignore[attr-defined]
    assert shown == staff.secret
    page.fill("#code", pyotp.TOTP(shown).now())  # type: ignore[attr-defined]
    page.click("#submit")  # type: ignore[attr-defined]
    assert page.url.endswith("/console/")  # type: ignore[attr-defined]
    assert "認証アプリの設定が完了しました" in page.inner_text(".notice")  # type: ignore[attr-defined]


def test_change_password_and_sign_out(page: object, server: LiveServer) -> None:
    staff = server.staff()
    sign_in(page, server, staff)
    page.click("text=パスワード変更")  # type: ignore[attr-defined]
    page.fill("#current", staff.password)  # type: ignore[attr-defined]
    page.fill("#new", "short")  # type: ignore[attr-defined]
    page.fill("#confirm", "short")  # type: ignore[attr-defined]
    page.click("#submit")  # type: ignore[attr-defined]
    errors = page.inner_text(".alert")  # type: ignore[attr-defined]
    assert "8文字以上20文字以内" in errors and "記号" in errors
    shoot(page, "change-password")
    page.fill("#current", staff.password)  # type: ignore[attr-defined]
    page.fill("#new", "Sakura-2027!")  # type: ignore[attr-defined]
    page.fill("#confirm", "Sakura-2027!")  # type: ignore[attr-defined]
    page.click("#submit")  # type: ignore[attr-defined]
    assert "パスワードを変更しました" in page.inner_text(".notice")  # type: ignore[attr-defined]
    page.click("text=サインアウト")  # type: ignore[attr-defined]
    assert "/auth/sign-in" in page.url  # type: ignore[attr-defined]
    assert "サインアウトしました" in page.inner_text(".notice")  # type: ignore[attr-defined]
    shoot(page, "signed-out")
    page.goto(server.url + "/console/")  # type: ignore[attr-defined]
    assert "/auth/sign-in" in page.url  # type: ignore[attr-defined]
    # The new password works (a code of the next time step: the last one was used).
    time.sleep(max(0.0, 30 - time.time() % 30) + 0.5)
    sign_in(page, server, Staff(staff.id, staff.user_id, "Sakura-2027!", staff.secret))


def test_language_toggle(page: object, server: LiveServer) -> None:
    page.goto(server.url + "/auth/sign-in")  # type: ignore[attr-defined]
    page.click("button:has-text('English')")  # type: ignore[attr-defined]
    assert page.inner_text("h1") == "Sign in to the console"  # type: ignore[attr-defined]
    assert page.get_attribute("html", "lang") == "en"  # type: ignore[attr-defined]
    shoot(page, "sign-in-en")
    page.click("button:has-text('日本語')")  # type: ignore[attr-defined]
    assert page.inner_text("h1") == "管理画面へのサインイン"  # type: ignore[attr-defined]
    assert re.search(r"ユーザーID", page.inner_text("main"))  # type: ignore[attr-defined]


def test_the_browser_is_japanese_in_japan(page: object, server: LiveServer) -> None:
    """Every context is made with the locale ja-JP and the time zone Asia/Tokyo."""
    page.goto(server.url + "/auth/sign-in")  # type: ignore[attr-defined]
    assert page.evaluate("navigator.language") == LOCALE  # type: ignore[attr-defined]
    zone = page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")  # type: ignore[attr-defined]
    assert zone == TIMEZONE
    offset = page.evaluate("new Date(Date.UTC(2026, 11, 1)).getTimezoneOffset()")  # type: ignore[attr-defined]
    assert offset == -9 * 60  # JST, no daylight saving
    assert page.get_attribute("html", "lang") == "ja"  # type: ignore[attr-defined]
