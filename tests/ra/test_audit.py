"""The audit log: a hash chain anchored by signatures; every kind of tampering is detected."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from sqlalchemy import delete, select, update

from ra import audit
from ra.models import AuditHead, AuditRecord
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
                object_type="application",
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
