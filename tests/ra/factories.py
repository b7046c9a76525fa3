"""Small builders of RA rows for tests (they may set a status directly: product code may not)."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid

from sqlalchemy.orm import Session

from ra.lifecycle import Applicant, Status
from ra.store.models import Account, AccountKind, Application

_numbers = itertools.count(1)


def account(session: Session, *, kind: AccountKind, now: dt.datetime) -> Account:
    n = next(_numbers)
    acct = Account(
        user_id=f"{kind.value[:2]}{uuid.uuid4().hex[:10]}",
        kind=kind,
        name=f"テスト{kind.value}{n}",
        office_number=f"{1300000000 + n:010d}" if kind is AccountKind.OFFICE else None,
        created_at=now,
        failed_logins=0,
        active=True,
    )
    session.add(acct)
    session.flush()
    return acct


def application(
    session: Session,
    *,
    applicant: Applicant,
    status: Status,
    now: dt.datetime,
    acct: Account | None = None,
    office_number: str | None = None,
) -> Application:
    """An application in ``status``; its subject office is a fresh number unless given (so
    tests may hold several applications in progress for one account without tripping the
    one-in-progress-per-office index, unless that is what they test)."""
    acct = acct or account(session, kind=AccountKind(applicant.value), now=now)
    app = Application(
        account_id=acct.id,
        applicant=applicant,
        entered_by=applicant.value,
        office_number=office_number or f"{2300000000 + next(_numbers):010d}",
        office_name=acct.name,
        status=status,
        version=1,
        status_changed_at=now,
        applied_at=now,
        fee_yen=1000,
        csr_der=b"csr",
        request_id=uuid.uuid4().hex,
        profile="office",
    )
    session.add(app)
    session.flush()
    return app
