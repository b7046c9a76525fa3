"""The detail screen (証明書発行管理): fields, history, the actions offered and their POSTs."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from ra.lifecycle import Applicant, Status
from ra.party import Party, PartyKind
from ra.people.passwords import hash_password, new_issuance_password
from ra.settings import RASettings, WebSettings, load_certificate_profiles
from ra.store.models import AccountKind, Application, AuditRecord, Certificate, Payment
from ra.store.vault import Vault, create_key_file
from ra.workflow import applications
from tests.ra import factories
from tests.ra.conftest import Database
from tests.ra.web.helpers import Clock, Staff, add_staff, assert_no_mojibake, sign_in, token
from tests.ra_profile import FEES, OFFICE_PROFILE

FORM_TOKEN = re.compile(r'name="(\w+)-csrf_token"[^>]*value="([^"]+)"')
VERSION = re.compile(r'name="(\w+)-version"[^>]*value="(\d+)"')


@pytest.fixture
def web_settings(tmp_path: Path, database: Database) -> RASettings:
    """The web settings with the RA's certificate profile (再度申込 makes a key under it)."""
    create_key_file(tmp_path / "ra-secrets.key")
    return RASettings(
        fees=FEES,
        database_url=database.url,
        data_dir=tmp_path / "data",
        secrets_key_file=tmp_path / "ra-secrets.key",
        web=WebSettings(secret_key_file=tmp_path / "ra-web.key"),
        profile_files=[OFFICE_PROFILE],
        profiles=load_certificate_profiles([OFFICE_PROFILE], default="office"),
    )


def _new(database: Database, now: dt.datetime, applicant: Applicant, status: Status) -> int:
    with database.factory() as s, s.begin():
        app = factories.application(s, applicant=applicant, status=status, now=now)
        app.account.phone = "03-1234-5678"
        if applicant is Applicant.OFFICE:
            app.account.representative_number = "03-1234-0000"
            app.account.postal_code = "100-0001"
            app.account.address = "東京都千代田区千代田1-1"
        return app.id


def _staff(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock, **kw: object
) -> Staff:
    staff = add_staff(database, vault, clock.now, **kw)  # type: ignore[arg-type]
    sign_in(client, staff, clock.now)
    return staff


def _form(client: FlaskClient, app_id: int, prefix: str) -> dict[str, str]:
    """The CSRF token and the version of the form ``prefix`` as the page shows them."""
    page = client.get(f"/console/applications/{app_id}").get_data(as_text=True)
    tokens = dict(FORM_TOKEN.findall(page))
    versions = dict(VERSION.findall(page))
    assert prefix in tokens, f"no {prefix} form on the page"
    return {f"{prefix}-csrf_token": tokens[prefix], f"{prefix}-version": versions[prefix]}


def _post(client: FlaskClient, app_id: int, path: str, prefix: str, **data: str) -> object:
    form = _form(client, app_id, prefix)
    form.update({f"{prefix}-{k}": v for k, v in data.items()})
    return client.post(f"/console/applications/{app_id}/{path}", data=form)


def _status(database: Database, app_id: int) -> tuple[Status, int]:
    with database.factory() as s:
        app = s.get(Application, app_id)
        assert app is not None
        return Status(app.status), app.version


def test_every_field_and_the_history(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    now = clock.now
    app_id = _new(database, now, Applicant.OFFICE, Status.ISSUED)
    with database.factory() as s, s.begin():
        s.add(
            Certificate(
                application_id=app_id,
                serial_hex="0a0b",
                der=b"cert",
                not_before=dt.datetime(2026, 6, 1, tzinfo=dt.UTC),
                not_after=dt.datetime(2029, 6, 30, tzinfo=dt.UTC),
                registered_at=now,
            )
        )
        user_id = s.get(Application, app_id).account.user_id  # type: ignore[union-attr]
    _staff(client, database, vault, clock)
    page = client.get(f"/console/applications/{app_id}").get_data(as_text=True)
    assert_no_mojibake(page)
    for label in (
        "ユーザID",
        "電話番号",
        "状況",
        "手数料残高",
        "申請年月日",
        "有効期限",
        "失効年月日",
    ):
        assert label in page
    for label in ("事業所名", "代表番号", "住所"):
        assert label in page
    assert user_id in page and "03-1234-5678" in page and "03-1234-0000" in page
    assert "〒100-0001 東京都千代田区千代田1-1" in page
    assert "5 発行済み" in page and "2026/06/01 ~ 2029/06/30" in page
    # Issued: staff may register a revocation or apply again, nothing else.
    assert 'id="revoke-submit"' in page and 'id="reapply-submit"' in page
    for other in ("reject", "issue", "pay", "undo"):
        assert f'id="{other}-submit"' not in page


def test_reject_edit_undo_with_history(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    app_id = _new(database, clock.now, Applicant.OFFICE, Status.AWAITING_ISSUE_REQUEST)
    admin = _staff(client, database, vault, clock, kind=AccountKind.ADMIN)
    answer = _post(client, app_id, "reject", "reject", reason="発行済みのため却下します。")
    assert answer.status_code == 303  # type: ignore[attr-defined]
    page = client.get(answer.headers["Location"]).get_data(as_text=True)  # type: ignore[attr-defined]
    assert "申請を却下しました。" in page and "9 却下待ち" in page
    assert "発行済みのため却下します。" in page
    assert _status(database, app_id) == (Status.REJECTION_PENDING, 2)

    clock.advance(minutes=1)
    answer = _post(client, app_id, "reason", "edit", reason="書類不備のため却下します。")
    assert answer.status_code == 303  # type: ignore[attr-defined]
    page = client.get(f"/console/applications/{app_id}").get_data(as_text=True)
    assert "却下理由を修正しました。" in page and "書類不備のため却下します。" in page

    clock.advance(minutes=1)
    answer = _post(client, app_id, "undo", "undo")
    assert answer.status_code == 303  # type: ignore[attr-defined]
    page = client.get(f"/console/applications/{app_id}").get_data(as_text=True)
    assert "取り消しました。" in page and "1 発行依頼待ち" in page
    assert _status(database, app_id) == (Status.AWAITING_ISSUE_REQUEST, 4)
    # The history: each step, who and when, in Japan time.
    history = page[page.index("履歴") :]
    for step in ("却下", "却下理由の修正", "却下取消"):
        assert step in history
    assert history.count(admin.user_id) == 3
    assert "2026/11/02 10:03" in history and "2026/11/02 10:04" in history
    assert "書類不備のため却下します。" in history  # the reason stays in the history


def test_a_reason_is_required(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    app_id = _new(database, clock.now, Applicant.OFFICE, Status.AWAITING_ISSUE_REQUEST)
    _staff(client, database, vault, clock)
    answer = _post(client, app_id, "reject", "reject", reason="  ")
    assert answer.status_code == 400  # type: ignore[attr-defined]
    assert "却下理由" in answer.get_data(as_text=True)  # type: ignore[attr-defined]
    assert _status(database, app_id) == (Status.AWAITING_ISSUE_REQUEST, 1)


def test_issue_request_and_admin_undo(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    app_id = _new(database, clock.now, Applicant.OFFICE, Status.AWAITING_ISSUE_REQUEST)
    _staff(client, database, vault, clock, kind=AccountKind.ADMIN)
    answer = _post(client, app_id, "issue-request", "issue")
    assert answer.status_code == 303  # type: ignore[attr-defined]
    page = client.get(f"/console/applications/{app_id}").get_data(as_text=True)
    assert "発行依頼を登録しました。" in page and "3 発行依頼中" in page
    assert "発行依頼の取消" in page
    _post(client, app_id, "undo", "undo")
    assert _status(database, app_id) == (Status.AWAITING_ISSUE_REQUEST, 3)


def test_payment_and_its_undo(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    app_id = _new(database, clock.now, Applicant.AGENT, Status.AWAITING_PAYMENT)
    _staff(client, database, vault, clock, kind=AccountKind.ADMIN)
    page = client.get(f"/console/applications/{app_id}").get_data(as_text=True)
    assert "1,000円" in page  # the fee awaiting payment is the balance
    wrong = _post(
        client, app_id, "payment", "pay", paid_on="2026-11-01", amount_yen="999", payer_name="X"
    )
    assert wrong.status_code == 400  # type: ignore[attr-defined]
    assert "手数料 1,000 円と一致しません" in wrong.get_data(as_text=True)  # type: ignore[attr-defined]
    assert _status(database, app_id) == (Status.AWAITING_PAYMENT, 1)
    answer = _post(
        client, app_id, "payment", "pay", paid_on="2026-11-01", amount_yen="1000", payer_name="AG1"
    )
    assert answer.status_code == 303  # type: ignore[attr-defined]
    page = client.get(f"/console/applications/{app_id}").get_data(as_text=True)
    assert "入金を登録しました。" in page and "2026/11/01" in page and "AG1" in page
    assert "入金登録の取消" in page
    _post(client, app_id, "undo", "undo")
    assert _status(database, app_id) == (Status.AWAITING_PAYMENT, 3)
    with database.factory() as s:
        payment = s.execute(select(Payment).where(Payment.application_id == app_id)).scalar_one()
        assert payment.undone_at is not None


def test_revocation_request_and_its_undo(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    app_id = _new(database, clock.now, Applicant.OFFICE, Status.ISSUED)
    _staff(client, database, vault, clock, kind=AccountKind.ADMIN)
    answer = _post(
        client,
        app_id,
        "revocation",
        "revoke",
        reason="cessationOfOperation",
        requested_by="prefecture",
        requested_at="2026-11-02T09:30",
    )
    assert answer.status_code == 303  # type: ignore[attr-defined]
    page = client.get(f"/console/applications/{app_id}").get_data(as_text=True)
    assert "失効申請を登録しました。" in page and "6 失効依頼中" in page
    assert "廃業・業務停止 (cessationOfOperation)" in page and "都道府県" in page
    assert "2026/11/02 09:30" in page
    with database.factory() as s:
        app = s.get(Application, app_id)
        assert app is not None and app.revocation_requested_at == dt.datetime(
            2026, 11, 2, 0, 30, tzinfo=dt.UTC
        )
    _post(client, app_id, "undo", "undo")
    assert _status(database, app_id) == (Status.ISSUED, 3)


def test_reapply_for_the_office(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    app_id = _new(database, clock.now, Applicant.OFFICE, Status.REJECTED)
    password = new_issuance_password()
    with database.factory() as s, s.begin():
        owner = s.get(Application, app_id).account  # type: ignore[union-attr]
        owner.issuance_password_hash = hash_password(password)
        owner_id = owner.id
    _staff(client, database, vault, clock)
    refused = _post(client, app_id, "reapply", "reapply", issuance_password=password)
    assert refused.status_code == 400  # type: ignore[attr-defined]
    assert "手数料相殺への同意が必要です" in refused.get_data(as_text=True)  # type: ignore[attr-defined]
    answer = _post(
        client, app_id, "reapply", "reapply", issuance_password=password, consent_fee_offset="y"
    )
    assert answer.status_code == 303  # type: ignore[attr-defined]
    with database.factory() as s:
        new = s.execute(
            select(Application).where(Application.account_id == owner_id, Application.id != app_id)
        ).scalar_one()
        assert new.entered_by == "staff" and new.status is Status.AWAITING_ISSUE_REQUEST
    assert answer.headers["Location"].endswith(f"/console/applications/{new.id}")  # type: ignore[attr-defined]
    page = client.get(answer.headers["Location"]).get_data(as_text=True)  # type: ignore[attr-defined]
    assert "申請者の新しい申請を登録しました。" in page


def test_wrong_status_and_not_admin_are_refused(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    app_id = _new(database, clock.now, Applicant.OFFICE, Status.ISSUE_REQUESTED)
    _staff(client, database, vault, clock)
    page = client.get(f"/console/applications/{app_id}").get_data(as_text=True)
    assert 'id="undo-submit"' not in page and 'id="reject-submit"' not in page
    # A form made by hand (a valid session token) still meets the services' checks.
    csrf = token(client, f"/console/applications/{app_id}")
    data = {"undo-csrf_token": csrf, "undo-version": "1"}
    answer = client.post(f"/console/applications/{app_id}/undo", data=data)
    assert answer.status_code == 403
    assert "取消" in answer.get_data(as_text=True) and "管理者のみ" in answer.get_data(as_text=True)
    data = {"reject-csrf_token": csrf, "reject-version": "1", "reject-reason": "x"}
    answer = client.post(f"/console/applications/{app_id}/reject", data=data)
    assert answer.status_code == 409
    assert "状況が「発行依頼中」のため「却下」はできません" in answer.get_data(as_text=True)
    assert _status(database, app_id) == (Status.ISSUE_REQUESTED, 1)


def test_someone_else_changed_it_first(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    app_id = _new(database, clock.now, Applicant.OFFICE, Status.AWAITING_ISSUE_REQUEST)
    _staff(client, database, vault, clock)
    form = _form(client, app_id, "issue")  # the page as the first member of staff saw it
    with database.factory() as s, s.begin():  # meanwhile, another rejects it
        other = Party(PartyKind.STAFF, "other")
        applications.reject(s, other, app_id, reason="重複", now=clock.now)
    answer = client.post(f"/console/applications/{app_id}/issue-request", data=form)
    assert answer.status_code == 409
    text = answer.get_data(as_text=True)
    assert "他の職員が先にこの申請を変更しました。今回の操作は行っていません。" in text
    assert "9 却下待ち" in text  # the page shows the application as it is now
    assert _status(database, app_id) == (Status.REJECTION_PENDING, 2)
    with database.factory() as s:
        audited = s.scalar(
            select(func.count())
            .select_from(AuditRecord)
            .where(
                AuditRecord.object_id == str(app_id), AuditRecord.action == "register_issue_request"
            )
        )
        assert audited == 0


def test_unknown_application_is_404(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    _staff(client, database, vault, clock)
    answer = client.get("/console/applications/999999")
    assert answer.status_code == 404
    assert "申請 999999 は見つかりません" in answer.get_data(as_text=True)


@pytest.mark.parametrize("kind", [AccountKind.OFFICE, AccountKind.AGENT])
def test_portal_accounts_get_403(
    client: FlaskClient, database: Database, clock: Clock, kind: AccountKind
) -> None:
    app_id = _new(database, clock.now, Applicant(kind.value), Status.AWAITING_ISSUE_REQUEST)
    with database.factory() as s:
        owner = s.get(Application, app_id).account  # type: ignore[union-attr]
        session_id = f"{owner.id}:{owner.session_epoch}"
    with client.session_transaction() as sess:
        sess["_user_id"] = session_id  # the application's own office or agent, signed in
        sess["seen"] = int(clock.now.timestamp())
    answer = client.get(f"/console/applications/{app_id}")
    assert answer.status_code == 403
    assert "この操作は連合会職員のみ行えます" in answer.get_data(as_text=True)


def test_the_page_in_english(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    app_id = _new(database, clock.now, Applicant.OFFICE, Status.ISSUED)
    _staff(client, database, vault, clock)
    _post(
        client,
        app_id,
        "revocation",
        "revoke",
        reason="keyCompromise",
        requested_by="office",
        requested_at="2026-11-02T09:30",
    )
    client.post(
        "/auth/language",
        data={"value": "en", "next": "/console/", "csrf_token": token(client, "/console/")},
    )
    page = client.get(f"/console/applications/{app_id}").get_data(as_text=True)
    assert "Certificate issuance management" in page and "6 revocation requested" in page
    assert "register revocation" in page and "keyCompromise" in page
    # No Japanese label is left on the English page (the office's name is data, not a label).
    for japanese in ("失効", "職員", "鍵の危殆化", "事業所名", "状況"):
        assert japanese not in page
