"""証明書一覧 and 入金登録 from the passbook in a real browser (Chromium through Playwright).

Search by each filter, page and jump, a bulk 発行依頼 of three rows, a payment registered
from the passbook search, and the CSV downloaded and read back as CP932.  Screenshots
``list-*.png`` at 1280 and 390 pixels (see :func:`tests.ra.web.test_browser.shoot`).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

from sqlalchemy import select

from ra.lifecycle import Applicant, Status
from ra.store.models import Account, Application
from tests.ra import factories
from tests.ra.web import test_browser
from tests.ra.web.live import LiveServer
from tests.ra.web.test_browser import shoot, sign_in

# The browser tests' fixtures and skip mark, shared with this module by name.
pytestmark = test_browser.pytestmark
browser = test_browser.browser
page = test_browser.page
server = test_browser.server

ROWS = "table.list tbody input[name=row]"


def populate(live: LiveServer) -> dict[str, list[int]]:
    """60 issued office applications, 4 waiting for an issue request, 2 agent ones unpaid."""
    now = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    made: dict[str, list[int]] = {"issued": [], "waiting": [], "unpaid": []}
    with live.database.factory() as s, s.begin():
        for n in range(60):
            app = factories.application(
                s,
                applicant=Applicant.OFFICE,
                status=Status.ISSUED,
                now=now - dt.timedelta(days=n + 1),
            )
            made["issued"].append(app.id)
        for n in range(4):
            app = factories.application(
                s,
                applicant=Applicant.OFFICE,
                status=Status.AWAITING_ISSUE_REQUEST,
                now=now - dt.timedelta(minutes=n),
            )
            s.get_one(Account, app.account_id).user_id = f"HJB{n:04d}"
            made["waiting"].append(app.id)
        agent = None
        for n in range(2):
            app = factories.application(
                s,
                applicant=Applicant.AGENT,
                status=Status.AWAITING_PAYMENT,
                now=now - dt.timedelta(minutes=10 + n),
                acct=agent,
            )
            agent = s.get_one(Account, app.account_id)
            agent.user_id = "AG-BANK1"
            made["unpaid"].append(app.id)
    return made


def shown(tab: object) -> list[int]:
    return [int(v) for v in tab.eval_on_selector_all(ROWS, "els => els.map(e => e.value)")]  # type: ignore[attr-defined]


def status_of(live: LiveServer, app_id: int) -> Status:
    with live.database.factory() as s:
        return s.get_one(Application, app_id).status


def test_list_search_paging_bulk_payment_and_csv(
    page: object, server: LiveServer, tmp_path: Path
) -> None:
    made = populate(server)
    sign_in(page, server, server.staff())
    page.click("nav.main >> text=証明書一覧")  # type: ignore[attr-defined]
    assert "/console/list/" in page.url  # type: ignore[attr-defined]
    assert "全件数 66" in page.inner_text("#counts")  # type: ignore[attr-defined]
    shoot(page, "list-first")

    # 申請者: 代理人 only.
    page.check("input[name=type][value=agent]")  # type: ignore[attr-defined]
    page.click("#do-search")  # type: ignore[attr-defined]
    assert shown(page) == made["unpaid"]
    # ユーザID, typed in full width: a prefix, then exact.
    page.click("#clear")  # type: ignore[attr-defined]
    page.fill("#uid", "ＨＪＢ")  # type: ignore[attr-defined]
    page.click("#do-search")  # type: ignore[attr-defined]
    assert shown(page) == made["waiting"]
    page.fill("#uid", "HJB0002")  # type: ignore[attr-defined]
    page.check("input[name=match][value=exact]")  # type: ignore[attr-defined]
    page.click("#do-search")  # type: ignore[attr-defined]
    assert shown(page) == [made["waiting"][2]]
    # 状況: 1 発行依頼待ち.
    page.click("#clear")  # type: ignore[attr-defined]
    page.check("input[name=st][value=awaiting_issue_request]")  # type: ignore[attr-defined]
    page.click("#do-search")  # type: ignore[attr-defined]
    assert shown(page) == made["waiting"]
    shoot(page, "list-search")

    # Paging over 証明書 発行済み (60 rows, 50 a page): 次頁, 先頭, and a jump to page 2.
    page.click("#clear")  # type: ignore[attr-defined]
    page.check("input[name=st][value=issued]")  # type: ignore[attr-defined]
    page.click("#do-search")  # type: ignore[attr-defined]
    assert shown(page) == made["issued"][:50]
    page.click("nav.pager >> nth=0 >> a.next")  # type: ignore[attr-defined]
    assert shown(page) == made["issued"][50:]
    page.click("nav.pager >> nth=0 >> a.first")  # type: ignore[attr-defined]
    assert shown(page) == made["issued"][:50]
    page.fill("#jump-page", "2")  # type: ignore[attr-defined]
    page.click("#jump")  # type: ignore[attr-defined]
    assert shown(page) == made["issued"][50:]
    assert "2 / 2 ページ" in page.inner_text("nav.pager >> nth=0")  # type: ignore[attr-defined]
    shoot(page, "list-page2")

    # Bulk 発行依頼 of three rows.
    page.click("#clear")  # type: ignore[attr-defined]
    page.check("input[name=st][value=awaiting_issue_request]")  # type: ignore[attr-defined]
    page.click("#do-search")  # type: ignore[attr-defined]
    page.check("#page-rows")  # type: ignore[attr-defined]  # the script ticks the page's rows
    assert page.eval_on_selector_all(ROWS, "els => els.every(e => e.checked)")  # type: ignore[attr-defined]
    page.uncheck("#page-rows")  # type: ignore[attr-defined]
    three = made["waiting"][:3]
    for app_id in three:
        page.check(f"#row-{app_id}")  # type: ignore[attr-defined]
    page.click("#apply")  # type: ignore[attr-defined]
    assert "選択件数 3" in page.inner_text("#counts")  # type: ignore[attr-defined]
    page.click("#bulk-issue")  # type: ignore[attr-defined]
    assert "3 件を処理しました。0 件は処理できませんでした。" in page.inner_text("#summary")  # type: ignore[attr-defined]
    assert all(status_of(server, i) is Status.ISSUE_REQUESTED for i in three)
    assert status_of(server, made["waiting"][3]) is Status.AWAITING_ISSUE_REQUEST
    shoot(page, "list-bulk-result")

    # 入金登録 from the passbook: the payer name as the passbook prints it.
    page.goto(server.url + "/console/payments/")  # type: ignore[attr-defined]
    page.fill("#payer", "ＡＧ－ＢＡＮＫ１")  # type: ignore[attr-defined]
    page.click("#find")  # type: ignore[attr-defined]
    assert shown(page) == made["unpaid"]
    page.uncheck(f"#row-{made['unpaid'][1]}")  # type: ignore[attr-defined]
    page.fill("#amount_yen", "1000")  # type: ignore[attr-defined]
    shoot(page, "list-payments")
    page.click("#register")  # type: ignore[attr-defined]
    assert "1 件を処理しました。" in page.inner_text("#summary")  # type: ignore[attr-defined]
    assert status_of(server, made["unpaid"][0]) is Status.ISSUE_REQUESTED
    assert status_of(server, made["unpaid"][1]) is Status.AWAITING_PAYMENT
    shoot(page, "list-payment-result")

    # 一覧保存: the CSV of 発行依頼中, read back as CP932.
    page.goto(server.url + "/console/list/?search=1&st=issue_requested")  # type: ignore[attr-defined]
    with page.expect_download() as caught:  # type: ignore[attr-defined]
        page.click("#save-csv")  # type: ignore[attr-defined]
    download = caught.value
    assert download.suggested_filename.startswith("証明書一覧_")
    saved = tmp_path / "list.csv"
    download.save_as(saved)
    rows = list(csv.reader(io.StringIO(saved.read_bytes().decode("cp932"))))
    assert rows[0][:2] == ["申請番号", "ユーザID"]
    expected = {*three, made["unpaid"][0]}
    assert {int(r[0]) for r in rows[1:]} == expected
    with server.database.factory() as s:
        issued = s.scalars(
            select(Application.id).where(Application.status == Status.ISSUE_REQUESTED)
        )
        assert set(issued) == expected
