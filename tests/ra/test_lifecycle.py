"""The lifecycle table: every (status, event, actor) combination, and races between operators.

Legal combinations do exactly what the table says (status, version, one audit record);
every other combination is refused with a clear message and changes nothing.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter

import pytest
from sqlalchemy import func, select

from ra import lifecycle
from ra.lifecycle import (
    TRANSITIONS,
    Actor,
    Applicant,
    ChangedMeanwhile,
    Event,
    Status,
    TransitionRefused,
)
from ra.store import audit
from ra.store.models import Application, AuditRecord
from shomei.errors import Conflict, NotPermitted
from tests.ra import factories
from tests.ra.conftest import Database


def _audit_count(session) -> int:  # type: ignore[no-untyped-def]
    return session.execute(select(func.count()).select_from(AuditRecord)).scalar_one()


def test_table_has_exactly_the_spec_transitions() -> None:
    pairs = {(t.source, t.event) for t in TRANSITIONS.values()}
    assert len(pairs) == 17
    targets = {
        (t.source.value if t.source else None, t.event.value): t.target
        for t in TRANSITIONS.values()
    }
    assert targets[("awaiting_issue_request", "register_issue_request")] == Status.ISSUE_REQUESTED
    assert targets[("awaiting_revocation", "register_crl")] == Status.REVOKED
    # The way back from a batch the CA abandoned (docs/batch-link-operations.md).
    assert targets[("awaiting_issuance", "rerequest_issuance")] == Status.ISSUE_REQUESTED
    assert all(
        Actor.SYSTEM not in t.actors or t.event not in (Event.REGISTER_ISSUE_REQUEST, Event.REJECT)
        for t in TRANSITIONS.values()
    )


def test_every_combination(database: Database, now) -> None:  # type: ignore[no-untyped-def]
    legal = refused = 0
    for status, event, actor, applicant in itertools.product(Status, Event, Actor, Applicant):
        with database.factory() as session, session.begin():
            app = factories.application(session, applicant=applicant, status=status, now=now)
            before = _audit_count(session)
            transition = TRANSITIONS.get((status, event))
            if transition is not None and actor in transition.actors:
                after = lifecycle.apply(
                    session, app, event, actor=actor, actor_id="tester", now=now, reason="r"
                )
                assert after == transition.target_for(applicant)
                session.refresh(app)
                assert app.status == after and app.version == 2
                assert _audit_count(session) == before + 1
                last = session.execute(
                    select(AuditRecord).order_by(AuditRecord.seq.desc()).limit(1)
                ).scalar_one()
                assert (last.status_before, last.status_after) == (status.value, after.value)
                assert last.action == event.value
                legal += 1
            else:
                # A status that does not allow the event is a conflict with the state; a legal
                # move by an actor the table does not name is a permission matter.
                expected = TransitionRefused if transition is None else NotPermitted
                with pytest.raises(
                    Conflict if expected is TransitionRefused else NotPermitted
                ) as info:
                    lifecycle.apply(session, app, event, actor=actor, actor_id="tester", now=now)
                assert type(info.value) is expected
                assert info.value.message_ja  # a message for people, in Japanese
                session.refresh(app)
                assert app.status == status and app.version == 1
                assert _audit_count(session) == before
                refused += 1
            session.rollback()
    # 17 transitions; APPLY has no source so it never matches an existing application.
    assert legal == sum(len(t.actors) for t in TRANSITIONS.values() if t.source) * 2
    assert legal + refused == len(Status) * len(Event) * len(Actor) * len(Applicant)


@pytest.mark.parametrize(
    ("actor", "applicant", "expected"),
    [
        (Actor.OFFICE, Applicant.OFFICE, Status.AWAITING_ISSUE_REQUEST),
        (Actor.AGENT, Applicant.AGENT, Status.AWAITING_PAYMENT),
        (Actor.STAFF, Applicant.OFFICE, Status.AWAITING_ISSUE_REQUEST),
        (Actor.STAFF, Applicant.AGENT, Status.AWAITING_PAYMENT),
        (Actor.ADMIN, Applicant.AGENT, Status.AWAITING_PAYMENT),
    ],
)
def test_apply_creates_in_the_right_status(
    database: Database,
    now,
    actor,
    applicant,  # type: ignore[no-untyped-def]
    expected,
) -> None:
    with database.factory() as session, session.begin():
        acct = factories.account(session, kind=factories.AccountKind(applicant.value), now=now)
        app = Application(
            account_id=acct.id,
            applicant=applicant,
            entered_by=actor.value,
            applied_at=now,
            fee_yen=0,
            csr_der=b"c",
            request_id=f"r-{actor}",
            profile="office",
        )
        assert lifecycle.create(session, app, actor=actor, actor_id="u", now=now) == expected
        assert app.status == expected and _audit_count(session) == 1


def test_system_cannot_apply(database: Database, now) -> None:  # type: ignore[no-untyped-def]
    with database.factory() as session, session.begin():
        acct = factories.account(session, kind=factories.AccountKind.OFFICE, now=now)
        app = Application(
            account_id=acct.id,
            applicant=Applicant.OFFICE,
            entered_by="x",
            applied_at=now,
            fee_yen=0,
            csr_der=b"c",
            request_id="r-sys",
            profile="office",
        )
        with pytest.raises(NotPermitted) as info:
            lifecycle.create(session, app, actor=Actor.SYSTEM, actor_id="job", now=now)
        assert "権限がありません" in info.value.message_ja


def test_stale_read_is_a_conflict(database: Database, now) -> None:  # type: ignore[no-untyped-def]
    with database.factory() as session, session.begin():
        app = factories.application(
            session, applicant=Applicant.OFFICE, status=Status.AWAITING_ISSUE_REQUEST, now=now
        )
        app_id = app.id
    with database.factory() as first, database.factory() as second:
        with first.begin():
            a = first.get(Application, app_id)
        with second.begin():
            b = second.get(Application, app_id)
        assert a is not None and b is not None
        with first.begin():
            lifecycle.apply(
                first, a, Event.REGISTER_ISSUE_REQUEST, actor=Actor.STAFF, actor_id="s1", now=now
            )
        with second.begin(), pytest.raises(ChangedMeanwhile) as info:
            lifecycle.apply(
                second, b, Event.REJECT, actor=Actor.STAFF, actor_id="s2", now=now, reason="重複"
            )
        assert "他の職員が先にこの申請を変更しました" in info.value.message_ja
        assert isinstance(info.value, Conflict) and info.value.code == "changed_meanwhile"
    with database.factory() as session:
        app = session.get(Application, app_id)
        assert app is not None and app.status == Status.ISSUE_REQUESTED


RACES = [
    # (starting status, the events the 8 threads race with, their actors)
    (
        Status.AWAITING_ISSUE_REQUEST,
        [(Event.REGISTER_ISSUE_REQUEST, Actor.STAFF), (Event.REJECT, Actor.STAFF)],
    ),
    (Status.AWAITING_PAYMENT, [(Event.REGISTER_PAYMENT, Actor.STAFF), (Event.REJECT, Actor.ADMIN)]),
    (
        Status.ISSUE_REQUESTED,
        [(Event.UNDO_APPROVAL, Actor.ADMIN), (Event.DISPATCH_ISSUANCE, Actor.SYSTEM)],
    ),
    (
        Status.REJECTION_PENDING,
        [(Event.UNDO_REJECTION, Actor.ADMIN), (Event.PROCESS_REJECTION, Actor.SYSTEM)],
    ),
    (
        Status.REVOCATION_REQUESTED,
        [(Event.UNDO_REVOCATION, Actor.ADMIN), (Event.DISPATCH_REVOCATION, Actor.SYSTEM)],
    ),
]


@pytest.mark.parametrize(("start", "moves"), RACES)
def test_eight_threads_race_exactly_one_wins(database: Database, now, start, moves) -> None:  # type: ignore[no-untyped-def]
    applicant = Applicant.AGENT if start == Status.AWAITING_PAYMENT else Applicant.OFFICE
    with database.factory() as session, session.begin():
        app_ids = [
            factories.application(session, applicant=applicant, status=start, now=now).id
            for _ in range(5)
        ]
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def worker(number: int, app_id: int, barrier: threading.Barrier) -> None:
        event, actor = moves[number % len(moves)]
        with database.factory() as session:
            with session.begin():
                app = session.get(Application, app_id)
                assert app is not None
            barrier.wait(timeout=30)
            try:
                with session.begin():
                    lifecycle.apply(
                        session,
                        app,
                        event,
                        actor=actor,
                        actor_id=f"op{number}",
                        now=now,
                        reason="race",
                    )
                result = "won"
            except Conflict:  # ChangedMeanwhile, or TransitionRefused after the winner
                result = "lost"
        with lock:
            outcomes[f"{app_id}:{result}"] += 1

    for app_id in app_ids:
        barrier = threading.Barrier(8)
        threads = [threading.Thread(target=worker, args=(n, app_id, barrier)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert outcomes[f"{app_id}:won"] == 1, outcomes
        assert outcomes[f"{app_id}:lost"] == 7, outcomes
    with database.factory() as session:
        for app_id in app_ids:
            app = session.get(Application, app_id)
            assert app is not None and app.version == 2 and app.status != start
        # Exactly one audit record per race, and the chain is whole (no lost update).
        assert _audit_count(session) == len(app_ids)
        report = audit.verify(session, trusted=[])
        assert report.records == len(app_ids)
