"""The notices service (ra.mailing.notices): whose notices, the first opening only, who may ask."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from ra.lifecycle import Applicant, Status
from ra.mailing import notices
from ra.mailing.notify import notify
from ra.party import Party, PartyKind, party_of
from ra.store.models import Account, AccountKind, AuditRecord, Notice
from shomei.errors import NotFound, NotPermitted
from tests.ra import factories
from tests.ra.conftest import Database


def _office_with_notice(database: Database, now: dt.datetime) -> tuple[Party, int, int]:
    with database.factory() as s, s.begin():
        app = factories.application(s, applicant=Applicant.OFFICE, status=Status.ISSUED, now=now)
        notice = notify(
            s,
            app.account,
            kind="certificate_issued",
            title="証明書が発行されました",
            body="本文",
            now=now,
            message_id_domain="t.example",
            application_id=app.id,
        )
        return party_of(app.account), notice.id, app.id


def test_two_openings_at_once_record_one_date_and_one_audit_record(
    database: Database, now: dt.datetime
) -> None:
    party, notice_id, _app = _office_with_notice(database, now)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_it(minutes: int) -> None:
        try:
            barrier.wait()
            with database.factory() as s, s.begin():
                notices.read_notice(s, party, notice_id, now=now + dt.timedelta(minutes=minutes))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it, args=(m,)) for m in (1, 2, 3, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    with database.factory() as s:
        notice = s.get(Notice, notice_id)
        assert notice is not None and notice.read_at is not None
        assert notice.read_at in {now + dt.timedelta(minutes=m) for m in (1, 2, 3, 4)}
        records = (
            s.execute(select(AuditRecord).where(AuditRecord.action == "open_notice"))
            .scalars()
            .all()
        )
        assert len(records) == 1
        assert records[0].at == notice.read_at and records[0].object_id == str(notice_id)


def test_only_the_owner_reads_and_only_staff_see_the_opened_dates(
    database: Database, now: dt.datetime
) -> None:
    party, notice_id, app_id = _office_with_notice(database, now)
    with database.factory() as s, s.begin():
        other = party_of(factories.account(s, kind=AccountKind.OFFICE, now=now))
        with pytest.raises(NotFound):
            notices.read_notice(s, other, notice_id, now=now)
        assert notices.own_notices(s, other) == ()
        assert notices.unread_count(s, other) == 0
        assert notices.unread_count(s, party) == 1
        with pytest.raises(NotPermitted):
            notices.application_notices(s, party, app_id)
        owner = s.get(Account, party.account_id)
        assert owner is not None
        with pytest.raises(NotPermitted):
            notices.account_notices(s, party, owner)
        staff = Party(PartyKind.STAFF, "staff-test")
        with pytest.raises(NotPermitted):
            notices.own_notices(s, staff)
        (line,) = notices.application_notices(s, staff, app_id)
        assert (line.id, line.read_at, line.sealed) == (notice_id, None, False)
        assert notices.account_notices(s, staff, owner) == (line,)
    with database.factory() as s:
        assert s.scalar(select(func.count()).select_from(AuditRecord)) == 0
