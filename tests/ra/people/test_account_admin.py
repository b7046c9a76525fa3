"""ra.account_admin: search, disable, TOTP reset and reminders, with their permissions."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from ra.party import Party, party_of
from ra.people import account_admin
from ra.store import audit
from ra.store.models import Account, AccountKind, AuditRecord, OutboxMail
from shomei.errors import Conflict, NotFound, NotPermitted, Refused
from tests.ra import factories
from tests.ra.conftest import Database

REMIND = {
    "portal_url": "https://portal.example.jp/",
    "federation_name": "証明連合会",
    "message_id_domain": "example.jp",
}


def test_search_escapes_like_wildcards_and_folds_user_ids(
    database: Database, now: dt.datetime
) -> None:
    with database.factory() as s, s.begin():
        a = factories.account(s, kind=AccountKind.OFFICE, now=now)
        a.name = "100%介護"
        b = factories.account(s, kind=AccountKind.OFFICE, now=now)
        factories.account(s, kind=AccountKind.STAFF, now=now)  # never listed here
        party = Party.operator()
        rows, more = account_admin.search(s, party, "%", now=now)
        assert [r.account.user_id for r in rows] == [a.user_id] and not more
        rows, _more = account_admin.search(s, party, "", now=now)
        assert {r.account.user_id for r in rows} == {a.user_id, b.user_id}
        wide = b.user_id.upper().translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})
        rows, _more = account_admin.search(s, party, wide, now=now)
        assert [r.account.user_id for r in rows] == [b.user_id]


def test_overdue_is_read_from_the_audit_log(database: Database, now: dt.datetime) -> None:
    with database.factory() as s, s.begin():
        old = factories.account(s, kind=AccountKind.OFFICE, now=now - dt.timedelta(days=3))
        seen = factories.account(s, kind=AccountKind.OFFICE, now=now - dt.timedelta(days=5))
        new = factories.account(s, kind=AccountKind.OFFICE, now=now - dt.timedelta(days=2))
        audit.record(
            s,
            actor="office",
            actor_id=seen.user_id,
            action="sign_in",
            object_type="account",
            object_id=seen.user_id,
            now=now,
        )
        rows, _more = account_admin.search(s, Party.operator(), "", now=now, overdue_only=True)
        assert [r.account.user_id for r in rows] == [old.user_id]
        row = account_admin.account_row(s, Party.operator(), new.user_id, now=now)
        assert not row.overdue and not row.signed_in


def test_portal_and_staff_parties_are_refused_what_is_not_theirs(
    database: Database, now: dt.datetime
) -> None:
    with database.factory() as s, s.begin():
        office = factories.account(s, kind=AccountKind.OFFICE, now=now)
        staff = factories.account(s, kind=AccountKind.STAFF, now=now)
        other = factories.account(s, kind=AccountKind.STAFF, now=now)
        with pytest.raises(NotPermitted):
            account_admin.search(s, party_of(office), "", now=now)
        with pytest.raises(NotPermitted):
            account_admin.disable(s, party_of(office), staff.user_id, now=now)
        with pytest.raises(NotPermitted):
            account_admin.console_users(s, party_of(staff), now=now)
        with pytest.raises(NotPermitted):
            account_admin.disable(s, party_of(staff), other.user_id, now=now)
        with pytest.raises(NotPermitted):
            account_admin.reset_totp(s, party_of(staff), other.user_id, now=now)
        with pytest.raises(NotFound):
            account_admin.disable(s, Party.operator(), "nobody", now=now)


def test_disable_and_reset_totp(database: Database, now: dt.datetime) -> None:
    with database.factory() as s, s.begin():
        admin = factories.account(s, kind=AccountKind.ADMIN, now=now)
        staff = factories.account(s, kind=AccountKind.STAFF, now=now)
        office = factories.account(s, kind=AccountKind.OFFICE, now=now)
        staff.totp_secret_sealed = "sealed"
        staff.totp_enrolled_at = now
        epoch = staff.session_epoch or 0
        account_admin.reset_totp(s, party_of(admin), staff.user_id, now=now)
        assert staff.totp_secret_sealed is None and staff.totp_enrolled_at is None
        assert staff.session_epoch == epoch + 1
        with pytest.raises(Refused):
            account_admin.reset_totp(s, party_of(admin), office.user_id, now=now)
        with pytest.raises(Refused):
            account_admin.disable(s, party_of(admin), admin.user_id, now=now)
        account_admin.disable(s, party_of(admin), staff.user_id, now=now)
        assert staff.active is False
        with pytest.raises(Conflict):
            account_admin.disable(s, party_of(admin), staff.user_id, now=now)
        actions = list(
            s.scalars(select(AuditRecord.action).where(AuditRecord.object_id == staff.user_id))
        )
        assert actions == ["reset_totp", "disable_account"]


def test_remind_queues_one_mail(database: Database, now: dt.datetime) -> None:
    with database.factory() as s, s.begin():
        office = factories.account(s, kind=AccountKind.OFFICE, now=now - dt.timedelta(days=4))
        office.email = "office@example.jp"
        bare = factories.account(s, kind=AccountKind.OFFICE, now=now - dt.timedelta(days=4))
        account_admin.remind(s, Party.operator(), office.user_id, now=now, **REMIND)
        mail = s.execute(select(OutboxMail)).scalar_one()
        assert mail.to_address == "office@example.jp" and office.user_id in mail.body
        assert "https://portal.example.jp/" in mail.body
        with pytest.raises(Conflict):
            account_admin.remind(s, Party.operator(), bare.user_id, now=now, **REMIND)
        account_admin.disable(s, Party.operator(), office.user_id, now=now)
        with pytest.raises(Conflict):
            account_admin.remind(s, Party.operator(), office.user_id, now=now, **REMIND)
        assert s.scalar(select(Account.active).where(Account.id == office.id)) is False
