"""The detail screen (証明書発行管理) in a real browser: reject, correct, undo, revocation.

Screenshots ``detail-*.png`` at 1280 and 390 pixels wide, with the checks of
:func:`tests.ra.web.test_browser.shoot` (mojibake, CSP errors, nothing wider than the screen).
"""

from __future__ import annotations

import datetime as dt

from ra.lifecycle import Applicant, Status
from ra.store.models import AccountKind, Application, Certificate, FeeEntry
from ra.store.vault import load_vault
from tests.ra import factories
from tests.ra.web import test_browser as live_pages
from tests.ra.web.helpers import Staff, add_staff
from tests.ra.web.live import LiveServer

# The live server, the browser and its page (with the CSP and error checks) of the console's
# browser tests, used here by name.
pytestmark = live_pages.pytestmark
server = live_pages.server
browser = live_pages.browser
page = live_pages.page
shoot = live_pages.shoot
sign_in = live_pages.sign_in


def _application(server: LiveServer, applicant: Applicant, status: Status) -> int:
    with server.database.factory() as s, s.begin():
        app = factories.application(
            s, applicant=applicant, status=status, now=dt.datetime.now(dt.UTC)
        )
        app.account.phone = "03-1234-5678"
        app.account.representative_number = "03-1234-0000"
        app.account.postal_code = "100-0001"
        app.account.address = "東京都千代田区千代田1-1 連合会ビル3階"
        # The fee an office's application charged when it was made (ra.workflow.applications.apply).
        s.add(
            FeeEntry(
                account_id=app.account_id,
                application_id=app.id,
                amount_yen=app.fee_yen,
                kind="charge",
                created_at=app.applied_at,
            )
        )
        if status is Status.ISSUED:
            s.add(
                Certificate(
                    application_id=app.id,
                    serial_hex=f"{app.id:040x}",
                    der=b"certificate",
                    not_before=dt.datetime(2025, 12, 1, tzinfo=dt.UTC),
                    not_after=dt.datetime(2028, 11, 30, 14, 59, 59, tzinfo=dt.UTC),
                    registered_at=app.applied_at,
                )
            )
        return app.id


def _status(server: LiveServer, app_id: int) -> Status:
    with server.database.factory() as s:
        app = s.get(Application, app_id)
        assert app is not None
        return Status(app.status)


def _admin(server: LiveServer) -> Staff:
    vault = load_vault(server.settings.secrets_key_file)
    return add_staff(server.database, vault, dt.datetime.now(dt.UTC), kind=AccountKind.ADMIN)


def _open(page: object, server: LiveServer, app_id: int) -> None:
    page.goto(f"{server.url}/console/applications/{app_id}")  # type: ignore[attr-defined]
    assert page.inner_text("h1").startswith("証明書発行管理")  # type: ignore[attr-defined]


def test_reject_with_a_reason_then_correct_it(page: object, server: LiveServer) -> None:
    app_id = _application(server, Applicant.OFFICE, Status.AWAITING_ISSUE_REQUEST)
    sign_in(page, server, server.staff())
    _open(page, server, app_id)
    body = page.inner_text("main")  # type: ignore[attr-defined]
    assert "ユーザID" in body and "1 発行依頼待ち" in body and "代表番号" in body
    shoot(page, "detail-awaiting")
    page.fill("#reject-reason", "提出書類に不備があるため却下します。")  # type: ignore[attr-defined]
    page.click("#reject-submit")  # type: ignore[attr-defined]
    assert "申請を却下しました。" in page.inner_text(".notice")  # type: ignore[attr-defined]
    assert "提出書類に不備があるため却下します。" in page.inner_text("#rejection")  # type: ignore[attr-defined]
    assert _status(server, app_id) is Status.REJECTION_PENDING
    shoot(page, "detail-rejected")

    page.click("#rejection summary")  # type: ignore[attr-defined]
    page.fill("#edit-reason", "事業所番号の誤りのため却下します。")  # type: ignore[attr-defined]
    shoot(page, "detail-reason-edit")
    page.click("#edit-submit")  # type: ignore[attr-defined]
    assert "却下理由を修正しました。" in page.inner_text(".notice")  # type: ignore[attr-defined]
    assert "事業所番号の誤りのため却下します。" in page.inner_text("#rejection")  # type: ignore[attr-defined]
    history = page.inner_text("table.history")  # type: ignore[attr-defined]
    assert "却下理由の修正" in history and "9 却下待ち" in history


def test_admin_undoes_an_issue_request(page: object, server: LiveServer) -> None:
    app_id = _application(server, Applicant.OFFICE, Status.ISSUE_REQUESTED)
    sign_in(page, server, _admin(server))
    _open(page, server, app_id)
    assert page.inner_text("#undo-submit") == "発行依頼の取消"  # type: ignore[attr-defined]
    shoot(page, "detail-undo")
    page.click("#undo-submit")  # type: ignore[attr-defined]
    assert "取り消しました。" in page.inner_text(".notice")  # type: ignore[attr-defined]
    assert _status(server, app_id) is Status.AWAITING_ISSUE_REQUEST
    assert "1 発行依頼待ち" in page.inner_text("dd.status")  # type: ignore[attr-defined]


def test_register_a_revocation_request(page: object, server: LiveServer) -> None:
    app_id = _application(server, Applicant.OFFICE, Status.ISSUED)
    sign_in(page, server, server.staff())
    _open(page, server, app_id)
    page.select_option("#revoke-reason", "cessationOfOperation")  # type: ignore[attr-defined]
    page.select_option("#revoke-requested_by", "prefecture")  # type: ignore[attr-defined]
    page.fill("#revoke-requested_at", "2026-01-05T10:15")  # type: ignore[attr-defined]
    shoot(page, "detail-revocation-form")
    page.click("#revoke-submit")  # type: ignore[attr-defined]
    assert "失効申請を登録しました。" in page.inner_text(".notice")  # type: ignore[attr-defined]
    body = page.inner_text("main")  # type: ignore[attr-defined]
    assert "6 失効依頼中" in body and "廃業・業務停止 (cessationOfOperation)" in body
    assert "都道府県" in body and "2026/01/05 10:15" in body
    assert "2025/12/01 ~ 2028/11/30" in body  # the validity of the certificate
    assert _status(server, app_id) is Status.REVOCATION_REQUESTED
    shoot(page, "detail-revocation")
