"""An application's history from the audit log (ra.workflow.history), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from ra.lifecycle import Applicant, Status
from ra.party import Party, PartyKind
from ra.store.models import AccountKind
from tests.ra.conftest import Database

CLERK = Party(PartyKind.STAFF, "st00000001", 1)


def test_application_history_from_the_audit_log(database: Database) -> None:
    """Who did what, when, from which status to which, and why; oldest first."""
    from ra.party import party_of
    from ra.workflow import applications
    from ra.workflow.history import application_history
    from shomei.errors import NotFound
    from tests.ra import factories

    t0 = dt.datetime(2026, 11, 2, 1, 0, tzinfo=dt.UTC)
    with database.factory() as s, s.begin():
        office = factories.account(s, kind=AccountKind.OFFICE, now=t0)
        stranger = factories.account(s, kind=AccountKind.OFFICE, now=t0)
        staff = factories.account(s, kind=AccountKind.STAFF, now=t0)
        admin = factories.account(s, kind=AccountKind.ADMIN, now=t0)
        app = factories.application(
            s, applicant=Applicant.OFFICE, status=Status.AWAITING_ISSUE_REQUEST, now=t0, acct=office
        )
        app_id = app.id
    steps = [
        lambda s, t: applications.reject(s, party_of(staff), app_id, reason="押印漏れ", now=t),
        lambda s, t: applications.edit_rejection_reason(
            s, party_of(staff), app_id, reason="押印漏れ(2枚目)", now=t
        ),
        lambda s, t: applications.undo_rejection(s, party_of(admin), app_id, now=t),
        lambda s, t: applications.register_issue_request(s, party_of(staff), app_id, now=t),
    ]
    for minutes, step in enumerate(steps, start=1):
        with database.factory() as s, s.begin():
            step(s, t0 + dt.timedelta(minutes=minutes))
    with database.factory() as s, s.begin():
        history = application_history(s, CLERK, app_id)
        own = application_history(s, party_of(office), app_id)
        with pytest.raises(NotFound):
            application_history(s, party_of(stranger), app_id)
    assert own == history
    assert [(h.action_ja, h.actor, h.actor_id) for h in history] == [
        ("却下", "staff", staff.user_id),
        ("却下理由の修正", "staff", staff.user_id),
        ("却下取消", "admin", admin.user_id),
        ("発行依頼登録", "staff", staff.user_id),
    ]
    assert [(h.status_before, h.status_after) for h in history] == [
        (Status.AWAITING_ISSUE_REQUEST, Status.REJECTION_PENDING),
        (Status.REJECTION_PENDING, Status.REJECTION_PENDING),
        (Status.REJECTION_PENDING, Status.AWAITING_ISSUE_REQUEST),
        (Status.AWAITING_ISSUE_REQUEST, Status.ISSUE_REQUESTED),
    ]
    assert [h.reason for h in history] == ["押印漏れ", "押印漏れ(2枚目)", None, None]
    assert [h.at for h in history] == [t0 + dt.timedelta(minutes=m) for m in range(1, 5)]
    assert history[0].actor_ja == "職員" and history[2].actor_ja == "管理者"
    assert all(h.at.tzinfo is not None for h in history)
    assert history[0].seq < history[1].seq < history[2].seq < history[3].seq
    with pytest.raises(AttributeError):
        history[0].reason = "x"  # type: ignore[misc]  # frozen entries
