"""Bulk actions of the certificate list (ra.desk.bulk): the selection and row-by-row actions.

A bulk action over good and refused rows must do every good row, list every refused one with
its reason in both languages, and leave nothing of a refused row behind (status, audit,
payment); a whole-search selection is read across pages; over the cap is refused in Japanese
before anything changes.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ra.desk import bulk
from ra.desk.bulk import (
    bulk_issue_request,
    bulk_register_payment,
    bulk_undo_issue_request,
    select_all,
    select_rows,
    selected_ids,
    selection_count,
)
from ra.desk.queries import make_filters
from ra.lifecycle import Applicant, Status
from ra.party import party_of
from ra.store.models import Account, AccountKind, Application, AuditRecord, Payment
from ra.workflow.applications import register_issue_request
from shomei.errors import MalformedInput, NotPermitted, Refused
from tests.ra import factories
from tests.ra.conftest import Database

NOW = dt.datetime(2026, 12, 6, 1, 0, tzinfo=dt.UTC)


def people(session: Session) -> tuple[Account, Account]:
    staff = factories.account(session, kind=AccountKind.STAFF, now=NOW)
    admin = factories.account(session, kind=AccountKind.ADMIN, now=NOW)
    return staff, admin


def status_of(session: Session, app_id: int) -> Status:
    return Status(session.scalar(select(Application.status).where(Application.id == app_id)))


def audit_count(session: Session, app_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(AuditRecord)
            .where(AuditRecord.object_type == "application", AuditRecord.object_id == str(app_id))
        )
        or 0
    )


def test_issue_request_does_the_good_rows_and_lists_the_refused(database: Database) -> None:
    with database.factory() as session, session.begin():
        staff, _ = people(session)
        good = [
            factories.application(
                session, applicant=Applicant.OFFICE, status=Status.AWAITING_ISSUE_REQUEST, now=NOW
            ).id
            for _ in range(3)
        ]
        issued = factories.application(
            session, applicant=Applicant.OFFICE, status=Status.ISSUED, now=NOW
        ).id
        staff_id = staff.id
    # Another staff member approves one of the rows first, in a transaction of its own.
    with database.factory() as other, other.begin():
        colleague = factories.account(other, kind=AccountKind.STAFF, now=NOW)
        register_issue_request(other, party_of(colleague), good[1], now=NOW)
    with database.factory() as session, session.begin():
        staff = session.get_one(Account, staff_id)
        result = bulk_issue_request(
            session, party_of(staff), [good[0], issued, good[1], good[2], 999_999, good[0]], now=NOW
        )
    assert result.done == (good[0], good[2])
    assert [r.application_id for r in result.refused] == [issued, good[1], 999_999]
    by_id = {r.application_id: r for r in result.refused}
    # Wrong status (発行済み, and the row the colleague approved first): the lifecycle's
    # refusal, in both languages.
    for app_id in (issued, good[1]):
        refused = by_id[app_id]
        assert refused.code and refused.message and refused.message_ja != refused.message
        assert any("\u3040" <= ch <= "\u9fff" for ch in refused.message_ja)
    assert by_id[999_999].code == "not_found" and "999999" in by_id[999_999].message_ja
    assert "2件を処理しました" in result.summary_ja and "3件は処理できません" in result.summary_ja
    with database.factory() as session:
        assert status_of(session, good[0]) == status_of(session, good[2]) == Status.ISSUE_REQUESTED
        assert status_of(session, issued) == Status.ISSUED
        assert audit_count(session, issued) == 0  # nothing of a refused row is left
        assert audit_count(session, good[1]) == 1  # the colleague's approval only


def test_a_row_changed_meanwhile_is_refused_as_a_conflict(database: Database) -> None:
    with database.factory() as session, session.begin():
        staff, _ = people(session)
        apps = [
            factories.application(
                session, applicant=Applicant.OFFICE, status=Status.AWAITING_ISSUE_REQUEST, now=NOW
            ).id
            for _ in range(2)
        ]
        staff_id = staff.id
    with database.factory() as session:
        staff = session.get_one(Account, staff_id)
        # This session read the row (version 1) before a colleague approved it ...
        stale = session.get_one(Application, apps[0])
        assert stale.version == 1
        session.commit()  # end the read transaction; the loaded row stays in the identity map
        with database.factory() as other, other.begin():
            colleague = factories.account(other, kind=AccountKind.STAFF, now=NOW)
            register_issue_request(other, party_of(colleague), apps[0], now=NOW)
        with session.begin():
            result = bulk_issue_request(session, party_of(staff), apps, now=NOW)
    assert result.done == (apps[1],)
    (refused,) = result.refused
    assert refused.application_id == apps[0] and refused.code == "changed_meanwhile"
    assert "他の職員が先にこの申請を変更しました" in refused.message_ja


def test_payment_registration_by_bulk(database: Database) -> None:
    with database.factory() as session, session.begin():
        staff, _ = people(session)
        unpaid = [
            factories.application(
                session, applicant=Applicant.AGENT, status=Status.AWAITING_PAYMENT, now=NOW
            )
            for _ in range(3)
        ]
        unpaid[2].fee_yen = 2000  # this one's fee does not match the amount paid
        office = factories.application(
            session, applicant=Applicant.OFFICE, status=Status.AWAITING_ISSUE_REQUEST, now=NOW
        )
        ids = [a.id for a in unpaid] + [office.id]
        result = bulk_register_payment(
            session,
            party_of(staff),
            ids,
            paid_on=dt.date(2026, 12, 5),
            amount_yen=1000,
            payer_name="AG0001",
            now=NOW,
        )
        assert result.done == (ids[0], ids[1])
        assert [r.application_id for r in result.refused] == [ids[2], office.id]
        assert "一致しません" in result.refused[0].message_ja
        payments = session.scalars(select(Payment.application_id)).all()
        assert sorted(payments) == sorted(ids[:2])
        assert status_of(session, ids[2]) == Status.AWAITING_PAYMENT


def test_undo_of_issue_requests_is_for_admins(database: Database) -> None:
    with database.factory() as session, session.begin():
        staff, admin = people(session)
        requested = [
            factories.application(
                session, applicant=Applicant.OFFICE, status=Status.ISSUE_REQUESTED, now=NOW
            ).id
            for _ in range(2)
        ]
        dispatched = factories.application(
            session, applicant=Applicant.OFFICE, status=Status.AWAITING_ISSUANCE, now=NOW
        ).id
        with pytest.raises(NotPermitted) as caught:
            bulk_undo_issue_request(session, party_of(staff), requested, now=NOW)
        assert "管理者" in caught.value.message_ja
        assert status_of(session, requested[0]) == Status.ISSUE_REQUESTED
        result = bulk_undo_issue_request(
            session, party_of(admin), [*requested, dispatched], now=NOW
        )
        assert result.done == tuple(requested)
        assert [r.application_id for r in result.refused] == [dispatched]
        assert status_of(session, requested[0]) == Status.AWAITING_ISSUE_REQUEST
        assert status_of(session, dispatched) == Status.AWAITING_ISSUANCE


def test_portal_accounts_cannot_act_in_bulk(database: Database) -> None:
    with database.factory() as session, session.begin():
        office = factories.account(session, kind=AccountKind.OFFICE, now=NOW)
        app = factories.application(
            session, applicant=Applicant.OFFICE, status=Status.AWAITING_ISSUE_REQUEST, now=NOW
        )
        with pytest.raises(NotPermitted):
            bulk_issue_request(session, party_of(office), [app.id], now=NOW)
        assert status_of(session, app.id) == Status.AWAITING_ISSUE_REQUEST


def test_a_whole_search_is_selected_across_pages(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "CHUNK", 3)
    with database.factory() as session, session.begin():
        staff, _ = people(session)
        waiting = [
            factories.application(
                session,
                applicant=Applicant.OFFICE,
                status=Status.AWAITING_ISSUE_REQUEST,
                now=NOW - dt.timedelta(minutes=n),
            ).id
            for n in range(8)
        ]  # newest first
        factories.application(session, applicant=Applicant.OFFICE, status=Status.ISSUED, now=NOW)
        search = make_filters(statuses={Status.AWAITING_ISSUE_REQUEST})
        selection = select_all(search, excluded=[waiting[4]])
        assert selection_count(session, selection) == 7
        chunks = list(bulk.iter_selected(session, selection, chunk_size=3))
        assert all(len(c) <= 3 for c in chunks) and len(chunks) == 3
        ids = selected_ids(session, selection)
        assert ids == tuple(i for i in waiting if i != waiting[4])
        result = bulk_issue_request(session, party_of(staff), selection, now=NOW)
        assert result.done == ids and not result.refused
        assert status_of(session, waiting[4]) == Status.AWAITING_ISSUE_REQUEST


def test_the_cap_is_refused_in_japanese_before_anything_changes(database: Database) -> None:
    with database.factory() as session, session.begin():
        staff, _ = people(session)
        apps = [
            factories.application(
                session, applicant=Applicant.OFFICE, status=Status.AWAITING_ISSUE_REQUEST, now=NOW
            ).id
            for _ in range(4)
        ]
        search = make_filters(statuses={Status.AWAITING_ISSUE_REQUEST})
        with pytest.raises(Refused) as caught:
            selected_ids(session, select_all(search), limit=3)
        assert (
            "選択件数が4件です" in caught.value.message_ja and "3件まで" in caught.value.message_ja
        )
        assert caught.value.fields == {"selected": 4, "limit": 3}
        with pytest.raises(Refused) as too_many:
            bulk_issue_request(session, party_of(staff), range(1, bulk.BULK_LIMIT + 2), now=NOW)
        assert "2,001件" in too_many.value.message_ja and "2,000件まで" in too_many.value.message_ja
        assert all(status_of(session, i) == Status.AWAITING_ISSUE_REQUEST for i in apps)
        assert select_rows([3, 1, 3]).ids == (3, 1)
        assert len(select_rows(range(1, bulk.BULK_LIMIT + 1)).ids) == bulk.BULK_LIMIT


@pytest.mark.parametrize("bad", [[0], [-2], ["7"], [True], [1.5]])
def test_bad_ids_are_refused(bad: list[object]) -> None:
    with pytest.raises(MalformedInput) as caught:
        select_rows(bad)  # type: ignore[arg-type]
    assert caught.value.message_ja == "申請番号の指定が正しくありません"
    with pytest.raises(MalformedInput):
        select_all(make_filters(), excluded=bad)  # type: ignore[arg-type]
