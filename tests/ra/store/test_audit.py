"""The audit log: a hash chain anchored by signatures; every kind of tampering is detected."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from sqlalchemy import delete, select, update

from cli.errors import exit_code_of
from ra.store import audit
from ra.store.models import Application, AuditHead, AuditRecord
from shomei.errors import VerificationFailed
from signer.keys import SoftwareKey
from tests.pki import Pki
from tests.ra.conftest import Database

N = 40


def _fill(database: Database, pki: Pki, now: dt.datetime) -> None:
    with database.factory() as session, session.begin():
        for i in range(N):
            audit.record(
                session,
                actor="staff",
                actor_id=f"s{i % 3}",
                action="register_payment",
                # Not "application": these records stand alone, with no application rows for
                # the status check of verify() to compare with.
                object_type="payment",
                object_id=str(i),
                now=now,
                status_before="awaiting_payment",
                status_after="issue_requested",
                source_address="192.0.2.1",
                details={"amount": 1000 + i, "名前": "代理"},
            )
        audit.anchor(
            session, key=SoftwareKey(pki.keys["issuing"]), certificate=pki.certs["issuing"], now=now
        )


def _verify(database: Database, pki: Pki) -> audit.AuditReport:
    with database.factory() as session, session.begin():
        return audit.verify(session, trusted=[pki.certs["issuing"]])


def test_intact_log_verifies(database: Database, pki: Pki, now: dt.datetime) -> None:
    _fill(database, pki, now)
    report = _verify(database, pki)
    assert report.records == N and report.anchors == 1


def test_anchor_by_unknown_key_is_refused(database: Database, pki: Pki, now: dt.datetime) -> None:
    _fill(database, pki, now)
    with database.factory() as session, session.begin(), pytest.raises(VerificationFailed):
        audit.verify(session, trusted=[pki.certs["root"]])


@pytest.mark.parametrize("seed", range(3))
def test_edit_is_detected(database: Database, pki: Pki, now: dt.datetime, seed: int) -> None:
    _fill(database, pki, now)
    k = random.Random(seed).randint(1, N)
    with database.factory() as session, session.begin():
        session.execute(
            update(AuditRecord).where(AuditRecord.seq == k).values(details={"amount": 1})
        )
    with pytest.raises(VerificationFailed, match=f"record {k} was altered"):
        _verify(database, pki)


@pytest.mark.parametrize("seed", range(3))
def test_deletion_is_detected(database: Database, pki: Pki, now: dt.datetime, seed: int) -> None:
    _fill(database, pki, now)
    k = random.Random(seed).randint(1, N - 1)
    with database.factory() as session, session.begin():
        session.execute(delete(AuditRecord).where(AuditRecord.seq == k))
    with pytest.raises(VerificationFailed, match=f"record {k} is missing"):
        _verify(database, pki)


@pytest.mark.parametrize("seed", range(3))
def test_swap_is_detected(database: Database, pki: Pki, now: dt.datetime, seed: int) -> None:
    _fill(database, pki, now)
    a, b = sorted(random.Random(seed).sample(range(1, N + 1), 2))
    columns = ("at", "actor", "actor_id", "action", "object_id", "details", "prev_hash", "hash")
    with database.factory() as session, session.begin():
        ra_, rb = (
            session.execute(select(AuditRecord).where(AuditRecord.seq == s)).scalar_one()
            for s in (a, b)
        )
        va = {c: getattr(ra_, c) for c in columns}
        vb = {c: getattr(rb, c) for c in columns}
        # Move both out of the way first (hash is unique), then swap their contents.
        session.execute(update(AuditRecord).where(AuditRecord.seq == a).values(hash="x"))
        session.execute(update(AuditRecord).where(AuditRecord.seq == b).values(**va))
        session.execute(update(AuditRecord).where(AuditRecord.seq == a).values(**vb))
    with pytest.raises(VerificationFailed):
        _verify(database, pki)


@pytest.mark.parametrize("cut", [1, 5])
def test_truncation_is_detected(database: Database, pki: Pki, now: dt.datetime, cut: int) -> None:
    _fill(database, pki, now)
    with database.factory() as session, session.begin():
        session.execute(delete(AuditRecord).where(AuditRecord.seq > N - cut))
    with pytest.raises(VerificationFailed, match="truncated"):
        _verify(database, pki)


def test_truncation_with_a_forged_head_is_caught_by_the_anchor(
    database: Database, pki: Pki, now: dt.datetime
) -> None:
    _fill(database, pki, now)
    with database.factory() as session, session.begin():
        session.execute(delete(AuditRecord).where(AuditRecord.seq > N - 3))
        tail = session.execute(select(AuditRecord).where(AuditRecord.seq == N - 3)).scalar_one()
        session.execute(update(AuditHead).values(seq=tail.seq, hash=tail.hash))
    with pytest.raises(VerificationFailed, match="anchor"):
        _verify(database, pki)


# -- statuses changed outside the lifecycle ---------------------------------------------------


def _applications(database: Database, now: dt.datetime) -> list[int]:
    """Three applications moved only through ra.lifecycle (apply, then approve one)."""
    from ra import lifecycle
    from ra.lifecycle import Actor, Applicant, Event, Status
    from tests.ra import factories

    ids = []
    with database.factory() as session, session.begin():
        for _ in range(3):
            app = factories.application(
                session, applicant=Applicant.OFFICE, status=Status.AWAITING_ISSUE_REQUEST, now=now
            )
            lifecycle.create(session, app, actor=Actor.OFFICE, actor_id="of1", now=now)
            ids.append(app.id)
        first = session.get(Application, ids[0])
        assert first is not None
        lifecycle.apply(
            session,
            first,
            Event.REGISTER_ISSUE_REQUEST,
            actor=Actor.STAFF,
            actor_id="st1",
            now=now,
        )
    return ids


def _verify_plain(database: Database) -> audit.AuditReport:
    with database.factory() as session, session.begin():
        return audit.verify(session, trusted=[])


def test_statuses_that_match_the_log_verify(database: Database, now: dt.datetime) -> None:
    _applications(database, now)
    assert _verify_plain(database).records == 4


def test_a_status_changed_in_sql_is_detected(database: Database, now: dt.datetime) -> None:
    ids = _applications(database, now)
    with database.factory() as session, session.begin():
        session.execute(update(Application).where(Application.id == ids[1]).values(status="issued"))
    with pytest.raises(VerificationFailed) as info:
        _verify_plain(database)
    message = info.value.message
    assert message.startswith("1 application(s) are not in the status their audit log says")
    assert f"application {ids[1]} is issued but its log says awaiting_issue_request" in message
    assert info.value.fields["applications"] == [str(ids[1])]
    assert exit_code_of(info.value) == 1 and "申請" in info.value.message_ja


def test_an_undone_move_and_a_deleted_application_are_detected(
    database: Database, now: dt.datetime
) -> None:
    ids = _applications(database, now)
    with database.factory() as session, session.begin():
        # Back to the previous status, as if the approval never happened, and one row gone.
        session.execute(
            update(Application)
            .where(Application.id == ids[0])
            .values(status="awaiting_issue_request")
        )
        session.execute(delete(Application).where(Application.id == ids[2]))
    with pytest.raises(VerificationFailed, match="2 application") as info:
        _verify_plain(database)
    assert "log says issue_requested" in info.value.message
    assert f"application {ids[2]} is missing from the database" in info.value.message


def test_an_application_without_any_record_is_detected(
    database: Database, now: dt.datetime
) -> None:
    from ra.lifecycle import Applicant, Status
    from tests.ra import factories

    with database.factory() as session, session.begin():
        app = factories.application(
            session, applicant=Applicant.OFFICE, status=Status.ISSUED, now=now
        )
        app_id = app.id
    with pytest.raises(
        VerificationFailed, match=f"application {app_id} is issued but its log says nothing"
    ):
        _verify_plain(database)
