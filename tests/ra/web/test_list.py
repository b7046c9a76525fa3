"""The certificate list (証明書一覧) and 入金登録 from the passbook, through the test client.

Every filter, paging and jumping, a selection that survives paging, each bulk action with a
refused row on its result page, the CSV read back as CP932, the passbook search and
registration, and a portal account kept out; on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Mapping

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from ra.lifecycle import Applicant, Status
from ra.store.models import Account, AccountKind, Application, Payment
from ra.store.vault import Vault
from ra.web.console import list as list_view
from tests.ra import factories
from tests.ra.conftest import Database
from tests.ra.web.helpers import Clock, add_staff, assert_no_mojibake, sign_in, token

ROW = re.compile(r'name="row" value="(\d+)"[^>]*?( checked)?>')


def ids_on(page: str) -> list[int]:
    return [int(m.group(1)) for m in ROW.finditer(page)]


def ticked_on(page: str) -> list[int]:
    return [int(m.group(1)) for m in ROW.finditer(page) if m.group(2)]


def make(
    database: Database,
    now: dt.datetime,
    specs: list[tuple[Applicant, Status]],
    *,
    user_ids: list[str] | None = None,
) -> list[int]:
    """Applications newest first in ``specs`` order (one minute apart); their ids."""
    ids: list[int] = []
    with database.factory() as s, s.begin():
        for n, (applicant, status) in enumerate(specs):
            app = factories.application(
                s, applicant=applicant, status=status, now=now - dt.timedelta(minutes=n)
            )
            if user_ids:
                s.get_one(Account, app.account_id).user_id = user_ids[n]
            ids.append(app.id)
    return ids


def status_of(database: Database, app_id: int) -> Status:
    with database.factory() as s:
        return s.get_one(Application, app_id).status


@pytest.fixture
def staff_client(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> FlaskClient:
    sign_in(client, add_staff(database, vault, clock.now), clock.now)
    return client


def post(client: FlaskClient, path: str, data: Mapping[str, object]) -> str:
    answer = client.post(path, data={**data, "csrf_token": token(client, "/console/list/")})
    assert answer.status_code in (200, 302), answer.get_data(as_text=True)
    if answer.status_code == 302:
        return client.get(answer.headers["Location"]).get_data(as_text=True)
    return answer.get_data(as_text=True)


def test_each_filter(staff_client: FlaskClient, database: Database, clock: Clock) -> None:
    ids = make(
        database,
        clock.now,
        [
            (Applicant.OFFICE, Status.AWAITING_ISSUE_REQUEST),
            (Applicant.AGENT, Status.AWAITING_PAYMENT),
            (Applicant.OFFICE, Status.ISSUED),
            (Applicant.AGENT, Status.REVOKED),
        ],
        user_ids=["HJ0001", "AG0001", "HJ0002", "AG0002"],
    )
    page = staff_client.get("/console/list/?search=1").get_data(as_text=True)
    assert_no_mojibake(page)
    assert ids_on(page) == ids and "全件数 4" in page and "選択件数 0" in page
    for label in (
        "申請番号",
        "ユーザーID",
        "事業所名",
        "事業所番号",
        "状況",
        "申請年月日",
        "手数料残高",
    ):
        assert label in page
    assert f'href="/console/applications/{ids[0]}"' in page
    assert "2 入金待ち" in page and "1,000円" in page
    by_type = staff_client.get("/console/list/?search=1&type=agent").get_data(as_text=True)
    assert ids_on(by_type) == [ids[1], ids[3]] and "全件数 2" in by_type
    prefix = staff_client.get("/console/list/?search=1&uid=ＨＪ").get_data(as_text=True)
    assert ids_on(prefix) == [ids[0], ids[2]]  # full-width input folded
    exact = staff_client.get("/console/list/?search=1&uid=HJ000&match=exact")
    assert ids_on(exact.get_data(as_text=True)) == []
    assert "該当する申請はありません" in exact.get_data(as_text=True)
    exact = staff_client.get("/console/list/?search=1&uid=ＨＪ０００２&match=exact")
    assert ids_on(exact.get_data(as_text=True)) == [ids[2]]
    statuses = staff_client.get("/console/list/?search=1&st=issued&st=revoked")
    assert ids_on(statuses.get_data(as_text=True)) == [ids[2], ids[3]]
    bad = staff_client.get("/console/list/?st=nonsense")
    assert bad.status_code == 400 and "状況の指定が正しくありません" in bad.get_data(as_text=True)


def test_paging_and_jump(
    staff_client: FlaskClient, database: Database, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(list_view, "PAGE_SIZE", 3)
    ids = make(database, clock.now, [(Applicant.OFFICE, Status.ISSUED)] * 8)
    first = staff_client.get("/console/list/?search=1").get_data(as_text=True)
    assert ids_on(first) == ids[:3] and "1 / 3 ページ" in first
    second = staff_client.get("/console/list/?page=2").get_data(as_text=True)
    assert ids_on(second) == ids[3:6] and "2 / 3 ページ" in second
    assert 'href="/console/list/?page=1"' in second and 'href="/console/list/?page=3"' in second
    last = staff_client.get("/console/list/?page=99").get_data(as_text=True)  # beyond: the last
    assert ids_on(last) == ids[6:] and "3 / 3 ページ" in last
    filtered = staff_client.get("/console/list/?st=issued&page=2").get_data(as_text=True)
    assert ids_on(filtered) == ids[3:6] and "page=3&amp;st=issued" in filtered.replace(
        "st=issued&amp;page=3", "page=3&amp;st=issued"
    )
    assert staff_client.get("/console/list/?page=0").status_code == 400
    assert staff_client.get("/console/list/?page=x").status_code == 400
    assert staff_client.get("/console/list/?page=²").status_code == 400


def test_selection_survives_paging(
    staff_client: FlaskClient, database: Database, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(list_view, "PAGE_SIZE", 3)
    ids = make(database, clock.now, [(Applicant.OFFICE, Status.AWAITING_ISSUE_REQUEST)] * 7)
    back1, back2 = "/console/list/?page=1", "/console/list/?page=2"
    page = post(
        staff_client,
        "/console/list/act",
        {"op": "apply", "back": back1, "shown": ids[:3], "row": [ids[0], ids[2]]},
    )
    assert ticked_on(page) == [ids[0], ids[2]] and "選択件数 2" in page
    page = post(
        staff_client,
        "/console/list/act",
        {"op": "apply", "back": back2, "shown": ids[3:6], "row": [ids[4]]},
    )
    assert ticked_on(page) == [ids[4]] and "選択件数 3" in page
    page = staff_client.get(back1).get_data(as_text=True)
    assert ticked_on(page) == [ids[0], ids[2]]  # still ticked after paging away and back
    page = post(
        staff_client,
        "/console/list/act",
        {"op": "apply", "back": back1, "shown": ids[:3], "row": [ids[2]]},
    )
    assert ticked_on(page) == [ids[2]] and "選択件数 2" in page
    page = post(staff_client, "/console/list/act", {"op": "all", "back": back1})
    assert ticked_on(page) == ids[:3] and "選択件数 7" in page and "検索結果の全件" in page
    page = post(
        staff_client,
        "/console/list/act",
        {"op": "apply", "back": back2, "shown": ids[3:6], "row": [ids[3], ids[5]]},
    )
    assert ticked_on(page) == [ids[3], ids[5]] and "選択件数 6" in page
    assert ticked_on(staff_client.get("/console/list/?page=3").get_data(as_text=True)) == [ids[6]]
    page = post(staff_client, "/console/list/act", {"op": "none", "back": back1})
    assert ticked_on(page) == [] and "選択件数 0" in page


def test_ticks_beyond_what_the_session_keeps_are_refused(
    staff_client: FlaskClient, database: Database, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(list_view, "TICK_LIMIT", 2)
    ids = make(database, clock.now, [(Applicant.OFFICE, Status.ISSUED)] * 3)
    answer = staff_client.post(
        "/console/list/act",
        data={
            "op": "apply",
            "shown": ids,
            "row": ids,
            "csrf_token": token(staff_client, "/console/list/"),
        },
    )
    assert answer.status_code == 422 and "一件ずつ選択できるのは2件まで" in answer.get_data(
        as_text=True
    )
    page = staff_client.get("/console/list/").get_data(as_text=True)
    assert "選択件数 0" in page  # nothing of the refused ticks was kept


def test_bulk_issue_request_shows_done_and_refused(
    staff_client: FlaskClient, database: Database, clock: Clock
) -> None:
    ids = make(
        database,
        clock.now,
        [(Applicant.OFFICE, Status.AWAITING_ISSUE_REQUEST)] * 2
        + [(Applicant.OFFICE, Status.ISSUED)],
    )
    page = post(
        staff_client,
        "/console/list/act",
        {"op": "issue", "back": "/console/list/", "shown": ids, "row": ids},
    )
    assert_no_mojibake(page)
    assert "2 件を処理しました。1 件は処理できませんでした。" in page
    refused = page[page.index('id="refused"') :]
    assert f">{ids[2]}<" in refused and f">{ids[0]}<" not in refused
    assert status_of(database, ids[0]) == Status.ISSUE_REQUESTED
    assert status_of(database, ids[2]) == Status.ISSUED
    after = staff_client.get("/console/list/").get_data(as_text=True)
    assert "選択件数 0" in after  # the selection is spent


def test_bulk_payment_with_a_refused_row(
    staff_client: FlaskClient, database: Database, clock: Clock
) -> None:
    ids = make(database, clock.now, [(Applicant.AGENT, Status.AWAITING_PAYMENT)] * 2)
    with database.factory() as s, s.begin():
        s.get_one(Application, ids[1]).fee_yen = 2000
    paid_on = clock.now.date() - dt.timedelta(days=1)
    data = {
        "op": "payment",
        "back": "/console/list/",
        "shown": ids,
        "row": ids,
        "paid_on": paid_on.isoformat(),
        "amount_yen": "1000",
        "payer_name": "AG0001",
    }
    page = post(staff_client, "/console/list/act", data)
    assert "1 件を処理しました。1 件は処理できませんでした。" in page and "一致しません" in page
    assert status_of(database, ids[0]) == Status.ISSUE_REQUESTED
    with database.factory() as s:
        paid = s.scalars(select(Payment).where(Payment.application_id == ids[0])).one()
        assert paid.amount_yen == 1000 and paid.paid_on == paid_on
    missing = staff_client.post(
        "/console/list/act",
        data={**data, "amount_yen": "", "csrf_token": token(staff_client, "/console/list/")},
    )
    assert missing.status_code == 400 and "入金日・金額・振込人名" in missing.get_data(as_text=True)


def test_bulk_undo_is_for_admins(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    ids = make(
        database,
        clock.now,
        [(Applicant.OFFICE, Status.ISSUE_REQUESTED), (Applicant.OFFICE, Status.AWAITING_ISSUANCE)],
    )
    staff = add_staff(database, vault, clock.now)
    sign_in(client, staff, clock.now)
    assert 'value="undo"' not in client.get("/console/list/").get_data(as_text=True)
    refused = client.post(
        "/console/list/act",
        data={
            "op": "undo",
            "shown": ids,
            "row": ids,
            "csrf_token": token(client, "/console/list/"),
        },
    )
    assert refused.status_code == 403 and status_of(database, ids[0]) == Status.ISSUE_REQUESTED
    admin_client = client.application.test_client()
    sign_in(admin_client, add_staff(database, vault, clock.now, kind=AccountKind.ADMIN), clock.now)
    page = post(
        admin_client,
        "/console/list/act",
        {"op": "undo", "back": "/console/list/", "shown": ids, "row": ids},
    )
    assert "1 件を処理しました。1 件は処理できませんでした。" in page
    assert status_of(database, ids[0]) == Status.AWAITING_ISSUE_REQUEST
    assert status_of(database, ids[1]) == Status.AWAITING_ISSUANCE


def test_csv_download_in_cp932_and_utf8(
    staff_client: FlaskClient, database: Database, clock: Clock
) -> None:
    ids = make(
        database, clock.now, [(Applicant.OFFICE, Status.ISSUED), (Applicant.AGENT, Status.REVOKED)]
    )
    answer = staff_client.get("/console/list/csv?st=issued&st=revoked")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/csv; charset=Shift_JIS"
    disposition = answer.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="certificates-')
    assert "filename*=UTF-8''%E8%A8%BC%E6%98%8E%E6%9B%B8%E4%B8%80%E8%A6%A7_" in disposition
    rows = list(csv.reader(io.StringIO(answer.data.decode("cp932"))))
    assert rows[0][:3] == ["申請番号", "ユーザID", "事業所名"]
    assert [int(r[0]) for r in rows[1:]] == ids
    assert "発行済み" in rows[1][4] and "失効済み" in rows[2][4]
    utf8 = staff_client.get("/console/list/csv?enc=utf-8&type=agent")
    assert utf8.data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(utf8.data.decode("utf-8-sig"))))
    assert [int(r[0]) for r in rows[1:]] == [ids[1]]


def test_passbook_search_and_registration(
    staff_client: FlaskClient, database: Database, clock: Clock
) -> None:
    ids = make(
        database,
        clock.now,
        [(Applicant.AGENT, Status.AWAITING_PAYMENT)] * 2
        + [(Applicant.AGENT, Status.AWAITING_PAYMENT)],
        user_ids=["AG-K1", "AG-K1x", "AG-K2"],
    )
    with database.factory() as s, s.begin():  # both of AG-K1's applications on one account
        s.get_one(Application, ids[1]).account_id = s.get_one(Application, ids[0]).account_id
        s.get_one(Application, ids[1]).fee_yen = 3000
    page = staff_client.get("/console/payments/?payer=ＡＧ－Ｋ　１").get_data(as_text=True)
    assert_no_mojibake(page)
    assert ids_on(page) == [ids[0], ids[1]] and "3,000" in page
    none = staff_client.get("/console/payments/?payer=AG-K").get_data(as_text=True)
    assert "入金待ちの申請はありません" in none
    answer = staff_client.post(
        "/console/payments/register",
        data={
            "row": [ids[0], ids[1]],
            "paid_on": (clock.now.date() - dt.timedelta(days=1)).isoformat(),
            "amount_yen": "1000",
            "payer_name": "ＡＧ－Ｋ　１",
            "csrf_token": token(staff_client, "/console/payments/"),
        },
    )
    result = answer.get_data(as_text=True)
    assert (
        answer.status_code == 200 and "1 件を処理しました。1 件は処理できませんでした。" in result
    )
    assert status_of(database, ids[0]) == Status.ISSUE_REQUESTED
    assert status_of(database, ids[1]) == Status.AWAITING_PAYMENT
    nothing = staff_client.post(
        "/console/payments/register",
        data={
            "paid_on": (clock.now.date() - dt.timedelta(days=1)).isoformat(),
            "amount_yen": "1000",
            "payer_name": "x",
            "csrf_token": token(staff_client, "/console/payments/"),
        },
    )
    assert nothing.status_code == 400


def test_an_office_session_gets_403(app: Flask, database: Database, clock: Clock) -> None:
    with database.factory() as s, s.begin():
        account = factories.account(s, kind=AccountKind.OFFICE, now=clock.now)
        session_id = f"{account.id}:{account.session_epoch}"
    client = app.test_client()
    with client.session_transaction() as sess:
        sess["_user_id"] = session_id
        sess["seen"] = int(clock.now.timestamp())
    for path in ("/console/list/", "/console/list/csv", "/console/payments/?payer=AG"):
        answer = client.get(path)
        assert answer.status_code == 403, path
        assert "連合会職員のみ" in answer.get_data(as_text=True)
