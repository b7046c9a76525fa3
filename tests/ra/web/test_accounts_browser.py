"""事業所管理 and staff management in a real browser (Chromium through Playwright, gunicorn).

A CSV with a bad row shows the problem and creates nothing; a good one creates the accounts
and the letters PDF downloads and reads back with the user IDs (rendered to PNG with pdftoppm
for a person to look at).  A larger file is imported in the background by a real
``shomei ra scheduler`` process while its page reloads itself; disabling an account and the
resets ask first, and キャンセル does nothing.  Screenshots ``accounts-*.png`` and
``staff-*.png`` at 1280 and 390 pixels go to ``tests/artifacts/screenshots``.
"""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ra.store.models import Account, AccountKind
from ra.store.vault import load_vault
from tests.ra.web.helpers import add_staff
from tests.ra.web.live import BACKENDS, LiveServer, live_server
from tests.ra.web.test_browser import CHROMIUM, SHOTS, browser, page, shoot, sign_in

__all__ = ["browser", "page"]  # the fixtures, shared with test_browser

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Chromium is not installed at /usr/bin/chromium"
)
DOCUMENTS = Path(__file__).resolve().parents[2] / "artifacts" / "documents"
HEADER = "種別,番号,名称,郵便番号,住所,電話番号,代表者番号,メールアドレス\r\n"
ROWS = [
    "事業所,1410000001,ひかり訪問介護ステーション,100-0001,東京都千代田区千代田1-1,03-1234-5678,,a@example.jp",
    "代理人,9100000002,請求代行さくら合同会社,530-0001,大阪府大阪市北区梅田2-2,06-3456-7890,,b@example.jp",
]
BAD = "事業所,14100,ほし介護,,東京都,03-1234-5678,,not-a-mail"


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    with live_server(
        tmp_path_factory.mktemp("live-accounts"),
        request.param,
        extra='[ra.documents]\nissuer_address = "東京都千代田区霞が関1-1-1"\n'
        'issuer_postal_code = "100-0013"\nissuer_phone = "03-0000-0000"\n'
        "[ra.schedule]\nimport_poll_seconds = 1\n",
    ) as live:
        yield live


def _accounts(server: LiveServer) -> int:
    with server.database.factory() as s:
        kinds = (AccountKind.OFFICE, AccountKind.AGENT)
        return int(
            s.scalar(select(func.count()).select_from(Account).where(Account.kind.in_(kinds))) or 0
        )


def _upload(page: object, server: LiveServer, path: Path) -> None:
    page.goto(server.url + "/console/accounts/import")  # type: ignore[attr-defined]
    page.set_input_files("#file", str(path))  # type: ignore[attr-defined]
    page.click("#submit")  # type: ignore[attr-defined]


def test_csv_upload_preview_create_and_letters(
    page: object, server: LiveServer, tmp_path: Path
) -> None:
    staff = server.staff()
    sign_in(page, server, staff)
    page.goto(server.url + "/console/accounts/")  # type: ignore[attr-defined]
    shoot(page, "accounts-list-empty")
    page.goto(server.url + "/console/accounts/import")  # type: ignore[attr-defined]
    shoot(page, "accounts-upload")

    bad = tmp_path / "bad.csv"
    bad.write_bytes((HEADER + "\r\n".join([ROWS[0], BAD, ROWS[1]]) + "\r\n").encode("cp932"))
    _upload(page, server, bad)
    alert = page.inner_text(".alert")  # type: ignore[attr-defined]
    assert "2 件の誤りがあります" in alert and "1 件も作成していません" in alert
    table = page.inner_text("table.preview")  # type: ignore[attr-defined]
    assert "ほし介護" in table and "ひかり訪問介護ステーション" in table
    assert "事業所番号は半角数字 10 桁です" in table
    assert page.locator("#create").count() == 0  # type: ignore[attr-defined]
    shoot(page, "accounts-preview-bad")
    assert _accounts(server) == 0

    good = tmp_path / "good.csv"
    good.write_bytes(("\ufeff" + HEADER + "\r\n".join(ROWS) + "\r\n").encode("utf-8"))
    _upload(page, server, good)
    assert "誤りはありません" in page.inner_text("main")  # type: ignore[attr-defined]
    shoot(page, "accounts-preview-good")
    page.click("#create")  # type: ignore[attr-defined]
    assert "/console/accounts/letters/" in page.url  # type: ignore[attr-defined]
    assert "2 件のアカウントを作成しました" in page.inner_text(".notice")  # type: ignore[attr-defined]
    shoot(page, "accounts-letters")
    assert _accounts(server) == 2
    with server.database.factory() as s:
        user_ids = sorted(
            s.scalars(select(Account.user_id).where(Account.kind != AccountKind.STAFF))
        )
    for user_id in user_ids:
        assert user_id in page.inner_text("table")  # type: ignore[attr-defined]

    with page.expect_download() as info:  # type: ignore[attr-defined]
        page.click("#letters-pdf")  # type: ignore[attr-defined]
    pdf = tmp_path / "letters.pdf"
    info.value.save_as(str(pdf))
    text = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, check=True, text=True
    ).stdout
    assert text.count("ユーザーID・パスワード通知書") == 2
    for user_id in user_ids:
        assert user_id in text
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, check=True, text=True)
    assert "IPAexGothic" in fonts.stdout and " yes " in fonts.stdout
    DOCUMENTS.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "pdftoppm",
            "-png",
            "-r",
            "60",
            "-f",
            "1",
            "-l",
            "1",
            str(pdf),
            str(DOCUMENTS / "accounts-letter"),
        ],
        check=True,
    )

    page.goto(server.url + "/console/accounts/?q=" + user_ids[0])  # type: ignore[attr-defined]
    shoot(page, "accounts-search")
    page.click(f"text={user_ids[0]}")  # type: ignore[attr-defined]
    assert user_ids[0] in page.inner_text("h1")  # type: ignore[attr-defined]
    shoot(page, "accounts-detail")


def test_overdue_accounts_are_highlighted(page: object, server: LiveServer) -> None:
    from ra.party import Party
    from ra.people import accounts

    with server.database.factory() as s, s.begin():
        accounts.add_portal_account(
            s,
            Party.operator(),
            accounts.AccountInput(
                kind=AccountKind.OFFICE,
                number="1410000099",
                name="こだま介護サービス",
                address="東京都",
                phone="03-1111-2222",
                email="kodama@example.jp",
            ),
            now=dt.datetime.now(dt.UTC) - dt.timedelta(days=5),
        )
    sign_in(page, server, server.staff())
    page.goto(server.url + "/console/accounts/?overdue=1")  # type: ignore[attr-defined]
    row = page.inner_text("tr.overdue")  # type: ignore[attr-defined]
    assert "こだま介護サービス" in row and "未ログイン" in row
    shoot(page, "accounts-overdue")
    page.click("tr.overdue button")  # type: ignore[attr-defined]
    assert "送信待ちに登録しました" in page.inner_text(".notice")  # type: ignore[attr-defined]


def test_staff_management(page: object, server: LiveServer) -> None:
    admin = add_staff(
        server.database,
        load_vault(server.settings.secrets_key_file),
        dt.datetime.now(dt.UTC),
        kind=AccountKind.ADMIN,
    )
    sign_in(page, server, admin)
    page.goto(server.url + "/console/staff/")  # type: ignore[attr-defined]
    shoot(page, "staff-list")
    page.fill("#name", "職員 三郎")  # type: ignore[attr-defined]
    page.fill("#email", "saburo@example.jp")  # type: ignore[attr-defined]
    page.fill("#user_id", "saburo")  # type: ignore[attr-defined]
    page.click("#submit")  # type: ignore[attr-defined]
    assert page.inner_text("#new-user-id") == "saburo"  # type: ignore[attr-defined]
    assert page.locator(".qr svg").count() == 1  # type: ignore[attr-defined]
    shoot(page, "staff-created")
    assert SHOTS.joinpath("staff-created-390.png").exists()

    page.goto(server.url + "/console/staff/")  # type: ignore[attr-defined]
    page.click("tr:has-text('saburo') button:has-text('認証アプリをリセット')")  # type: ignore[attr-defined]
    assert "職員 三郎(saburo)の認証アプリをリセットしますか" in page.inner_text("h1")  # type: ignore[attr-defined]
    shoot(page, "staff-confirm-totp")
    page.click("#confirm-yes")  # type: ignore[attr-defined]
    assert "リセットしました" in page.inner_text(".notice")  # type: ignore[attr-defined]


def test_a_large_csv_is_imported_by_the_scheduler_while_the_page_reloads(
    page: object, server: LiveServer, tmp_path: Path
) -> None:
    from ra.people.import_runs import SMALL

    staff = server.staff()
    sign_in(page, server, staff)
    count = SMALL + 5
    rows = [
        f"事業所,{1420000000 + n:010d},みなと訪問看護ステーション{n},105-0011,"
        f"東京都港区芝公園{n}-1,03-3333-{n:04d},,m{n}@example.jp"
        for n in range(count)
    ]
    big = tmp_path / "big.csv"
    big.write_bytes((HEADER + "\r\n".join(rows) + "\r\n").encode("cp932"))
    before = _accounts(server)
    _upload(page, server, big)
    assert f"{count} 件のアカウントを作成します" in page.inner_text("main")  # type: ignore[attr-defined]
    page.click("#create")  # type: ignore[attr-defined]
    assert "/console/accounts/imports/" in page.url  # type: ignore[attr-defined]
    assert "処理待ち" in page.inner_text("#import-status")  # type: ignore[attr-defined]
    assert page.locator("progress#import-progress").count() == 1  # type: ignore[attr-defined]
    shoot(page, "accounts-import-queued")
    assert _accounts(server) == before

    shomei = Path(sys.executable).with_name("shomei")
    log = tmp_path / "scheduler.log"
    with log.open("wb") as out:
        scheduler = subprocess.Popen(
            [str(shomei), "ra", "scheduler", "--settings", str(server.settings_file)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        # The page reloads itself (meta refresh) until the import is done.
        page.wait_for_selector("#import-letters", timeout=180_000)  # type: ignore[attr-defined]
    finally:
        scheduler.send_signal(signal.SIGTERM)
        try:
            scheduler.wait(timeout=30)
        except subprocess.TimeoutExpired:
            scheduler.kill()
            scheduler.wait()
    assert "完了" in page.inner_text("#import-status"), log.read_text()  # type: ignore[attr-defined]
    assert f"{count} / {count} 件" in page.inner_text("#import-count")  # type: ignore[attr-defined]
    shoot(page, "accounts-import-done")
    assert _accounts(server) == before + count
    page.click("#import-letters")  # type: ignore[attr-defined]
    with page.expect_download() as info:  # type: ignore[attr-defined]
        page.click("#letters-pdf")  # type: ignore[attr-defined]
    pdf = tmp_path / "big.pdf"
    info.value.save_as(str(pdf))
    text = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, check=True, text=True
    ).stdout
    assert text.count("ユーザーID・パスワード通知書") == count
    assert "account import" in log.read_text(errors="replace")
    page.goto(server.url + "/console/accounts/import")  # type: ignore[attr-defined]
    listed = page.inner_text("section.import-runs")  # type: ignore[attr-defined]
    assert "完了" in listed and f"{count} / {count} 件" in listed and staff.user_id in listed
    shoot(page, "accounts-import-list")


def test_destructive_actions_ask_first(page: object, server: LiveServer) -> None:
    from ra.party import Party
    from ra.people import accounts

    with server.database.factory() as s, s.begin():
        created = accounts.add_portal_account(
            s,
            Party.operator(),
            accounts.AccountInput(
                kind=AccountKind.OFFICE,
                number="1410000077",
                name="しおかぜ介護センター",
                address="神奈川県横浜市中区1-1",
                phone="045-111-2222",
                email="shiokaze@example.jp",
            ),
            now=dt.datetime.now(dt.UTC),
        )
        user_id = created.user_id
    sign_in(page, server, server.staff())
    detail = f"{server.url}/console/accounts/{user_id}"
    page.goto(detail)  # type: ignore[attr-defined]
    page.click("#disable")  # type: ignore[attr-defined]
    assert "しおかぜ介護センター" in page.inner_text("h1")  # type: ignore[attr-defined]
    assert "無効にしますか" in page.inner_text("h1")  # type: ignore[attr-defined]
    assert "ログインできなくなり" in page.inner_text(".consequences")  # type: ignore[attr-defined]
    shoot(page, "accounts-confirm-disable")
    page.click("#confirm-cancel")  # type: ignore[attr-defined]
    assert page.url == detail  # type: ignore[attr-defined]
    with server.database.factory() as s:
        assert s.execute(select(Account.active).where(Account.user_id == user_id)).scalar_one()

    page.click("#reset-login")  # type: ignore[attr-defined]
    assert "ログイン用パスワードを再発行しますか" in page.inner_text("h1")  # type: ignore[attr-defined]
    shoot(page, "accounts-confirm-reset-login")
    page.click("#confirm-yes")  # type: ignore[attr-defined]
    assert "/console/accounts/letters/" in page.url  # type: ignore[attr-defined]

    page.goto(detail)  # type: ignore[attr-defined]
    page.click("#disable")  # type: ignore[attr-defined]
    page.click("#confirm-yes")  # type: ignore[attr-defined]
    assert "無効にしました" in page.inner_text(".notice")  # type: ignore[attr-defined]
    with server.database.factory() as s:
        active = s.execute(select(Account.active).where(Account.user_id == user_id))
        assert active.scalar_one() is False
