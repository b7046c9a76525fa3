"""入金登録 from the passbook (ra.desk.passbook): the payer name folded as a passbook prints it."""

from __future__ import annotations

import datetime as dt

import pytest

from ra.desk.passbook import fold_payer, search_by_payer
from ra.lifecycle import Applicant, Status
from ra.party import party_of
from ra.store.models import AccountKind
from shomei.errors import MalformedInput, Refused
from tests.ra import factories
from tests.ra.conftest import Database

NOW = dt.datetime(2026, 12, 6, 1, 0, tzinfo=dt.UTC)


def test_fold_payer() -> None:
    assert fold_payer("ＡＧ０００１") == fold_payer(" ag 0001 ") == fold_payer("AG0001") == "ag0001"
    assert fold_payer("ＡＧ\u3000０００１") == "ag0001"  # the ideographic space too
    assert fold_payer("AG0001") != fold_payer("AG00012")


@pytest.mark.parametrize("written", ["ag-k1", "ＡＧ－Ｋ１", " AG-K 1 ", "Ag-k１"])
def test_search_finds_the_agents_unpaid_applications(database: Database, written: str) -> None:
    with database.factory() as session, session.begin():
        staff = factories.account(session, kind=AccountKind.STAFF, now=NOW)
        agent = factories.account(session, kind=AccountKind.AGENT, now=NOW)
        agent.user_id = "AG-K1"
        other = factories.account(session, kind=AccountKind.AGENT, now=NOW)
        other.user_id = "AG-K12"
        unpaid = [
            factories.application(
                session,
                applicant=Applicant.AGENT,
                status=Status.AWAITING_PAYMENT,
                now=NOW - dt.timedelta(days=n),
                acct=agent,
            )
            for n in range(2)
        ]
        factories.application(
            session, applicant=Applicant.AGENT, status=Status.ISSUE_REQUESTED, now=NOW, acct=agent
        )
        factories.application(
            session, applicant=Applicant.AGENT, status=Status.AWAITING_PAYMENT, now=NOW, acct=other
        )
        session.flush()
        rows = search_by_payer(session, party_of(staff), written)
        assert [r.application_id for r in rows] == [unpaid[0].id, unpaid[1].id]
        assert all(r.user_id == "AG-K1" and r.fee_balance_yen == 1000 for r in rows)
        assert all(r.status is Status.AWAITING_PAYMENT for r in rows)
        assert search_by_payer(session, party_of(staff), "AG-K") == ()  # no prefix matches


def test_search_is_for_staff_and_needs_a_payer(database: Database) -> None:
    with database.factory() as session, session.begin():
        staff = factories.account(session, kind=AccountKind.STAFF, now=NOW)
        agent = factories.account(session, kind=AccountKind.AGENT, now=NOW)
        with pytest.raises(Refused):
            search_by_payer(session, party_of(agent), agent.user_id)
        for bad in ("", "   ", "x" * 101):
            with pytest.raises(MalformedInput) as caught:
                search_by_payer(session, party_of(staff), bad)
            assert "振込人名" in caught.value.message_ja
